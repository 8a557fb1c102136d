// The inventory: how each node of the topology is reached (ssh) and its addresses on the data
// networks. The lab writes one for its containers; production keeps its own. Only this differs.
import { z } from 'zod';
import { NETWORKS, cidr, port, type NetworkName } from './schema.ts';
import type { Topology } from './model.ts';
import { hostAddress, inSubnet } from './net.ts';

const ipv4 = () =>
  z.string().regex(/^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/, {
    error: (i) => `expected an IPv4 address, got ${JSON.stringify(i.input)}`,
  });

export const SshTarget = z.strictObject({
  /** Host name or address the operator's ssh client connects to (or a Host alias of sshConfig). */
  host: z.string().min(1, { error: 'expected a host name or address' }),
  port: port().default(22),
  user: z.string().min(1).default('root'),
  identityFile: z.string().optional(),
  /** Run privileged commands through sudo (non-interactive, NOPASSWD). */
  sudo: z.boolean().default(false),
  proxyJump: z.string().optional(),
});

const Addresses = z.partialRecord(z.enum(NETWORKS), ipv4());

/** An OPNsense box's REST API (firewall.kind: opnsense): HTTPS URL, key/secret files, its CA. */
export const OpnApi = z.strictObject({
  url: z.string().regex(/^https:\/\/[^\s/:@]+(:\d+)?\/?$/, {
    error: (i) => `expected https://HOST[:PORT], got ${JSON.stringify(i.input)}`,
  }),
  keyFile: z.string().min(1, { error: 'expected the file holding the API key' }),
  secretFile: z.string().min(1, { error: 'expected the file holding the API secret' }),
  /** The CA that signed the box's certificate (a self-signed box: its certificate). */
  caFile: z.string().min(1).optional(),
  /** Command spelling: camel (every release) or snake (newer releases). */
  commands: z.enum(['camel', 'snake']).default('camel'),
  /** The box's own savepoint rollback window after apply/{revision} (OPNsense: 60 s). */
  rollbackSeconds: z.number().int().min(5).max(3600).default(60),
});

export const InventorySchema = z.strictObject({
  /** Optional ssh_config (ProxyJump, keys…) used for every host; the lab writes its own. */
  sshConfig: z.string().optional(),
  /** known_hosts to check host keys against (strict checking is always on). */
  knownHosts: z.string().optional(),
  /** Subnets of the data networks when they differ from the topology's (production). */
  networks: z.partialRecord(z.enum(NETWORKS), cidr()).optional(),
  hosts: z.record(
    z.string(),
    z.strictObject({
      ssh: SshTarget,
      addresses: Addresses.default({}),
      /** Only for an OPNsense firewall: how wharf reaches its API. */
      api: OpnApi.optional(),
    }),
  ),
  /** Where the stack's shared secrets live on the operator's machine (default .wharf/secrets/<stack>). */
  secretsDir: z.string().optional(),
  /** The SFTP entry point as clients see it (verify's probe upload goes through it). */
  entrypoint: z.strictObject({ host: z.string().min(1), port: port() }).optional(),
  /** Credentials of SFTP users (secrets stay out of the topology): merged over topology users. */
  users: z
    .record(
      z.string(),
      z.strictObject({
        passwordHash: z
          .string()
          .regex(/^\$6\$/, { error: 'expected a SHA-512 crypt hash starting with $6$' })
          .optional(),
        /** Clear-text password, only for verify's probe (never sent to a host). */
        password: z.string().optional(),
        /** Private key file for verify's probe. */
        privateKey: z.string().optional(),
        authorizedKeys: z.array(z.string()).optional(),
      }),
    )
    .optional(),
  notifications: z
    .strictObject({
      webhookUrl: z.string().url().optional(),
      smtp: z.strictObject({ host: z.string().min(1), port: port().default(25) }).optional(),
    })
    .optional(),
});

export type Inventory = z.output<typeof InventorySchema>;
export type InventoryHost = Inventory['hosts'][string];
export type SshTargetT = z.output<typeof SshTarget>;

/** The lab's addressing plan, derived from the topology alone: subnet + node.hostId. */
export function labAddresses(t: Topology): Record<string, Partial<Record<NetworkName, string>>> {
  const out: Record<string, Partial<Record<NetworkName, string>>> = {};
  for (const node of Object.values(t.nodes)) {
    const a: Partial<Record<NetworkName, string>> = {};
    for (const net of node.networks) a[net] = hostAddress(t.networks[net].subnet, node.hostId);
    out[node.name] = a;
  }
  return out;
}

/**
 * An inventory for the lab's addressing plan with placeholder ssh targets. `render` and
 * `validate` use it when no inventory is given; `wharf lab up` writes the real one.
 */
export function labInventory(t: Topology): Inventory {
  const addrs = labAddresses(t);
  const hosts: Inventory['hosts'] = {};
  for (const [name, a] of Object.entries(addrs)) {
    hosts[name] = {
      ssh: { host: name, port: 22, user: 'root', sudo: false },
      addresses: a,
    };
  }
  return { hosts };
}

/** Cross-checks between an inventory and the topology it serves. Returns problems as `path: text`. */
export function checkInventory(t: Topology, inv: Inventory): string[] {
  const problems: string[] = [];
  for (const node of Object.values(t.nodes)) {
    const h = inv.hosts[node.name];
    if (!h) {
      // a monitor node is optional on real hosts: without one, an existing Prometheus scrapes the stack
      if (!node.labOnly && node.kind !== 'monitor')
        problems.push(`hosts.${node.name}: missing (the topology has node ${node.name})`);
      continue;
    }
    for (const net of node.networks) {
      if (net === 'mgmt') continue;
      const addr = h.addresses[net];
      if (!addr) {
        problems.push(`hosts.${node.name}.addresses.${net}: missing (node ${node.name} is on ${net})`);
        continue;
      }
      const subnet = inv.networks?.[net] ?? t.networks[net].subnet;
      if (!inSubnet(addr, subnet)) {
        problems.push(`hosts.${node.name}.addresses.${net}: ${addr} is not in the ${net} subnet ${subnet}`);
      }
    }
  }
  for (const name of Object.keys(inv.users ?? {})) {
    if (!t.sftp.users.some((u) => u.name === name)) {
      problems.push(
        `users.${name}: not an SFTP user of the topology (${t.sftp.users.map((u) => u.name).join(', ')})`,
      );
    }
  }
  for (const name of Object.keys(inv.hosts)) {
    if (!t.nodes[name])
      problems.push(`hosts.${name}: not a node of the topology (${Object.keys(t.nodes).join(', ')})`);
  }
  return problems;
}

/** Address of a node on a network, from the inventory. Throws naming the node when unknown. */
export function addressOf(inv: Inventory, node: string, net: NetworkName): string {
  const a = inv.hosts[node]?.addresses[net];
  if (!a) throw new Error(`inventory: hosts.${node}.addresses.${net} is missing`);
  return a;
}

export function subnetOf(t: Topology, inv: Inventory, net: NetworkName): string {
  return inv.networks?.[net] ?? t.networks[net].subnet;
}
