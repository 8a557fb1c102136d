// `host.$`: zx's tagged-template style for commands on a host (over SSH, or this machine).
//   await host.$`systemctl reload ${unit}`                  → throws CommandFailed on a non-zero exit
//   await host.$({ nothrow: true })`systemctl is-active ${u}` → the result, whatever the exit code
//   await host.$({ input, timeoutMs, sudo: false, secret: true })`…`
// Interpolations are quoted (arrays become several arguments) with the one quoter, shQuote.
import { shCommand, type ShellArg } from './quote.ts';

/** Options of one `host.$` call; they combine: `host.$({sudo: false})({nothrow: true})\`…\``. */
export interface ShellOptions {
  /** Bytes for the command's stdin. */
  input?: string | Buffer;
  /** Kill the command after this long (default: the transport's command timeout). */
  timeoutMs?: number;
  /** Resolve with the result on a non-zero exit instead of throwing. */
  nothrow?: boolean;
  /** Run privileged (sudo -n when the host needs it). Default true. */
  sudo?: boolean;
  /** The command line and input contain secrets: never shown, not even masked. */
  secret?: boolean;
}

/** What a `host.$` call resolves with (the Transport's ExecResult). */
export interface ShellResult {
  stdout: string;
  stderr: string;
  code: number;
  stdoutBuffer: Buffer;
}

export interface HostShell {
  (pieces: TemplateStringsArray, ...args: ShellArg[]): Promise<ShellResult>;
  (opts: ShellOptions): HostShell;
}

/**
 * A `$` for one host: `run` executes a finished command line (resolving with any exit code) and
 * `fail` makes the error for a non-zero exit. Both come from the transport.
 */
export function hostShell(
  run: (line: string, o: ShellOptions) => Promise<ShellResult>,
  fail: (line: string, o: ShellOptions, r: ShellResult) => Error,
  base: ShellOptions = {},
): HostShell {
  function shell(first: TemplateStringsArray | ShellOptions, ...args: ShellArg[]): unknown {
    if (!Array.isArray(first)) return hostShell(run, fail, { ...base, ...(first as ShellOptions) });
    const line = shCommand(first as TemplateStringsArray, args);
    return run(line, base).then((r) => {
      if (r.code !== 0 && !base.nothrow) throw fail(line, base, r);
      return r;
    });
  }
  return shell as HostShell;
}
