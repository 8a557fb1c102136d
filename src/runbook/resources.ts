// Desired state, per host, as a list of resources (a discriminated union on `kind`).
// Runbooks build these from the renderers' NodeRender plus packages, users, groups, directories.
import type { CheckCommand, NodeRender } from '../render/types.ts';

export interface PackageResource {
  kind: 'package';
  name: string;
  /** Default present. */
  state?: 'present' | 'absent';
}

export interface GroupResource {
  kind: 'group';
  name: string;
  gid?: number;
  system?: boolean;
}

export interface UserResource {
  kind: 'user';
  name: string;
  uid?: number;
  /** Primary group (must exist: declare it as a group resource). */
  group?: string;
  /** Supplementary groups the user must be in (others are left alone). */
  groups?: string[];
  home?: string;
  shell?: string;
  system?: boolean;
  /** crypt(3) hash for /etc/shadow (secret: compared and set, never shown). */
  passwordHash?: string;
}

export interface DirectoryResource {
  kind: 'directory';
  path: string;
  mode: number;
  owner: string;
  group: string;
}

export interface FileResource {
  kind: 'file';
  path: string;
  content: string;
  mode: number;
  owner: string;
  group: string;
  /** Content is never shown (diffs, journal, errors). */
  secret?: boolean;
  /** Validation by the real tool on the candidate before it replaces the file. */
  check?: CheckCommand;
  /** Units (by unit resource name) to reload/restart when the content changes. */
  notify?: string[];
  /** `absent` deletes the file. Default present. */
  state?: 'present' | 'absent';
}

export interface UnitResource {
  kind: 'unit';
  name: string;
  /** Ensure `systemctl is-enabled` (true) — undefined: not managed. */
  enabled?: boolean;
  /** Ensure running (started when inactive) — undefined: not managed. */
  active?: boolean;
  /** How a notified change is applied. Default reload. */
  apply?: 'reload' | 'restart';
  /** Commands, default `systemctl reload|restart NAME`. */
  reloadCommand?: string[];
  restartCommand?: string[];
  /**
   * Health check after a reload/restart/start; must exit 0 (retried until healthTimeoutMs).
   * Default `systemctl is-active --quiet NAME` for systemd units.
   */
  healthCommand?: string[];
  /** false: not a systemd unit (no enable/active/is-active; commands must be given). Default true. */
  systemd?: boolean;
  /**
   * Commit-confirmed (router, firewall): a notified change is applied by `apply`, which saves the
   * running state on the host and arms a revert there (a timer `timeoutMs` away); the engine then
   * checks the paths the change must keep working (ApplyOptions.confirm) and only then runs
   * `confirm`, which cancels the revert. Unconfirmed, the host reverts by itself, also when wharf is
   * gone; the engine waits for that revert and reports it.
   */
  confirm?: ConfirmSpec;
}

export interface ConfirmSpec {
  timeoutMs: number;
  /** Save the running state, arm the revert, apply the new one. */
  apply: string[];
  /** Cancel the revert; exits 3 when nothing is armed any more (the revert ran first). */
  confirm: string[];
  /** Prints `state armedAt timeoutS doneAt` (state armed|confirmed|reverted|restored, epoch seconds). */
  status: string[];
  /** Apply the file as it is now, unarmed (the engine's rollback after a later failure). */
  restore: string[];
}

export interface SysctlResource {
  kind: 'sysctl';
  key: string;
  value: string;
}

export interface RouteResource {
  kind: 'route';
  /** Destination subnet, e.g. 10.88.0.0/24. */
  to: string;
  via: string;
}

export type Resource =
  | PackageResource
  | GroupResource
  | UserResource
  | DirectoryResource
  | FileResource
  | UnitResource
  | SysctlResource
  | RouteResource;

export type ResourceKind = Resource['kind'];

/** Desired state: node name → resources. */
export type DesiredState = Record<string, Resource[]>;

/** A stable, human-readable id: `file /etc/haproxy/haproxy.cfg`, `unit haproxy`. */
export function resourceId(r: Resource): string {
  switch (r.kind) {
    case 'package':
    case 'group':
    case 'user':
    case 'unit':
      return `${r.kind} ${r.name}`;
    case 'directory':
    case 'file':
      return `${r.kind} ${r.path}`;
    case 'sysctl':
      return `sysctl ${r.key}`;
    case 'route':
      return `route ${r.to}`;
  }
}

/** Apply order: packages → groups → users → directories → files → sysctls → routes → units. */
export const PHASES: ResourceKind[] = [
  'package',
  'group',
  'user',
  'directory',
  'file',
  'sysctl',
  'route',
  'unit',
];

export const SYSCTL_FILE = '/etc/sysctl.d/60-wharf.conf';

/** The sysctl.d file that makes the values survive a reboot. Pure. */
export function sysctlFileContent(sysctls: Record<string, string>): string {
  const keys = Object.keys(sysctls).sort();
  return ['# Managed by wharf: do not edit.', ...keys.map((k) => `${k} = ${sysctls[k]}`), ''].join('\n');
}

/**
 * Resources for a renderer's output: its files (with check + notify), units, sysctls (runtime
 * value + a persistent sysctl.d file) and routes. Units named in `notify` but not declared become
 * systemd units applied by reload.
 */
export function resourcesFromRender(r: NodeRender): Resource[] {
  const out: Resource[] = [];
  for (const f of r.files) {
    out.push({
      kind: 'file',
      path: f.path,
      content: f.content,
      mode: f.mode,
      owner: f.owner,
      group: f.group,
      ...(f.secret ? { secret: true } : {}),
      ...(f.check ? { check: f.check } : {}),
      ...(f.notify?.length ? { notify: f.notify } : {}),
    });
  }
  const keys = Object.keys(r.sysctls);
  // the persistent sysctl.d file, unless the renderer already ships its own
  if (keys.length && !r.files.some((f) => f.path.startsWith('/etc/sysctl.d/'))) {
    out.push({
      kind: 'file',
      path: SYSCTL_FILE,
      content: sysctlFileContent(r.sysctls),
      mode: 0o644,
      owner: 'root',
      group: 'root',
    });
  }
  for (const k of keys) out.push({ kind: 'sysctl', key: k, value: r.sysctls[k]! });
  for (const rt of r.routes) out.push({ kind: 'route', to: rt.to, via: rt.via });
  const declared = new Set(r.units.map((u) => u.name));
  for (const u of r.units)
    out.push({ kind: 'unit', name: u.name, enabled: u.enable, active: u.enable, apply: u.apply });
  for (const f of r.files)
    for (const n of f.notify ?? [])
      if (!declared.has(n)) {
        declared.add(n);
        out.push({ kind: 'unit', name: n, apply: 'reload' });
      }
  return out;
}
