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

/** Observe all of a host's resources with one command. Result is index-aligned with `resources`. */
export async function observeHost(
  t: Transport,
  resources: Resource[],
  stateDir = DEFAULT_STATE_DIR,
): Promise<Observation[]> {
  if (resources.length === 0) return [];
  const tag = `@@wharf-${randomBytes(6).toString('hex')}`;
  const script = resources
    .map((r, i) => `echo '${tag} ${i}'\n{ ${observeSnippet(r, stateDir)}; } </dev/null`)
    .join('\n');
  // The script goes through stdin: no argument-length limit however many resources a host has.
  const res = await t.exec('sh -s', { input: script, timeoutMs: 120_000 });
  if (res.code !== 0)
    throw new TransportError(
      t.host,
      `observing state failed (exit ${res.code}): ${res.stderr.trim()}`,
      res.stderr,
    );
  const sections = new Map<number, string>();
  const parts = res.stdout.split(`${tag} `);
  for (const part of parts.slice(1)) {
    const nl = part.indexOf('\n');
    sections.set(Number(part.slice(0, nl)), part.slice(nl + 1));
  }
  return resources.map((r, i) => {
    const s = sections.get(i);
    if (s === undefined) throw new TransportError(t.host, `observing ${r.kind} gave no output`);
    return parseObservation(r, s);
  });
}
