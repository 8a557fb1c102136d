// The resolved topology: what the schema parsed, with the defaults that depend on other fields
// filled in (nodes, port forwards, firewall rules) and references normalised. Pure.
import { parseDuration } from '../core/duration.ts';
import {
  normalizeFirewall,
  resolveTopologyFirewall,
  type FirewallContext,
  type FirewallSpec,
  type ResolvedFirewall,
} from './firewall.ts';
import { hostAddress } from './net.ts';
import type { Inventory } from './inventory.ts';
import type { NetworkName, NodeKind, ParsedTopology, PortForwardRule, SftpRole } from './schema.ts';

export interface TopologyNode {
  name: string;
  kind: NodeKind;
  role?: SftpRole;
  networks: NetworkName[];
  hostId: number;
  labOnly: boolean;
}

export interface BackendServer {
  node: string;
  backup: boolean;
  weight?: number;
}

export type Topology = Omit<ParsedTopology, 'nodes' | 'router' | 'firewall' | 'haproxy'> & {
  nodes: Record<string, TopologyNode>;
  router: { forwards: PortForwardRule[] };
  /** The firewall's rules, aliases and port forwards in OPNsense's terms (firewall.ts). */
  firewall: FirewallSpec;
  haproxy: Omit<ParsedTopology['haproxy'], 'backends' | 'pair'> & {
    pair: HaproxyPair;
    backends: Record<
      string,
      { balance: string; stickOnSource: boolean; readOnly: boolean; servers: BackendServer[] }
    >;
  };
};

/** The HAProxy pair as resolved: its nodes (empty when off) and VRRP settings. */
export interface HaproxyPair {
  enabled: boolean;
  /** Name of the floating address in firewall NAT targets and rules. */
  name: string;
  /** The pair's nodes, the preferred master first (empty when the pair is off). */
  nodes: string[];
  vip?: string;
  vipHostId: number;
  vrid: number;
  advertInt: number;
  auth: string;
  peersPort: number;
}

export const DEFAULT_NETWORKS: Record<NodeKind, NetworkName[]> = {
  'wan-client': ['wan'],
  router: ['wan', 'transit', 'mgmt'],
  firewall: ['transit', 'dmz', 'mgmt'],
  haproxy: ['dmz', 'lan', 'mgmt'],
  sftp: ['lan', 'mgmt'],
  'notify-sink': ['lan', 'mgmt'],
  monitor: ['mgmt'],
};

export const DEFAULT_NODES: Record<
  string,
  { kind: NodeKind; role?: SftpRole; hostId: number; labOnly?: boolean }
> = {
  'wan-client': { kind: 'wan-client', hostId: 100, labOnly: true },
  router: { kind: 'router', hostId: 2 },
  firewall: { kind: 'firewall', hostId: 3 },
  haproxy: { kind: 'haproxy', hostId: 4 },
  'sftp-main': { kind: 'sftp', role: 'main', hostId: 11 },
  'sftp-sub': { kind: 'sftp', role: 'sub', hostId: 12 },
  'sftp-backup': { kind: 'sftp', role: 'backup', hostId: 13 },
  'notify-sink': { kind: 'notify-sink', hostId: 20, labOnly: true },
  monitor: { kind: 'monitor', hostId: 21 },
};

/** The pair's default nodes, in place of the single `haproxy`. */
export const PAIR_NODES: Record<string, { kind: NodeKind; hostId: number }> = {
  'haproxy-1': { kind: 'haproxy', hostId: 4 },
  'haproxy-2': { kind: 'haproxy', hostId: 5 },
};

/** The default nodes: the single `haproxy` replaced by haproxy-1 and haproxy-2 when the pair is on. */
export function defaultNodes(pair: boolean): typeof DEFAULT_NODES {
  if (!pair) return DEFAULT_NODES;
  const out: typeof DEFAULT_NODES = {};
  for (const [name, n] of Object.entries(DEFAULT_NODES)) {
    if (name === 'haproxy') Object.assign(out, PAIR_NODES);
    else out[name] = n;
  }
  return out;
}

