// Failback plan: compare what main and sub hold (path, size, mtime, sha256) and decide, file by
// file, what to copy where. Pure. Rules:
// - a file only on sub (uploaded during the outage) → copy to main;
// - a file only on main (written before the crash, never replicated: the RPO window) → keep it and
//   copy it to sub, so both sides match; it is listed, because no client may have been told OK;
// - a file on both with different content → a version whose last SFTP write was cut (internal-sftp
//   logged `forced close`: a partial upload) loses to one a client closed; otherwise the newer
//   mtime wins (the later upload; a crash-cut half-written file on main is usually older than the
//   complete retry on sub, but not always: see cutUploads); the losing version is
//   never thrown away: it is moved to a conflicts folder outside the chroot first. Equal mtimes:
//   sub wins (it is what clients were acknowledged against most recently).
// - nothing is ever deleted, and no file is overwritten just because it differs.

import { shQuote as q } from '../exec/index.ts';

export interface FileInfo {
  size: number;
  /** Seconds since the epoch (fractional), as find -printf %T@. */
  mtime: number;
  sha256: string;
}

export type Listing = Map<string, FileInfo>;

export interface Conflict {
  path: string;
  winner: 'main' | 'sub';
  /** Why the winner won: the other version is a cut upload, or it is newer. */
  by: 'cut' | 'mtime';
  main: FileInfo;
  sub: FileInfo;
}

export interface FailbackPlan {
  /** Copy sub → main (only on sub, or sub's version won). */
  toMain: string[];
  /** Copy main → sub (only on main, or main's version won). */
  toSub: string[];
  onlyMain: string[];
  onlySub: string[];
  conflicts: Conflict[];
  same: number;
}

/**
 * Shell that lists every file under base (relative paths), except the excluded top-level folders:
 * `L<TAB>mtime<TAB>size<TAB>path` lines, then sha256sum lines.
 */
export function listingCommand(base: string, excludeDirs: string[], excludeNames: string[] = []): string {
  const prune = [
    ...excludeDirs.map((d) => `-path ${q(`./${d}`)} -prune -o`),
    ...excludeNames.map((n) => `-name ${q(n)} -prune -o`),
  ].join(' ');
  return (
    `cd ${q(base)} && find . ${prune} -type f -printf 'L\\t%T@\\t%s\\t%P\\n' && ` +
    `find . ${prune} -type f -print0 | xargs -0 -r sha256sum`
  );
}

export function parseListing(out: string): Listing {
  const meta = new Map<string, { size: number; mtime: number }>();
  const sums = new Map<string, string>();
  for (const line of out.split('\n')) {
    if (line.startsWith('L\t')) {
      const [, mtime, size, ...rest] = line.split('\t');
      meta.set(rest.join('\t'), { mtime: Number(mtime), size: Number(size) });
      continue;
    }
    const m = /^([0-9a-f]{64}) [ *]\.\/(.+)$/.exec(line);
    if (m) sums.set(m[2]!, m[1]!);
  }
  const out2: Listing = new Map();
  for (const [p, m] of meta) {
    const sha = sums.get(p);
    if (sha) out2.set(p, { ...m, sha256: sha });
  }
  return out2;
}

/** Per node, the files whose last SFTP write was cut (cutUploads). */
export interface CutUploads {
  main: Set<string>;
  sub: Set<string>;
}

export function planFailback(main: Listing, sub: Listing, cut?: CutUploads): FailbackPlan {
  const plan: FailbackPlan = { toMain: [], toSub: [], onlyMain: [], onlySub: [], conflicts: [], same: 0 };
  for (const [p, m] of main) {
    const s = sub.get(p);
    if (!s) {
      plan.onlyMain.push(p);
      plan.toSub.push(p);
    } else if (s.sha256 === m.sha256) plan.same++;
    else {
      const mainCut = cut?.main.has(p) ?? false;
      const subCut = cut?.sub.has(p) ?? false;
      // a cut upload loses to a version a client closed, whatever the mtimes say (a partial on
      // main can be younger: a cut session's buffered data written after the client's retry)
      const winner = mainCut !== subCut ? (mainCut ? 'sub' : 'main') : m.mtime > s.mtime ? 'main' : 'sub';
      plan.conflicts.push({ path: p, winner, by: mainCut !== subCut ? 'cut' : 'mtime', main: m, sub: s });
      (winner === 'main' ? plan.toSub : plan.toMain).push(p);
    }
  }
  for (const p of sub.keys()) {
    if (!main.has(p)) {
      plan.onlySub.push(p);
      plan.toMain.push(p);
    }
  }
  for (const k of ['toMain', 'toSub', 'onlyMain', 'onlySub'] as const) plan[k].sort();
  return plan;
}

