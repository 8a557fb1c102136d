// The docker CLI, driven as a child process: every call is visible (`WHARF_DEBUG=1` prints it) and
// its own error text is what the operator sees. No SDK, no registry: images are built locally.
import { spawn } from 'node:child_process';
import { RunError } from '../core/errors.ts';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string | Buffer | NodeJS.ReadableStream;
  /** Do not throw on a non-zero exit. */
  nothrow?: boolean;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Called with each complete line of stdout/stderr (progress). */
  onLine?: (line: string) => void;
}

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
    if (opts.timeoutMs) {
      timer = setTimeout(() => {
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
      const res = { code: code ?? (signal ? 128 : 1), stdout, stderr };
      if (process.env.WHARF_DEBUG) {
        process.stderr.write(
          `  (${Date.now() - started} ms, exit ${res.code}) ${cmd} ${args.slice(0, 3).join(' ')}\n`,
        );
      }
      if (res.code !== 0 && !opts.nothrow) {
        const shown = [cmd, ...args.slice(0, 6)].join(' ');
        reject(
          new RunError(`${shown}${args.length > 6 ? ' …' : ''} failed (exit ${res.code}): ${stderr.trim()}`),
        );
      } else resolve(res);
    });
    child.stdin.on('error', () => {});
    const input = opts.input;
    if (input === undefined) child.stdin.end();
    else if (typeof input === 'string' || Buffer.isBuffer(input)) child.stdin.end(input);
    else input.pipe(child.stdin);
  });
}

/** `docker ARGS…` → trimmed stdout. */
export async function docker(args: string[], opts: RunOptions = {}): Promise<string> {
  const r = await run('docker', args, opts);
  return r.stdout.trim();
}

export const dockerNothrow = (args: string[], opts: RunOptions = {}) =>
  run('docker', args, { ...opts, nothrow: true });

/** Lines of a command's output, empty lines dropped. */
export const lines = (s: string): string[] =>
  s
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
