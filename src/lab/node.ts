// A lab node as a typed handle on its container (Engine API, every call bounded): what scenarios,
// benches, tests and chaos drills do to a node from outside — exec, copy files in, kill, pause,
// stop/start, inspect. Get one by stack + node name: labNode('seed', 'sftp-main').
import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import { RunError } from '../core/errors.ts';
import { DockerApiError, dockerCall, dockerCallOr404 } from './docker.ts';
import { LABEL, NODE_LABEL, prefix } from './plan.ts';
import { filesToEntries, tarArchive } from './tar.ts';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
  /** The command did not finish within timeoutMs (code 124, like timeout(1)). */
  timedOut?: boolean;
}

export interface ExecOptions {
  /** Written to the command's stdin (then closed). */
  input?: string | Buffer;
  /** Default 60 s. */
  timeoutMs?: number;
}

export interface NodeFileSpec {
  path: string;
  content: string | Buffer;
  mode: number;
}

export interface NodeInspect {
  exists: true;
  running: boolean;
  paused: boolean;
  /** ISO times from the engine ('0001-01-01…' when never). */
  startedAt: string;
  finishedAt: string;
  exitCode: number;
  /** Lab network name (wan, mgmt, …; other networks by their docker name) → IPv4 address. */
  addresses: Record<string, string>;
  /** Lab network name → the node's MAC address on it (which interface faces that network). */
  macs: Record<string, string>;
  /** The container's init process on the host (0 when not running): its network namespace. */
  pid: number;
  /** Bind mounts and volumes: host source → container destination. */
  mounts: { source: string; destination: string }[];
  labels: Record<string, string>;
}

/** docker network name → the lab's network name (wharf-<stack>-net-wan → wan, wharf-<stack>-mgmt → mgmt). */
export function labNetworkName(stack: string, dockerName: string): string {
  const p = prefix(stack);
  if (dockerName === `${p}-mgmt`) return 'mgmt';
  if (dockerName.startsWith(`${p}-net-`)) return dockerName.slice(`${p}-net-`.length);
  return dockerName;
}

export class LabNodeHandle {
  constructor(
    readonly stack: string,
    readonly name: string,
    /** The container's name. */
    readonly container: string = `${prefix(stack)}-${name}`,
  ) {}

  private c(d: Docker): Docker.Container {
    return d.getContainer(this.container);
  }

