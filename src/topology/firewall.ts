// The firewall's rule model in OPNsense's own terms, and its resolution against an inventory.
//
// Field names follow opnsense/core's MVC models, so a driver for OPNsense's REST API can send them
// as they are:
//   - filter rules: models/OPNsense/Firewall/Filter.xml `rules.rule` (enabled, sequence, action,
//     quick, interface, direction, ipprotocol, protocol, source_net, source_not, source_port,
//     destination_net, destination_not, destination_port, log, description);
//   - aliases: Alias.xml `aliases.alias` (enabled, name, type host|network|port, content,
//     description; content is newline-separated there, a list here; an entry may name another alias);
//   - port forwards: DNat.xml `rule` (sequence, disabled, interface, ipprotocol, protocol,
//     source{network,not,port}, destination{network,not,port}, target, local-port, log, descr,
//     pass: '' (manual) | 'rule' (register an associated filter rule) | 'pass' (rdr pass)).
// Network values are OPNsense's: `any`, `(self)` (every address of the firewall), `<if>ip` (the
// address of interface <if>, e.g. `wanip` = "WAN address"), `<if>` (its subnet, "WAN net"), an
// alias name, an address or subnet; wharf adds node names (the node's address nearest the
// firewall). Port values: `22`, a range `2221-2222`, a well-known name (`ssh`), a port alias, or ''
// (any).
//
// Three layers, all pure:
//   normalizeFirewall  topology YAML (parsed) → FirewallSpec (names, OPNsense field values)
//   firewallProblems   FirewallSpec → problems, each naming the rule by index and description
//   resolveFirewall    FirewallSpec + inventory → ResolvedFirewall (addresses, port ranges, the
//                      nesting of aliases flattened, interfaces with their address and subnet)
import { InputError } from '../core/errors.ts';
import type { Inventory } from './inventory.ts';
import { NETWORKS, type NetworkName } from './schema.ts';

export const FIREWALL_KINDS = ['nftables', 'opnsense'] as const;
export type FirewallKind = (typeof FIREWALL_KINDS)[number];
export const ALIAS_TYPES = ['host', 'network', 'port'] as const;
export type AliasType = (typeof ALIAS_TYPES)[number];
/** OPNsense's filter protocol values (ProtocolField; upper case as the filter model stores them). */
export type FilterProtocol = 'any' | 'TCP' | 'UDP' | 'TCP/UDP' | 'ICMP';
/** DNat.xml lower-cases its protocol. */
export type NatProtocol = 'tcp' | 'udp' | 'tcp/udp';
/** wharf's names for OPNsense's "Filter rule association" of a port forward. */
export const ASSOCIATED_RULES = ['add', 'pass', 'none'] as const;
export type AssociatedRule = (typeof ASSOCIATED_RULES)[number];
/** DNat.xml `pass`: '' = Manual (none), 'rule' = Register rule (add), 'pass' = Pass (rdr pass). */
export const DNAT_PASS: Record<AssociatedRule, '' | 'rule' | 'pass'> = {
  add: 'rule',
  pass: 'pass',
  none: '',
};

/** PortField's well-known services (opnsense/core Base/FieldTypes/PortField.php), the common ones. */
export const WELL_KNOWN_PORTS: Record<string, number> = {
  ftp: 21,
  ssh: 22,
  telnet: 23,
  smtp: 25,
  domain: 53,
  http: 80,
  ntp: 123,
  snmp: 161,
  ldap: 389,
  https: 443,
  submission: 587,
  ldaps: 636,
  imaps: 993,
  openvpn: 1194,
};

export interface FirewallAlias {
  name: string;
  type: AliasType;
  /** Entries as written: addresses, subnets, node names, ports, ranges, or other aliases' names. */
  content: string[];
  enabled: boolean;
  description: string;
}

/** One OPNsense filter rule (Filter.xml), plus where it came from for messages. */
export interface FilterRule {
  sequence: number;
  enabled: boolean;
  action: 'pass' | 'block' | 'reject';
  quick: boolean;
  /** Interface names (keys of FirewallSpec.interfaces). */
  interface: string[];
  direction: 'in' | 'out';
  ipprotocol: 'inet';
  protocol: FilterProtocol;
  source_net: string;
  source_not: boolean;
  source_port: string;
  destination_net: string;
  destination_not: boolean;
  destination_port: string;
  log: boolean;
  description: string;
  /** `firewall.rules.3 ("allow SFTP")`, or the port forward that added it. */
  origin: string;
  /** Set on the filter rule a port forward added (associatedRule: add): the forward's index. */
  associatedNat?: number;
}

