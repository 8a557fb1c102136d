// The one place wharf starts processes: zx's `$` (ProcessPromise: timeout, nothrow, quoting).
// `$` here is zx's, configured for wharf: POSIX `sh` (remote hosts run the same lines through sh),
// wharf's quoter, no `set -euo pipefail` prefix (a line means what it means on a host), quiet
// (a child's stderr is captured, not echoed). `runLine` is what the transports build on: one shell
// line in, an ExecResult out, with a swappable `spawn` so planning tests need no sshd.
import * as childProcess from 'node:child_process';
import { $ as zx$, ProcessOutput, sleep, type ProcessPromise } from 'zx';
import { shQuote } from './quote.ts';

export { sleep, ProcessOutput, type ProcessPromise };

/** Node's spawn signature: what zx calls to start the shell (`spawn(line, [], {shell})`). */
export type Spawn = typeof childProcess.spawn;

/** How wharf runs zx (ZX_* environment variables cannot turn on echoing of commands or secrets). */
const WHARF = {
  shell: '/bin/sh',
  prefix: '',
  postfix: '',
  quote: shQuote,
  quiet: true,
  verbose: false,
  timeoutSignal: 'SIGKILL',
} as const;

/** zx's `$` for wharf's local commands: `await $\`nft -c -f ${file}\``; `$({nothrow: true})\`…\``. */
export const $ = zx$(WHARF);

export interface RunLineOptions {
  /** Bytes for stdin; without it stdin is /dev/null. */
  input?: string | Buffer;
  /** Kill the process (and its children) after this long. */
  timeoutMs: number;
  /** Starts the process; default node's spawn. Tests pass a fake one. */
  spawn?: Spawn;
}

/** How a process ended, with stdout kept as bytes (zx's own output joins chunks as text). */
export interface LineResult {
  stdout: string;
  stderr: string;
  stdoutBuffer: Buffer;
  /** null when killed by a signal or not started. */
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** Set when the process could not be started (spawn error). */
  error?: Error;
}

/** A spawn that never crashes us when the child exits before reading its stdin (EPIPE). */
const guarded = (spawn: Spawn): Spawn =>
  ((...args: Parameters<Spawn>) => {
    const child = (spawn as (...a: unknown[]) => childProcess.ChildProcess)(...args);
    child.stdin?.on('error', () => {});
    return child;
  }) as Spawn;

/** Run one `sh` line through zx and report how it ended; never throws for an exit code. */
export async function runLine(line: string, o: RunLineOptions): Promise<LineResult> {
  const store = {
    stdout: [] as (string | Buffer)[],
    stderr: [] as (string | Buffer)[],
    stdall: [] as (string | Buffer)[],
  };
  const hasInput = o.input !== undefined && o.input.length > 0;
  // zx kills the process tree (children first) when the timeout fires: the shell may then exit with
  // a code of its own rather than by the signal, so the deadline itself says whether it timed out.
  let timedOut = false;
  const deadline = setTimeout(() => (timedOut = true), o.timeoutMs);
  const out: ProcessOutput = await zx$({
    ...WHARF,
    nothrow: true,
    store,
    spawn: guarded(o.spawn ?? childProcess.spawn),
    stdio: hasInput ? 'pipe' : ['ignore', 'pipe', 'pipe'],
    ...(hasInput ? { input: o.input } : {}),
    timeout: o.timeoutMs,
  })(asTemplate(line)).finally(() => clearTimeout(deadline));
  const bytes = (xs: (string | Buffer)[]) =>
    Buffer.concat(xs.map((x) => (typeof x === 'string' ? Buffer.from(x) : x)));
  const stdoutBuffer = bytes(store.stdout);
  const error = out.cause ?? undefined;
  return {
    stdout: stdoutBuffer.toString('utf8'),
    stderr: bytes(store.stderr).toString('utf8'),
    stdoutBuffer,
    code: out.exitCode,
    signal: out.signal,
    timedOut,
    ...(error ? { error } : {}),
  };
}

/**
 * The line as a template with no interpolations, so zx runs it as it is: it is already a complete
 * shell command (its arguments were quoted by shQuote/shJoin/shCommand when it was built).
 */
const asTemplate = (line: string): TemplateStringsArray =>
  Object.assign([line], { raw: [line] }) as unknown as TemplateStringsArray;
