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
  (pieces: TemplateStringsArray, ...args: ShellArg[]): HostCommand;
  (opts: ShellOptions): HostShell;
}

/**
 * One command on a host, like zx's ProcessPromise: it starts on the next microtask, so modifiers
 * chained right away apply (`host.$\`systemctl is-active ${u}\`.nothrow()`), then settles with the
 * result, or with the transport's error for a non-zero exit unless nothrow.
 */
export class HostCommand implements PromiseLike<ShellResult> {
  private readonly settled: Promise<ShellResult>;

  constructor(
    /** The command line as built (values quoted). */
    readonly line: string,
    private readonly opts: ShellOptions,
    run: (line: string, o: ShellOptions) => Promise<ShellResult>,
    fail: (line: string, o: ShellOptions, r: ShellResult) => Error,
  ) {
    this.settled = Promise.resolve()
      .then(() => run(line, { ...this.opts }))
      .then((r) => {
        if (r.code !== 0 && !this.opts.nothrow) throw fail(line, this.opts, r);
        return r;
      });
  }

  /** Resolve with the result whatever the exit code. */
  nothrow(v = true): this {
    this.opts.nothrow = v;
    return this;
  }

  /** Kill the command after ms (before it starts: chain it right away). */
  timeout(ms: number): this {
    this.opts.timeoutMs = ms;
    return this;
  }

  then<A = ShellResult, B = never>(
    onfulfilled?: ((r: ShellResult) => A | PromiseLike<A>) | null,
    onrejected?: ((e: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.settled.then(onfulfilled, onrejected);
  }

  catch<B = never>(onrejected?: ((e: unknown) => B | PromiseLike<B>) | null): Promise<ShellResult | B> {
    return this.settled.catch(onrejected);
  }

  finally(onfinally?: (() => void) | null): Promise<ShellResult> {
    return this.settled.finally(onfinally);
  }
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
  function shell(first: TemplateStringsArray | ShellOptions, ...args: ShellArg[]): HostShell | HostCommand {
    if (!Array.isArray(first)) return hostShell(run, fail, { ...base, ...(first as ShellOptions) });
    return new HostCommand(shCommand(first as TemplateStringsArray, args), { ...base }, run, fail);
  }
  return shell as HostShell;
}
