// Observation: the current state of each desired resource on a host, read in ONE round trip
// (a generated shell script prints a marked section per resource; file contents as base64).
import { createHash, randomBytes } from 'node:crypto';
import { shQuote } from '../exec/index.ts';
import { parseStat, STAT_FORMAT } from '../transport/shell.ts';
import { TransportError, type FileStat, type Transport } from '../transport/types.ts';
import type { Resource } from './resources.ts';

export type Observation =
  | { kind: 'package'; installed: boolean; version?: string }
  | { kind: 'group'; exists: boolean; gid?: number }
  | {
      kind: 'user';
      exists: boolean;
      uid?: number;
      group?: string;
      groups?: string[];
      home?: string;
      shell?: string;
      passwordHash?: string;
    }
  | { kind: 'directory'; stat: FileStat | null }
  | { kind: 'file'; stat: FileStat | null; content: Buffer | null }
  | {
      kind: 'unit';
      enabled?: boolean;
      active?: boolean;
      enabledState?: string;
      activeState?: string;
      /** A reload/restart was left pending by an interrupted run. */
      pending?: boolean;
    }
  | { kind: 'sysctl'; value: string | null }
  | { kind: 'route'; via: string | null };

const MISSING = '@@missing';

/** A one-way fingerprint of a crypt(3) hash, so the hash itself is never kept in a plan. */
export const hashFingerprint = (h: string): string =>
  h ? 'sha256:' + createHash('sha256').update(h).digest('hex').slice(0, 16) : '';

/** `systemctl is-enabled` answers that need no `enable` (static/generated units cannot be enabled). */
const ENABLED_STATES = ['enabled', 'static', 'alias', 'indirect', 'generated'];

/** The shell snippet printing a resource's state. Pure. */
/** Where a host keeps wharf's own state (pending reloads of interrupted runs). */
export const DEFAULT_STATE_DIR = '/var/lib/wharf';

/** Marker file: a reload/restart of `unit` is owed (written before the files, removed after health). */
export function pendingMarker(stateDir: string, unit: string): string {
  return `${stateDir}/pending/${unit.replace(/[^A-Za-z0-9@._-]/g, '_')}`;
}

export function observeSnippet(r: Resource, stateDir = DEFAULT_STATE_DIR): string {
  switch (r.kind) {
    case 'package':
      return `dpkg-query -W -f='\${db:Status-Status} \${Version}\\n' ${shQuote(r.name)} 2>/dev/null || echo ${MISSING}`;
    case 'group':
      return `getent group ${shQuote(r.name)} || echo ${MISSING}`;
    case 'user': {
      const n = shQuote(r.name);
      return `if getent passwd ${n}; then id -gn ${n}; id -Gn ${n}; getent shadow ${n} | cut -d: -f2; else echo ${MISSING}; fi`;
    }
    case 'directory':
      return `stat -c ${shQuote(STAT_FORMAT)} -- ${shQuote(r.path)} 2>/dev/null || echo ${MISSING}`;
    case 'file': {
      const p = shQuote(r.path);
      return `if [ -e ${p} ]; then stat -c ${shQuote(STAT_FORMAT)} -- ${p}; if [ -f ${p} ]; then base64 -w0 -- ${p}; fi; echo; else echo ${MISSING}; fi`;
    }
    case 'unit': {
      const pending = `if [ -e ${shQuote(pendingMarker(stateDir, r.name))} ]; then echo pending=yes; fi`;
      if (r.systemd === false || (r.enabled === undefined && r.active === undefined)) return pending;
      const n = shQuote(r.name);
      return `echo "enabled=$(systemctl is-enabled ${n} 2>/dev/null)"; echo "active=$(systemctl is-active ${n} 2>/dev/null)"; ${pending}`;
    }
    case 'sysctl':
      return `sysctl -n ${shQuote(r.key)} 2>/dev/null || echo ${MISSING}`;
    case 'route':
      return `ip -4 route show to exact ${shQuote(r.to)} 2>/dev/null`;
  }
}

