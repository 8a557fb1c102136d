// The resolved topology: what the schema parsed, with the defaults that depend on other fields
// filled in (nodes, port forwards, firewall rules) and references normalised. Pure.
import { parseDuration } from '../core/duration.ts';
import { normalizeFirewall, type FirewallContext, type FirewallSpec } from './firewall.ts';
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
  haproxy: Omit<ParsedTopology['haproxy'], 'backends'> & {
    backends: Record<
      string,
      { balance: string; stickOnSource: boolean; readOnly: boolean; servers: BackendServer[] }
    >;
  };
};

export const DEFAULT_NETWORKS: Record<NodeKind, NetworkName[]> = {
  'wan-client': ['wan'],
  router: ['wan', 'transit', 'mgmt'],
  firewall: ['transit', 'dmz', 'mgmt'],
  haproxy: ['dmz', 'lan', 'mgmt'],
  sftp: ['lan', 'mgmt'],
  'notify-sink': ['lan', 'mgmt'],
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
};

export function resolveTopology(t: ParsedTopology): Topology {
  const rawNodes: Record<
    string,
    { kind: NodeKind; role?: SftpRole; networks?: NetworkName[]; hostId?: number; labOnly?: boolean }
  > = t.nodes ?? DEFAULT_NODES;
  const nodes: Record<string, TopologyNode> = {};
  let nextId = 30;
  for (const [name, n] of Object.entries(rawNodes)) {
    const d = DEFAULT_NODES[name];
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
  const frontends = Object.entries(t.haproxy.frontends);

  const forwards =
    t.router.forwards ??
    frontends.map(([name, f]) => ({
      port: f.port,
      protocol: 'tcp' as const,
      to: firewall,
      description: `SFTP ${name} to the firewall`,
    }));
  const fw = normalizeFirewall(t.firewall, firewallContextOf(nodes, t.haproxy.frontends));

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
    haproxy: { ...t.haproxy, backends },
  };
}

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
  firewallContextOf(t.nodes, t.haproxy.frontends);

function firewallContextOf(
  nodes: Record<string, TopologyNode>,
  frontends: Record<string, { port: number }>,
): FirewallContext {
  const all = Object.values(nodes);
  const fw = all.find((n) => n.kind === 'firewall');
  const router = all.find((n) => n.kind === 'router');
  return {
    networks: fw?.networks ?? [],
    upstream: (fw?.networks ?? []).filter((n) => n !== 'mgmt' && router?.networks.includes(n)),
    haproxy: all.find((n) => n.kind === 'haproxy')?.name ?? 'haproxy',
    frontends: Object.entries(frontends).map(([name, f]) => [name, f.port]),
    nodes: Object.keys(nodes),
  };
}
