// The lab as data, derived from the topology alone (pure): names, networks, nodes with their
// addresses, capabilities and published ports, and the text of the ssh_config / known_hosts /
// inventory the lab writes. `lab up` applies this plan; tests and `lab graph` read it.
import { stringify } from 'yaml';
import type { NetworkName } from '../topology/schema.ts';
import { NETWORKS } from '../topology/schema.ts';
import { vipAddress, type Topology } from '../topology/model.ts';
import { labAddresses, type Inventory } from '../topology/inventory.ts';
import { gatewayOf, hostAddress, parseCidr } from '../topology/net.ts';
import type { LabKind } from './images.ts';

export const LABEL = 'wharf.lab';
export const NODE_LABEL = 'wharf.node';
export const SPEC_LABEL = 'wharf.spec';
export const BASTION = 'bastion';
/** Container port range on the wan-client that is DNAT'ed to the router's WAN address. */
export const EDGE_PORT_BASE = 40000;

export interface LabNetwork {
  name: NetworkName;
  /** Docker network name. */
  docker: string;
  subnet: string;
  gateway: string;
  /** mgmt masquerades (apt access, management path); chain networks must not (source addresses). */
  masquerade: boolean;
  /** Addresses Docker's IPAM must never hand out (aux-address), e.g. the HAProxy pair's floating one. */
  reserved: Record<string, string>;
}

export interface LabNode {
  name: string;
  kind: LabKind;
  role?: string;
  container: string;
  /** Networks in attach order (first one given at `docker create`). */
  networks: NetworkName[];
  addresses: Partial<Record<NetworkName, string>>;
  capAdd: string[];
  sysctls: Record<string, string>;
  /** A size-limited upload filesystem (bytes) mounted at `at` (lab/disks.ts; opt-in). */
  uploadDisk?: { bytes: number; at: string };
}

export interface LabPlan {
  stack: string;
  networks: LabNetwork[];
  nodes: LabNode[];
  volume: string;
  /** The router's WAN address: the chain's entry, reachable from a Linux host via the wan bridge. */
  routerWan: string;
  /** HAProxy frontends as the internet sees them: name → port on the router's WAN address. */
  frontends: Record<string, number>;
}

export const prefix = (stack: string) => `wharf-${stack}`;
/**
 * Docker picks a container's default gateway from its networks in name order, whatever the attach
 * order: `…-mgmt` sorts before `…-net-*`, so every node's default route goes via mgmt (the only
 * network with NAT to the mirror), never via a chain bridge.
 */
export const dockerNetworkName = (stack: string, net: NetworkName) =>
  net === 'mgmt' ? `${prefix(stack)}-mgmt` : `${prefix(stack)}-net-${net}`;

export function labPlan(t: Topology, uploadDisk?: number): LabPlan {
  const stack = t.name;
  const addrs = labAddresses(t);
  const networks: LabNetwork[] = NETWORKS.map((n) => ({
    name: n,
    docker: dockerNetworkName(stack, n),
    subnet: t.networks[n].subnet,
    gateway: gatewayOf(t.networks[n].subnet),
    masquerade: n === 'mgmt',
    reserved: (n === 'dmz' && t.haproxy.pair.enabled ? { 'wharf-vip': vipAddress(t) } : {}) as Record<
      string,
      string
    >,
  }));
  const nodes: LabNode[] = [];
  for (const n of Object.values(t.nodes)) {
    const nets = [...n.networks].sort((a, b) => (a === 'mgmt' ? -1 : b === 'mgmt' ? 1 : 0));
    const netAdmin = ['router', 'firewall', 'haproxy', 'wan-client'].includes(n.kind);
    // keepalived: raw sockets for VRRP, the floating address bound by HAProxy before it holds it
    const vrrp = n.kind === 'haproxy' && t.haproxy.pair.enabled;
    const forwards = ['router', 'firewall', 'wan-client'].includes(n.kind);
    nodes.push({
      name: n.name,
      kind: n.kind,
      ...(n.role ? { role: n.role } : {}),
      container: `${prefix(stack)}-${n.name}`,
      networks: nets,
      addresses: addrs[n.name] ?? {},
      capAdd: ['SYS_ADMIN', ...(netAdmin ? ['NET_ADMIN'] : []), ...(vrrp ? ['NET_RAW'] : [])],
      sysctls: {
        ...(forwards ? { 'net.ipv4.ip_forward': '1' } : {}),
        ...(vrrp ? { 'net.ipv4.ip_nonlocal_bind': '1' } : {}),
      },
      ...(uploadDisk && n.kind === 'sftp'
        ? { uploadDisk: { bytes: uploadDisk, at: t.sftp.chrootBase } }
        : {}),
    });
  }
  // The bastion: the management jump host, on mgmt alone, at the subnet's last usable address.
  const mgmt = parseCidr(t.networks.mgmt.subnet);
  nodes.push({
    name: BASTION,
    kind: 'bastion',
    container: `${prefix(stack)}-${BASTION}`,
    networks: ['mgmt'],
    addresses: { mgmt: hostAddress(t.networks.mgmt.subnet, mgmt.size - 2) },
    capAdd: ['SYS_ADMIN'],
    sysctls: {},
  });
  const router = Object.values(t.nodes).find((n) => n.kind === 'router');
  const routerWan = router ? addrs[router.name]?.wan : undefined;
  if (!routerWan) throw new Error('the lab needs a router node on the wan network');
  const frontends = Object.fromEntries(Object.entries(t.haproxy.frontends).map(([k, f]) => [k, f.port]));
  return { stack, networks, nodes, volume: `${prefix(stack)}-apt`, routerWan, frontends };
}