/** Parse a snippet's output. Pure. */
export function parseObservation(r: Resource, text: string): Observation {
  const lines = text.split('\n').filter((l, i, a) => !(i === a.length - 1 && l === ''));
  const missing = lines[0]?.trim() === MISSING;
  switch (r.kind) {
    case 'package': {
      const [status, version] = (lines[0] ?? '').trim().split(' ');
      return missing || status !== 'installed'
        ? { kind: 'package', installed: false }
        : { kind: 'package', installed: true, ...(version ? { version } : {}) };
    }
    case 'group': {
      if (missing || !lines[0]) return { kind: 'group', exists: false };
      return { kind: 'group', exists: true, gid: Number(lines[0].split(':')[2]) };
    }
    case 'user': {
      if (missing || !lines[0]) return { kind: 'user', exists: false };
      const f = lines[0].split(':');
      return {
        kind: 'user',
        exists: true,
        uid: Number(f[2]),
        home: f[5] ?? '',
        shell: f[6] ?? '',
        group: (lines[1] ?? '').trim(),
        groups: (lines[2] ?? '').trim().split(/\s+/).filter(Boolean),
        // only a fingerprint of the shadow hash is kept: plans and journals never hold the hash
        ...(lines[3] !== undefined ? { passwordHash: hashFingerprint(lines[3].trim()) } : {}),
      };
    }
    case 'directory':
      return { kind: 'directory', stat: missing || !lines[0] ? null : parseStat(lines[0]) };
    case 'file': {
      if (missing || !lines[0]) return { kind: 'file', stat: null, content: null };
      const stat = parseStat(lines[0]);
      return {
        kind: 'file',
        stat,
        content: stat.type === 'file' ? Buffer.from(lines[1] ?? '', 'base64') : null,
      };
    }
    case 'unit': {
      const get = (k: string) => lines.find((l) => l.startsWith(`${k}=`))?.slice(k.length + 1);
      const enabledState = get('enabled');
      const activeState = get('active');
      return {
        kind: 'unit',
        ...(get('pending') === 'yes' ? { pending: true } : {}),
        ...(enabledState !== undefined
          ? {
              enabledState,
              enabled: ENABLED_STATES.includes(enabledState),
            }
          : {}),
        ...(activeState !== undefined
          ? { activeState, active: activeState === 'active' || activeState === 'reloading' }
          : {}),
      };
    }
    case 'sysctl':
      return { kind: 'sysctl', value: missing ? null : lines.join('\n').trim() };
    case 'route': {
      const m = /\bvia (\S+)/.exec(lines[0] ?? '');
      return { kind: 'route', via: m ? m[1]! : null };
    }
  }
}

/**
 * Observe all of a host's resources with one command, one section per resource (the reference
 * implementation: 5–10 processes per user, directory or file). `observeHost` reads the same state
 * with a few processes per host; both must give the same observations (test/unit/observe-bulk).
 */
export async function observeHostEach(
  t: Transport,
  resources: Resource[],
  stateDir = DEFAULT_STATE_DIR,
): Promise<Observation[]> {
  if (resources.length === 0) return [];
  const tag = `@@wharf-${randomBytes(6).toString('hex')}`;
  const script = resources
    .map((r, i) => `echo '${tag} ${i}'\n{ ${observeSnippet(r, stateDir)}; } </dev/null`)
    .join('\n');
  const sections = await runObserveScript(t, script, tag);
  return resources.map((r, i) => {
    const s = sections.get(String(i));
    if (s === undefined) throw new TransportError(t.host, `observing ${r.kind} gave no output`);
    return parseObservation(r, s);
  });
}