export interface NatEndpoint {
  network: string;
  not: boolean;
  port: string;
}

/** One OPNsense port forward (DNat.xml), plus wharf's name for its rule association. */
export interface DNatRule {
  sequence: number;
  disabled: boolean;
  interface: string[];
  ipprotocol: 'inet';
  protocol: NatProtocol;
  source: NatEndpoint;
  destination: NatEndpoint;
  /** A node name (wharf), an address or a host alias. */
  target: string;
  /** '' = the destination port unchanged. */
  'local-port': string;
  log: boolean;
  descr: string;
  pass: '' | 'rule' | 'pass';
  associatedRule: AssociatedRule;
  origin: string;
}

export interface FirewallSpec {
  kind: FirewallKind;
  /**
   * OPNsense's anti-lockout rule (on by default; System › Settings › Administration): management
   * SSH to the firewall's mgmt address from the mgmt network passes before every other rule.
   */
  antiLockout: boolean;
  /** OPNsense interface name (wan, dmz, lan, mgmt, opt1…) → the wharf network it is attached to. */
  interfaces: Record<string, NetworkName>;
  aliases: FirewallAlias[];
  /** The operator's filter rules, in order. */
  rules: FilterRule[];
  nat: DNatRule[];
  /** Filter rules in evaluation order: the operator's, then those the port forwards add. */
  filter: FilterRule[];
}

// ---------------------------------------------------------------------------------------------
// The topology's input (what schema.ts parses) → FirewallSpec

export interface FirewallRuleInput {
  description: string;
  enabled?: boolean;
  interface: string | string[];
  direction?: 'in' | 'out';
  action: 'pass' | 'block' | 'reject';
  quick?: boolean;
  protocol?: string;
  source?: string;
  sourceNot?: boolean;
  sourcePort?: string | number;
  destination?: string;
  destinationNot?: boolean;
  destinationPort?: string | number;
  /** Before the OPNsense model: the destination port. */
  port?: number;
  log?: boolean;
}

export interface NatInput {
  description?: string;
  disabled?: boolean;
  interface?: string | string[];
  protocol?: string;
  source?: string;
  sourceNot?: boolean;
  sourcePort?: string | number;
  destination?: string;
  destinationNot?: boolean;
  destinationPort?: string | number;
  target?: string;
  localPort?: string | number;
  associatedRule?: AssociatedRule;
  log?: boolean;
  /** Before the OPNsense model: port, to, toPort. */
  port?: number;
  to?: string;
  toPort?: number;
}

export interface AliasInput {
  name: string;
  type: AliasType;
  content: Array<string | number>;
  enabled?: boolean;
  description?: string;
}

export interface FirewallInput {
  kind?: FirewallKind;
  antiLockout?: boolean;
  interfaces?: Record<string, NetworkName>;
  aliases?: AliasInput[];
  rules?: FirewallRuleInput[];
  nat?: NatInput[];
}

/** What normalizeFirewall needs from the rest of the topology. */
export interface FirewallContext {
  /** The firewall node's networks. */
  networks: NetworkName[];
  /** Networks the router shares with the firewall (its upstream side: the `wan` interface). */
  upstream: NetworkName[];
  /** The HAProxy node and its frontends' ports (the default port forwards). */
  haproxy: string;
  frontends: Array<[string, number]>;
  /** Every node name (a node name is a valid network value). */
  nodes: string[];
}

/** Default interfaces: the upstream network is `wan`, every other network keeps its own name. */
export function defaultInterfaces(ctx: FirewallContext): Record<string, NetworkName> {
  const out: Record<string, NetworkName> = {};
  for (const n of ctx.networks) out[ctx.upstream.includes(n) && !out.wan ? 'wan' : n] = n;
  return out;
}

export const ruleLabel = (i: number, description: string): string =>
  `firewall.rules.${i}${description ? ` (${JSON.stringify(description)})` : ''}`;
export const natLabel = (i: number, description: string): string =>
  `firewall.nat.${i}${description ? ` (${JSON.stringify(description)})` : ''}`;

const FILTER_PROTOCOLS: Record<string, FilterProtocol> = {
  any: 'any',
  tcp: 'TCP',
  udp: 'UDP',
  'tcp/udp': 'TCP/UDP',
  icmp: 'ICMP',
};

/**
 * An address/network value as written in the topology → OPNsense's value. Display forms are
 * accepted: "WAN address" → `wanip`, "dmz net" → `dmz`, "This Firewall" → `(self)`; a wharf network
 * name that one interface sits on → that interface's net (`transit` → `wan`). Anything else is kept
 * (alias, node, address; unknown names are reported by firewallProblems).
 */