/**
 * Files of the serving side (sub) that changed while a copy pass ran: sub's current version is
 * neither what the pass listed on sub nor what it pushed from main (`listedMain`). These are uploads
 * in flight (a client still writing); a pass taken while sub takes writes cannot settle them, so
 * they are left to the catch-up pass that runs with writes paused.
 */
export function changedDuringPass(listedSub: Listing, listedMain: Listing, nowSub: Listing): string[] {
  const out: string[] = [];
  for (const [p, f] of nowSub) {
    const was = listedSub.get(p);
    if (!was && !listedMain.has(p)) continue; // new since the listing: not this pass's file
    if (was?.sha256 === f.sha256 || listedMain.get(p)?.sha256 === f.sha256) continue;
    out.push(p);
  }
  return out.sort();
}

/**
 * Conflicts of a later pass that are not conflicts: main is out of rotation during failback, so a
 * version on main that differs from what main held at the first listing (`original`) was copied
 * there from sub by an earlier pass (an upload caught in flight). Overwriting it loses nothing.
 */
export function isOwnCopy(path: string, original: Listing, nowMain: Listing): boolean {
  return original.get(path)?.sha256 !== nowMain.get(path)?.sha256;
}

/** Paths whose content differs between the two listings, or that one side lacks. */
export function mismatches(a: Listing, b: Listing): string[] {
  const out = new Set<string>();
  for (const [p, x] of a) if (b.get(p)?.sha256 !== x.sha256) out.add(p);
  for (const p of b.keys()) if (!a.has(p)) out.add(p);
  return [...out].sort();
}

/**
 * The RPO window of an unplanned failover, as far as it can be known while main is unreachable:
 * sub holds nothing from main newer than its newest replicated file (rsync keeps main's mtimes;
 * files clients uploaded to sub after the loss are newer than `lostAt` and left out). Writes to main
 * between that file and the loss may be missing on sub: window = lostAt − newest. With no load the
 * bound is lsyncd's delay plus the transfer in flight. After main returns, failback measures it.
 */
export function rpoEstimate(o: { lostAt: number; delaySec: number; sub: Listing }): {
  lostAt: string;
  /** lostAt − newest replicated file (s); undefined when sub holds nothing older than lostAt. */
  windowSec?: number;
  newestReplicated?: string;
  /** The floor of the window when main was idle: lsyncd's delay + ~1 s in flight. */
  idleBoundSec: number;
} {
  let newest: number | undefined;
  for (const f of o.sub.values())
    if (f.mtime * 1000 <= o.lostAt && (newest === undefined || f.mtime > newest)) newest = f.mtime;
  return {
    lostAt: new Date(o.lostAt).toISOString(),
    idleBoundSec: o.delaySec + 1,
    ...(newest !== undefined
      ? {
          newestReplicated: new Date(newest * 1000).toISOString(),
          windowSec: Math.round((o.lostAt / 1000 - newest) * 100) / 100,
        }
      : {}),
  };
}

/** Measured RPO after failback: for each file only main had, its age when the failover happened. */
export function rpoMeasured(
  onlyMain: string[],
  main: Listing,
  failedAtMs: number,
): { files: number; windowSec: number } {
  let w = 0;
  for (const p of onlyMain) {
    const f = main.get(p);
    if (f) w = Math.max(w, failedAtMs / 1000 - f.mtime);
  }
  return { files: onlyMain.length, windowSec: Math.round(w * 100) / 100 };
}