/** Runs an observation script (through stdin: no argument-length limit) → its sections by key. */
async function runObserveScript(t: Transport, script: string, tag: string): Promise<Map<string, string>> {
  const res = await t.exec('sh -s', { input: script, timeoutMs: 120_000 });
  if (res.code !== 0)
    throw new TransportError(
      t.host,
      `observing state failed (exit ${res.code}): ${res.stderr.trim()}`,
      res.stderr,
    );
  const sections = new Map<string, string>();
  for (const part of res.stdout.split(`${tag} `).slice(1)) {
    const nl = part.indexOf('\n');
    sections.set(part.slice(0, nl), part.slice(nl + 1));
  }
  return sections;
}

// ---- Bulk observation: users, groups, directories and files of a host with a few processes ----
// (getent/id/stat/sha256sum take many keys at once) instead of several processes per resource.

/** A name `getent`/`id` take as a key and print back as is (not all digits: that is a uid/gid). */
const bulkName = (n: string) => /^[A-Za-z0-9_.][A-Za-z0-9_.$-]*$/.test(n) && !/^\d+$/.test(n);
/** A path whose `stat %n` / `sha256sum -c` line is printed verbatim (no newline, tab, backslash). */
const bulkPath = (p: string) => p.startsWith('/') && !/[\n\t\\]/.test(p) && !p.includes(': ');

/** Whether a resource is observed by the bulk sections (else by its own snippet). Pure. */
export function bulkObservable(r: Resource): boolean {
  switch (r.kind) {
    case 'group':
    case 'user':
      return bulkName(r.name);
    case 'directory':
    case 'file':
      return bulkPath(r.path);
    case 'unit':
      return (
        r.systemd !== false &&
        (r.enabled !== undefined || r.active !== undefined) &&
        /^[A-Za-z0-9@._:-]+$/.test(r.name)
      );
    default:
      return false;
  }
}

const NEVER = '0'.repeat(64);
const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
/** The sha256 a file's content is compared with on the host (absent files: never equal). */
const expectedHash = (r: Resource) => (r.kind === 'file' && r.state !== 'absent' ? sha256(r.content) : NEVER);

/**
 * The observation script for a host: bulk sections (`passwd`, `idg`, `idG`, `shadow`, `group`,
 * `stat`, `dangling`, `content`) for the resources `bulkObservable` accepts, one numbered section
 * per other resource (its `observeSnippet`). File contents travel only when they differ from the
 * desired content (sha256 compared on the host): an unchanged file costs one line. Pure.
 */