export function networkValue(v: string, interfaces: Record<string, NetworkName>): string {
  const s = v.trim();
  const low = s.toLowerCase();
  if (low === 'any' || low === '') return 'any';
  if (low === '(self)' || low === 'this firewall' || low === 'self') return '(self)';
  const m = /^([a-z][a-z0-9_]*)\s+(address|net)$/.exec(low);
  if (m && interfaces[m[1]!]) return m[2] === 'address' ? `${m[1]}ip` : m[1]!;
  if (interfaces[s]) return s;
  if (/^[a-z][a-z0-9_]*ip$/.test(s) && interfaces[s.slice(0, -2)]) return s;
  const byNet = Object.entries(interfaces).filter(([, n]) => n === s);
  if (byNet.length === 1 && !Object.hasOwn(interfaces, s)) return byNet[0]![0];
  return s;
}

/** A port value as written (number, "22", "2221-2222", "ssh", alias) → OPNsense's value ('' = any). */
export const portValue = (v: string | number | undefined): string =>
  v === undefined ? '' : String(v).trim().toLowerCase() === 'any' ? '' : String(v).trim();

/** An interface as written (interface name, or the wharf network one interface sits on) → its name. */
export function interfaceName(v: string, interfaces: Record<string, NetworkName>): string {
  if (interfaces[v]) return v;
  const byNet = Object.entries(interfaces).filter(([, n]) => n === v);
  return byNet.length === 1 ? byNet[0]![0] : v;
}

const list = (v: string | string[] | undefined, dflt: string[]): string[] =>
  v === undefined ? dflt : Array.isArray(v) ? v : [v];

/** The filter rule OPNsense adds for a port forward ("add associated filter rule"). */
export function associatedFilterRule(n: DNatRule, index: number): FilterRule {
  return {
    sequence: 0,
    enabled: !n.disabled,
    action: 'pass',
    quick: true,
    interface: n.interface,
    direction: 'in',
    ipprotocol: 'inet',
    protocol: n.protocol.toUpperCase() as FilterProtocol,
    source_net: n.source.network,
    source_not: n.source.not,
    source_port: n.source.port,
    destination_net: n.target,
    destination_not: false,
    destination_port: n['local-port'] || n.destination.port,
    log: n.log,
    description: `NAT ${n.descr}`.trim(),
    origin: `${n.origin}: its associated filter rule`,
    associatedNat: index,
  };
}

/** Topology input → FirewallSpec with defaults (OPNsense's, and wharf's default SFTP forwards). Pure. */
export function normalizeFirewall(input: FirewallInput, ctx: FirewallContext): FirewallSpec {
  const interfaces = input.interfaces ?? defaultInterfaces(ctx);
  const wan = Object.keys(interfaces).find((k) => k === 'wan') ?? Object.keys(interfaces)[0] ?? 'wan';
  const aliases: FirewallAlias[] = (input.aliases ?? []).map((a) => ({
    name: a.name,
    type: a.type,
    content: a.content.map((c) => String(c).trim()),
    enabled: a.enabled ?? true,
    description: a.description ?? '',
  }));

  const rulesIn: FirewallRuleInput[] =
    input.rules ??
    // Without rules: the port forwards' associated rules pass the SFTP traffic; nothing else.
    [];
  const rules = rulesIn.map((r, i): FilterRule => ({
    sequence: (i + 1) * 10,
    enabled: r.enabled ?? true,
    action: r.action,
    quick: r.quick ?? true,
    interface: list(r.interface, [wan]).map((x) => interfaceName(x, interfaces)),
    direction: r.direction ?? 'in',
    ipprotocol: 'inet',
    protocol: FILTER_PROTOCOLS[(r.protocol ?? 'tcp').toLowerCase()] ?? (r.protocol as FilterProtocol),
    source_net: networkValue(r.source ?? 'any', interfaces),
    source_not: r.sourceNot ?? false,
    source_port: portValue(r.sourcePort),
    destination_net: networkValue(r.destination ?? 'any', interfaces),
    destination_not: r.destinationNot ?? false,
    destination_port: portValue(r.destinationPort ?? r.port),
    log: r.log ?? false,
    description: r.description,
    origin: ruleLabel(i, r.description),
  }));

  // The default forwards pass their traffic with associated rules, unless the topology has rules of
  // its own (files written before this model passed it with their rules, and keep that policy).
  const natIn: NatInput[] =
    input.nat ??
    ctx.frontends.map(([name, port]) => ({
      description: `SFTP ${name} to HAProxy`,
      interface: wan,
      protocol: 'tcp',
      destination: `${wan}ip`,
      destinationPort: port,
      target: ctx.haproxy,
      associatedRule: input.rules ? ('none' as const) : ('add' as const),
    }));
  const nat = natIn.map((n, i): DNatRule => {
    const descr = n.description ?? '';
    // OPNsense's default is an associated rule; a forward in the old shape (port/to/toPort) had none.
    const legacy = n.to !== undefined || n.port !== undefined || n.toPort !== undefined;
    const associatedRule = n.associatedRule ?? (legacy ? 'none' : 'add');
    return {
      sequence: (i + 1) * 10,
      disabled: n.disabled ?? false,
      interface: list(n.interface, [wan]).map((x) => interfaceName(x, interfaces)),
      ipprotocol: 'inet',
      protocol: (n.protocol ?? 'tcp').toLowerCase() as NatProtocol,
      source: {
        network: networkValue(n.source ?? 'any', interfaces),
        not: n.sourceNot ?? false,
        port: portValue(n.sourcePort),
      },
      destination: {
        network: networkValue(n.destination ?? `${wan}ip`, interfaces),
        not: n.destinationNot ?? false,
        port: portValue(n.destinationPort ?? n.port),
      },
      target: n.target ?? n.to ?? '',
      'local-port': portValue(n.localPort ?? n.toPort),
      log: n.log ?? false,
      descr,
      pass: DNAT_PASS[associatedRule],
      associatedRule,
      origin: natLabel(i, descr),
    };
  });
  const associated = nat.flatMap((n, i) => (n.associatedRule === 'add' ? [associatedFilterRule(n, i)] : []));
  const filter = [...rules, ...associated].map((r, i) => ({ ...r, sequence: (i + 1) * 10 }));
  return {
    kind: input.kind ?? 'nftables',
    antiLockout: input.antiLockout ?? true,
    interfaces,
    aliases,
    rules: filter.slice(0, rules.length),
    nat,
    filter,
  };
}

