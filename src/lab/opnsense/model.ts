// The emulated models: the fields of Filter.xml `rules.rule`, Alias.xml `aliases.alias` and
// DNat.xml `rule` that the emulation keeps (a subset of each), their defaults, and their
// validation with OPNsense's own messages where its model XML spells them out. Pure.
import type { Fields, OpnConfig } from './config.ts';

export type ModelName = 'filter' | 'alias' | 'dnat';

export const DEFAULTS: Record<ModelName, Fields> = {
  filter: {
    enabled: '1',
    sequence: '1',
    action: 'pass',
    quick: '1',
    interface: '',
    direction: 'in',
    ipprotocol: 'inet',
    protocol: 'any',
    source_net: 'any',
    source_not: '0',
    source_port: '',
    destination_net: 'any',
    destination_not: '0',
    destination_port: '',
    log: '0',
    description: '',
  },
  alias: { enabled: '1', name: '', type: '', content: '', description: '' },
  dnat: {
    sequence: '',
    disabled: '0',
    interface: '',
    ipprotocol: '',
    protocol: '',
    'source.network': 'any',
    'source.port': '',
    'source.not': '0',
    'destination.network': 'any',
    'destination.port': '',
    'destination.not': '0',
    target: '',
    'local-port': '',
    log: '0',
    pass: '',
    descr: '',
  },
};

/** A posted object (`{"rule": {...}}`'s inside) as flat fields; unknown fields are ignored, as setNodes does. */
export function flattenPost(model: ModelName, body: unknown): Fields {
  const out: Fields = {};
  if (!body || typeof body !== 'object') return out;
  const known = DEFAULTS[model];
  for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      for (const [k2, v2] of Object.entries(v as Record<string, unknown>))
        if (`${k}.${k2}` in known) out[`${k}.${k2}`] = scalar(v2);
    } else if (k in known) out[k] = scalar(v);
  }
  return out;
}

const scalar = (v: unknown): string =>
  Array.isArray(v)
    ? v.map(String).join(k(v))
    : typeof v === 'boolean'
      ? v
        ? '1'
        : '0'
      : v == null
        ? ''
        : String(v);
const k = (v: unknown[]): string => (v.some((x) => String(x).includes(',')) ? '\n' : ',');

export const WELL_KNOWN: Record<string, number> = {
  ftp: 21,
  ssh: 22,
  telnet: 23,
  smtp: 25,
  domain: 53,
  http: 80,
  pop3: 110,
  ntp: 123,
  imap: 143,
  snmp: 161,
  https: 443,
  submission: 587,
};

const ipv4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
export const isIpv4 = (s: string) => ipv4.test(s);
export const isCidr = (s: string) => {
  const [a, p, ...rest] = s.split('/');
  return !rest.length && isIpv4(a ?? '') && (p === undefined || (/^\d+$/.test(p) && Number(p) <= 32));
};
const isPort = (s: string) => /^\d+$/.test(s) && Number(s) >= 1 && Number(s) <= 65535;
export const isPortOrRange = (s: string) => {
  const [a, b, ...rest] = s.split(/[-:]/);
  return !rest.length && isPort(a ?? '') && (b === undefined || (isPort(b) && Number(b) >= Number(a)));
};

const aliasOfType = (c: OpnConfig, name: string, types: string[]) =>
  c.aliases.some((a) => a.f.name === name && types.includes(a.f.type ?? ''));

/** Network field values: any, (self), an interface, `<if>ip`, an alias, an address/CIDR (comma lists). */
export function validNet(c: OpnConfig, value: string, keywords: string[] = []): boolean {
  if (!value) return false;
  return value.split(',').every((v) => {
    const x = v.trim();
    if (x === 'any' || x === '(self)' || keywords.includes(x)) return true;
    if (c.interfaces.some((i) => i.name === x || `${i.name}ip` === x)) return true;
    if (aliasOfType(c, x, ['host', 'network'])) return true;
    return isCidr(x);
  });
}

export function validPort(c: OpnConfig, value: string): boolean {
  if (value === '') return true;
  if (isPortOrRange(value) || value in WELL_KNOWN) return true;
  return aliasOfType(c, value, ['port']);
}

const opt = (v: string, xs: string[]) => xs.includes(v);
const bool = (v: string) => v === '0' || v === '1';