export function bulkObserveScript(resources: Resource[], tag: string, stateDir = DEFAULT_STATE_DIR): string {
  const users = new Set<string>();
  const groups = new Set<string>();
  const units = new Set<string>();
  const paths = new Set<string>();
  const files = new Map<string, string>(); // path → expected sha256
  const out: string[] = [];
  resources.forEach((r, i) => {
    if (!bulkObservable(r)) {
      out.push(`echo '${tag} ${i}'`, `{ ${observeSnippet(r, stateDir)}; } </dev/null`);
      return;
    }
    if (r.kind === 'unit') units.add(r.name);
    else if (r.kind === 'user') users.add(r.name);
    else if (r.kind === 'group') groups.add(r.name);
    else if (r.kind === 'directory' || r.kind === 'file') {
      paths.add(r.path);
      if (r.kind === 'file') {
        // the same path declared twice is an error the planner reports; any hash will do here
        files.set(r.path, files.has(r.path) ? NEVER : expectedHash(r));
      }
    }
  });
  const q = (xs: Iterable<string>) => [...xs].map(shQuote).join(' ');
  if (users.size) {
    const u = q(users);
    out.push(
      `echo '${tag} passwd'`,
      `pw=$(getent passwd ${u} </dev/null); [ -z "$pw" ] || printf '%s\n' "$pw"`,
      `names=$(printf '%s\n' "$pw" | cut -d: -f1)`,
      `echo '${tag} idg'`,
      `[ -z "$names" ] || id -gn $names </dev/null`,
      `echo '${tag} idG'`,
      `[ -z "$names" ] || id -Gn $names </dev/null`,
      `echo '${tag} shadow'`,
      `getent shadow ${u} </dev/null | cut -d: -f1,2`,
    );
  }
  if (groups.size) out.push(`echo '${tag} group'`, `getent group ${q(groups)} </dev/null`);
  if (paths.size) {
    out.push(
      `echo '${tag} stat'`,
      `stat -c ${shQuote(`%n|${STAT_FORMAT}`)} -- ${q(paths)} 2>/dev/null </dev/null`,
    );
  }
  if (files.size) {
    // a file resource follows symlinks for "exists" (as `[ -e ]` in its snippet)
    out.push(
      `echo '${tag} dangling'`,
      `for p in ${q(files.keys())}; do if [ -h "$p" ] && [ ! -e "$p" ]; then printf '%s\n' "$p"; fi; done`,
      `echo '${tag} content'`,
      `printf '%s\n' ${[...files].map(([p, h]) => shQuote(`${h}  ${p}`)).join(' ')} | sha256sum -c 2>/dev/null | while IFS= read -r l; do`,
      `  case "$l" in`,
      `    *': OK') printf 'ok\t%s\n' "\${l%: OK}" ;;`,
      `    *': FAILED'*) p="\${l%: FAILED*}"; if [ -f "$p" ]; then printf 'c\t%s\t' "$p"; base64 -w0 -- "$p" </dev/null; echo; else printf 'x\t%s\n' "$p"; fi ;;`,
      `  esac`,
      `done`,
    );
  }
  if (units.size) {
    // `systemctl is-enabled a b c` stops at the first unit it does not know: then one by one, as
    // the unit's own snippet does (an unknown unit gives an empty line)
    const u = q(units);
    out.push(
      `echo '${tag} enabled'`,
      `en=$(systemctl is-enabled ${u} 2>/dev/null </dev/null)`,
      `if [ "$(printf '%s\\n' "$en" | grep -c .)" -eq ${units.size} ]; then printf '%s\\n' "$en"; else for n in ${u}; do echo "$(systemctl is-enabled "$n" 2>/dev/null </dev/null)"; done; fi`,
      `echo '${tag} active'`,
      `systemctl is-active ${u} 2>/dev/null </dev/null || true`,
      `echo '${tag} pending'`,
      `for p in ${q([...units].map((n) => pendingMarker(stateDir, n)))}; do if [ -e "$p" ]; then printf '%s\\n' "$p"; fi; done`,
    );
  }
  out.push(`echo '${tag} end'`, 'true');
  return out.join('\n') + '\n';
}

const linesOf = (s: string | undefined) => (s ?? '').split('\n').filter((l) => l !== '');

