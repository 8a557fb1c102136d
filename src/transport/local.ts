// Runs commands on this machine through `sh -c`: for tests of the engine and for host-side
// steps. Same file scripts as the SSH transport (ShellTransport).
import { spawn } from 'node:child_process';
import { mask } from './mask.ts';
import { shJoin } from './quote.ts';
import { ShellTransport } from './shell.ts';
import { TransportError, type ExecOptions, type ExecResult } from './types.ts';

export class LocalTransport extends ShellTransport {
  constructor(
    readonly host = 'local',
    readonly options: { commandTimeoutMs?: number; secrets?: string[] } = {},
  ) {
    super();
  }

  exec(cmd: string | readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const timeoutMs = opts.timeoutMs ?? this.options.commandTimeoutMs ?? 120_000;
    const line = shJoin(cmd);
    const shown = opts.secret ? '«secret command»' : mask(line, this.options.secrets ?? []);
    return new Promise((resolve, reject) => {
      const child = spawn('sh', ['-c', line], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        try {
          process.kill(-child.pid!, 'SIGKILL'); // the whole process group
        } catch {
          child.kill('SIGKILL');
        }
      }, timeoutMs);
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.stdin.on('error', () => {});
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(new TransportError(this.host, `cannot start sh: ${e.message}`));
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        const stderr = mask(Buffer.concat(err).toString('utf8'), this.options.secrets ?? []);
        if (timedOut)
          return reject(new TransportError(this.host, `timed out after ${timeoutMs} ms: ${shown}`, stderr));
        if (code === null)
          return reject(new TransportError(this.host, `killed by ${signal}: ${shown}`, stderr));
        const stdoutBuffer = Buffer.concat(out);
        resolve({ stdout: stdoutBuffer.toString('utf8'), stderr, code, stdoutBuffer });
      });
      child.stdin.end(opts.input ?? '');
    });
  }

  async close(): Promise<void> {}
}
