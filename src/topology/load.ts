// YAML → typed Topology / Inventory. Errors name the file, the field path and the expectation:
//   configs/stack.yaml: haproxy.frontends.read.port: expected an integer 1..65535, got 70000
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { InputError } from '../core/errors.ts';
import { TopologySchema, type ParsedTopology } from './schema.ts';
import { resolveTopology, durationMs, firewallContext, vipAddress, type Topology } from './model.ts';
import { firewallProblems } from './firewall.ts';
import { InventorySchema, checkInventory, type Inventory } from './inventory.ts';
import { cronToOnCalendar } from './cron.ts';
import { hostAddress, inSubnet, isNetworkAddress, subnetsOverlap } from './net.ts';

export const DEFAULT_TOPOLOGY = 'configs/stack.yaml';

const displayPath = (file: string): string => {
  const r = relative(process.cwd(), file);
  return r && !r.startsWith('..') ? r : file;
};

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return JSON.stringify(v);
  return String(v);
}

export function formatIssue(issue: z.core.$ZodIssue): string {
  const path = issue.path.map(String).join('.');
  const at = (p: string) => (p ? `${p}: ` : '');
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((k) => `${at(path ? `${path}.${k}` : k)}unknown field`).join('\n');
    case 'invalid_type': {
      if (issue.message && !issue.message.startsWith('Invalid input')) return `${at(path)}${issue.message}`;
      const got = issue.input === undefined ? 'nothing (field is required)' : typeName(issue.input);
      const expected =
        issue.expected === 'object' || issue.expected === 'record'
          ? 'a mapping'
          : issue.expected === 'array'
            ? 'a list'
            : `a ${issue.expected}`;
      return `${at(path)}expected ${expected}, got ${got}`;
    }
    case 'invalid_union':
      return `${at(path)}expected a node name or a {node, backup, weight} mapping, got ${typeName(issue.input)}`;
    case 'invalid_value':
      if (issue.message && !issue.message.startsWith('Invalid')) return `${at(path)}${issue.message}`;
      return `${at(path)}expected one of ${issue.values.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join('|')}, got ${typeName(issue.input)}`;
    case 'invalid_format':
      if (issue.message && !issue.message.startsWith('Invalid')) return `${at(path)}${issue.message}`;
      return `${at(path)}expected a valid ${issue.format}, got ${typeName(issue.input)}`;
    case 'too_small':
      if (issue.message && !issue.message.startsWith('Too small')) return `${at(path)}${issue.message}`;
      return `${at(path)}expected at least ${String(issue.minimum)}${issue.origin === 'array' ? ' item(s)' : issue.origin === 'string' ? ' character(s)' : ''}, got ${typeName(issue.input)}`;
    default:
      return `${at(path)}${issue.message}`;
  }
}

/** Parse YAML text; syntax errors carry line and column. */
export function parseYaml(text: string, file: string): unknown {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter });
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => {
      // linePos is only filled in with prettyErrors (which also rewrites the message): compute it.
      const pos = e.linePos?.[0] ?? lineCounter.linePos(e.pos[0]);
      const where = pos ? `${file}:${pos.line}:${pos.col}` : file;
      return `${where}: YAML syntax error: ${e.message.split('\n')[0]}`;
    });
    throw new InputError(problems.join('\n'), problems);
  }
  // An empty or comment-only file is refused, never read as "all defaults": a truncated topology
  // would otherwise make `configure` rewrite every host with a default stack.
  if (doc.contents === null) {
    throw new InputError(
      `${file}: the file is empty (nothing but comments or whitespace): expected a YAML mapping`,
    );
  }
  try {
    // Aliases expanded past this are an attack (a "billion laughs" document), not a topology.
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    const why = /alias/i.test((e as Error).message)
      ? `too many alias expansions (more than ${MAX_ALIAS_COUNT}): refusing to expand this document`
      : (e as Error).message.split('\n')[0]!;
    throw new InputError(`${file}: YAML: ${why}`);
  }
}

