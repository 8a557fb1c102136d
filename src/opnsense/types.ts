// OPNsense's API objects as wharf plans them: the field names and string values the API posts and
// its search grids return (verified against opnsense/core, see test/tools/opnsense.test.ts for the
// source paths). Pure data, no I/O.

/** Every object wharf creates carries this description prefix; objects without it are never touched. */
export const OWNER_PREFIX = 'wharf:';

/** A filter rule (/api/firewall/filter, model Filter.xml `rules.rule`), as posted in `{"rule": {...}}`. */
export interface OpnFilterRule {
  enabled: '0' | '1';
  action: 'pass' | 'block' | 'reject';
  quick: '0' | '1';
  /** Interface identifiers (wan, lan, opt1, …), comma-separated. */
  interface: string;
  direction: 'in' | 'out' | 'any';
  ipprotocol: 'inet' | 'inet6' | 'inet46';
  /** ProtocolField: any, TCP, UDP, TCP/UDP, ICMP (upper case in the filter model). */
  protocol: string;
  /** any, (self), an interface (`lan`: its network), `<if>ip` (its address), an alias, an address/CIDR. */
  source_net: string;
  source_not: '0' | '1';
  /** Empty (any), a port, a range `a-b`, a well-known name or a port alias. */
  source_port: string;
  destination_net: string;
  destination_not: '0' | '1';
  destination_port: string;
  log: '0' | '1';
  /** Order inside the interface's rules (1..999999). */
  sequence: string;
  /** wharf's rules start with OWNER_PREFIX. */
  description: string;
}

/** An alias (/api/firewall/alias, model Alias.xml `aliases.alias`), posted as `{"alias": {...}}`. */
export interface OpnAlias {
  enabled: '0' | '1';
  /** Unique on the box; letters, digits and _, max 32 (AliasNameField). */
  name: string;
  type: 'host' | 'network' | 'port';
  /** Entries separated by newlines (the API's separator for AliasContentField). */
  content: string;
  description: string;
}

/**
 * A port forward (/api/firewall/d_nat, 26.1+, model DNat.xml `rule`), posted as `{"rule": {...}}`
 * with nested source/destination; the search grid flattens them (`destination.port`).
 */
export interface OpnDNatRule {
  disabled: '0' | '1';
  interface: string;
  ipprotocol: 'inet' | 'inet6' | 'inet46';
  /** lower case in the DNat model (ChangeCase lower): tcp, udp, tcp/udp. */
  protocol: string;
  source: { network: string; port: string; not: '0' | '1' };
  destination: { network: string; port: string; not: '0' | '1' };
  /** The internal address (or a host alias). */
  target: string;
  'local-port': string;
  log: '0' | '1';
  sequence: string;
  /** '' = manual (a filter rule must pass the flow), 'pass' = pass the translated flow. */
  pass: '' | 'pass' | 'rule';
  descr: string;
}

/** What wharf wants on the box (only its own objects). */
export interface OpnDesired {
  aliases: OpnAlias[];
  rules: OpnFilterRule[];
  nat: OpnDNatRule[];
}

/** One row of a search grid: flat string values, `uuid` included. */
export type GridRow = Record<string, unknown> & { uuid: string };

/** A search grid's answer (UIModelGrid::fetchBindRequest). */
export interface SearchGrid {
  rows: GridRow[];
  rowCount: number;
  total: number;
  current: number;
}

/** What the box holds now, as its search grids return it, and which version it runs. */
export interface OpnObserved {
  version: string;
  aliases: GridRow[];
  rules: GridRow[];
  /** null when the box has no d_nat API (before 26.1). */
  nat: GridRow[] | null;
}

export type CommandStyle = 'camel' | 'snake';

/** One HTTP call of a plan: shown by --diff/--json, executed by apply. Never holds a secret. */
export interface HttpCall {
  method: 'GET' | 'POST';
  path: string;
  body?: Record<string, unknown>;
  why: string;
}