/** What failback observed before deciding whether there is anything to do. */
export interface FailbackObserved {
  /** A failover record (/var/lib/wharf/failover.json) exists. */
  record: boolean;
  /** The "needs reconcile" mark exists (set by the HAProxy agent or by failover). */
  mark: boolean;
  /** main's status per backend (show stat). */
  mainStatus: Record<string, string>;
  /** `systemctl is-active lsyncd` on main. */
  lsyncd: string;
  /** The copy plan from both trees, listed now. */
  plan: FailbackPlan;
}

/**
 * Why failback has work to do; empty: nothing to do. Pure. It looks at the data, not only at its
 * own record: sub holding a file main lacks, or a newer version of one, is divergence even with no
 * record and no mark (e.g. an outage from before the agent existed). Files only main has, or newer
 * on main, are what lsyncd (active, main in rotation) is still carrying: replication lag, not a
 * reason — a pass that copied them would race lsyncd for nothing.
 */
export function failbackReasons(o: FailbackObserved, main: string, sub: string): string[] {
  const out: string[] = [];
  if (o.record) out.push('a failover is on record');
  if (o.mark) out.push(`the "needs reconcile" mark is set (${main} held in maint)`);
  const notUp = Object.entries(o.mainStatus).filter(([, s]) => !s.startsWith('UP'));
  if (notUp.length) out.push(`${main} is not in rotation (${notUp.map(([b, s]) => `${b} ${s}`).join(', ')})`);
  if (o.lsyncd !== 'active') out.push(`lsyncd on ${main} is ${o.lsyncd || 'unknown'}`);
  const onlySub = o.plan.onlySub.length;
  const subNewer = o.plan.conflicts.filter((c) => c.winner === 'sub').length;
  if (onlySub || subNewer)
    out.push(
      `the trees differ: ${onlySub} file(s) only on ${sub}, ${subNewer} newer on ${sub} (${main} lacks them)`,
    );
  return out;
}

/**
 * A node's SFTP close records (internal-sftp -l INFO, through journald) as JSON lines, with its
 * passwd file: what cutUploads reads. `--output-fields` keeps the lines short.
 */
export function closeLogCommand(sinceEpochS: number): string {
  return (
    `journalctl -q --no-pager -t internal-sftp -o json --output-fields=_UID,MESSAGE --since @${Math.floor(sinceEpochS)} 2>/dev/null; ` +
    `echo '--passwd--'; getent passwd`
  );
}

/**
 * Files (chroot-base relative: `<user>/<path>`) whose LAST write over SFTP on this node was cut:
 * internal-sftp logged `forced close` (the session ended with the file open: a client killed or a
 * connection lost mid-upload) and no client `close` after it. Such a version is a partial upload;
 * whatever its mtime, it must not win a conflict against a version a client closed. Pure.
 */
export function cutUploads(out: string): Set<string> {
  const [log = '', passwd = ''] = out.split('\n--passwd--\n');
  const userOf = new Map<string, string>();
  for (const line of passwd.split('\n')) {
    const f = line.split(':');
    if (f.length >= 3) userOf.set(f[2]!, f[0]!);
  }
  const norm = (p: string) =>
    p
      .replace(/\/(\.\/)+/g, '/')
      .replace(/^(\.?\/+)+/, '')
      .replace(/\/+/g, '/');
  const last = new Map<string, 'cut' | 'closed'>();
  for (const line of log.split('\n')) {
    if (!line.startsWith('{')) continue;
    let e: { _UID?: string; MESSAGE?: string | number[] };
    try {
      e = JSON.parse(line) as typeof e;
    } catch {
      continue;
    }
    const msg = Array.isArray(e.MESSAGE) ? Buffer.from(e.MESSAGE).toString('utf8') : e.MESSAGE;
    const m = /^(forced )?close "(.*)" bytes read \d+ written (\d+)$/.exec(msg ?? '');
    const user = userOf.get(e._UID ?? '');
    if (!m || !user || m[3] === '0') continue;
    last.set(`${user}/${norm(m[2]!)}`, m[1] ? 'cut' : 'closed');
  }
  return new Set([...last].filter(([, v]) => v === 'cut').map(([p]) => p));
}