  /** Run a command (argv, no shell) as root; a non-zero exit is a result, not an error. */
  async exec(cmd: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const timeoutMs = opts.timeoutMs ?? 60_000;
    const what = `exec ${this.container} ${cmd.join(' ').slice(0, 80)}`;
    const hasInput = opts.input !== undefined;
    const exec = await this.call(what, (d, abortSignal) =>
      this.c(d).exec({
        Cmd: cmd,
        AttachStdout: true,
        AttachStderr: true,
        AttachStdin: hasInput,
        Tty: false,
        abortSignal,
      } as Docker.ExecCreateOptions),
    );
    const stream = await this.call(what, (_, abortSignal) =>
      // hijacked (a raw two-way socket) only to write stdin; else a plain streamed response
      exec.start({ hijack: hasInput, stdin: hasInput, abortSignal } as Docker.ExecStartOptions),
    );
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const o = new PassThrough().on('data', (b: Buffer) => out.push(b));
    const e = new PassThrough().on('data', (b: Buffer) => err.push(b));
    exec.modem.demuxStream(stream, o, e);
    const done = new Promise<boolean>((resolve, reject) => {
      const timer = setTimeout(() => {
        stream.destroy();
        resolve(false);
      }, timeoutMs);
      const fin = () => {
        clearTimeout(timer);
        resolve(true);
      };
      stream.on('end', fin);
      stream.on('close', fin);
      stream.on('error', (x: Error) => {
        clearTimeout(timer);
        reject(new RunError(`${this.name}: ${what}: ${x.message}`));
      });
    });
    if (hasInput) stream.end(opts.input);
    const finished = await done;
    const text = (bs: Buffer[]) => Buffer.concat(bs).toString('utf8');
    if (!finished) {
      return {
        code: 124,
        stdout: text(out),
        stderr: text(err) + `\n(timed out after ${timeoutMs} ms)`,
        timedOut: true,
      };
    }
    // The exit code is known once the engine saw the process end (a moment after the stream ends).
    for (let i = 0; ; i++) {
      const info = await this.call(what, (_, abortSignal) => exec.inspect({ abortSignal }));
      if (!info.Running && info.ExitCode !== null)
        return { code: info.ExitCode, stdout: text(out), stderr: text(err) };
      if (i >= 50) throw new RunError(`${this.name}: ${what}: no exit code after the output ended`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Copy files (absolute paths) into the node as root, parents created (archive upload at /). */
  async putFiles(files: NodeFileSpec[], links: { path: string; target: string }[] = []): Promise<void> {
    const tar = tarArchive(filesToEntries(files, links), { mtime: Math.floor(Date.now() / 1000) });
    await this.call(`put archive into ${this.container} (${files.length} file(s))`, (d, abortSignal) =>
      this.c(d).putArchive(tar, { path: '/', abortSignal }),
    );
  }

  /** Send a signal (default SIGKILL: the node dies like a power cut; exit 137). */
  async kill(signal = 'SIGKILL'): Promise<void> {
    await this.call(`kill -s ${signal} ${this.container}`, (d, abortSignal) =>
      this.c(d).kill({ signal, abortSignal }),
    );
  }

  async pause(): Promise<void> {
    await this.call(`pause ${this.container}`, (d, abortSignal) => this.c(d).pause({ abortSignal }));
  }

  async unpause(): Promise<void> {
    await this.call(`unpause ${this.container}`, (d, abortSignal) => this.c(d).unpause({ abortSignal }));
  }

  /** Stop (the image's stop signal, then SIGKILL after timeoutS). Stopping a stopped node is fine. */
  async stop(timeoutS = 5): Promise<void> {
    await this.call(
      `stop ${this.container}`,
      (d, abortSignal) => this.c(d).stop({ t: timeoutS, abortSignal }),
      { notModified: true },
    );
  }

  /** Start (a running node is left as it is). */
  async start(): Promise<void> {
    await this.call(`start ${this.container}`, (d, abortSignal) => this.c(d).start({ abortSignal }), {
      notModified: true,
    });
  }

  async restart(timeoutS = 5): Promise<void> {
    await this.call(`restart ${this.container}`, (d, abortSignal) =>
      this.c(d).restart({ t: timeoutS, abortSignal }),
    );
  }

  async inspect(): Promise<NodeInspect> {
    const i = await this.inspectOrNull();
    if (!i)
      throw new RunError(
        `lab node ${this.name}: no container ${this.container} (is the lab "${this.stack}" up?)`,
      );
    return i;
  }

  /** null when the container does not exist. */
  async inspectOrNull(): Promise<NodeInspect | null> {
    const i = await dockerCallOr404(`inspect ${this.container}`, (d, abortSignal) =>
      this.c(d).inspect({ abortSignal }),
    );
    if (!i) return null;
    const addresses: Record<string, string> = {};
    const macs: Record<string, string> = {};
    for (const [net, ep] of Object.entries(i.NetworkSettings.Networks ?? {})) {
      if (ep.IPAddress) addresses[labNetworkName(this.stack, net)] = ep.IPAddress;
      if (ep.MacAddress) macs[labNetworkName(this.stack, net)] = ep.MacAddress;
    }
    return {
      exists: true,
      running: i.State.Running,
      paused: i.State.Paused,
      startedAt: i.State.StartedAt,
      finishedAt: i.State.FinishedAt,
      exitCode: i.State.ExitCode,
      addresses,
      macs,
      pid: i.State.Pid ?? 0,
      mounts: (i.Mounts ?? []).map((m) => ({ source: m.Source, destination: m.Destination })),
      labels: i.Config.Labels ?? {},
    };
  }

  private async call<T>(
    what: string,
    fn: (d: Docker, signal: AbortSignal) => Promise<T>,
    o: { notModified?: boolean } = {},
  ): Promise<T> {
    try {
      return await dockerCall(what, fn);
    } catch (e) {
      // 304: already in the wanted state (start of a running node, stop of a stopped one)
      if (o.notModified && e instanceof DockerApiError && e.statusCode === 304) return undefined as T;
      if (e instanceof DockerApiError && e.statusCode === 409)
        throw new DockerApiError(`lab node ${this.name}: ${e.message} (is it paused or stopped?)`, 409);
      if (e instanceof DockerApiError && e.statusCode === 404)
        throw new DockerApiError(`lab node ${this.name}: no container ${this.container}`, 404);
      throw e;
    }
  }
}

/** The handle of one node of a lab (the container need not exist yet). */
export const labNode = (stack: string, name: string): LabNodeHandle => new LabNodeHandle(stack, name);

/** Every node container of a lab (by label), sorted by node name. */
export async function labNodes(stack: string): Promise<LabNodeHandle[]> {
  const list = await dockerCall(`ps -a --filter label=${LABEL}=${stack}`, (d, abortSignal) =>
    d.listContainers({ all: true, filters: { label: [`${LABEL}=${stack}`] }, abortSignal }),
  );
  return list
    .map((c) => new LabNodeHandle(stack, c.Labels[NODE_LABEL] ?? '', (c.Names[0] ?? '').replace(/^\//, '')))
    .filter((n) => n.name)
    .sort((a, b) => a.name.localeCompare(b.name));
}
