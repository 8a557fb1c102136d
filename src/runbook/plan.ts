// plan(desired, observed) → Plan: pure. A Plan is data: per host, the ordered changes, each with
// the reason it is needed ("mode 0644 → 0600") and, for files, a unified diff.
import { hashFingerprint } from './observe.ts';
import { mask } from '../transport/mask.ts';
import { octal } from '../transport/shell.ts';
import { diffLines, diffStats, splitLines, unifiedDiff } from './diff.ts';
import type { Observation } from './observe.ts';
import { PHASES, resourceId, type FileResource, type Resource, type UnitResource } from './resources.ts';

export type ChangeKind = 'create' | 'update' | 'delete' | 'reload' | 'restart';

export interface Change {
  host: string;
  /** `file /etc/haproxy/haproxy.cfg`, `unit haproxy`… */
  id: string;
  resource: Resource;
  kind: ChangeKind;
  /** Why the change is needed, e.g. "content differs (+1 −1 lines), mode 0644 → 0600". */
  why: string;
  /** Unified diff for files (secret files: a placeholder, never the content). */
  diff?: string;
  /** What was observed: files keep their previous content here, for rollback. */
  before?: Observation;
  /** Files: only owner/mode differ (no content write, no notify). */
  metadataOnly?: boolean;
  /** Units: started because inactive (restart command). */
  start?: boolean;
}

export interface Plan {
  /** Host → ordered changes (hosts without changes have an empty list). */
  hosts: Record<string, Change[]>;
}

export type ObservedState = Record<string, Observation[]>;

export function planChangeCount(p: Plan): number {
  return Object.values(p.hosts).reduce((n, c) => n + c.length, 0);
}

