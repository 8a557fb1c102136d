// The lab's lifecycle: up (idempotent; recovers from a crash), status, down (by label), all over the
// Docker Engine API (dockerode, every call bounded: docker.ts). `lab up` is observe → pure diff
// (diff.ts: typed actions, each with its reason) → apply, rolling back what the run created when it
// fails. Everything the lab creates carries the label wharf.lab=<stack>, so `down` finds it without
// state.
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type Docker from 'dockerode';
import { $ } from '../exec/index.ts';
import { freePort } from '../core/net.ts';
import { InputError, RunError } from '../core/errors.ts';
import type { Topology } from '../topology/model.ts';
import { subnetsOverlap } from '../topology/net.ts';
import { DockerApiError, DockerTimeoutError, dockerCall, dockerCallOr404 } from './docker.ts';
import { engineStartedByWharf, ensureEngine } from './engine.ts';
import { ensureImages, variantOf, type Variant } from './images.ts';
import { installFiles, nodeFiles, type NodeFiles } from './files.ts';
import { describeAction, diffLab, type LabAction, type ObservedLab, type ObservedNetwork } from './diff.ts';
import { LabNodeHandle } from './node.ts';
import { applyBridgeBypass, removeBridgeBypass, type ChainBridge } from './hostnet.ts';
import { ensureUploadDisk, releaseUploadDisks, uploadDiskBytes, uploadDiskDir } from './disks.ts';
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
  /** What this run did, in order, each with its reason (empty when the lab was already up). */
  actions: string[];
  durationMs: number;
}

/** Bump when the way a node's container is made changes (every node is then recreated). */
const LAB_VERSION = '2';
const sha = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 16);

/** Is 127.0.0.1:port free? (Bind and release: what docker will do next.) */
export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ host: '127.0.0.1', port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

const labFilter = (stack: string) => ({ label: [`${LABEL}=${stack}`] });

