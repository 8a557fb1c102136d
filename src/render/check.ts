// Runs a rendered file's check (the daemon's own validator) on a path of this machine. The runbook
// engine runs the same CheckCommand on remote hosts: argv is host-independent; an argument that is
// exactly "{}" is replaced by the candidate file's path.
import { execFile } from 'node:child_process';
import type { CheckCommand, RenderedFile } from './types.ts';

export function checkArgv(check: CheckCommand, path: string): string[] {
  return check.argv.map((a) => (a === '{}' ? path : a));
}

export interface CheckResult {
  ok: boolean;
  /** Exit code (null when killed by the timeout or when the tool is missing). */
  code: number | null;
  /** stdout + stderr of the checker. */
  output: string;
  argv: string[];
}

export function checkFile(file: RenderedFile, path: string, timeoutMs = 30_000): Promise<CheckResult> {
  if (!file.check) return Promise.resolve({ ok: true, code: 0, output: '', argv: [] });
  const argv = checkArgv(file.check, path);
  return new Promise((resolve) => {
    execFile(argv[0]!, argv.slice(1), { timeout: timeoutMs, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      const output = `${stdout}${stderr}`;
      if (!err) return resolve({ ok: true, code: 0, output, argv });
      const e = err as NodeJS.ErrnoException & { code?: number | string };
      const missing = e.code === 'ENOENT';
      resolve({
        ok: false,
        code: typeof e.code === 'number' ? e.code : null,
        output: missing ? `${argv[0]}: command not found` : output || String(err.message),
        argv,
      });
    });
  });
}
