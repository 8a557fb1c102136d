// Transport over the system OpenSSH client: the operator's ssh_config, agent, ProxyJump and
// known_hosts apply; host keys are always checked strictly; one multiplexed connection per host.
import { homedir } from 'node:os';
import { runLine, type Spawn } from '../exec/process.ts';
import type { Inventory, SshTargetT } from '../topology/inventory.ts';
import { mask } from './mask.ts';
import { shJoin, shQuote } from '../exec/index.ts';
import { ShellTransport } from './shell.ts';
import { TransportError, type ExecOptions, type ExecResult } from './types.ts';

export interface SshOptions {
  /** ssh_config file (`-F`); default: the user's own. */
  sshConfig?: string;
  /** known_hosts file (UserKnownHostsFile); default: the user's own. */
  knownHosts?: string;
  connectTimeoutS?: number;
  /** Default per-command timeout. */
  commandTimeoutMs?: number;
  /** Directory of the control sockets; keep it short (unix socket paths < 104 bytes). */
  controlDir?: string;
  controlPersist?: string;
  /** A new connection for every command (no multiplexing): proves the path works now. */
  fresh?: boolean;
  /** Values that must never be shown (masked in errors). */
  secrets?: string[];
  /** Starts the local `sh -c 'ssh …'` process (zx's spawn option); tests pass a fake one. */
  spawn?: Spawn;
}

export function expandHome(p: string): string {
  return p === '~' ? homedir() : p.startsWith('~/') ? homedir() + p.slice(1) : p;
}

/** The ssh command line (without the remote command): pure, so it can be tested and shown. */
export function sshArgs(target: SshTargetT, o: SshOptions = {}): string[] {
  const opt = (k: string, v: string | number) => ['-o', `${k}=${v}`];
  const controlPath = `${o.controlDir ?? '/tmp'}/wharf-%C`;
  if (Buffer.byteLength(controlPath) + 40 - 2 >= 104)
    throw new Error(`ControlPath ${controlPath} would exceed the unix socket limit (104 bytes)`);
  return [
    ...(o.sshConfig ? ['-F', expandHome(o.sshConfig)] : []),
    ...opt('BatchMode', 'yes'),
    ...opt('StrictHostKeyChecking', 'yes'),
    ...(o.knownHosts ? opt('UserKnownHostsFile', expandHome(o.knownHosts)) : []),
    ...opt('ConnectTimeout', o.connectTimeoutS ?? 10),
    ...(o.fresh
      ? [...opt('ControlMaster', 'no'), ...opt('ControlPath', 'none')]
      : [
          ...opt('ControlMaster', 'auto'),
          ...opt('ControlPath', controlPath),
          ...opt('ControlPersist', o.controlPersist ?? '60s'),
        ]),
    ...opt('ServerAliveInterval', 15),
    ...(target.identityFile ? ['-i', expandHome(target.identityFile), ...opt('IdentitiesOnly', 'yes')] : []),
    ...(target.proxyJump ? ['-J', target.proxyJump] : []),
    '-p',
    String(target.port),
    '-l',
    target.user,
  ];
}

/**
 * The remote command line: optional remote `timeout` (so a hung command does not outlive us), and
 * `sudo -n` when the target logs in as a non-root user with sudo. Pure.
 */
export function remoteCommand(
  cmd: string | readonly string[],
  o: { sudo: boolean; timeoutMs?: number },
): string {
  let line = shJoin(cmd);
  if (o.timeoutMs) line = `timeout -k 2 ${Math.ceil(o.timeoutMs / 1000) + 1} sh -c ${shQuote(line)}`;
  if (o.sudo) line = `sudo -n -- sh -c ${shQuote(line)}`;
  return line;
}

export class SshTransport extends ShellTransport {
  private readonly base: string[];
  constructor(
    readonly host: string,
    readonly target: SshTargetT,
    readonly options: SshOptions = {},
  ) {
    super();
    this.base = sshArgs(target, options);
  }

  /** Whether the user must go through sudo for privileged commands. */
  get needsSudo(): boolean {
    return this.target.sudo && this.target.user !== 'root';
  }

  exec(cmd: string | readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const timeoutMs = opts.timeoutMs ?? this.options.commandTimeoutMs ?? 120_000;
    const remote = remoteCommand(cmd, { sudo: (opts.sudo ?? true) && this.needsSudo, timeoutMs });
    const shown = this.shown(shJoin(cmd), opts.secret);
    return this.run([...this.base, '--', this.target.host, remote], { input: opts.input, timeoutMs, shown });
  }

  /** Whether a multiplexing master is running for this host (`ssh -O check`). */
  async controlRunning(): Promise<boolean> {
    const r = await this.run([...this.base, '-O', 'check', '--', this.target.host], {
      timeoutMs: 5000,
      shown: 'ssh -O check',
      allow255: true,
    });
    return r.code === 0;
  }

  async close(): Promise<void> {
    await this.run([...this.base, '-O', 'exit', '--', this.target.host], {
      timeoutMs: 5000,
      shown: 'ssh -O exit',
      allow255: true,
    });
  }

  /** Runs the local `ssh` through zx (src/exec) and turns how it ended into a result or an error. */
  private async run(
    args: string[],
    o: { input?: string | Buffer; timeoutMs: number; shown: string; allow255?: boolean },
  ): Promise<ExecResult> {
    // stderr goes to a pipe; the ControlPersist master detaches from it (stdfd to /dev/null).
    const r = await runLine(shJoin(['ssh', ...args]), {
      timeoutMs: o.timeoutMs,
      ...(o.input !== undefined ? { input: o.input } : {}),
      ...(this.options.spawn ? { spawn: this.options.spawn } : {}),
    });
    const stderr = mask(r.stderr, this.options.secrets ?? []);
    if (r.error || (r.code === 127 && /ssh: (command )?not found/.test(r.stderr)))
      throw new TransportError(this.host, `cannot start ssh: ${r.error?.message ?? stderr.trim()}`);
    if (r.timedOut)
      throw new TransportError(this.host, `timed out after ${o.timeoutMs} ms: ${o.shown}`, stderr);
    if (r.code === null) throw new TransportError(this.host, `ssh killed by ${r.signal}: ${o.shown}`, stderr);
    if (r.code === 255 && !o.allow255)
      throw new TransportError(
        this.host,
        `ssh ${this.target.user}@${this.target.host}:${this.target.port} failed: ${stderr.trim() || 'exit 255'} (running: ${o.shown})`,
        stderr,
      );
    return { stdout: r.stdout, stderr, code: r.code, stdoutBuffer: r.stdoutBuffer };
  }
}

/** One transport per inventory host (optionally only some nodes). */
export function sshTransports(
  inv: Inventory,
  nodes?: string[],
  o: SshOptions = {},
): Map<string, SshTransport> {
  const out = new Map<string, SshTransport>();
  for (const [name, h] of Object.entries(inv.hosts)) {
    if (nodes && !nodes.includes(name)) continue;
    out.set(
      name,
      new SshTransport(name, h.ssh, {
        ...o,
        sshConfig: o.sshConfig ?? inv.sshConfig,
        knownHosts: o.knownHosts ?? inv.knownHosts,
      }),
    );
  }
  return out;
}

/** Stop the multiplexing masters (ssh -O exit): call when a run or the lab is done with its hosts. */
export async function closeAll(transports: Iterable<{ close(): Promise<void> }>): Promise<void> {
  await Promise.all([...transports].map((t) => t.close().catch(() => undefined)));
}
