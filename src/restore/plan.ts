// Restore: bring back one file or folder of a user as it was in a backup snapshot, onto main. Pure:
// the operator's input checked (each problem names its flag), the listing commands and their
// parsers, and the plan. Rules:
// - a file, symlink or folder of the snapshot that main lacks → created;
// - the same content on main → left as it is;
// - a different version on main → a conflict: named in the plan, and overwritten only with --force
//   (main's version is kept first, outside the chroot);
// - a folder where the snapshot has a file (or the other way round), or a parent of the path that
//   is not a folder on main (a user's symlink could point anywhere) → blocked, even with --force;
// - files on main that the snapshot lacks are never touched (a restore deletes nothing).
import { posix } from 'node:path';
import { InputError } from '../core/errors.ts';
import { shQuote as q } from '../exec/quote.ts';
import type { Topology } from '../topology/model.ts';

/** A snapshot's folder name as backup.sh writes it (UTC, 1 s resolution). */
export const SNAPSHOT_NAME = /^\d{8}T\d{6}Z$/;
/** Where main's versions of overwritten files are kept (outside every chroot). */
export const RESTORE_KEEP_DIR = '/var/lib/wharf/restore-replaced';

export interface RestoreInput {
  /** A snapshot name, or `latest`. */
  snapshot: string;
  user: string;
  /** Relative to the user's chroot, normalised (`upload/docs`). */
  path: string;
}

/** The path inside the user's chroot, normalised; a problem text when it is not one. Pure. */
export function chrootPath(raw: string): { path: string } | { problem: string } {
  if (/[\0\n\r]/.test(raw)) return { problem: 'contains a control character (NUL or newline)' };
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) return { problem: `"${raw}" leaves the user's chroot (..)` };
  if (!parts.length)
    return { problem: `"${raw}" is the user's whole chroot; name a file or folder inside it` };
  return { path: parts.join('/') };
}

/** Check --snapshot, --user and --path together; every problem names its flag (InputError). Pure. */
export function checkRestoreInput(
  t: Topology,
  o: { snapshot: string; user: string; path: string },
): RestoreInput {
  const problems: string[] = [];
  const users = t.sftp.users.map((u) => u.name);
  if (!users.includes(o.user))
    problems.push(`--user: unknown user "${o.user}" (users of the topology: ${users.join(', ')})`);
  if (o.snapshot !== 'latest' && !SNAPSHOT_NAME.test(o.snapshot))
    problems.push(
      `--snapshot: "${o.snapshot}" is not a snapshot name (YYYYMMDDTHHMMSSZ, e.g. 20261130T045400Z) or latest`,
    );
  const p = chrootPath(o.path);
  if ('problem' in p) problems.push(`--path: ${p.problem}`);
  if (problems.length) throw new InputError(problems.join('\n'), problems);
  return { snapshot: o.snapshot, user: o.user, path: (p as { path: string }).path };
}

export type EntryKind = 'f' | 'd' | 'l';
export interface Entry {
  kind: EntryKind;
  size: number;
  /** Regular files. */
  sha256?: string;
  /** Symlinks. */
  target?: string;
}
/** Paths relative to the user's chroot (`upload/docs/a.txt`). */
export type Tree = Map<string, Entry>;

export interface TreeListing {
  tree: Tree;
  /** The parents of the path on this side, and what they are (`d` folder, `l` symlink, …). */
  parents: Map<string, string>;
}

/** The parents of a chroot path, outermost first (`upload/docs/a` → upload, upload/docs). Pure. */
export const parentsOf = (path: string): string[] => {
  const parts = path.split('/');
  return parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join('/'));
};

/**
 * Shell listing `root/path` and below: `E<TAB>kind<TAB>size<TAB>link<TAB>./path` records, the
 * parents' kinds (`A<TAB>kind<TAB>./parent`), then `sha256sum -z` records; NUL-terminated. An
 * absent root or path lists nothing.
 */
