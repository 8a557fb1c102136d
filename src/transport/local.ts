// Runs commands on this machine through `sh -c` (zx's `$`, see src/exec): for tests of the engine
// and for host-side steps. Same file scripts as the SSH transport (ShellTransport).
import { runLine, type Spawn } from '../exec/process.ts';
import { mask } from './mask.ts';
import { shJoin } from '../exec/index.ts';
import { ShellTransport } from './shell.ts';
import { TransportError, type ExecOptions, type ExecResult } from './types.ts';

export class LocalTransport extends ShellTransport {
  constructor(
    readonly host = 'local',
    readonly options: { commandTimeoutMs?: number; secrets?: string[]; spawn?: Spawn } = {},
  ) {
    super();
  }

  async exec(cmd: string | readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const timeoutMs = opts.timeoutMs ?? this.options.commandTimeoutMs ?? 120_000;
    const shown = this.shown(shJoin(cmd), opts.secret);
    const r = await runLine(shJoin(cmd), {
      timeoutMs,
      ...(opts.input !== undefined ? { input: opts.input } : {}),
      ...(this.options.spawn ? { spawn: this.options.spawn } : {}),
    });
    const stderr = mask(r.stderr, this.options.secrets ?? []);
    if (r.error) throw new TransportError(this.host, `cannot start sh: ${r.error.message}`);
    // zx kills the whole process tree on timeout, so nothing the command started outlives it.
    if (r.timedOut) throw new TransportError(this.host, `timed out after ${timeoutMs} ms: ${shown}`, stderr);
    if (r.code === null) throw new TransportError(this.host, `killed by ${r.signal}: ${shown}`, stderr);
    return { stdout: r.stdout, stderr, code: r.code, stdoutBuffer: r.stdoutBuffer };
  }

  async close(): Promise<void> {}
}