const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`;

function ownership(
  want: { mode: number; owner: string; group: string },
  have: { mode: number; owner: string; group: string },
): string[] {
  const why: string[] = [];
  if (want.owner !== have.owner) why.push(`owner ${have.owner} → ${want.owner}`);
  if (want.group !== have.group) why.push(`group ${have.group} → ${want.group}`);
  if ((want.mode & 0o7777) !== (have.mode & 0o7777))
    why.push(`mode ${octal(have.mode)} → ${octal(want.mode)}`);
  return why;
}

function fileChange(
  host: string,
  r: FileResource,
  o: Observation,
  secrets: readonly string[],
): Change | null {
  if (o.kind !== 'file') throw new Error(`observation for ${resourceId(r)} is ${o.kind}`);
  const base = { host, id: resourceId(r), resource: r, before: o };
  if (r.state === 'absent') return o.stat ? { ...base, kind: 'delete', why: 'must be absent' } : null;
  if (!o.stat) {
    const lines = splitLines(r.content).length;
    return {
      ...base,
      kind: 'create',
      why: `absent (new, ${plural(lines, 'line')})`,
      diff: r.secret ? secretDiff(r.path) : mask(unifiedDiff('', r.content, labels(r.path)), secrets),
    };
  }
  if (o.stat.type !== 'file') return { ...base, kind: 'update', why: `is a ${o.stat.type}, expected a file` };
  const old = o.content?.toString('utf8') ?? '';
  const why: string[] = [];
  let diff: string | undefined;
  if (old !== r.content) {
    const st = diffStats(diffLines(splitLines(old), splitLines(r.content)));
    why.push(
      st.added + st.removed === 0
        ? 'content differs (final newline)'
        : `content differs (+${st.added} −${st.removed} lines)`,
    );
    diff = r.secret ? secretDiff(r.path) : mask(unifiedDiff(old, r.content, labels(r.path)), secrets);
  }
  why.push(...ownership(r, o.stat));
  if (why.length === 0) return null;
  return {
    ...base,
    kind: 'update',
    why: why.join(', '),
    ...(diff !== undefined ? { diff } : { metadataOnly: true }),
  };
}

const labels = (path: string) => ({ fromLabel: `a${path}`, toLabel: `b${path}` });
const secretDiff = (path: string) => `--- a${path}\n+++ b${path}\n(secret content not shown)\n`;

function simpleChange(host: string, r: Resource, o: Observation): Change | null {
  const base = { host, id: resourceId(r), resource: r, before: o };
  switch (r.kind) {
    case 'package': {
      if (o.kind !== 'package') break;
      if (r.state === 'absent')
        return o.installed ? { ...base, kind: 'delete', why: 'installed, must be absent' } : null;
      return o.installed ? null : { ...base, kind: 'create', why: 'not installed' };
    }
    case 'group': {
      if (o.kind !== 'group') break;
      if (!o.exists) return { ...base, kind: 'create', why: 'absent' };
      if (r.gid !== undefined && r.gid !== o.gid)
        return { ...base, kind: 'update', why: `gid ${o.gid} → ${r.gid}` };
      return null;
    }
    case 'user': {
      if (o.kind !== 'user') break;
      if (!o.exists) return { ...base, kind: 'create', why: 'absent' };
      const why: string[] = [];
      if (r.uid !== undefined && r.uid !== o.uid) why.push(`uid ${o.uid} → ${r.uid}`);
      if (r.group !== undefined && r.group !== o.group) why.push(`group ${o.group} → ${r.group}`);
      if (r.home !== undefined && r.home !== o.home) why.push(`home ${o.home} → ${r.home}`);
      if (r.shell !== undefined && r.shell !== o.shell) why.push(`shell ${o.shell} → ${r.shell}`);
      const missing = (r.groups ?? []).filter((g) => !(o.groups ?? []).includes(g));
      if (missing.length) why.push(`not in group${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`);
      if (r.passwordHash !== undefined && hashFingerprint(r.passwordHash) !== o.passwordHash)
        why.push('password hash differs');
      return why.length ? { ...base, kind: 'update', why: why.join(', ') } : null;
    }
    case 'directory': {
      if (o.kind !== 'directory') break;
      if (!o.stat) return { ...base, kind: 'create', why: 'absent' };
      if (o.stat.type !== 'directory')
        return { ...base, kind: 'update', why: `is a ${o.stat.type}, expected a directory` };
      const why = ownership(r, o.stat);
      return why.length ? { ...base, kind: 'update', why: why.join(', ') } : null;
    }
    case 'sysctl': {
      if (o.kind !== 'sysctl') break;
      const norm = (v: string | null) => (v ?? '').trim().split(/\s+/).join(' ');
      if (o.value === null) return { ...base, kind: 'update', why: `${r.key} unknown on this host` };
      return norm(o.value) === norm(r.value)
        ? null
        : { ...base, kind: 'update', why: `${o.value} → ${r.value}` };
    }
    case 'route': {
      if (o.kind !== 'route') break;
      if (o.via === r.via) return null;
      return o.via === null
        ? { ...base, kind: 'create', why: `absent (via ${r.via})` }
        : { ...base, kind: 'update', why: `via ${o.via} → ${r.via}` };
    }
    default:
      return null;
  }
  throw new Error(`observation for ${resourceId(r)} is ${o.kind}`);
}

/** Units: enable, start, or reload/restart because a changed file notifies them. */
function unitChanges(
  host: string,
  units: Map<string, { r: UnitResource; o?: Observation }>,
  notified: Map<string, string[]>,
  replacedUnitFiles: Set<string> = new Set(),
): Change[] {
  const out: Change[] = [];
  for (const [name, { r, o }] of units) {
    const base = { host, id: resourceId(r), resource: r, ...(o ? { before: o } : {}) };
    const u = o?.kind === 'unit' ? o : undefined;
    if (r.enabled === true && u && u.enabled === false)
      out.push({ ...base, kind: 'update', why: `not enabled (${u.enabledState || 'unknown'}) → enabled` });
    else if (r.enabled === true && u && replacedUnitFiles.has(name))
      // What was seen belongs to the unit being replaced (a SysV script answers "enabled" through
      // systemd-sysv-install): the new unit file must be enabled in its own right.
      out.push({
        ...base,
        kind: 'update',
        why: `unit file written by this run (was ${u.enabledState || 'unknown'}) → enabled`,
      });
    if (r.enabled === false && u && u.enabled === true)
      out.push({ ...base, kind: 'update', why: 'enabled → disabled' });
    const by = notified.get(name);
    if (r.active === true && u && u.active === false) {
      out.push({
        ...base,
        kind: 'restart',
        start: true,
        why: `${u.activeState || 'inactive'} → active${by ? ` (and notified by ${by.join(', ')})` : ''}`,
      });
    } else if (by) {
      out.push({ ...base, kind: r.apply ?? 'reload', why: `notified by ${by.join(', ')}` });
    } else if (u?.pending) {
      out.push({
        ...base,
        kind: r.apply ?? 'reload',
        why: 'owed by an interrupted run (files changed, not yet applied)',
      });
    }
  }
  return out;
}

/** The plan for one host. `observed` is index-aligned with `desired`. Pure. */
export function planHost(
  host: string,
  desired: Resource[],
  observed: Observation[],
  secrets: readonly string[] = [],
): Change[] {
  if (desired.length !== observed.length)
    throw new Error(`${host}: ${desired.length} resources but ${observed.length} observations`);
  const seen = new Set<string>();
  for (const r of desired) {
    const id = resourceId(r);
    if (seen.has(id)) throw new Error(`${host}: ${id} is declared twice`);
    seen.add(id);
  }
  const changes: Change[] = [];
  const notified = new Map<string, string[]>();
  const units = new Map<string, { r: UnitResource; o?: Observation }>();
  desired.forEach((r, i) => {
    const o = observed[i]!;
    if (r.kind === 'unit') {
      units.set(r.name, { r, o });
      return;
    }
    const c = r.kind === 'file' ? fileChange(host, r, o, secrets) : simpleChange(host, r, o);
    if (!c) return;
    changes.push(c);
    if (r.kind === 'file' && !c.metadataOnly)
      for (const n of r.notify ?? []) notified.set(n, [...(notified.get(n) ?? []), r.path]);
  });
  for (const n of notified.keys())
    if (!units.has(n)) units.set(n, { r: { kind: 'unit', name: n, apply: 'reload' } });
  const phase = (c: Change) => PHASES.indexOf(c.resource.kind);
  const depth = (c: Change) => (c.resource.kind === 'directory' ? c.resource.path.split('/').length : 0);
  // Stable sort: by phase, parents before children; declaration order otherwise.
  const ordered = changes
    .map((c, i) => ({ c, i }))
    .sort((a, b) => phase(a.c) - phase(b.c) || depth(a.c) - depth(b.c) || a.i - b.i)
    .map((x) => x.c);
  // units whose own unit file (/etc/systemd/system/NAME.service) this plan writes
  const replaced = new Set<string>();
  for (const c of changes) {
    const m =
      c.resource.kind === 'file' ? /^\/etc\/systemd\/system\/([^/]+)\.service$/.exec(c.resource.path) : null;
    if (m && !c.metadataOnly) replaced.add(m[1]!);
  }
  const unitCh = unitChanges(host, units, notified, replaced);
  // Enable/disable first, then starts, then reloads/restarts.
  unitCh.sort((a, b) => Number(a.kind !== 'update') - Number(b.kind !== 'update'));
  return [...ordered, ...unitCh];
}

/** The plan for all hosts. Pure. */
export function plan(
  desired: Record<string, Resource[]>,
  observed: ObservedState,
  secrets: readonly string[] = [],
): Plan {
  const hosts: Record<string, Change[]> = {};
  for (const [host, rs] of Object.entries(desired)) {
    const o = observed[host];
    if (!o) throw new Error(`${host}: no observation`);
    hosts[host] = planHost(host, rs, o, secrets);
  }
  return { hosts };
}

const SYMBOL: Record<ChangeKind, string> = {
  create: '+',
  update: '~',
  delete: '-',
  reload: '↻',
  restart: '⟳',
};

/** The plan as text, diffs included with `diff`. Pure (secrets masked). */
export function formatPlan(p: Plan, o: { diff?: boolean; secrets?: readonly string[] } = {}): string {
  const out: string[] = [];
  for (const [host, changes] of Object.entries(p.hosts)) {
    out.push(`${host}: ${changes.length === 0 ? 'no changes' : plural(changes.length, 'change')}`);
    for (const c of changes) {
      out.push(`  ${SYMBOL[c.kind]} ${c.kind} ${c.id}: ${c.why}`);
      if (o.diff && c.diff)
        out.push(
          ...c.diff
            .trimEnd()
            .split('\n')
            .map((l) => `      ${l}`),
        );
    }
  }
  out.push(`total: ${plural(planChangeCount(p), 'change')}`);
  return mask(out.join('\n'), o.secrets ?? []);
}

/** A change as journal/JSON data: no file content, no previous content. */
export function changeSummary(c: Change): { host: string; id: string; kind: ChangeKind; why: string } {
  return { host: c.host, id: c.id, kind: c.kind, why: c.why };
}