/** OPNsense-style validations: field → message (the caller prefixes `rule.`/`alias.`). */
export function validate(model: ModelName, f: Fields, c: OpnConfig, uuid: string): Record<string, string> {
  const e: Record<string, string> = {};
  const ifaces = (v: string) => v.split(',').every((x) => c.interfaces.some((i) => i.name === x));
  if (model === 'filter') {
    for (const b of ['enabled', 'quick', 'source_not', 'destination_not', 'log'])
      if (!bool(f[b] ?? '')) e[b] = 'Invalid boolean value.';
    if (!opt(f.action ?? '', ['pass', 'block', 'reject'])) e.action = 'Option not in list.';
    if (!opt(f.direction ?? '', ['in', 'out', 'any'])) e.direction = 'Option not in list.';
    if (!opt(f.ipprotocol ?? '', ['inet', 'inet6', 'inet46'])) e.ipprotocol = 'Option not in list.';
    if (!opt((f.protocol ?? '').toUpperCase(), ['ANY', 'TCP', 'UDP', 'TCP/UDP', 'ICMP']))
      e.protocol = 'Option not in list.';
    if (f.interface && !ifaces(f.interface)) e.interface = 'Option not in list.';
    const seq = Number(f.sequence);
    if (!/^\d+$/.test(f.sequence ?? '') || seq < 1 || seq > 999999)
      e.sequence = 'Sequence shall be between 1 and 999999.';
    for (const n of ['source_net', 'destination_net'])
      if (!validNet(c, f[n] ?? '')) e[n] = 'Please specify a valid network segment or IP address.';
    for (const p of ['source_port', 'destination_port']) {
      if (!validPort(c, f[p] ?? '')) e[p] = 'Please specify a valid portnumber, name, alias or range.';
      else if (f[p] && !['TCP', 'UDP', 'TCP/UDP'].includes((f.protocol ?? '').toUpperCase()))
        e[p] = 'Ports are only valid for tcp or udp type rules.';
    }
    if ((f.description ?? '').length > 255)
      e.description = 'Description should be a string between 1 and 255 characters';
  } else if (model === 'alias') {
    const name = f.name ?? '';
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,31}$/.test(name) || name === 'any')
      e.name =
        'The name must be less than 32 characters long and may only consist of the following characters: a-z, A-Z, 0-9, _';
    else if (c.aliases.some((a) => a.uuid !== uuid && a.f.name === name))
      e.name = 'An alias with this name already exists.';
    if (!opt(f.type ?? '', ['host', 'network', 'port'])) e.type = 'Option not in list.';
    if (!bool(f.enabled ?? '')) e.enabled = 'Invalid boolean value.';
    const entries = (f.content ?? '')
      .split(/\n/)
      .map((x) => x.trim())
      .filter(Boolean);
    const bad = entries.filter((x) => {
      if (x === name) return true; // an alias cannot contain itself
      if (f.type === 'port') return !(isPortOrRange(x) || aliasOfType(c, x, ['port']));
      if (f.type === 'network') return !(isCidr(x) || aliasOfType(c, x, ['host', 'network']));
      return !(isIpv4(x) || aliasOfType(c, x, ['host', 'network']));
    });
    if (bad.length)
      e.content = `Entry "${bad[0]}" is not a valid ${f.type === 'port' ? 'port' : 'hostname or IP address'}.`;
    if ((f.description ?? '').length > 255)
      e.description = 'Description should be a string between 1 and 255 characters';
  } else {
    for (const b of ['disabled', 'log', 'source.not', 'destination.not'])
      if (!bool(f[b] ?? '')) e[b] = 'Invalid boolean value.';
    if (!f.interface || !ifaces(f.interface)) e.interface = 'Option not in list.';
    if (!opt(f.protocol ?? '', ['', 'tcp', 'udp', 'tcp/udp'])) e.protocol = 'Option not in list.';
    if (!opt(f.ipprotocol ?? '', ['', 'inet', 'inet6', 'inet46'])) e.ipprotocol = 'Option not in list.';
    if (!opt(f.pass ?? '', ['', 'pass', 'rule'])) e.pass = 'Option not in list.';
    for (const n of ['source.network', 'destination.network'])
      if (!validNet(c, f[n] ?? '')) e[n] = 'Please specify a valid network segment or IP address.';
    for (const p of ['source.port', 'destination.port'])
      if (!validPort(c, f[p] ?? ''))
        e[p] = 'Please specify a valid port number, well-known name, alias or range.';
    if (!(isIpv4(f.target ?? '') || aliasOfType(c, f.target ?? '', ['host'])))
      e.target = 'Please specify a valid address or host alias.';
    if (f['local-port'] && !(isPort(f['local-port']) || aliasOfType(c, f['local-port'], ['port'])))
      e['local-port'] = 'Please specify a valid port number or alias.';
    const seq = Number(f.sequence);
    if (!/^\d+$/.test(f.sequence ?? '') || seq < 1 || seq > 999999)
      e.sequence = 'Sequence shall be between 1 and 999999.';
  }
  return e;
}

/** Names of aliases that rules or other aliases use (Alias::whereUsed, simplified). */
export function aliasUses(c: OpnConfig, name: string): string[] {
  const uses: string[] = [];
  const has = (v: string | undefined) =>
    (v ?? '')
      .split(/[,\n]/)
      .map((x) => x.trim())
      .includes(name);
  for (const r of c.rules)
    if (['source_net', 'destination_net', 'source_port', 'destination_port'].some((x) => has(r.f[x])))
      uses.push(`[${r.uuid}] ${r.f.description ?? ''}`);
  for (const r of c.nat)
    if (
      [
        'source.network',
        'destination.network',
        'source.port',
        'destination.port',
        'target',
        'local-port',
      ].some((x) => has(r.f[x]))
    )
      uses.push(`[${r.uuid}] ${r.f.descr ?? ''}`);
  for (const a of c.aliases) if (a.f.name !== name && has(a.f.content)) uses.push(`[${a.uuid}] ${a.f.name}`);
  return uses;
}
