// The lab's lifecycle: up (idempotent; recovers from a crash), status, down (by label).
// Everything the lab creates carries the label wharf.lab=<stack>, so `down` finds it without state.
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { InputError, RunError } from '../core/errors.ts';
import type { Topology } from '../topology/model.ts';
import { subnetsOverlap } from '../topology/net.ts';
import { DockerTimeoutError, docker, dockerNothrow, lines, run } from './docker.ts';
import { engineStartedByWharf, ensureEngine } from './engine.ts';
import { ensureImages, variantOf, type Variant } from './images.ts';
import { installFiles, nodeFiles } from './files.ts';
import {
  BASTION,
  EDGE_PORT_BASE,
  LABEL,
  NODE_LABEL,
  SPEC_LABEL,
  inventoryYaml,
  knownHostsText,
  labPlan,
  sshConfigText,
  sshEndpoint,
  type LabNode,
  type LabPlan,
  type LabPorts,
} from './plan.ts';
import {
  ensureKeys,
  lockLab,
  secretsDir,
  readState,
  removeState,
  sshNames,
  statePath,
  writeFileMode,
  type LabState,
} from './state.ts';

export type Log = (line: string) => void;

export interface UpOptions {
  topologyFile: string;
  /** Port on 127.0.0.1 for the bastion's sshd (default: the previous one, else a free one). */
  sshPort?: number;
  /** First port on 127.0.0.1 for the WAN entry (one per HAProxy frontend, consecutive). */
  entryPort?: number;
  log?: Log;
}

export interface UpResult {
  state: LabState;
  /** Containers created by this run (0 when the lab was already up). */
  created: string[];
  durationMs: number;
}

const LAB_VERSION = '1';
const sha = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 16);

/** Is 127.0.0.1:port free? (Bind and release: what docker will do next.) */
export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ host: '127.0.0.1', port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen({ host: '127.0.0.1', port: 0 }, () => {
      const a = s.address();
      const p = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(p));
    });
  });
}

interface Existing {
  containers: { name: string; running: boolean; spec: string; node: string }[];
  networks: { name: string; subnets: string[]; lab: string | null }[];
  volumes: string[];
}