/** The observations from a bulk script's sections, index-aligned with `resources`. Pure. */
export function parseBulkObservation(
  host: string,
  resources: Resource[],
  sections: ReadonlyMap<string, string>,
  stateDir = DEFAULT_STATE_DIR,
): Observation[] {
  if (!sections.has('end')) throw new TransportError(host, 'observing state: the script did not finish');
  const passwd = linesOf(sections.get('passwd'));
  const idg = linesOf(sections.get('idg'));
  const idG = linesOf(sections.get('idG'));
  if (idg.length !== passwd.length || idG.length !== passwd.length)
    throw new TransportError(
      host,
      `observing users: ${passwd.length} passwd entries but ${idg.length}/${idG.length} lines from id -gn/-Gn`,
    );
  const users = new Map<string, { pw: string; g: string; gs: string }>();
  passwd.forEach((l, i) => users.set(l.split(':')[0]!, { pw: l, g: idg[i]!, gs: idG[i]! }));
  const shadow = new Map<string, string>();
  for (const l of linesOf(sections.get('shadow'))) {
    const c = l.indexOf(':');
    shadow.set(c < 0 ? l : l.slice(0, c), c < 0 ? '' : l.slice(c + 1));
  }
  const groups = new Map<string, string>();
  for (const l of linesOf(sections.get('group'))) groups.set(l.split(':')[0]!, l);
  const stats = new Map<string, string>();
  for (const l of linesOf(sections.get('stat'))) {
    const f = l.split('|');
    stats.set(f.slice(0, -5).join('|'), f.slice(-5).join('|'));
  }
  const dangling = new Set(linesOf(sections.get('dangling')));
  const unitNames = [
    ...new Set(
      resources
        .filter((r) => r.kind === 'unit' && bulkObservable(r))
        .map((r) => (r as { name: string }).name),
    ),
  ];
  // one line per unit, in order (a systemctl that cannot answer at all prints nothing: empty states,
  // as each unit's own snippet would see)
  const rawLines = (k: string) => {
    const ls = (sections.get(k) ?? '').split('\n');
    return unitNames.map((_, i) => ls[i] ?? '');
  };
  const enabled = rawLines('enabled');
  const active = rawLines('active');
  const pendingSet = new Set(linesOf(sections.get('pending')));
  const same = new Set<string>();
  const contents = new Map<string, Buffer | null>();
  for (const l of linesOf(sections.get('content'))) {
    const [k, p = '', b64 = ''] = l.split('\t');
    if (k === 'ok') same.add(p);
    else if (k === 'c') contents.set(p, Buffer.from(b64, 'base64'));
    else if (k === 'x') contents.set(p, null);
  }
  return resources.map((r, i): Observation => {
    if (!bulkObservable(r)) {
      const s = sections.get(String(i));
      if (s === undefined) throw new TransportError(host, `observing ${r.kind} gave no output`);
      return parseObservation(r, s);
    }
    switch (r.kind) {
      case 'user': {
        const u = users.get(r.name);
        if (!u) return parseObservation(r, `${MISSING}\n`);
        const sh = shadow.get(r.name);
        return parseObservation(r, [u.pw, u.g, u.gs, ...(sh !== undefined ? [sh] : [])].join('\n') + '\n');
      }
      case 'group': {
        const g = groups.get(r.name);
        return parseObservation(r, g === undefined ? `${MISSING}\n` : `${g}\n`);
      }
      case 'directory': {
        const st = stats.get(r.path);
        return { kind: 'directory', stat: st === undefined ? null : parseStat(st) };
      }
      case 'file': {
        const st = stats.get(r.path);
        if (st === undefined || dangling.has(r.path)) return { kind: 'file', stat: null, content: null };
        const stat = parseStat(st);
        if (stat.type !== 'file') return { kind: 'file', stat, content: null };
        if (same.has(r.path)) return { kind: 'file', stat, content: Buffer.from(r.content, 'utf8') };
        const c = contents.get(r.path);
        if (c === undefined)
          throw new TransportError(host, `observing file ${r.path}: no checksum line for it`);
        // a regular file sha256sum could not read: as its snippet (base64 fails → empty content)
        return { kind: 'file', stat, content: c ?? Buffer.alloc(0) };
      }
      case 'unit': {
        const i = unitNames.indexOf(r.name);
        const pending = pendingSet.has(pendingMarker(stateDir, r.name)) ? 'pending=yes\n' : '';
        return parseObservation(r, `enabled=${enabled[i]}\nactive=${active[i]}\n${pending}`);
      }
      default:
        throw new Error(`unreachable: ${r.kind}`);
    }
  });
}

/**
 * Observe all of a host's resources in ONE round trip with a handful of processes whatever the
 * number of users, folders and files (`bulkObserveScript`). Index-aligned with `resources`.
 */
export async function observeHost(
  t: Transport,
  resources: Resource[],
  stateDir = DEFAULT_STATE_DIR,
): Promise<Observation[]> {
  if (resources.length === 0) return [];
  const tag = `@@wharf-${randomBytes(6).toString('hex')}`;
  const sections = await runObserveScript(t, bulkObserveScript(resources, tag, stateDir), tag);
  return parseBulkObservation(t.host, resources, sections, stateDir);
}