export function resolveTopology(t: ParsedTopology): Topology {
  const rawNodes: Record<
    string,
    { kind: NodeKind; role?: SftpRole; networks?: NetworkName[]; hostId?: number; labOnly?: boolean }
  > = t.nodes ?? defaultNodes(t.haproxy.pair.enabled);
  const nodes: Record<string, TopologyNode> = {};
  let nextId = 30;
  for (const [name, n] of Object.entries(rawNodes)) {
    const d = DEFAULT_NODES[name] ?? PAIR_NODES[name];
    nodes[name] = {
      name,
      kind: n.kind,
      ...(n.role ? { role: n.role } : {}),
      networks: n.networks ?? DEFAULT_NETWORKS[n.kind],
      hostId: n.hostId ?? (d && d.kind === n.kind ? d.hostId : nextId++),
      labOnly: n.labOnly ?? (n.kind === 'wan-client' || n.kind === 'notify-sink'),
    };
  }
  const kindNode = (kind: NodeKind) => Object.values(nodes).find((n) => n.kind === kind)?.name ?? kind;
  const firewall = kindNode('firewall');
  const pairOn = t.haproxy.pair.enabled;
  const frontends = Object.entries(t.haproxy.frontends);

  const forwards =
    t.router.forwards ??
    frontends.map(([name, f]) => ({
      port: f.port,
      protocol: 'tcp' as const,
      to: firewall,
      description: `SFTP ${name} to the firewall`,
    }));
  // with the pair, the firewall forwards to the floating address (the pair's name), not to one node
  const fw = normalizeFirewall(
    t.firewall,
    firewallContextOf(nodes, t.haproxy.frontends, pairOn ? t.haproxy.pair.name : undefined),
  );

  const backends: Topology['haproxy']['backends'] = {};
  for (const [name, b] of Object.entries(t.haproxy.backends)) {
    backends[name] = {
      balance: b.balance,
      stickOnSource: b.stickOnSource,
      readOnly: b.readOnly,
      servers: b.servers.map((s) =>
        typeof s === 'string'
          ? { node: s, backup: false }
          : { node: s.node, backup: s.backup, ...(s.weight !== undefined ? { weight: s.weight } : {}) },
      ),
    };
  }

  return {
    ...t,
    nodes,
    router: { forwards },
    firewall: fw,
    haproxy: {
      ...t.haproxy,
      backends,
      pair: {
        ...t.haproxy.pair,
        nodes: pairOn
          ? Object.values(nodes)
              .filter((n) => n.kind === 'haproxy')
              .map((n) => n.name)
          : [],
      },
    },
  };
}

/** The floating address of the HAProxy pair (the inventory's dmz subnet wins over the topology's). */
export function vipAddress(t: Topology, inv?: Inventory): string {
  const p = t.haproxy.pair;
  if (p.vip) return p.vip;
  return hostAddress(inv?.networks?.dmz ?? t.networks.dmz.subnet, p.vipHostId);
}

/** Where a NAT target or rule destination named `to` is reached: the pair's floating address or a node's. */
export const isPairAddress = (t: Topology, to: string): boolean =>
  t.haproxy.pair.enabled && to === t.haproxy.pair.name && !t.nodes[to];

/** Every HAProxy node (both of a pair, or the one). */
export const haproxyNodes = (t: Topology): string[] =>
  Object.values(t.nodes)
    .filter((n) => n.kind === 'haproxy')
    .map((n) => n.name);

/** Helpers used by renderers, the lab and runbooks. */
export const nodesOfKind = (t: Topology, kind: NodeKind): TopologyNode[] =>
  Object.values(t.nodes).filter((n) => n.kind === kind);

export function nodeOfKind(t: Topology, kind: NodeKind): TopologyNode {
  const n = nodesOfKind(t, kind)[0];
  if (!n) throw new Error(`topology has no ${kind} node`);
  return n;
}

export function sftpNode(t: Topology, role: SftpRole): TopologyNode {
  const n = Object.values(t.nodes).find((x) => x.kind === 'sftp' && x.role === role);
  if (!n) throw new Error(`topology has no sftp node with role ${role}`);
  return n;
}

/** SFTP nodes that serve a read-only backend (their sshd gets the read-only listener). */
export const readPoolNodes = (t: Topology): string[] => [
  ...new Set(
    Object.values(t.haproxy.backends)
      .filter((b) => b.readOnly)
      .flatMap((b) => b.servers.map((s) => s.node)),
  ),
];

/** Readers that get their data through replication: their lag is checked (not main: it is the source). */
export const replicaReaders = (t: Topology): string[] =>
  readPoolNodes(t).filter((n) => n !== t.replication.lsyncd.from);

/** Parse an HAProxy-style duration to milliseconds (a bare number is ms): the one parser in src/core. */
export function durationMs(d: string): number {
  return parseDuration(d, { label: 'duration', bareMs: true });
}

/** What the firewall model needs from the topology (firewall.ts stays free of the Topology type). */
export const firewallContext = (t: Topology): FirewallContext =>
  firewallContextOf(t.nodes, t.haproxy.frontends, t.haproxy.pair.enabled ? t.haproxy.pair.name : undefined);

/**
 * The topology's firewall resolved against an inventory, the pair's name standing for its floating
 * address (the NAT target and any rule naming it). The one entry point for renderers and drivers.
 */
export function topologyFirewall(t: Topology, inv: Inventory, node?: string): ResolvedFirewall {
  return resolveTopologyFirewall(t, inv, node, floatingAddresses(t, inv));
}

/** Names that stand for an address no single node holds: the HAProxy pair's name → its floating address. */
export const floatingAddresses = (t: Topology, inv: Inventory): Record<string, string> =>
  t.haproxy.pair.enabled ? { [t.haproxy.pair.name]: vipAddress(t, inv) } : {};

function firewallContextOf(
  nodes: Record<string, TopologyNode>,
  frontends: Record<string, { port: number }>,
  pairName?: string,
): FirewallContext {
  const all = Object.values(nodes);
  const fw = all.find((n) => n.kind === 'firewall');
  const router = all.find((n) => n.kind === 'router');
  return {
    networks: fw?.networks ?? [],
    upstream: (fw?.networks ?? []).filter((n) => n !== 'mgmt' && router?.networks.includes(n)),
    haproxy: pairName ?? all.find((n) => n.kind === 'haproxy')?.name ?? 'haproxy',
    frontends: Object.entries(frontends).map(([name, f]) => [name, f.port]),
    nodes: [...Object.keys(nodes), ...(pairName && !nodes[pairName] ? [pairName] : [])],
  };
}
