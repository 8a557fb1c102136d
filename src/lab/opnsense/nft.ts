// What the emulation's `apply`/`reconfigure` loads: its config.xml sections as nftables, in tables
// of its own (never `flush ruleset`: Docker's embedded DNS lives in the node's `table ip nat`).
// pf semantics kept: rules bind to interfaces (device names, found by address), traffic to the
// box itself is filtered by the same interface rules, a matching `quick` rule decides at once and
// otherwise the LAST matching rule wins (so: quick rules in order, then non-quick ones reversed),
// default deny, stateful. Pure.
import type { Iface, Item, OpnConfig } from './config.ts';
import { WELL_KNOWN, isCidr } from './model.ts';

export const NFT_TABLE = 'wharf_opn';
export const NFT_NAT_TABLE = 'wharf_opn_nat';

export interface NftOptions {
  /** Interface name → device on the node (`eth1`), from the node's addresses. */
  devices: Record<string, string>;
  /** Interfaces never forwarded to or from (the lab's management network). */
  noForward: string[];
  /** Anti-lockout: interface → tcp ports to the box's own address on it, always passed. */
  antiLockout: Record<string, number[]>;
}

const q = (s: string) => `"${s.replace(/["\\]/g, "'").slice(0, 100)}"`;
const set = (xs: string[]) => (xs.length === 1 ? xs[0]! : `{ ${xs.join(', ')} }`);
const aliasSet = (name: string) => `@alias_${name}`;