// ---------------------------------------------------------------------------------------------
// Checks (names, nesting, ports) → problems naming the rule

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const CIDR = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}\/([0-9]|[12]\d|3[0-2])$/;
export const isAddress = (s: string): boolean => IPV4.test(s) || CIDR.test(s);
const RESERVED = new Set(['any', 'self', '(self)']);

export type PortRange = { from: number; to: number };

/** A single port value (no alias): `22`, `2221-2222`, `ssh` → its range, or a reason. Pure. */
export function parsePort(v: string): PortRange | string {
  const known = WELL_KNOWN_PORTS[v.toLowerCase()];
  if (known) return { from: known, to: known };
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(v);
  if (!m)
    return `expected a port 1..65535, a range like 2221-2222, a service name or a port alias, got "${v}"`;
  const from = Number(m[1]);
  const to = m[2] === undefined ? from : Number(m[2]);
  if (from < 1 || from > 65535 || to < 1 || to > 65535) return `expected ports 1..65535, got "${v}"`;
  if (m[2] !== undefined && from >= to)
    return `a range must go up (OPNsense refuses ${v}): expected from < to, got "${v}"`;
  return { from, to };
}

/**
 * Flatten an alias's nesting: the leaf entries it stands for, or an error naming the cycle or the
 * unknown entry. `isLeaf` says whether an entry is a value of its own (address, node, port).
 */
export function expandAlias(
  aliases: readonly FirewallAlias[],
  name: string,
  isLeaf: (entry: string, type: AliasType) => boolean,
): { entries: string[] } | { error: string } {
  const byName = new Map(aliases.map((a) => [a.name, a]));
  const out: string[] = [];
  const walk = (n: string, path: string[]): string | undefined => {
    const a = byName.get(n)!;
    for (const e of a.content) {
      if (byName.has(e)) {
        if (path.includes(e)) return `alias nesting forms a cycle: ${[...path, e].join(' → ')}`;
        const inner = byName.get(e)!;
        if (a.type === 'port' ? inner.type !== 'port' : inner.type === 'port')
          return `alias "${n}" (${a.type}) cannot contain alias "${e}" (${inner.type})`;
        if (a.type === 'host' && inner.type === 'network')
          return `alias "${n}" (host) cannot contain alias "${e}" (network): use a network alias`;
        const err = walk(e, [...path, e]);
        if (err) return err;
      } else if (isLeaf(e, a.type)) {
        if (!out.includes(e)) out.push(e);
      } else {
        return a.type === 'port'
          ? `alias "${n}": entry "${e}": ${typeof parsePort(e) === 'string' ? parsePort(e) : 'not a port'}`
          : `alias "${n}": entry "${e}" is not an address${a.type === 'network' ? ', a subnet' : ''}, a node or an alias`;
      }
    }
    return undefined;
  };
  const err = walk(name, [name]);
  return err ? { error: err } : { entries: out };
}

