// `lab up` as data: what the engine has (observed) against what the topology wants (desired) →
// an ordered list of typed actions, each with its reason. Pure: unit-tested without Docker
// (test/unit/lab-diff.test.ts); lab.ts observes through the Engine API and applies the list.
import type { LabNetwork, LabNode } from './plan.ts';

export interface ObservedContainer {
  /** Container name. */
  name: string;
  /** The wharf.node label ('' when absent). */
  node: string;
  running: boolean;
  /** The wharf.spec label ('' when absent). */
  spec: string;
}

export interface ObservedNetwork {
  name: string;
  subnets: string[];
  /** The wharf.lab label, null when the network is not a lab's. */
  lab: string | null;
  /** com.docker.network.bridge.enable_ip_masquerade (Docker's default: true). */
  masquerade: boolean;
  /** IPAM aux-addresses (name → address); absent when not observed. */
  reserved?: Record<string, string>;
}

export interface ObservedLab {
  /** This lab's containers (by label). */
  containers: ObservedContainer[];
  /** Every network of the engine (subnet clashes are checked against all of them). */
  networks: ObservedNetwork[];
  /** This lab's volumes (by label). */
  volumes: string[];
}

export interface DesiredLab {
  networks: LabNetwork[];
  /** Each node with the hash of everything its container is made from (label wharf.spec). */
  nodes: { node: LabNode; spec: string }[];
  volume: string;
}

export type LabAction =
  | { kind: 'remove-container'; container: string; reason: string }
  | { kind: 'remove-network'; network: string; reason: string }
  | { kind: 'create-network'; network: LabNetwork; reason: string }
  | { kind: 'create-volume'; volume: string; reason: string }
  | { kind: 'create-node'; node: LabNode; spec: string; reason: string };

export interface LabDiff {
  actions: LabAction[];
  /** Containers reused as they are. */
  kept: string[];
}

/**
 * Order: stale containers out, networks replaced/created, the volume, then the nodes to create.
 * A network whose subnet or masquerading differs is replaced, and every container on it goes
 * with it (a container keeps its address on the old network otherwise).
 */
export function diffLab(existing: ObservedLab, desired: DesiredLab): LabDiff {
  const actions: LabAction[] = [];
  const removed = new Map<string, string>();
  const remove = (container: string, reason: string) => {
    if (!removed.has(container)) removed.set(container, reason);
  };

  for (const c of existing.containers) {
    const want = desired.nodes.find((x) => x.node.container === c.name);
    if (!want) remove(c.name, 'not in the topology');
    else if (c.spec !== want.spec)
      remove(c.name, `spec differs (${c.spec || 'none'} → ${want.spec}): topology, image or files changed`);
    else if (!c.running) remove(c.name, 'not running (stopped, or half-created by an interrupted run)');
  }

  const netActions: LabAction[] = [];
  for (const net of desired.networks) {
    const cur = existing.networks.find((x) => x.name === net.docker);
    if (!cur) {
      netActions.push({ kind: 'create-network', network: net, reason: 'missing' });
      continue;
    }
    const why = !cur.subnets.includes(net.subnet)
      ? `subnet ${cur.subnets.join(', ') || 'none'} → ${net.subnet}`
      : cur.masquerade !== net.masquerade
        ? `masquerade ${cur.masquerade} → ${net.masquerade}`
        : cur.reserved && !sameRecord(cur.reserved, net.reserved)
          ? `reserved addresses ${fmt(cur.reserved)} → ${fmt(net.reserved)}`
          : null;
    if (!why) continue;
    // Every container of this lab is attached to some network being replaced, or could be: the
    // old engine (CLI) recreated them all, and so does this one (a node keeps one address set).
    for (const c of existing.containers) remove(c.name, `network ${net.docker} is replaced (${why})`);
    netActions.push({ kind: 'remove-network', network: net.docker, reason: why });
    netActions.push({ kind: 'create-network', network: net, reason: `replaces the old one (${why})` });
  }

  for (const [container, reason] of removed) actions.push({ kind: 'remove-container', container, reason });
  actions.push(...netActions);
  if (!existing.volumes.includes(desired.volume))
    actions.push({ kind: 'create-volume', volume: desired.volume, reason: 'missing (shared apt pool)' });

  const kept: string[] = [];
  for (const { node, spec } of desired.nodes) {
    const cur = existing.containers.find((c) => c.name === node.container);
    if (cur && !removed.has(cur.name)) {
      kept.push(cur.name);
      continue;
    }
    actions.push({
      kind: 'create-node',
      node,
      spec,
      reason: cur ? `recreated: ${removed.get(cur.name)}` : 'missing',
    });
  }
  return { actions, kept };
}

const fmt = (r: Record<string, string>): string =>
  Object.entries(r)
    .map(([k, v]) => `${k}=${v}`)
    .join(',') || 'none';
const sameRecord = (a: Record<string, string>, b: Record<string, string>): boolean => fmt(a) === fmt(b);

/** One line per action, for logs and `lab up --check`-style output. */
export function describeAction(a: LabAction): string {
  switch (a.kind) {
    case 'remove-container':
      return `remove container ${a.container}: ${a.reason}`;
    case 'remove-network':
      return `remove network ${a.network}: ${a.reason}`;
    case 'create-network':
      return `create network ${a.network.docker} (${a.network.subnet}): ${a.reason}`;
    case 'create-volume':
      return `create volume ${a.volume}: ${a.reason}`;
    case 'create-node':
      return `create node ${a.node.name} (${a.node.container}): ${a.reason}`;
  }
}