export function treeCommand(root: string, path: string): string {
  const rel = q(`./${path}`);
  const parents = parentsOf(path).map((p) => q(`./${p}`));
  return [
    `cd ${q(root)} 2>/dev/null || exit 0`,
    ...(parents.length ? [`find ${parents.join(' ')} -maxdepth 0 -printf 'A\\t%y\\t%p\\0' 2>/dev/null`] : []),
    `if [ -e ${rel} ] || [ -L ${rel} ]; then find ${rel} \\( -type f -o -type d -o -type l \\) -printf 'E\\t%y\\t%s\\t%l\\t%p\\0' && find ${rel} -type f -print0 | xargs -0 -r sha256sum -z; fi`,
    'true',
  ].join('; ');
}

export function parseTree(out: string): TreeListing {
  const tree: Tree = new Map();
  const parents = new Map<string, string>();
  const sums = new Map<string, string>();
  const strip = (p: string) => p.replace(/^\.\//, '');
  for (const rec of out.split('\0')) {
    if (rec.startsWith('E\t')) {
      const [, kind, size, target, ...rest] = rec.split('\t');
      const e: Entry = { kind: kind as EntryKind, size: Number(size) };
      if (kind === 'l') e.target = target;
      tree.set(strip(rest.join('\t')), e);
      continue;
    }
    if (rec.startsWith('A\t')) {
      const [, kind, ...rest] = rec.split('\t');
      parents.set(strip(rest.join('\t')), kind!);
      continue;
    }
    const m = /^([0-9a-f]{64}) [ *]\.\/([\s\S]+)$/.exec(rec.replace(/^\n/, ''));
    if (m) sums.set(m[2]!, m[1]!);
  }
  for (const [p, e] of tree) if (e.kind === 'f') e.sha256 = sums.get(p) ?? '';
  return { tree, parents };
}

export interface RestoreConflict {
  path: string;
  why: string;
}

export interface RestorePlan {
  /** Files and symlinks main lacks. */
  create: string[];
  /** Different on main: overwritten (with --force; main's version kept first). */
  overwrite: string[];
  /** Different on main and no --force: the run refuses, naming each. */
  conflicts: RestoreConflict[];
  /** Cannot be restored even with --force (a folder against a file, a parent that is not a folder). */
  blocked: RestoreConflict[];
  same: number;
  /** Folders of the snapshot that main lacks (created; an undo removes them again when empty). */
  newDirs: string[];
  /** On main under the path but not in the snapshot: left alone. */
  extra: string[];
}

const kindName = (k: string) =>
  ({ f: 'a file', d: 'a folder', l: 'a symlink' })[k] ?? `a special file (${k})`;

const describe = (e: Entry) =>
  e.kind === 'f'
    ? `sha256 ${e.sha256?.slice(0, 12)}…, ${e.size} bytes`
    : e.kind === 'l'
      ? `→ ${e.target}`
      : 'folder';

/** What restoring `snap` onto `main` does, entry by entry (see the file header). Pure. */
export function planRestore(snap: TreeListing, main: TreeListing, force: boolean): RestorePlan {
  const plan: RestorePlan = {
    create: [],
    overwrite: [],
    conflicts: [],
    blocked: [],
    same: 0,
    newDirs: [],
    extra: [],
  };
  for (const [p, kind] of main.parents)
    if (kind !== 'd')
      plan.blocked.push({
        path: p,
        why: `is ${kindName(kind)} on main, not a folder: a restore never writes through it`,
      });
  const paths = [...snap.tree.keys()].sort();
  for (const p of paths) {
    const s = snap.tree.get(p)!;
    const m = main.tree.get(p);
    if (!m) {
      if (s.kind === 'd') plan.newDirs.push(p);
      else plan.create.push(p);
      continue;
    }
    if (s.kind === 'd' || m.kind === 'd') {
      if (s.kind === m.kind) plan.same++;
      else
        plan.blocked.push({
          path: p,
          why: `is ${kindName(m.kind)} on main but ${kindName(s.kind)} in the snapshot (move it away first)`,
        });
      continue;
    }
    const equal =
      s.kind === m.kind && (s.kind === 'f' ? s.sha256 === m.sha256 && !!s.sha256 : s.target === m.target);
    if (equal) {
      plan.same++;
      continue;
    }
    if (force) plan.overwrite.push(p);
    else plan.conflicts.push({ path: p, why: `main: ${describe(m)}; snapshot: ${describe(s)}` });
  }
  // under a folder the snapshot does not have, main's files are its own and untouched
  for (const p of [...main.tree.keys()].sort()) if (!snap.tree.has(p)) plan.extra.push(p);
  return plan;
}

/** The plan in words (the runbook's notes). Pure. */
export function describeRestorePlan(p: RestorePlan, force: boolean, max = 20): string[] {
  const more = (xs: unknown[]) => (xs.length > max ? [`  … and ${xs.length - max} more`] : []);
  const out = [
    `${p.create.length} file(s) to create, ${p.overwrite.length} to overwrite, ${p.newDirs.length} folder(s) to create, ${p.same} already equal, ${p.conflicts.length} conflict(s), ${p.blocked.length} blocked` +
      (p.extra.length ? `; ${p.extra.length} entr(ies) only on main left alone` : ''),
  ];
  for (const c of p.conflicts.slice(0, max))
    out.push(
      `conflict ${c.path}: differs on main (${c.why}); --force overwrites it (main's version kept in ${RESTORE_KEEP_DIR})`,
    );
  out.push(...more(p.conflicts));
  for (const c of p.blocked.slice(0, max)) out.push(`blocked ${c.path}: ${c.why}`);
  out.push(...more(p.blocked));
  if (force)
    for (const x of p.overwrite.slice(0, max))
      out.push(`overwrite ${x} (--force; main's version kept in ${RESTORE_KEEP_DIR})`);
  return out;
}

/** Snapshot folders on the backup node, oldest first, and where `latest` points. */
export function snapshotsCommand(snapshotDir: string): string {
  return `find ${q(snapshotDir)} -mindepth 1 -maxdepth 1 -type d -name '2*Z' -printf '%f\\n' | sort; printf 'latest=%s\\n' "$(readlink ${q(`${snapshotDir}/latest`)} 2>/dev/null)"`;
}

export function parseSnapshots(out: string): { names: string[]; latest?: string } {
  const names: string[] = [];
  let latest: string | undefined;
  for (const line of out.split('\n')) {
    if (line.startsWith('latest=')) latest = line.slice(7).replace(/\/+$/, '') || undefined;
    else if (SNAPSHOT_NAME.test(line)) names.push(line);
  }
  return { names, ...(latest ? { latest } : {}) };
}

/** The snapshot a --snapshot value names, or the InputError naming the flag. Pure. */
export function resolveSnapshot(
  wanted: string,
  have: { names: string[]; latest?: string },
  node: string,
): string {
  const list = have.names.length
    ? `snapshots on ${node}: ${have.names.slice(-8).join(', ')}${have.names.length > 8 ? ` (newest 8 of ${have.names.length})` : ''}`
    : `${node} has no snapshot yet`;
  if (wanted === 'latest') {
    if (have.latest && have.names.includes(have.latest)) return have.latest;
    throw new InputError(`--snapshot: latest: ${list}`);
  }
  if (!have.names.includes(wanted)) throw new InputError(`--snapshot: no snapshot "${wanted}" (${list})`);
  return wanted;
}

/** Undo of a copy, as shell on main: remove what was created, put kept versions back. Pure. */
export function undoCommand(
  userRoot: string,
  keptRoot: string | undefined,
  p: Pick<RestorePlan, 'create' | 'overwrite' | 'newDirs'>,
): string {
  const at = (x: string) => q(posix.join(userRoot, x));
  const cmds: string[] = [];
  for (const x of p.create) cmds.push(`rm -f -- ${at(x)}`);
  if (keptRoot) for (const x of p.overwrite) cmds.push(`cp -a -- ${q(posix.join(keptRoot, x))} ${at(x)}`);
  for (const d of [...p.newDirs].sort().reverse())
    cmds.push(`rmdir --ignore-fail-on-non-empty -- ${at(d)} 2>/dev/null || true`);
  return cmds.length ? ['set -e', ...cmds].join('; ') : 'true';
}