/** Every problem of a FirewallSpec, each naming the field path and the rule by description. Pure. */
export function firewallProblems(spec: FirewallSpec, ctx: FirewallContext): string[] {
  const problems: string[] = [];
  const ifs = spec.interfaces;
  for (const [name, net] of Object.entries(ifs)) {
    if (!/^[a-z][a-z0-9_]{0,15}$/.test(name))
      problems.push(
        `firewall.interfaces.${name}: expected an interface name (lowercase letters, digits, _), got "${name}"`,
      );
    if (!ctx.networks.includes(net))
      problems.push(
        `firewall.interfaces.${name}: the firewall is not on network ${net} (its networks: ${ctx.networks.join(', ')})`,
      );
  }
  const nets = Object.values(ifs);
  nets.forEach((n, i) => {
    if (nets.indexOf(n) !== i)
      problems.push(`firewall.interfaces: network ${n} is named twice (${Object.keys(ifs).join(', ')})`);
  });

  const aliasNames = new Set<string>();
  spec.aliases.forEach((a, i) => {
    const at = `firewall.aliases.${i} (${JSON.stringify(a.name)})`;
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,31}$/.test(a.name))
      problems.push(`${at}.name: expected letters, digits and _ (max 32, OPNsense's alias names)`);
    if (aliasNames.has(a.name)) problems.push(`${at}.name: alias "${a.name}" is defined twice`);
    aliasNames.add(a.name);
    const clash = RESERVED.has(a.name.toLowerCase())
      ? 'a keyword'
      : ifs[a.name] || (/ip$/.test(a.name) && ifs[a.name.slice(0, -2)])
        ? 'an interface keyword'
        : ctx.nodes.includes(a.name)
          ? 'a node name'
          : (NETWORKS as readonly string[]).includes(a.name)
            ? 'a network name'
            : '';
    if (clash) problems.push(`${at}.name: "${a.name}" is already ${clash}; choose another alias name`);
  });
  const leaf = (e: string, type: AliasType) =>
    type === 'port'
      ? typeof parsePort(e) !== 'string'
      : IPV4.test(e) || (type === 'network' && CIDR.test(e)) || ctx.nodes.includes(e);
  spec.aliases.forEach((a, i) => {
    const r = expandAlias(spec.aliases, a.name, leaf);
    if ('error' in r) problems.push(`firewall.aliases.${i} (${JSON.stringify(a.name)}).content: ${r.error}`);
  });
  const aliasType = (n: string) => spec.aliases.find((a) => a.name === n)?.type;

  const checkNet = (at: string, v: string) => {
    if (v === 'any' || v === '(self)' || isAddress(v)) return;
    if (ifs[v] || (/ip$/.test(v) && ifs[v.slice(0, -2)])) return;
    const t = aliasType(v);
    if (t === 'port') problems.push(`${at}: alias "${v}" is a port alias, expected a host or network alias`);
    else if (t) return;
    else if (ctx.nodes.includes(v) || (NETWORKS as readonly string[]).includes(v)) return;
    else
      problems.push(
        `${at}: "${v}" is not any, (self), an interface (${Object.keys(ifs).join(', ')}) or its address (<if>ip, "<if> address"), an alias, a node, a network or an address`,
      );
  };
  const checkPort = (at: string, v: string, protocol: string) => {
    if (v === '') return;
    if (!/^(tcp|udp|tcp\/udp)$/i.test(protocol))
      problems.push(`${at}: a port needs protocol tcp, udp or tcp/udp, got ${protocol.toLowerCase()}`);
    const t = aliasType(v);
    if (t && t !== 'port') problems.push(`${at}: alias "${v}" is a ${t} alias, expected a port alias`);
    if (t) return;
    if (/[,\s]/.test(v)) {
      problems.push(`${at}: one port, range or alias per field (as OPNsense): put "${v}" in a port alias`);
      return;
    }
    const p = parsePort(v);
    if (typeof p === 'string') problems.push(`${at}: ${p}`);
  };
  const checkIfs = (at: string, xs: string[]) => {
    if (!xs.length) problems.push(`${at}: expected at least one interface`);
    for (const x of xs)
      if (!ifs[x])
        problems.push(
          `${at}: "${x}" is not an interface of the firewall (${Object.entries(ifs)
            .map(([k, n]) => `${k} on ${n}`)
            .join(', ')})`,
        );
  };

  spec.rules.forEach((r) => {
    checkIfs(`${r.origin}.interface`, r.interface);
    if (!Object.values(FILTER_PROTOCOLS).includes(r.protocol))
      problems.push(`${r.origin}.protocol: expected one of tcp|udp|tcp/udp|icmp|any, got ${r.protocol}`);
    checkNet(`${r.origin}.source`, r.source_net);
    checkNet(`${r.origin}.destination`, r.destination_net);
    checkPort(`${r.origin}.sourcePort`, r.source_port, r.protocol);
    checkPort(`${r.origin}.destinationPort`, r.destination_port, r.protocol);
  });
  spec.nat.forEach((n) => {
    checkIfs(`${n.origin}.interface`, n.interface);
    if (!['tcp', 'udp', 'tcp/udp'].includes(n.protocol))
      problems.push(`${n.origin}.protocol: expected one of tcp|udp|tcp/udp, got ${n.protocol}`);
    checkNet(`${n.origin}.source`, n.source.network);
    checkNet(`${n.origin}.destination`, n.destination.network);
    checkPort(`${n.origin}.sourcePort`, n.source.port, n.protocol);
    if (n.destination.port === '')
      problems.push(`${n.origin}.destinationPort: a port forward needs the port(s) it forwards`);
    checkPort(`${n.origin}.destinationPort`, n.destination.port, n.protocol);
    checkPort(`${n.origin}.localPort`, n['local-port'], n.protocol);
    const lp = n['local-port'];
    if (lp && aliasType(lp)) problems.push(`${n.origin}.localPort: expected one port, not an alias`);
    else if (lp && typeof parsePort(lp) !== 'string') {
      const r = parsePort(lp) as PortRange;
      if (r.from !== r.to)
        problems.push(
          `${n.origin}.localPort: expected one port (the first of the range the target answers on), got "${lp}"`,
        );
    }
    if (!n.target)
      problems.push(`${n.origin}.target: expected the node, address or host alias to forward to`);
    else if (!ctx.nodes.includes(n.target) && !IPV4.test(n.target) && aliasType(n.target) !== 'host')
      problems.push(`${n.origin}.target: "${n.target}" is not a node, an IPv4 address or a host alias`);
  });
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Resolution against an inventory: addresses and port ranges