/** Alias expansions a topology or inventory may use (yaml's own default is 100). */
export const MAX_ALIAS_COUNT = 100;

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why: Record<string, string> = {
      ENOENT: 'no such file',
      EISDIR: 'is a directory, expected a YAML file',
      EACCES: 'permission denied',
    };
    throw new InputError(
      `${displayPath(file)}: cannot read the file: ${why[code ?? ''] ?? code ?? String(e)}`,
    );
  }
}

/** Cross-field checks on a parsed topology; each problem is `field.path: text`. */
export function crossCheck(p: ParsedTopology, t: Topology): string[] {
  const problems: string[] = [];
  const nodes = t.nodes;

  // networks: subnets must not overlap and must be network addresses
  const nets = Object.entries(t.networks);
  for (const [n, net] of nets) {
    if (!isNetworkAddress(net.subnet)) problems.push(`networks.${n}.subnet: ${net.subnet} has host bits set`);
  }
  for (let i = 0; i < nets.length; i++) {
    for (let j = i + 1; j < nets.length; j++) {
      const [an, a] = nets[i]!;
      const [bn, b] = nets[j]!;
      if (subnetsOverlap(a.subnet, b.subnet)) {
        problems.push(`networks.${bn}.subnet: ${b.subnet} overlaps networks.${an}.subnet ${a.subnet}`);
      }
    }
  }

  // nodes: roles, kinds, unique host ids
  const sftp = Object.values(nodes).filter((n) => n.kind === 'sftp');
  for (const n of Object.values(nodes)) {
    if (n.kind === 'sftp' && !n.role)
      problems.push(`nodes.${n.name}.role: expected one of main|sub|backup for an sftp node`);
    if (n.kind !== 'sftp' && n.role) problems.push(`nodes.${n.name}.role: only sftp nodes have a role`);
    if (!n.networks.includes('mgmt') && n.kind !== 'wan-client') {
      problems.push(`nodes.${n.name}.networks: expected mgmt among the networks (management ssh)`);
    }
  }
  const mains = sftp.filter((n) => n.role === 'main');
  if (mains.length !== 1) {
    problems.push(
      `nodes: expected exactly one sftp node with role main, got ${mains.length}${mains.length ? ` (${mains.map((n) => n.name).join(', ')})` : ''}`,
    );
  }
  for (const kind of ['router', 'firewall'] as const) {
    const count = Object.values(nodes).filter((n) => n.kind === kind).length;
    if (count !== 1) problems.push(`nodes: expected exactly one ${kind} node, got ${count}`);
  }
  const haps = Object.values(nodes).filter((n) => n.kind === 'haproxy');
  const pair = t.haproxy.pair;
  const hapList = haps.length ? ` (${haps.map((n) => n.name).join(', ')})` : '';
  if (pair.enabled && haps.length !== 2)
    problems.push(
      `haproxy.pair.enabled: the pair needs exactly two haproxy nodes, got ${haps.length}${hapList}; list two (e.g. haproxy-1, haproxy-2) or set haproxy.pair.enabled: false`,
    );
  if (!pair.enabled && haps.length !== 1)
    problems.push(
      `nodes: expected exactly one haproxy node (haproxy.pair.enabled is false), got ${haps.length}${hapList}`,
    );
  if (pair.enabled) {
    if (nodes[pair.name])
      problems.push(
        `haproxy.pair.name: "${pair.name}" is also the name of a node; the floating address needs a name of its own`,
      );
    for (const n of haps)
      if (!n.networks.includes('dmz'))
        problems.push(
          `nodes.${n.name}.networks: expected dmz among the networks (the floating address lives there)`,
        );
    const dmz = t.networks.dmz.subnet;
    let vip: string | undefined;
    try {
      vip = vipAddress(t);
    } catch {
      problems.push(
        `haproxy.pair.vipHostId: ${pair.vipHostId} does not fit in the dmz subnet ${dmz}; set haproxy.pair.vip or a smaller vipHostId`,
      );
    }
    if (vip && !inSubnet(vip, dmz)) problems.push(`haproxy.pair.vip: ${vip} is not in the dmz subnet ${dmz}`);
    if (vip && pair.vip === undefined) {
      const owner = Object.values(nodes).find(
        (n) => n.networks.includes('dmz') && n.hostId === pair.vipHostId,
      );
      if (owner)
        problems.push(
          `haproxy.pair.vipHostId: ${pair.vipHostId} is already node ${owner.name}'s host id on the dmz`,
        );
    }
    if (vip && pair.vip !== undefined) {
      const owner = Object.values(nodes).find(
        (n) =>
          n.networks.includes('dmz') &&
          (() => {
            try {
              return hostAddress(dmz, n.hostId) === vip;
            } catch {
              return false;
            }
          })(),
      );
      if (owner) problems.push(`haproxy.pair.vip: ${vip} is already node ${owner.name}'s address on the dmz`);
      if (vip === hostAddress(dmz, 1)) problems.push(`haproxy.pair.vip: ${vip} is the dmz gateway address`);
    }
    if (Object.values(t.haproxy.frontends).some((f) => f.port === pair.peersPort))
      problems.push(`haproxy.pair.peersPort: port ${pair.peersPort} is already a frontend's port`);
  }
  const byId = new Map<number, string>();
  for (const n of Object.values(nodes)) {
    const other = byId.get(n.hostId);
    if (other) problems.push(`nodes.${n.name}.hostId: ${n.hostId} is already used by node ${other}`);
    else byId.set(n.hostId, n.name);
  }

  const needNode = (path: string, name: string, kind?: string) => {
    const n = nodes[name];
    if (!n) problems.push(`${path}: node "${name}" does not exist (nodes: ${Object.keys(nodes).join(', ')})`);
    else if (kind && n.kind !== kind)
      problems.push(
        `${path}: node "${name}" is a ${n.kind} node, expected ${/^[aeios]/.test(kind) ? 'an' : 'a'} ${kind} node`,
      );
  };

  // HAProxy: frontends → backends → sftp nodes, ports unique
  const ports = new Map<number, string>();
  for (const [name, f] of Object.entries(t.haproxy.frontends)) {
    const path = `haproxy.frontends.${name}`;
    if (!t.haproxy.backends[f.backend]) {
      problems.push(
        `${path}.backend: backend "${f.backend}" does not exist (backends: ${Object.keys(t.haproxy.backends).join(', ')})`,
      );
    }
    const clash = ports.get(f.port);
    if (clash) problems.push(`${path}.port: port ${f.port} is already used by ${clash} on the haproxy node`);
    else ports.set(f.port, `haproxy.frontends.${name}`);
  }
  if (t.haproxy.stats.port !== undefined) {
    const clash = ports.get(t.haproxy.stats.port);
    if (clash)
      problems.push(
        `haproxy.stats.port: port ${t.haproxy.stats.port} is already used by ${clash} on the haproxy node`,
      );
  }
  for (const [name, b] of Object.entries(t.haproxy.backends)) {
    const seen = new Set<string>();
    b.servers.forEach((s, i) => {
      needNode(`haproxy.backends.${name}.servers.${i}`, s.node, 'sftp');
      if (seen.has(s.node))
        problems.push(`haproxy.backends.${name}.servers.${i}: node "${s.node}" is listed twice`);
      seen.add(s.node);
    });
    if (b.servers.every((s) => s.backup))
      problems.push(
        `haproxy.backends.${name}.servers: every server is a backup; at least one must be active`,
      );
    // a reader must hold the live tree: main, or the replica lsyncd keeps current (backup's chroot
    // is empty, its copies are snapshots; any other node would serve an empty or stale tree)
    const { from, to } = t.replication.lsyncd;
    const replicated = from !== to && [from, to].every((n) => nodes[n]?.kind === 'sftp');
    if (b.readOnly && replicated)
      b.servers.forEach((s, i) => {
        if (nodes[s.node]?.kind === 'sftp' && s.node !== from && s.node !== to)
          problems.push(
            `haproxy.backends.${name}.servers.${i}: node "${s.node}" cannot serve reads: it holds no live copy of the uploads (a read-only backend may list only replication.lsyncd.from "${from}" and .to "${to}")`,
          );
      });
  }
  if (t.sftp.readOnlyPort === t.sftp.port)
    problems.push(
      `sftp.readOnlyPort: ${t.sftp.readOnlyPort} is already sshd's port (sftp.port); expected another port`,
    );
  const hb = durationMs(t.replication.readLag.heartbeat);
  const maxLag = durationMs(t.replication.readLag.max);
  const healthy = 2 * (hb + t.replication.lsyncd.delay * 1000);
  if (hb < 1000)
    problems.push(
      `replication.readLag.heartbeat: expected at least 1s (main writes its clock in whole seconds), got ${t.replication.readLag.heartbeat}`,
    );
  else if (maxLag < healthy)
    problems.push(
      `replication.readLag.max: expected at least 2 × (heartbeat ${t.replication.readLag.heartbeat} + lsyncd.delay ${t.replication.lsyncd.delay}s) = ${healthy / 1000}s, or a healthy replica flaps out of the read pool, got ${t.replication.readLag.max}`,
    );
  if (t.haproxy.timeouts.client !== t.haproxy.timeouts.server) {
    problems.push(
      `haproxy.timeouts.server: expected the same value as timeouts.client (${t.haproxy.timeouts.client}) in TCP mode, got ${t.haproxy.timeouts.server}`,
    );
  }
  const lim = t.haproxy.limits;
  lim.trusted.forEach((r, i) => {
    if (r.includes('/') && !isNetworkAddress(r))
      problems.push(
        `haproxy.limits.trusted.${i}: ${r} has host bits set (expected the range's first address)`,
      );
  });
  if (lim.trustedConcurrent < lim.concurrent)
    problems.push(
      `haproxy.limits.trustedConcurrent: expected at least limits.concurrent (${lim.concurrent}): trusted sources get the higher cap, got ${lim.trustedConcurrent}`,
    );
  const idle = t.sftp.clientAliveInterval * 1000;
  if (idle > 0 && idle >= durationMs(t.haproxy.timeouts.client)) {
    problems.push(
      `sftp.clientAliveInterval: expected less than haproxy.timeouts.client (${t.haproxy.timeouts.client}), got ${t.sftp.clientAliveInterval}s`,
    );
  }

  // monitoring: durations that Prometheus / Alertmanager take as they are (no bare numbers, whole
  // units they know), a scrape interval no longer than the evaluation's `for:` window
  const m = t.monitoring;
  for (const k of [
    'scrapeInterval',
    'evaluationInterval',
    'for',
    'spoolMaxAge',
    'groupWait',
    'groupInterval',
    'repeatInterval',
    'lagMax',
  ] as const) {
    const v = m[k];
    if (v !== undefined && !/^\d+(ms|s|m|h|d)$/.test(v))
      problems.push(`monitoring.${k}: expected a duration with a unit (ms, s, m, h, d) like 15s, got ${v}`);
    else if (v !== undefined && durationMs(v) <= 0)
      problems.push(`monitoring.${k}: expected more than 0, got ${v}`);
  }
  if (/^\d+(ms|s|m|h|d)$/.test(m.scrapeInterval) && durationMs(m.scrapeInterval) < 1000)
    problems.push(`monitoring.scrapeInterval: expected at least 1s, got ${m.scrapeInterval}`);
  if (Object.values(nodes).filter((n) => n.kind === 'monitor').length > 1)
    problems.push(
      `nodes: expected at most one monitor node, got ${Object.values(nodes)
        .filter((n) => n.kind === 'monitor')
        .map((n) => n.name)
        .join(', ')}`,
    );

  // router / firewall references and port clashes
  const fwd = new Map<string, number>();
  t.router.forwards.forEach((f, i) => {
    needNode(`router.forwards.${i}.to`, f.to);
    const key = `${f.protocol}/${f.port}`;
    if (fwd.has(key) && p.router.forwards)
      problems.push(
        `router.forwards.${i}.port: ${key} is already forwarded by router.forwards.${fwd.get(key)}`,
      );
    else fwd.set(key, i);
  });
  problems.push(...firewallProblems(t.firewall, firewallContext(t)));

  // sftp users
  const users = new Set<string>();
  t.sftp.users.forEach((u, i) => {
    if (users.has(u.name)) problems.push(`sftp.users.${i}.name: user "${u.name}" is defined twice`);
    users.add(u.name);
    if (['root', 'sync', 'daemon', 'bin', 'sys', 'nobody', t.replication.lsyncd.user].includes(u.name)) {
      problems.push(`sftp.users.${i}.name: "${u.name}" is reserved (a system or replication account)`);
    }
  });

  // replication
  needNode('replication.lsyncd.from', t.replication.lsyncd.from, 'sftp');
  needNode('replication.lsyncd.to', t.replication.lsyncd.to, 'sftp');
  if (t.replication.lsyncd.from === t.replication.lsyncd.to) {
    problems.push(
      `replication.lsyncd.to: expected a node other than replication.lsyncd.from (${t.replication.lsyncd.from})`,
    );
  }
  needNode('replication.backup.from', t.replication.backup.from, 'sftp');
  needNode('replication.backup.to', t.replication.backup.to, 'sftp');
  try {
    cronToOnCalendar(t.replication.backup.schedule); // parses, and must translate to a timer
  } catch (e) {
    const why = (e as Error).message.replace(/^expected 5 cron fields \(.*\), got (\d+)$/, '$1 fields');
    problems.push(
      `replication.backup.schedule: expected a cron schedule (minute hour day-of-month month day-of-week), got "${t.replication.backup.schedule}" (${why})`,
    );
  }

  // notifications: node or explicit target
  const wh = t.notifications.webhook;
  if (wh.enabled) {
    if (wh.node) needNode('notifications.webhook.node', wh.node);
    else if (!wh.url) problems.push('notifications.webhook: expected node or url');
  }
  const smtp = t.notifications.smtp;
  if (smtp.enabled) {
    if (smtp.node) needNode('notifications.smtp.node', smtp.node);
    else if (!smtp.host) problems.push('notifications.smtp: expected node or host');
  }
  return problems;
}

