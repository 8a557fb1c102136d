// The docker CLI, driven as a child process: every call is visible (`WHARF_DEBUG=1` prints it) and
// its own error text is what the operator sees. No SDK, no registry: images are built locally.
import { spawn } from 'node:child_process';
import { RunError } from '../core/errors.ts';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Killed after `timeoutMs`. */
  timedOut?: boolean;
}

/**
 * A docker CLI call that did not return in time: the engine looks hung (seen once in CI: dockerd
 * stopped answering in the middle of a `lab down`). Callers that can (lab up/down) restart an
 * engine wharf started and try once more.
 */
export class DockerTimeoutError extends RunError {}

/**
 * How long a docker CLI call may take unless its caller says otherwise (builds do): 120 s, or
 * WHARF_DOCKER_TIMEOUT_MS.
 */
export const dockerTimeoutMs = (): number => Number(process.env.WHARF_DOCKER_TIMEOUT_MS) || 120_000;

export interface RunOptions {
  input?: string | Buffer | NodeJS.ReadableStream;
  /** Do not throw on a non-zero exit. */
  nothrow?: boolean;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Called with each complete line of stdout/stderr (progress). */
  onLine?: (line: string) => void;
}

const shownCmd = (cmd: string, args: string[]) =>
  [cmd, ...args.slice(0, 6)].join(' ') + (args.length > 6 ? ' …' : '');

/** Run a program, collect its output; throws a RunError with the program's own stderr on failure. */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const started = Date.now();
  if (process.env.WHARF_DEBUG) process.stderr.write(`+ ${cmd} ${args.join(' ')}\n`);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
    });
    let stdout = '';
    let stderr = '';
    let partial = '';
    const lines = (chunk: string) => {
      if (!opts.onLine) return;
      partial += chunk;
      const parts = partial.split('\n');
      partial = parts.pop() ?? '';
      for (const l of parts) opts.onLine(l);
    };
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      lines(d);
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      lines(d);
    });
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    if (opts.timeoutMs) {
      timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
        stderr += `\n(timed out after ${opts.timeoutMs} ms)`;
      }, opts.timeoutMs);
    }
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(new RunError(`cannot run ${cmd}: ${e.message}`, { cause: e }));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (partial && opts.onLine) opts.onLine(partial);
      const res: RunResult = {
        code: code ?? (signal ? 128 : 1),
        stdout,
        stderr,
        ...(timedOut && { timedOut }),
      };
      if (process.env.WHARF_DEBUG) {
        process.stderr.write(
          `  (${Date.now() - started} ms, exit ${res.code}) ${cmd} ${args.slice(0, 3).join(' ')}\n`,
        );
      }
      if (res.code !== 0 && !opts.nothrow) {
        reject(new RunError(`${shownCmd(cmd, args)} failed (exit ${res.code}): ${stderr.trim()}`));
      } else resolve(res);
    });
    child.stdin.on('error', () => {});
    const input = opts.input;
    if (input === undefined) child.stdin.end();
    else if (typeof input === 'string' || Buffer.isBuffer(input)) child.stdin.end(input);
    else input.pipe(child.stdin);
  });
}

/**
 * `docker ARGS…` → the result. A call given no timeout of its own is a management call that
 * returns in seconds: past dockerTimeoutMs() it throws DockerTimeoutError, even with `nothrow`.
 */
async function dockerRun(args: string[], opts: RunOptions): Promise<RunResult> {
  if (opts.timeoutMs !== undefined) return run('docker', args, opts);
  const timeoutMs = dockerTimeoutMs();
  const r = await run('docker', args, { ...opts, timeoutMs, nothrow: true });
  if (r.timedOut) {
    throw new DockerTimeoutError(
      `${shownCmd('docker', args)} did not return within ${timeoutMs / 1000} s: the Docker engine looks hung`,
    );
  }
  if (r.code !== 0 && !opts.nothrow) {
    throw new RunError(`${shownCmd('docker', args)} failed (exit ${r.code}): ${r.stderr.trim()}`);
  }
  return r;
}

/** `docker ARGS…` → trimmed stdout. */
export async function docker(args: string[], opts: RunOptions = {}): Promise<string> {
  return (await dockerRun(args, opts)).stdout.trim();
}

export const dockerNothrow = (args: string[], opts: RunOptions = {}): Promise<RunResult> =>
  dockerRun(args, { ...opts, nothrow: true });

/** Lines of a command's output, empty lines dropped. */
export const lines = (s: string): string[] =>
  s
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