export interface ResolvedInterface {
  name: string;
  network: NetworkName;
  /** The firewall's address on that network (how the device is found on the box at apply time). */
  address: string;
  subnet: string;
}

/** A resolved network value: `any`, or addresses/subnets (`not` inverts the match). */
export interface ResolvedNet {
  any: boolean;
  not: boolean;
  addresses: string[];
}

/** A resolved port value: `any`, or ranges (a single port is from = to). */
export interface ResolvedPorts {
  any: boolean;
  ranges: PortRange[];
}

export interface ResolvedAlias extends FirewallAlias {
  /** The leaves after nesting: addresses/subnets (host, network) or ranges (port). */
  addresses: string[];
  ports: PortRange[];
}

export interface ResolvedFilterRule extends FilterRule {
  resolved: {
    interfaces: ResolvedInterface[];
    source: ResolvedNet;
    destination: ResolvedNet;
    sourcePorts: ResolvedPorts;
    destinationPorts: ResolvedPorts;
  };
}

export interface ResolvedDNatRule extends DNatRule {
  resolved: {
    interfaces: ResolvedInterface[];
    source: ResolvedNet;
    sourcePorts: ResolvedPorts;
    destination: ResolvedNet;
    destinationPorts: ResolvedPorts;
    /** The target's address. */
    target: string;
    /** The port the target answers on, or undefined: the destination port unchanged. */
    localPort?: number;
  };
  /** The filter rule it adds (associatedRule: add), as it appears in ResolvedFirewall.filter. */
  rule?: ResolvedFilterRule;
}

export interface ResolvedFirewall {
  kind: FirewallKind;
  antiLockout: boolean;
  /** The firewall node. */
  node: string;
  interfaces: Record<string, ResolvedInterface>;
  /** Every address of the firewall: `(self)`. */
  self: string[];
  aliases: ResolvedAlias[];
  /** The operator's rules, in order. */
  rules: ResolvedFilterRule[];
  nat: ResolvedDNatRule[];
  /** Filter rules in evaluation order: the operator's rules, then those port forwards add. */
  filter: ResolvedFilterRule[];
}