/** Validate a plain object (already parsed YAML) as a topology. */
export function topologyFromObject(data: unknown, file = 'topology'): Topology {
  const res = TopologySchema.safeParse(data, { reportInput: true });
  if (!res.success) {
    const problems = res.error.issues.flatMap((i) => formatIssue(i).split('\n')).map((m) => `${file}: ${m}`);
    throw new InputError(problems.join('\n'), problems);
  }
  const t = resolveTopology(res.data);
  const cross = crossCheck(res.data, t).map((m) => `${file}: ${m}`);
  if (cross.length) throw new InputError(cross.join('\n'), cross);
  return t;
}

export function loadTopology(file: string = DEFAULT_TOPOLOGY): Topology {
  const shown = displayPath(file);
  return topologyFromObject(parseYaml(readText(file), shown), shown);
}

export function inventoryFromObject(data: unknown, t: Topology, file = 'inventory'): Inventory {
  const res = InventorySchema.safeParse(data, { reportInput: true });
  if (!res.success) {
    const problems = res.error.issues.flatMap((i) => formatIssue(i).split('\n')).map((m) => `${file}: ${m}`);
    throw new InputError(problems.join('\n'), problems);
  }
  const problems = checkInventory(t, res.data).map((m) => `${file}: ${m}`);
  if (problems.length) throw new InputError(problems.join('\n'), problems);
  return res.data;
}

export function loadInventory(file: string, t: Topology): Inventory {
  const shown = displayPath(file);
  return inventoryFromObject(parseYaml(readText(file), shown), t, shown);
}