async function existing(stack: string): Promise<Existing> {
  const ids = lines(await docker(['ps', '-aq', '--filter', `label=${LABEL}=${stack}`]));
  const containers = ids.length
    ? lines(
        await docker([
          'inspect',
          '--format',
          `{{.Name}}|{{.State.Running}}|{{index .Config.Labels "${SPEC_LABEL}"}}|{{index .Config.Labels "${NODE_LABEL}"}}`,
          ...ids,
        ]),
      ).map((l) => {
        const [name, running, spec, node] = l.split('|');
        return {
          name: name!.replace(/^\//, ''),
          running: running === 'true',
          spec: spec ?? '',
          node: node ?? '',
        };
      })
    : [];
  const netIds = lines(await docker(['network', 'ls', '-q']));
  const networks = netIds.length
    ? lines(
        await docker([
          'network',
          'inspect',
          '--format',
          `{{.Name}}|{{range .IPAM.Config}}{{.Subnet}} {{end}}|{{index .Labels "${LABEL}"}}`,
          ...netIds,
        ]),
      ).map((l) => {
        const [name, subnets, lab] = l.split('|');
        return {
          name: name!,
          subnets: (subnets ?? '').split(' ').filter(Boolean),
          lab: lab && lab !== '<no value>' ? lab : null,
        };
      })
    : [];
  const volumes = lines(await docker(['volume', 'ls', '-q', '--filter', `label=${LABEL}=${stack}`]));
  return { containers, networks, volumes };
}

/** Subnets of the topology that collide with docker networks that are not this lab's. */
export function subnetClashes(plan: LabPlan, nets: Existing['networks']): string[] {
  const problems: string[] = [];
  for (const want of plan.networks) {
    for (const n of nets) {
      // This lab's own networks are reused or replaced by `up`: never a clash.
      if (n.lab === plan.stack) continue;
      for (const s of n.subnets) {
        if (s.includes(':')) continue;
        if (subnetsOverlap(s, want.subnet)) {
          problems.push(
            `networks.${want.name}.subnet: ${want.subnet} collides with docker network "${n.name}" (${s}); ` +
              'change the subnet in the topology or remove that network',
          );
        }
      }
    }
  }
  return problems;
}

async function choosePorts(
  plan: LabPlan,
  opts: UpOptions,
  prev: LabState | null,
  ours: Set<number>,
): Promise<LabPorts> {
  const names = Object.keys(plan.frontends);
  const wanted: { what: string; port: number | undefined }[] = [
    { what: 'bastion ssh (--ssh-port)', port: opts.sshPort ?? prev?.ports.bastion },
    { what: 'wan-client ssh', port: opts.sshPort !== undefined ? opts.sshPort + 1 : prev?.ports.wanClient },
    ...names.map((n, i) => ({
      what: `WAN entry ${n} (--entry-port)`,
      port: opts.entryPort !== undefined ? opts.entryPort + i : prev?.ports.entry[n],
    })),
  ];
  const explicit = opts.sshPort !== undefined || opts.entryPort !== undefined;
  const out: number[] = [];
  const taken: string[] = [];
  for (const w of wanted) {
    let p = w.port;
    if (p !== undefined && !ours.has(p) && !(await portFree(p))) {
      if (explicit) {
        taken.push(`127.0.0.1:${p} (${w.what}) is already in use; choose another port`);
        continue;
      }
      p = undefined; // the previous lab's port went to someone else: pick a new one
    }
    while (p === undefined || out.includes(p)) p = await freePort();
    out.push(p);
  }
  if (taken.length) throw new InputError(taken.join('\n'), taken);
  return {
    bastion: out[0]!,
    wanClient: out[1]!,
    entry: Object.fromEntries(names.map((n, i) => [n, out[i + 2]!])),
  };
}

function publishArgs(node: LabNode, plan: LabPlan, ports: LabPorts): string[] {
  if (node.kind === 'bastion') return ['-p', `127.0.0.1:${ports.bastion}:22`];
  if (node.kind !== 'wan-client') return [];
  const args = ['-p', `127.0.0.1:${ports.wanClient}:22`];
  Object.keys(plan.frontends).forEach((name, i) => {
    args.push('-p', `127.0.0.1:${ports.entry[name]}:${EDGE_PORT_BASE + i}`);
  });
  return args;
}

/** One `docker exec` probe. */
const exec = (container: string, cmd: string[], timeoutMs = 10_000) =>
  dockerNothrow(['exec', container, ...cmd], { timeoutMs });

/**
 * Wait until `ssh -F <ssh_config> NODE` works (strict host keys) and the node's systemd has
 * finished booting; returns its state (running, or degraded with failed units).
 */
export async function waitReady(sshConfig: string, node: string, deadline: number): Promise<string> {
  let last = '';
  while (Date.now() < deadline) {
    const r = await run(
      'ssh',
      ['-F', sshConfig, '-o', 'StrictHostKeyChecking=yes', node, 'systemctl is-system-running --wait'],
      { nothrow: true, timeoutMs: 60_000 },
    );
    const state = r.stdout.trim().split('\n').pop() ?? '';
    if (state === 'running' || state === 'degraded') return state;
    last = r.stderr.trim() || state;
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new RunError(`lab node ${node} did not become ready (ssh + systemd boot): ${last}`);
}

/**
 * Every systemd node takes inotify instances from this host's per-user budget (not namespaced;
 * 128 by default): a few labs exhaust it and nodes fail to boot. Raise it (never lower it).
 */
export function raiseInotifyInstances(log: Log = () => {}, want = 8192): void {
  const f = '/proc/sys/fs/inotify/max_user_instances';
  try {
    const now = Number(readFileSync(f, 'utf8').trim());
    if (now >= want) return;
    writeFileSync(f, String(want));
    log(`host kernel: fs.inotify.max_user_instances ${now} → ${want} (systemd in every lab node)`);
  } catch (e) {
    log(`warning: cannot raise fs.inotify.max_user_instances: ${(e as Error).message}`);
  }
}

export async function labUp(t: Topology, opts: UpOptions): Promise<UpResult> {
  const unlock = lockLab(t.name);
  try {
    return await onceMoreIfHung(() => up(t, opts), opts.log ?? (() => {}));
  } finally {
    unlock();
  }
}

/**
 * Run a lab operation; when a docker call in it hangs (DockerTimeoutError), let ensureEngine
 * judge the engine (a hung dockerd wharf started is restarted; anyone else's is named) and run
 * the operation once more: both `up` and `down` converge from wherever the first try stopped.
 */
export async function onceMoreIfHung<T>(op: () => Promise<T>, log: Log): Promise<T> {
  try {
    return await op();
  } catch (e) {
    if (!(e instanceof DockerTimeoutError)) throw e;
    log(`docker engine: ${e.message}; checking it and trying once more`);
    await ensureEngine(log, { broken: 'a call hung' });
    return op();
  }
}

async function up(t: Topology, opts: UpOptions): Promise<UpResult> {
  const t0 = Date.now();
  const log = opts.log ?? (() => {});
  const plan = labPlan(t);
  const stack = plan.stack;
  await ensureEngine(log);
  raiseInotifyInstances(log);

  const prev = readState(stack);
  const have = await existing(stack);

  // Bad input first, before anything is created.
  const clashes = subnetClashes(plan, have.networks);
  if (clashes.length) throw new InputError(clashes.join('\n'), clashes);
  // Ports held by this lab's own running containers count as free for it.
  const ours = new Set<number>(
    prev && have.containers.some((c) => c.running)
      ? [prev.ports.bastion, prev.ports.wanClient, ...Object.values(prev.ports.entry)]
      : [],
  );
  const ports = await choosePorts(plan, opts, prev, ours);

  const demoName = t.sftp.users[0]?.name ?? 'demo';
  const keysP = ensureKeys(stack, plan.nodes, demoName);
  keysP.catch(() => {});
  const tags = await ensureImages(
    plan.nodes.map((n) => n.kind),
    log,
  );
  const keys = await keysP;
  const names = sshNames(stack);

  // Each node's spec: a container whose label differs (or that is not running) is recreated.
  const files = new Map<string, Awaited<ReturnType<typeof nodeFiles>>>();
  const specs = new Map<string, string>();
  for (const n of plan.nodes) {
    const nf = await nodeFiles(t, plan, n, keys);
    files.set(n.name, nf);
    const image = tags[variantOf(n.kind) as Variant];
    specs.set(
      n.name,
      sha(
        JSON.stringify({
          v: LAB_VERSION,
          n,
          image,
          publish: publishArgs(n, plan, ports),
          files: nf.files.map((f) => [f.path, f.mode, sha(String(f.content))]),
          enable: nf.enable,
          subnets: plan.networks.map((x) => x.subnet),
        }),
      ),
    );
  }

  const created: { containers: string[]; networks: string[]; volumes: string[] } = {
    containers: [],
    networks: [],
    volumes: [],
  };
  try {
    // Remove what does not match: stale containers (other spec, stopped, half-created by a killed
    // run, or not part of this topology any more).
    const keep = new Set<string>();
    const remove: string[] = [];
    for (const c of have.containers) {
      const n = plan.nodes.find((x) => x.container === c.name);
      if (n && c.running && c.spec === specs.get(n.name)) keep.add(c.name);
      else remove.push(c.name);
    }
    if (remove.length) {
      log(`removing ${remove.length} stale container(s): ${remove.join(' ')}`);
      await docker(['rm', '-f', ...remove]);
    }
    // Networks: reuse ours when the subnet matches; replace it otherwise.
    for (const net of plan.networks) {
      const cur = have.networks.find((x) => x.name === net.docker);
      if (cur && cur.subnets.includes(net.subnet)) continue;
      if (cur) {
        if (keep.size) {
          await docker(['rm', '-f', ...keep]);
          keep.clear();
        }
        await docker(['network', 'rm', net.docker]);
      }
      await docker([
        'network',
        'create',
        '--driver',
        'bridge',
        '--subnet',
        net.subnet,
        '--gateway',
        net.gateway,
        '--label',
        `${LABEL}=${stack}`,
        '-o',
        `com.docker.network.bridge.enable_ip_masquerade=${net.masquerade}`,
        net.docker,
      ]);
      created.networks.push(net.docker);
    }
    if (!have.volumes.includes(plan.volume)) {
      await docker(['volume', 'create', '--label', `${LABEL}=${stack}`, plan.volume]);
      created.volumes.push(plan.volume);
    }

    // ssh_config, known_hosts and inventory are known before any node boots.
    mkdirSync(names.stateDir, { recursive: true });
    writeFileMode(names.sshConfig, sshConfigText(plan, ports, names), 0o644);
    writeFileMode(names.knownHosts, knownHostsText(plan, ports, keys.hostKeys), 0o644);
    const d = keys.demoUser;
    writeFileMode(
      `${names.stateDir}/inventory.yaml`,
      inventoryYaml(plan, ports, names, {
        secretsDir: secretsDir(stack),
        users: {
          [d.name]: {
            passwordHash: d.passwordHash,
            password: d.password,
            privateKey: d.privateKey,
            authorizedKeys: [d.publicKey],
          },
        },
      }),
      0o600,
    );

    const todo = plan.nodes.filter((n) => !keep.has(n.container));
    if (todo.length) log(`creating ${todo.length} node(s): ${todo.map((n) => n.name).join(' ')}`);
    const netOf = (name: string) => plan.networks.find((x) => x.name === name)!;
    await Promise.all(
      todo.map(async (n) => {
        const [first, ...rest] = n.networks;
        const args = [
          'create',
          '--name',
          n.container,
          '--hostname',
          n.name,
          '--label',
          `${LABEL}=${stack}`,
          '--label',
          `${NODE_LABEL}=${n.name}`,
          '--label',
          `${SPEC_LABEL}=${specs.get(n.name)}`,
          ...n.capAdd.flatMap((c) => ['--cap-add', c]),
          '--tmpfs',
          '/run',
          '--tmpfs',
          '/run/lock',
          '-v',
          '/sys/fs/cgroup:/sys/fs/cgroup:ro',
          '-v',
          `${plan.volume}:/var/cache/wharf-apt-pool`,
          ...Object.entries(n.sysctls).flatMap(([k, v]) => ['--sysctl', `${k}=${v}`]),
          '--network',
          netOf(first!).docker,
          '--ip',
          n.addresses[first!]!,
          ...publishArgs(n, plan, ports),
          '--stop-timeout',
          '5',
          tags[variantOf(n.kind) as Variant],
        ];
        await docker(args);
        created.containers.push(n.container);
        for (const net of rest) {
          await docker(['network', 'connect', '--ip', n.addresses[net]!, netOf(net).docker, n.container]);
        }
        await installFiles(n.container, files.get(n.name)!);
        await docker(['start', n.container]);
      }),
    );

    // Ready: sshd answers through the bastion and systemd finished booting (asked over that same
    // ssh: `is-system-running --wait` blocks on the node until boot is over).
    const deadline = Date.now() + 240_000;
    await waitReady(names.sshConfig, BASTION, deadline);
    const states = await Promise.all(plan.nodes.map((n) => waitReady(names.sshConfig, n.name, deadline)));
    for (const [i, n] of plan.nodes.entries()) {
      if (states[i] === 'running') continue;
      const failed = (
        await exec(n.container, ['systemctl', '--failed', '--no-legend', '--plain'])
      ).stdout.trim();
      log(`warning: ${n.name}: systemd ${states[i]}: ${failed.replace(/\s+/g, ' ')}`);
    }

    const state: LabState = {
      stack,
      topologyFile: opts.topologyFile,
      createdAt: prev && !todo.length ? prev.createdAt : new Date().toISOString(),
      ports,
      routerWan: plan.routerWan,
      nodes: Object.fromEntries(
        plan.nodes.map((n) => [
          n.name,
          { container: n.container, kind: n.kind, ...(n.role ? { role: n.role } : {}) },
        ]),
      ),
      demoUser: keys.demoUser,
    };
    writeFileMode(statePath(stack), JSON.stringify(state, null, 2) + '\n', 0o600);
    return { state, created: todo.map((n) => n.container), durationMs: Date.now() - t0 };
  } catch (e) {
    // Roll back what this run created; what existed before stays for the next `up` to repair.
    // Not through an engine that hangs: the retry after its restart converges instead.
    if (e instanceof DockerTimeoutError) throw e;
    if (created.containers.length) await dockerNothrow(['rm', '-f', ...created.containers]);
    for (const n of created.networks) await dockerNothrow(['network', 'rm', n]);
    for (const v of created.volumes) await dockerNothrow(['volume', 'rm', v]);
    throw e;
  }
}

export interface DownResult {
  containers: number;
  networks: number;
  volumes: number;
}

/** Remove everything labelled wharf.lab=<stack> (works without a state folder) and the state. */
export async function labDown(stack: string, log: Log = () => {}): Promise<DownResult> {
  const unlock = lockLab(stack);
  try {
    return await onceMoreIfHung(() => down(stack, log), log);
  } finally {
    unlock();
  }
}

/**
 * Remove a network. Docker 20.10 sometimes keeps an endpoint of a container it has just removed
 * ("has active endpoints"): wait a little, then force-disconnect what it still lists, and retry.
 */
async function removeNetwork(id: string, log: Log): Promise<boolean> {
  let last = '';
  for (let attempt = 0; attempt < 6; attempt++) {
    const r = await dockerNothrow(['network', 'rm', id]);
    if (r.code === 0 || /not found|No such network/i.test(r.stderr)) return true;
    last = r.stderr.trim();
    if (/active endpoints/.test(last)) {
      const eps = await dockerNothrow([
        'network',
        'inspect',
        '-f',
        '{{range $k, $v := .Containers}}{{$v.Name}} {{end}}',
        id,
      ]);
      for (const ep of eps.stdout.split(/\s+/).filter(Boolean)) {
        log(`network ${id}: force-disconnecting stale endpoint ${ep}`);
        await dockerNothrow(['network', 'disconnect', '-f', id, ep]);
      }
    }
    await new Promise((res) => setTimeout(res, 500 * (attempt + 1)));
  }
  // A stale endpoint without a container is a Docker bug that only a dockerd restart clears
  if (/active endpoints/.test(last)) return false;
  throw new RunError(`cannot remove docker network ${id}: ${last}`);
}

async function down(stack: string, log: Log): Promise<DownResult> {
  await ensureEngine(log);
  const sel = ['--filter', `label=${LABEL}=${stack}`];
  const containers = lines(await docker(['ps', '-aq', ...sel]));
  if (containers.length) await docker(['rm', '-f', '-v', ...containers]);
  const networks = lines(await docker(['network', 'ls', '-q', ...sel]));
  /** The networks a stale endpoint keeps. */
  const removeAll = async (ids: string[]) => {
    const left: string[] = [];
    for (const n of ids) if (!(await removeNetwork(n, log))) left.push(n);
    return left;
  };
  let left = await removeAll(networks);
  if (left.length && engineStartedByWharf() && !lines(await docker(['ps', '-q'])).length) {
    // Only a restart clears it: done when the engine is wharf's and nothing runs on it.
    await ensureEngine(log, { broken: `network(s) ${left.join(', ')} keep a stale endpoint` });
    left = await removeAll(left);
  }
  // Otherwise the (labelled, empty) network stays for the next `lab down`, not a failed teardown.
  for (const n of left)
    log(`warning: docker network ${n} keeps a stale endpoint (restart dockerd to clear it); left in place`);
  const volumes = lines(await docker(['volume', 'ls', '-q', ...sel]));
  if (volumes.length) await docker(['volume', 'rm', '-f', ...volumes]);
  // Close multiplexed ssh masters of the old lab (their sockets are /tmp/wharf-<hash>).
  const f = sshNames(stack);
  if (existsSync(f.sshConfig)) {
    const hosts = ['bastion'];
    await Promise.all(
      hosts.map((h) => run('ssh', ['-F', f.sshConfig, '-O', 'exit', h], { nothrow: true, timeoutMs: 5_000 })),
    );
  }
  removeState(stack);
  return { containers: containers.length, networks: networks.length, volumes: volumes.length };
}

export interface LabStatus {
  stack: string;
  up: boolean;
  entrypoint: { host: string; port: number };
  ports: Record<string, number>;
  /** The router's WAN address, reachable from a Linux host without docker's userland proxy. */
  direct: { host: string; ports: Record<string, number> };
  nodes: Record<
    string,
    {
      role: string;
      container: string;
      running: boolean;
      addresses: Partial<Record<string, string>>;
      ssh: { host: string; port: number; alias: string; proxyJump?: string };
    }
  >;
  sshConfig: string;
  inventory: string;
  knownHosts: string;
  stateDir: string;
  demoUser: { name: string; password: string; privateKey: string };
}

export async function labStatus(t: Topology): Promise<LabStatus> {
  const plan = labPlan(t);
  const state = readState(plan.stack);
  if (!state) {
    throw new RunError(`the lab "${plan.stack}" is not up (no ${statePath(plan.stack)}); run: wharf lab up`);
  }
  const have = await existing(plan.stack);
  const f = sshNames(plan.stack);
  const nodes: LabStatus['nodes'] = {};
  for (const n of plan.nodes) {
    const c = have.containers.find((x) => x.name === n.container);
    const e = sshEndpoint(n, state.ports);
    nodes[n.name] = {
      role: n.role ?? n.kind,
      container: n.container,
      running: c?.running ?? false,
      addresses: n.addresses,
      ssh: { host: e.host, port: e.port, alias: n.name, ...(e.proxyJump ? { proxyJump: e.proxyJump } : {}) },
    };
  }
  const entryName = 'sftp' in state.ports.entry ? 'sftp' : Object.keys(state.ports.entry)[0]!;
  return {
    stack: plan.stack,
    up: Object.values(nodes).every((n) => n.running),
    entrypoint: { host: '127.0.0.1', port: state.ports.entry[entryName]! },
    ports: state.ports.entry,
    direct: { host: plan.routerWan, ports: plan.frontends },
    nodes,
    sshConfig: f.sshConfig,
    inventory: `${f.stateDir}/inventory.yaml`,
    knownHosts: f.knownHosts,
    stateDir: f.stateDir,
    demoUser: {
      name: state.demoUser.name,
      password: state.demoUser.password,
      privateKey: state.demoUser.privateKey,
    },
  };
}

/** Human lines for `lab up` / `lab status`. */
export function endpointLines(s: LabStatus): string[] {
  const out = [
    `lab "${s.stack}" ${s.up ? 'is up' : 'is NOT fully running'}`,
    `  WAN entry (via wan-client → router):  ${Object.entries(s.ports)
      .map(([k, p]) => `${k} 127.0.0.1:${p}`)
      .join(', ')}`,
    `  WAN entry (direct, router WAN side):  ${s.direct.host} ports ${Object.entries(s.direct.ports)
      .map(([k, p]) => `${k} ${p}`)
      .join(', ')}`,
    `  ssh:        ssh -F ${s.sshConfig} NODE   (or: wharf lab ssh NODE)`,
    `  inventory:  ${s.inventory}`,
    `  demo user:  ${s.demoUser.name} (key ${s.demoUser.privateKey})`,
    '  nodes:',
  ];
  for (const [name, n] of Object.entries(s.nodes)) {
    const addrs = Object.entries(n.addresses)
      .map(([k, a]) => `${k} ${a}`)
      .join(', ');
    out.push(`    ${name.padEnd(12)} ${n.role.padEnd(11)} ${n.running ? 'running' : 'STOPPED'}  ${addrs}`);
  }
  return out;
}