/** What resolveFirewall needs: the spec, the node and how names become addresses. */
export interface ResolveContext {
  spec: FirewallSpec;
  node: string;
  /** Subnet of a wharf network (inventory first, then topology). */
  subnet: (net: NetworkName) => string;
  /** The address of a node as the firewall reaches it (a network both share, else any data address). */
  nodeAddress: (node: string) => string | undefined;
  /** The firewall's own addresses per network. */
  addresses: Partial<Record<NetworkName, string>>;
}

/** Spec → resolved model. Throws InputError naming the rule when a name cannot be resolved. Pure. */
export function resolveFirewall(c: ResolveContext): ResolvedFirewall {
  const { spec } = c;
  const interfaces: Record<string, ResolvedInterface> = {};
  for (const [name, network] of Object.entries(spec.interfaces)) {
    const address = c.addresses[network];
    if (!address)
      throw new InputError(
        `firewall.interfaces.${name}: the inventory has no address of ${c.node} on ${network} (hosts.${c.node}.addresses.${network})`,
      );
    interfaces[name] = { name, network, address, subnet: c.subnet(network) };
  }
  const self = NETWORKS.map((n) => c.addresses[n]).filter((x): x is string => !!x);
  const nodeAddr = (n: string, at: string): string => {
    const a = c.nodeAddress(n);
    if (!a) throw new InputError(`${at}: node ${n} has no data-network address in the inventory`);
    return a;
  };
  const leaf = (e: string, type: AliasType) =>
    type === 'port' ? typeof parsePort(e) !== 'string' : isAddress(e) || c.nodeAddress(e) !== undefined;
  const aliases: ResolvedAlias[] = spec.aliases.map((a, i) => {
    const r = expandAlias(spec.aliases, a.name, leaf);
    if ('error' in r)
      throw new InputError(`firewall.aliases.${i} (${JSON.stringify(a.name)}).content: ${r.error}`);
    return a.type === 'port'
      ? { ...a, addresses: [], ports: mergeRanges(r.entries.map((e) => parsePort(e) as PortRange)) }
      : {
          ...a,
          addresses: unique(r.entries.map((e) => (isAddress(e) ? e : nodeAddr(e, `firewall.aliases.${i}`)))),
          ports: [],
        };
  });
  const alias = (n: string) => aliases.find((a) => a.name === n);

  const net = (v: string, not: boolean, at: string): ResolvedNet => {
    const of = (addresses: string[]): ResolvedNet => ({ any: false, not, addresses });
    if (v === 'any') return { any: true, not, addresses: [] };
    if (v === '(self)') return of(self);
    if (isAddress(v)) return of([v]);
    if (interfaces[v]) return of([interfaces[v].subnet]);
    if (/ip$/.test(v) && interfaces[v.slice(0, -2)]) return of([interfaces[v.slice(0, -2)]!.address]);
    const a = alias(v);
    if (a && a.type !== 'port') return of(a.addresses);
    if (c.nodeAddress(v) !== undefined) return of([nodeAddr(v, at)]);
    if ((NETWORKS as readonly string[]).includes(v)) return of([c.subnet(v as NetworkName)]);
    throw new InputError(`${at}: cannot resolve "${v}"`);
  };
  const ports = (v: string, at: string): ResolvedPorts => {
    if (v === '') return { any: true, ranges: [] };
    const a = alias(v);
    if (a) return { any: false, ranges: a.ports };
    const p = parsePort(v);
    if (typeof p === 'string') throw new InputError(`${at}: ${p}`);
    return { any: false, ranges: [p] };
  };
  const ifsOf = (xs: string[], at: string) =>
    xs.map((x) => {
      const i = interfaces[x];
      if (!i) throw new InputError(`${at}: "${x}" is not an interface of the firewall`);
      return i;
    });

  const resolveRule = (r: FilterRule): ResolvedFilterRule => ({
    ...r,
    resolved: {
      interfaces: ifsOf(r.interface, `${r.origin}.interface`),
      source: net(r.source_net, r.source_not, `${r.origin}.source`),
      destination: net(r.destination_net, r.destination_not, `${r.origin}.destination`),
      sourcePorts: ports(r.source_port, `${r.origin}.sourcePort`),
      destinationPorts: ports(r.destination_port, `${r.origin}.destinationPort`),
    },
  });
  const filter = spec.filter.map(resolveRule);
  const nat = spec.nat.map((n, i): ResolvedDNatRule => {
    const ta = alias(n.target);
    const target = ta
      ? (ta.addresses[0] ?? '')
      : isAddress(n.target)
        ? n.target
        : nodeAddr(n.target, `${n.origin}.target`);
    if (ta && ta.addresses.length !== 1)
      throw new InputError(
        `${n.origin}.target: host alias "${n.target}" must hold exactly one address to forward to`,
      );
    const lp = n['local-port'] ? (parsePort(n['local-port']) as PortRange).from : undefined;
    const rule = filter.find((r) => r.associatedNat === i);
    return {
      ...n,
      resolved: {
        interfaces: ifsOf(n.interface, `${n.origin}.interface`),
        source: net(n.source.network, n.source.not, `${n.origin}.source`),
        sourcePorts: ports(n.source.port, `${n.origin}.sourcePort`),
        destination: net(n.destination.network, n.destination.not, `${n.origin}.destination`),
        destinationPorts: ports(n.destination.port, `${n.origin}.destinationPort`),
        target,
        ...(lp !== undefined ? { localPort: lp } : {}),
      },
      ...(rule ? { rule } : {}),
    };
  });
  return {
    kind: spec.kind,
    antiLockout: spec.antiLockout,
    node: c.node,
    interfaces,
    self,
    aliases,
    rules: filter.filter((r) => r.associatedNat === undefined),
    nat,
    filter,
  };
}

