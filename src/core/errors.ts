// Typed errors: the CLI maps them to exit codes (0 ok, 1 failure, 2 bad input).

/** Bad input from the operator: topology, inventory, CLI flags. Exit code 2. */
export class InputError extends Error {
  readonly exitCode = 2;
  constructor(
    message: string,
    readonly problems: string[] = [message],
  ) {
    super(message);
    this.name = 'InputError';
  }
}

/** Something failed while doing the work (a host, a daemon, a check). Exit code 1. */
export class RunError extends Error {
  readonly exitCode = 1;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RunError';
  }
}

export function exitCodeOf(err: unknown): number {
  if (err instanceof InputError) return 2;
  return 1;
}

/** A failure the command has already reported (e.g. a runbook's summary): exit 1, nothing more printed. */
export class ReportedFailure extends Error {
  readonly exitCode = 1;
  constructor(message = 'failed (already reported)') {
    super(message);
    this.name = 'ReportedFailure';
  }
}