function networkOf(i: Iface): string {
  const parts = i.ipaddr.split('.').map(Number);
  const ip = ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
  const mask = i.subnet === 0 ? 0 : (0xffffffff << (32 - i.subnet)) >>> 0;
  const n = (ip & mask) >>> 0;
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}/${i.subnet}`;
}

/** An alias's entries with nested aliases resolved (cycles cut). */
export function resolveAlias(c: OpnConfig, name: string, seen = new Set<string>()): string[] {
  const a = c.aliases.find((x) => x.f.name === name && x.f.enabled !== '0');
  if (!a || seen.has(name)) return [];
  seen.add(name);
  return (a.f.content ?? '')
    .split('\n')
    .map((x) => x.trim())
    .filter(Boolean)
    .flatMap((x) => (c.aliases.some((y) => y.f.name === x) ? resolveAlias(c, x, seen) : [x]));
}

const portText = (p: string) => (p in WELL_KNOWN ? String(WELL_KNOWN[p]) : p.replace(':', '-'));

function netMatch(c: OpnConfig, value: string, not: boolean, dir: 'saddr' | 'daddr'): string {
  if (!value || value === 'any') return '';
  const op = not ? '!= ' : '';
  const vals = value.split(',').map((x) => x.trim());
  const literal: string[] = [];
  for (const v of vals) {
    const iface = c.interfaces.find((i) => i.name === v);
    const ifip = c.interfaces.find((i) => `${i.name}ip` === v);
    if (v === '(self)') literal.push(...c.interfaces.map((i) => i.ipaddr));
    else if (iface) literal.push(networkOf(iface));
    else if (ifip) literal.push(ifip.ipaddr);
    else if (c.aliases.some((a) => a.f.name === v)) {
      if (vals.length === 1) return `ip ${dir} ${op}${aliasSet(v)}`;
      literal.push(...resolveAlias(c, v));
    } else literal.push(v);
  }
  return literal.length
    ? `ip ${dir} ${op}${set([...new Set(literal)])}`
    : `ip ${dir} ${not ? '!= ' : ''}0.0.0.0/32`;
}

function portMatch(c: OpnConfig, proto: string, value: string, dir: 'sport' | 'dport'): string {
  if (!value) return '';
  const v = c.aliases.some((a) => a.f.name === value) ? aliasSet(value) : portText(value);
  const p = proto.toLowerCase();
  return p === 'tcp/udp' ? `th ${dir} ${v}` : `${p} ${dir} ${v}`;
}

function protoMatch(proto: string): string {
  const p = proto.toLowerCase();
  if (!p || p === 'any') return '';
  if (p === 'tcp/udp') return 'meta l4proto { tcp, udp }';
  return `meta l4proto ${p}`;
}

function verdict(r: Item): string[] {
  const a = r.f.action ?? 'pass';
  if (a === 'pass') return ['accept'];
  if (a === 'block') return ['drop'];
  const p = (r.f.protocol ?? '').toLowerCase();
  if (p === 'tcp') return ['reject with tcp reset'];
  return ['meta l4proto tcp reject with tcp reset', 'reject with icmpx type admin-prohibited'];
}

/** One filter rule as nft lines for one chain; [] when it cannot match there. */
function ruleLines(c: OpnConfig, o: NftOptions, r: Item, chain: 'input' | 'forward'): string[] {
  const f = r.f;
  const dir = f.direction ?? 'in';
  if (chain === 'input' && dir === 'out') return [];
  const ifs = (f.interface ?? '').split(',').filter(Boolean);
  const devs = ifs.map((i) => o.devices[i]).filter((d): d is string => !!d);
  if (ifs.length && !devs.length) return []; // interface not on this node: pf would not load it either
  const ifMatches = !ifs.length
    ? ['']
    : dir === 'any'
      ? [`iifname ${set(devs.map(q))}`, `oifname ${set(devs.map(q))}`]
      : [`${dir === 'in' ? 'iifname' : 'oifname'} ${set(devs.map(q))}`];
  const proto = f.protocol ?? 'any';
  const match = [
    protoMatch(proto),
    netMatch(c, f.source_net ?? 'any', f.source_not === '1', 'saddr'),
    portMatch(c, proto, f.source_port ?? '', 'sport'),
    netMatch(c, f.destination_net ?? 'any', f.destination_not === '1', 'daddr'),
    portMatch(c, proto, f.destination_port ?? '', 'dport'),
  ].filter(Boolean);
  const log = f.log === '1' ? [`log prefix ${q(`opn ${r.uuid.slice(0, 8)}: `)}`] : [];
  const comment = `comment ${q(f.description || r.uuid)}`;
  return ifMatches.flatMap((im) =>
    verdict(r).map((v) => `    ${[im, ...match, ...log, v, comment].filter(Boolean).join(' ')}`),
  );
}

/** pf order: quick rules in sequence order, then non-quick ones in reverse (the last match wins). */
export function evaluationOrder(rules: Item[]): Item[] {
  const on = rules
    .filter((r) => r.f.enabled !== '0')
    .map((r, i) => ({ r, i }))
    .sort((a, b) => Number(a.r.f.sequence ?? 0) - Number(b.r.f.sequence ?? 0) || a.i - b.i)
    .map((x) => x.r);
  return [...on.filter((r) => r.f.quick !== '0'), ...on.filter((r) => r.f.quick === '0').reverse()];
}

function natTarget(c: OpnConfig, r: Item): string {
  const t = r.f.target ?? '';
  return c.aliases.some((a) => a.f.name === t) ? (resolveAlias(c, t)[0] ?? t) : t;
}

/** Every enabled alias as an nft set (nested aliases resolved). */
function aliasSets(c: OpnConfig): string[] {
  const out: string[] = [];
  for (const a of c.aliases) {
    if (a.f.enabled === '0' || !a.f.name) continue;
    const entries = resolveAlias(c, a.f.name);
    const port = a.f.type === 'port';
    out.push(`  set alias_${a.f.name} {`, `    type ${port ? 'inet_service' : 'ipv4_addr'}; flags interval;`);
    const els = port ? entries.map(portText) : entries.filter(isCidr);
    if (els.length) out.push(`    elements = { ${[...new Set(els)].join(', ')} }`);
    out.push('  }');
  }
  return out;
}

export function renderEmulationNft(c: OpnConfig, o: NftOptions): string {
  const out: string[] = [
    '#!/usr/sbin/nft -f',
    '# OPNsense API emulation (wharf lab): config.xml filter, alias and nat sections as nftables.',
    `table inet ${NFT_TABLE} {}`,
    `delete table inet ${NFT_TABLE}`,
    `table ip ${NFT_NAT_TABLE} {}`,
    `delete table ip ${NFT_NAT_TABLE}`,
    '',
  ];
  const nat = c.nat
    .filter((r) => r.f.disabled !== '1')
    .sort((a, b) => Number(a.f.sequence) - Number(b.f.sequence));
  out.push(
    `table ip ${NFT_NAT_TABLE} {`,
    // sets belong to a table: the aliases a port forward names are defined here too
    ...aliasSets(c),
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
  );
  const natPass: string[] = [];
  for (const r of nat) {
    const devs = (r.f.interface ?? '')
      .split(',')
      .map((i) => o.devices[i])
      .filter((d): d is string => !!d);
    if (!devs.length) continue;
    const proto = r.f.protocol || 'tcp';
    const dst =
      (r.f['destination.network'] ?? 'any') === 'wanip' ? 'wanip' : (r.f['destination.network'] ?? 'any');
    const target = natTarget(c, r);
    const local = r.f['local-port'] ? portText(r.f['local-port']) : '';
    const m = [
      `iifname ${set(devs.map(q))}`,
      protoMatch(proto),
      netMatch(c, r.f['source.network'] ?? 'any', r.f['source.not'] === '1', 'saddr'),
      portMatch(c, proto, r.f['source.port'] ?? '', 'sport'),
      netMatch(c, dst, r.f['destination.not'] === '1', 'daddr'),
      portMatch(c, proto, r.f['destination.port'] ?? '', 'dport'),
    ].filter(Boolean);
    out.push(
      `    ${m.join(' ')} dnat to ${target}${local ? `:${local}` : ''} comment ${q(r.f.descr || r.uuid)}`,
    );
    if (r.f.pass === 'pass' || r.f.pass === 'rule')
      natPass.push(
        `    ct status dnat ${[protoMatch(proto), `ip daddr ${target}`, local ? portMatch(c, proto, local, 'dport') : ''].filter(Boolean).join(' ')} accept comment ${q(`pass: ${r.f.descr || r.uuid}`)}`,
      );
  }
  out.push('  }', '}', '', `table inet ${NFT_TABLE} {`);
  out.push(...aliasSets(c));
  const rules = evaluationOrder(c.rules);
  const lockout = Object.entries(o.antiLockout).flatMap(([name, ports]) => {
    const i = c.interfaces.find((x) => x.name === name);
    const d = o.devices[name];
    return i && d && ports.length
      ? [
          `    iifname ${q(d)} ip daddr ${i.ipaddr} tcp dport ${set(ports.map(String))} accept comment "anti-lockout"`,
        ]
      : [];
  });
  const noFwd = o.noForward.map((n) => o.devices[n]).filter((d): d is string => !!d);
  out.push(
    '  chain input {',
    '    type filter hook input priority filter; policy drop;',
    '    iif "lo" accept',
    '    ct state established,related accept',
    '    ct state invalid drop',
    ...lockout,
    ...rules.flatMap((r) => ruleLines(c, o, r, 'input')),
    '  }',
    '  chain forward {',
    '    type filter hook forward priority filter; policy drop;',
    ...(noFwd.length
      ? [
          `    iifname ${set(noFwd.map(q))} drop comment "never forwarded"`,
          `    oifname ${set(noFwd.map(q))} drop comment "never forwarded"`,
        ]
      : []),
    '    ct state established,related accept',
    '    ct state invalid drop',
    ...natPass,
    ...rules.flatMap((r) => ruleLines(c, o, r, 'forward')),
    '  }',
    '}',
    '',
  );
  return out.join('\n');
}

/** Teardown: only the emulation's tables. */
export const NFT_TEARDOWN = `delete table inet ${NFT_TABLE}\ndelete table ip ${NFT_NAT_TABLE}\n`;
