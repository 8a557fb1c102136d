// The one place where errors become exit codes: 0 ok, 1 failure, 2 bad input.
import { CommanderError } from 'commander';
import { InputError, ReportedFailure, RunError } from '../core/errors.ts';

export const EXIT = { ok: 0, failure: 1, badInput: 2 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** What the CLI prints and returns for an error thrown by a command or by commander itself. */
export interface ErrorReport {
  exitCode: ExitCode;
  /** Lines for stderr; empty when commander already printed its own message or help. */
  problems: string[];
}

export function reportOf(err: unknown): ErrorReport {
  if (err instanceof CommanderError) {
    // --help / --version, or `wharf help`: not an error. Commander already wrote the text.
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') {
      return { exitCode: EXIT.ok, problems: [] };
    }
    if (err.code === 'commander.help') {
      return { exitCode: err.exitCode === 0 ? EXIT.ok : EXIT.badInput, problems: [] };
    }
    // Usage errors (unknown option, missing argument, bad choice…): commander printed
    // "error: …" already; the exit code says "bad input".
    return { exitCode: EXIT.badInput, problems: [] };
  }
  if (err instanceof ReportedFailure) return { exitCode: EXIT.failure, problems: [] };
  if (err instanceof InputError) return { exitCode: EXIT.badInput, problems: err.problems };
  if (err instanceof RunError) {
    const cause = err.cause instanceof Error ? [`  caused by: ${err.cause.message}`] : [];
    return { exitCode: EXIT.failure, problems: [err.message, ...cause] };
  }
  const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
  return { exitCode: EXIT.failure, problems: [`unexpected error: ${message}`] };
}