/** What the engine has: this lab's containers and volumes, every network (for subnet clashes). */
export async function observeLab(stack: string): Promise<ObservedLab> {
  const [cs, nets, vols] = await Promise.all([
    dockerCall(`ps -a --filter label=${LABEL}=${stack}`, (d, abortSignal) =>
      d.listContainers({ all: true, filters: labFilter(stack), abortSignal }),
    ),
    dockerCall('network ls', (d, abortSignal) => d.listNetworks({ abortSignal })),
    dockerCall(`volume ls --filter label=${LABEL}=${stack}`, (d, abortSignal) =>
      d.listVolumes({ filters: labFilter(stack), abortSignal }),
    ),
  ]);
  return {
    containers: cs.map((c) => ({
      name: (c.Names[0] ?? c.Id).replace(/^\//, ''),
      node: c.Labels[NODE_LABEL] ?? '',
      running: c.State === 'running',
      spec: c.Labels[SPEC_LABEL] ?? '',
    })),
    networks: nets.map((n): ObservedNetwork => ({
      name: n.Name,
      subnets: (n.IPAM?.Config ?? []).map((c) => c.Subnet ?? '').filter(Boolean),
      lab: n.Labels?.[LABEL] ?? null,
      masquerade: n.Options?.['com.docker.network.bridge.enable_ip_masquerade'] !== 'false',
      reserved: Object.assign(
        {},
        ...(n.IPAM?.Config ?? []).map(
          (c) => (c as { AuxiliaryAddresses?: Record<string, string> }).AuxiliaryAddresses ?? {},
        ),
      ) as Record<string, string>,
    })),
    volumes: (vols.Volumes ?? []).map((v) => v.Name),
  };
}

/** Subnets of the topology that collide with docker networks that are not this lab's. */
export function subnetClashes(
  plan: LabPlan,
  nets: Pick<ObservedNetwork, 'name' | 'subnets' | 'lab'>[],
): string[] {
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

/** Host ports published by a node: container port → 127.0.0.1 port (bastion, wan-client only). */
export function publishedPorts(node: LabNode, plan: LabPlan, ports: LabPorts): Record<string, number> {
  if (node.kind === 'bastion') return { '22/tcp': ports.bastion };
  if (node.kind !== 'wan-client') return {};
  const out: Record<string, number> = { '22/tcp': ports.wanClient };
  Object.keys(plan.frontends).forEach((name, i) => {
    out[`${EDGE_PORT_BASE + i}/tcp`] = ports.entry[name]!;
  });
  return out;
}

/** The Engine API's container create body for a node (first network only: the rest are connected). */
export function containerSpec(
  node: LabNode,
  plan: LabPlan,
  ports: LabPorts,
  image: string,
  spec: string,
): Docker.ContainerCreateOptions {
  const first = node.networks[0]!;
  const net = plan.networks.find((x) => x.name === first)!;
  const published = publishedPorts(node, plan, ports);
  return {
    name: node.container,
    Hostname: node.name,
    Image: image,
    Labels: { [LABEL]: plan.stack, [NODE_LABEL]: node.name, [SPEC_LABEL]: spec },
    StopTimeout: 5,
    ExposedPorts: Object.fromEntries(Object.keys(published).map((p) => [p, {}])),
    HostConfig: {
      CapAdd: node.capAdd,
      Tmpfs: { '/run': '', '/run/lock': '' },
      Binds: [
        '/sys/fs/cgroup:/sys/fs/cgroup:ro',
        `${plan.volume}:/var/cache/wharf-apt-pool`,
        ...(node.uploadDisk ? [`${uploadDiskDir(plan.stack, node.name)}:${node.uploadDisk.at}`] : []),
      ],
      Sysctls: node.sysctls,
      NetworkMode: net.docker,
      PortBindings: Object.fromEntries(
        Object.entries(published).map(([p, host]) => [p, [{ HostIp: '127.0.0.1', HostPort: String(host) }]]),
      ),
    },
    NetworkingConfig: {
      EndpointsConfig: { [net.docker]: { IPAMConfig: { IPv4Address: node.addresses[first]! } } },
    },
  };
}

/**
 * Wait until `ssh -F <ssh_config> NODE` works (strict host keys) and the node's systemd has
 * finished booting; returns its state (running, or degraded with failed units).
 */
export async function waitReady(sshConfig: string, node: string, deadline: number): Promise<string> {
  let last = '';
  while (Date.now() < deadline) {
    const r = await $({
      nothrow: true,
      quiet: true,
      timeout: 60_000,
    })`ssh -F ${sshConfig} -o StrictHostKeyChecking=yes ${node} ${'systemctl is-system-running --wait'}`;
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
  const unlock = lockLab(t.name, 'lab up');
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

/** What this run created, for the rollback. */
interface Created {
  containers: string[];
  networks: string[];
  volumes: string[];
}

async function removeContainer(name: string): Promise<void> {
  await dockerCallOr404(`rm -f -v ${name}`, (d, abortSignal) =>
    d.getContainer(name).remove({ force: true, v: true, abortSignal }),
  );
}

interface ApplyContext {
  plan: LabPlan;
  ports: LabPorts;
  /** Node name → image tag. */
  images: Map<string, string>;
  files: Map<string, NodeFiles>;
  log: Log;
  created: Created;
}

/** Create a node: container on its first network, the others connected, files in, started. */
async function createNode(a: Extract<LabAction, { kind: 'create-node' }>, cx: ApplyContext): Promise<void> {
  const { plan, ports } = cx;
  const n = a.node;
  const image = cx.images.get(n.name)!;
  await dockerCall(`create ${n.container}`, (d, abortSignal) =>
    d.createContainer({ ...containerSpec(n, plan, ports, image, a.spec), abortSignal }),
  );
  cx.created.containers.push(n.container);
  for (const net of n.networks.slice(1)) {
    const docker = plan.networks.find((x) => x.name === net)!.docker;
    await dockerCall(`network connect --ip ${n.addresses[net]} ${docker} ${n.container}`, (d, abortSignal) =>
      d.getNetwork(docker).connect({
        Container: n.container,
        EndpointConfig: { IPAMConfig: { IPv4Address: n.addresses[net]! } },
        abortSignal,
      } as Docker.NetworkConnectOptions),
    );
  }
  const node = new LabNodeHandle(plan.stack, n.name, n.container);
  await installFiles(node, cx.files.get(n.name)!);
  await node.start();
}

/**
 * The chain's bridges (every network but mgmt, which masquerades) skip the host's conntrack and
 * FORWARD chain for container ↔ container traffic (src/lab/hostnet.ts: why, and what it saves).
 */
async function bypassHostNetfilter(plan: LabPlan, log: Log): Promise<void> {
  const bridges: ChainBridge[] = [];
  for (const net of plan.networks.filter((n) => !n.masquerade)) {
    const info = await dockerCallOr404(`network inspect ${net.docker}`, (d) =>
      d.getNetwork(net.docker).inspect(),
    );
    if (!info) continue;
    const named = (info.Options as Record<string, string> | undefined)?.['com.docker.network.bridge.name'];
    bridges.push({
      bridge: named ?? `br-${String(info.Id).slice(0, 12)}`,
      subnet: net.subnet,
      gateway: net.gateway,
    });
  }
  applyBridgeBypass(plan.stack, bridges, log);
}

/** Run the diff's actions in order (node creations side by side). */
async function applyLab(actions: LabAction[], cx: ApplyContext): Promise<void> {
  const { plan, log, created } = cx;
  const removals = actions.filter((a) => a.kind === 'remove-container');
  await Promise.all(removals.map((a) => removeContainer(a.container)));
  for (const a of actions) {
    if (a.kind === 'remove-network') {
      if (!(await removeNetwork(a.network, log)))
        throw new RunError(
          `cannot replace docker network ${a.network}: Docker keeps a stale endpoint on it; restart dockerd`,
        );
    } else if (a.kind === 'create-network') {
      const net = a.network;
      await dockerCall(`network create ${net.docker}`, (d, abortSignal) =>
        d.createNetwork({
          Name: net.docker,
          Driver: 'bridge',
          CheckDuplicate: true,
          IPAM: {
            Driver: 'default',
            Config: [
              {
                Subnet: net.subnet,
                Gateway: net.gateway,
                ...(Object.keys(net.reserved).length ? { AuxiliaryAddresses: net.reserved } : {}),
              },
            ],
          },
          Labels: { [LABEL]: plan.stack },
          Options: { 'com.docker.network.bridge.enable_ip_masquerade': String(net.masquerade) },
          abortSignal,
        } as Docker.NetworkCreateOptions),
      );
      created.networks.push(net.docker);
    } else if (a.kind === 'create-volume') {
      await dockerCall(`volume create ${a.volume}`, (d, abortSignal) =>
        d.createVolume({ Name: a.volume, Labels: { [LABEL]: plan.stack }, abortSignal }),
      );
      created.volumes.push(a.volume);
    }
  }
  const nodes = actions.filter((a) => a.kind === 'create-node');
  if (nodes.length) log(`creating ${nodes.length} node(s): ${nodes.map((a) => a.node.name).join(' ')}`);
  const results = await Promise.allSettled(nodes.map((a) => createNode(a, cx)));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

async function rollback(created: Created, log: Log): Promise<void> {
  const problems: string[] = [];
  const tryIt = async (what: string, f: () => Promise<unknown>) => {
    try {
      await f();
    } catch (e) {
      problems.push(`${what}: ${(e as Error).message}`);
    }
  };
  await Promise.all(created.containers.map((c) => tryIt(`rm ${c}`, () => removeContainer(c))));
  for (const n of created.networks) await tryIt(`network rm ${n}`, () => removeNetwork(n, log));
  for (const v of created.volumes)
    await tryIt(`volume rm ${v}`, () =>
      dockerCallOr404(`volume rm ${v}`, (d, abortSignal) =>
        d.getVolume(v).remove({ force: true, abortSignal }),
      ),
    );
  for (const p of problems) log(`warning: rollback: ${p}`);
}

async function up(t: Topology, opts: UpOptions): Promise<UpResult> {
  const t0 = Date.now();
  const log = opts.log ?? (() => {});
  const plan = labPlan(t, uploadDiskBytes());
  const stack = plan.stack;
  await ensureEngine(log);
  raiseInotifyInstances(log);

  const prev = readState(stack);
  const have = await observeLab(stack);

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
  // an OPNsense firewall (firewall.kind: opnsense) is the lab's emulation of its API: its own image
  const variantFor = (n: LabNode): Variant =>
    n.kind === 'firewall' && t.firewall.kind === 'opnsense' ? 'opnsense' : variantOf(n.kind);
  const tags = await ensureImages(
    plan.nodes.map((n) => n.kind),
    log,
    plan.nodes.map(variantFor),
  );
  const images = new Map(plan.nodes.map((n) => [n.name, tags[variantFor(n)]]));
  const keys = await keysP;
  const names = sshNames(stack);

  // Each node's spec: a container whose label differs (or that is not running) is recreated.
  const files = new Map<string, NodeFiles>();
  const desired: { node: LabNode; spec: string }[] = [];
  for (const n of plan.nodes) {
    const nf = await nodeFiles(t, plan, n, keys);
    files.set(n.name, nf);
    const image = images.get(n.name)!;
    const spec = sha(
      JSON.stringify({
        v: LAB_VERSION,
        n,
        image,
        publish: publishedPorts(n, plan, ports),
        files: nf.files.map((f) => [f.path, f.mode, sha(String(f.content))]),
        enable: nf.enable,
        subnets: plan.networks.map((x) => x.subnet),
      }),
    );
    desired.push({ node: n, spec });
  }

  const { actions } = diffLab(have, { networks: plan.networks, nodes: desired, volume: plan.volume });
  for (const a of actions) if (a.kind !== 'create-node') log(describeAction(a));

  // upload disks first: a kept container whose disk is not mounted (the host rebooted) would see
  // an empty folder
  for (const n of plan.nodes)
    if (n.uploadDisk) await ensureUploadDisk(plan.stack, n.name, n.uploadDisk.bytes);
  const created: Created = { containers: [], networks: [], volumes: [] };
  try {
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

    await applyLab(actions, { plan, ports, images, files, log, created });
    await bypassHostNetfilter(plan, log);

    // Ready: sshd answers through the bastion and systemd finished booting (asked over that same
    // ssh: `is-system-running --wait` blocks on the node until boot is over).
    const deadline = Date.now() + 240_000;
    await waitReady(names.sshConfig, BASTION, deadline);
    const states = await Promise.all(plan.nodes.map((n) => waitReady(names.sshConfig, n.name, deadline)));
    for (const [i, n] of plan.nodes.entries()) {
      if (states[i] === 'running') continue;
      const failed = await new LabNodeHandle(stack, n.name, n.container).exec(
        ['systemctl', '--failed', '--no-legend', '--plain'],
        { timeoutMs: 10_000 },
      );
      log(`warning: ${n.name}: systemd ${states[i]}: ${failed.stdout.trim().replace(/\s+/g, ' ')}`);
    }

    const createdNodes = actions.flatMap((a) => (a.kind === 'create-node' ? [a.node.container] : []));
    const state: LabState = {
      stack,
      topologyFile: opts.topologyFile,
      createdAt: prev && !createdNodes.length ? prev.createdAt : new Date().toISOString(),
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
    return {
      state,
      created: createdNodes,
      actions: actions.map(describeAction),
      durationMs: Date.now() - t0,
    };
  } catch (e) {
    // Roll back what this run created; what existed before stays for the next `up` to repair.
    // Not through an engine that hangs: the retry after its restart converges instead.
    if (!(e instanceof DockerTimeoutError)) await rollback(created, log);
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
  const unlock = lockLab(stack, 'lab down');
  try {
    return await onceMoreIfHung(() => down(stack, log), log);
  } finally {
    unlock();
  }
}

/**
 * Remove a network. Docker 20.10 sometimes keeps an endpoint of a container it has just removed
 * ("has active endpoints"): wait a little, then force-disconnect what it still lists, and retry.
 * false: only a dockerd restart clears it.
 */
async function removeNetwork(id: string, log: Log): Promise<boolean> {
  let last = '';
  for (let attempt = 0; attempt < 6; attempt++) {
    try {
      await dockerCallOr404(`network rm ${id}`, (d, abortSignal) => d.getNetwork(id).remove({ abortSignal }));
      return true;
    } catch (e) {
      if (!(e instanceof DockerApiError)) throw e;
      last = e.message;
    }
    if (/active endpoints/.test(last)) {
      // (no abortSignal on this one in dockerode: dockerCall's deadline still bounds it)
      const info = await dockerCallOr404(`network inspect ${id}`, (d) => d.getNetwork(id).inspect());
      const eps = Object.values((info?.Containers ?? {}) as Record<string, { Name: string }>).map(
        (c) => c.Name,
      );
      for (const ep of eps) {
        log(`network ${id}: force-disconnecting stale endpoint ${ep}`);
        await dockerCallOr404(`network disconnect -f ${id} ${ep}`, (d, abortSignal) =>
          d.getNetwork(id).disconnect({ Container: ep, Force: true, abortSignal }),
        ).catch((e: Error) => {
          // the retry below decides; the operator sees why the disconnect did not help
          if (e instanceof DockerTimeoutError) throw e;
          log(`network ${id}: disconnect of ${ep} failed: ${e.message}`);
        });
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
  const filters = labFilter(stack);
  const containers = await dockerCall(`ps -a --filter label=${LABEL}=${stack}`, (d, abortSignal) =>
    d.listContainers({ all: true, filters, abortSignal }),
  );
  await Promise.all(containers.map((c) => removeContainer(c.Id)));
  const networks = (
    await dockerCall(`network ls --filter label=${LABEL}=${stack}`, (d, abortSignal) =>
      d.listNetworks({ filters, abortSignal }),
    )
  ).map((n) => n.Id);
  /** The networks a stale endpoint keeps. */
  const removeAll = async (ids: string[]) => {
    const left: string[] = [];
    for (const n of ids) if (!(await removeNetwork(n, log))) left.push(n);
    return left;
  };
  let left = await removeAll(networks);
  const running = async () =>
    (await dockerCall('ps', (d, abortSignal) => d.listContainers({ abortSignal }))).length;
  if (left.length && engineStartedByWharf() && !(await running())) {
    // Only a restart clears it: done when the engine is wharf's and nothing runs on it.
    await ensureEngine(log, { broken: `network(s) ${left.join(', ')} keep a stale endpoint` });
    left = await removeAll(left);
  }
  // Otherwise the (labelled, empty) network stays for the next `lab down`, not a failed teardown.
  for (const n of left)
    log(`warning: docker network ${n} keeps a stale endpoint (restart dockerd to clear it); left in place`);
  const volumes =
    (
      await dockerCall(`volume ls --filter label=${LABEL}=${stack}`, (d, abortSignal) =>
        d.listVolumes({ filters, abortSignal }),
      )
    ).Volumes ?? [];
  for (const v of volumes)
    await dockerCallOr404(`volume rm ${v.Name}`, (d, abortSignal) =>
      d.getVolume(v.Name).remove({ force: true, abortSignal }),
    );
  // Close multiplexed ssh masters of the old lab (their sockets are /tmp/wharf-<hash>).
  const f = sshNames(stack);
  if (existsSync(f.sshConfig))
    await $({ nothrow: true, quiet: true, timeout: 5_000 })`ssh -F ${f.sshConfig} -O exit bastion`;
  await releaseUploadDisks(stack, log);
  removeBridgeBypass(stack, log);
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
  const have = await observeLab(plan.stack);
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