/** Ports published on 127.0.0.1 by this lab. */
export interface LabPorts {
  bastion: number;
  /** The wan-client's own sshd (it is on wan alone, so it is not behind the bastion). */
  wanClient: number;
  /** HAProxy frontend name → host port that enters the chain at the router's WAN side. */
  entry: Record<string, number>;
}

export interface SshNames {
  stateDir: string;
  identity: string;
  sshConfig: string;
  knownHosts: string;
}

/** How a node is reached over ssh: behind the bastion on its mgmt address, or published on 127.0.0.1. */
export function sshEndpoint(
  node: LabNode,
  ports: LabPorts,
): { host: string; port: number; proxyJump?: string } {
  if (node.kind === 'bastion') return { host: '127.0.0.1', port: ports.bastion };
  if (node.kind === 'wan-client' || !node.addresses.mgmt) return { host: '127.0.0.1', port: ports.wanClient };
  return { host: node.addresses.mgmt, port: 22, proxyJump: BASTION };
}

export function sshConfigText(plan: LabPlan, ports: LabPorts, f: SshNames): string {
  const out = [
    `# Generated by \`wharf lab up\` for the lab "${plan.stack}"; use: ssh -F ${f.sshConfig} NODE`,
    '# Every node is reached through the bastion (published on 127.0.0.1), like private hosts.',
    '',
  ];
  const ordered = [...plan.nodes].sort((a, b) => (a.kind === 'bastion' ? -1 : b.kind === 'bastion' ? 1 : 0));
  for (const n of ordered) {
    const e = sshEndpoint(n, ports);
    out.push(`Host ${n.name}`);
    out.push(`  HostName ${e.host}`);
    out.push(`  Port ${e.port}`);
    if (e.proxyJump) out.push(`  ProxyJump ${e.proxyJump}`);
    out.push(
      '  User root',
      `  IdentityFile ${f.identity}`,
      '  IdentitiesOnly yes',
      `  UserKnownHostsFile ${f.knownHosts}`,
      '  StrictHostKeyChecking yes',
      '  BatchMode yes',
      '  ConnectTimeout 10',
      '  ServerAliveInterval 15',
      '  ControlMaster auto',
      '  ControlPath /tmp/wharf-%C',
      '  ControlPersist 60s',
      '',
    );
  }
  return out.join('\n');
}

/** known_hosts lines: `host key` for the public key text of each node. */
export function knownHostsText(plan: LabPlan, ports: LabPorts, hostKeys: Record<string, string>): string {
  const lines: string[] = [];
  for (const n of plan.nodes) {
    const e = sshEndpoint(n, ports);
    const key = hostKeys[n.name];
    if (!key) throw new Error(`no host key for node ${n.name}`);
    const host = e.port === 22 ? e.host : `[${e.host}]:${e.port}`;
    const [type, data] = key.trim().split(/\s+/);
    lines.push(`${host} ${type} ${data}`);
  }
  return lines.join('\n') + '\n';
}

export interface InventoryExtras {
  secretsDir: string;
  users: NonNullable<Inventory['users']>;
}

/** The lab's inventory, in the format of configs/production.example.inventory.yaml. */
export function labInventoryDoc(
  plan: LabPlan,
  ports: LabPorts,
  f: SshNames,
  extra?: InventoryExtras,
): Inventory {
  const hosts: Inventory['hosts'] = {};
  for (const n of plan.nodes) {
    if (n.kind === 'bastion') continue;
    const e = sshEndpoint(n, ports);
    hosts[n.name] = {
      ssh: { host: n.name, port: e.port, user: 'root', identityFile: f.identity, sudo: false },
      addresses: n.addresses,
    };
  }
  const entryPort = ports.entry.sftp ?? Object.values(ports.entry)[0];
  return {
    sshConfig: f.sshConfig,
    knownHosts: f.knownHosts,
    ...(extra ? { secretsDir: extra.secretsDir } : {}),
    ...(entryPort ? { entrypoint: { host: '127.0.0.1', port: entryPort } } : {}),
    hosts,
    ...(extra ? { users: extra.users } : {}),
  };
}

export function inventoryYaml(plan: LabPlan, ports: LabPorts, f: SshNames, extra?: InventoryExtras): string {
  return (
    `# Generated by \`wharf lab up\`: how wharf reaches the lab "${plan.stack}" (ssh hosts are aliases of sshConfig).\n` +
    stringify(labInventoryDoc(plan, ports, f, extra))
  );
}

/** The lab as a Mermaid flowchart: networks (with subnets) and nodes (with their addresses). */
export function labGraph(plan: LabPlan, ports?: LabPorts): string {
  const id = (s: string) => s.replace(/[^A-Za-z0-9_]/g, '_');
  const out = ['flowchart LR'];
  out.push(`  host(["Linux host<br/>127.0.0.1"])`);
  for (const net of plan.networks) {
    out.push(`  net_${id(net.name)}{{"${net.name}<br/>${net.subnet}"}}`);
  }
  for (const n of plan.nodes) {
    out.push(`  ${id(n.name)}["${n.name}<br/>(${n.role ? `sftp ${n.role}` : n.kind})"]`);
  }
  for (const n of plan.nodes) {
    for (const net of n.networks) out.push(`  ${id(n.name)} ---|${n.addresses[net]}| net_${id(net)}`);
  }
  if (ports) {
    out.push(`  host -->|"ssh :${ports.bastion}"| ${id(BASTION)}`);
    const wc = plan.nodes.find((n) => n.kind === 'wan-client');
    if (wc) {
      const entry = Object.entries(ports.entry)
        .map(([k, p]) => `${k} :${p}`)
        .join(', ');
      out.push(`  host -->|"${entry}"| ${id(wc.name)}`);
    }
  }
  return out.join('\n') + '\n';
}