/** The resolve context of a topology's firewall from an inventory (addresses, subnets). Pure. */
export function firewallResolveContext(
  spec: FirewallSpec,
  node: string,
  nodeNetworks: (n: string) => NetworkName[] | undefined,
  inv: Inventory,
  topologySubnet: (net: NetworkName) => string,
  floating: Record<string, string> = {},
): ResolveContext {
  const fwNets = nodeNetworks(node) ?? [];
  return {
    spec,
    node,
    subnet: (n) => inv.networks?.[n] ?? topologySubnet(n),
    addresses: inv.hosts[node]?.addresses ?? {},
    nodeAddress: (n) => {
      if (floating[n] && !nodeNetworks(n)) return floating[n];
      const nets = nodeNetworks(n);
      if (!nets) return undefined;
      const a = inv.hosts[n]?.addresses ?? {};
      // the node's address on a data network the firewall shares with it, else any data address
      const near = fwNets.filter((x) => x !== 'mgmt' && a[x]).map((x) => a[x]!);
      const any = NETWORKS.filter((x) => x !== 'mgmt' && a[x]).map((x) => a[x]!);
      return near[0] ?? any[0] ?? (n === node ? a.mgmt : undefined);
    },
  };
}

const unique = (xs: string[]): string[] => [...new Set(xs)];

/** Sort and merge overlapping or adjacent ranges (nftables refuses overlapping set elements). Pure. */
export function mergeRanges(rs: PortRange[]): PortRange[] {
  const s = [...rs].sort((a, b) => a.from - b.from || a.to - b.to);
  const out: PortRange[] = [];
  for (const r of s) {
    const last = out[out.length - 1];
    if (last && r.from <= last.to + 1) last.to = Math.max(last.to, r.to);
    else out.push({ ...r });
  }
  return out;
}

/** A port value's ranges from the spec alone (port aliases need no inventory); [] = any. Pure. */
export function specPorts(spec: FirewallSpec, v: string): PortRange[] {
  if (v === '') return [];
  if (spec.aliases.some((a) => a.name === v)) {
    const r = expandAlias(spec.aliases, v, (e) => typeof parsePort(e) !== 'string');
    return 'error' in r ? [] : mergeRanges(r.entries.map((e) => parsePort(e) as PortRange));
  }
  const p = parsePort(v);
  return typeof p === 'string' ? [] : [p];
}

/** The parts of a Topology the resolution reads (structural: this module does not import model.ts). */
export interface FirewallTopology {
  firewall: FirewallSpec;
  nodes: Record<string, { kind: string; networks: NetworkName[] }>;
  networks: Record<NetworkName, { subnet: string }>;
}

/**
 * A topology's firewall resolved against an inventory: the one entry point for renderers and
 * drivers (nftables here, OPNsense's API). `node` defaults to the topology's firewall node. Pure.
 */
export function resolveTopologyFirewall(
  t: FirewallTopology,
  inv: Inventory,
  node?: string,
  /** Names that stand for an address no node holds alone (an HAProxy pair's floating address). */
  floating: Record<string, string> = {},
): ResolvedFirewall {
  const fw = node ?? Object.entries(t.nodes).find(([, n]) => n.kind === 'firewall')?.[0];
  if (!fw) throw new InputError('nodes: the topology has no firewall node');
  return resolveFirewall(
    firewallResolveContext(
      t.firewall,
      fw,
      (n) => t.nodes[n]?.networks,
      inv,
      (n) => t.networks[n].subnet,
      floating,
    ),
  );
}
