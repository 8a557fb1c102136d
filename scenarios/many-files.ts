// many-files: N small files in N/100 folders (WHARF_MANY_FILES, default 2000; the long variant
// 20 000). The tree is made on this host's tmpfs and uploaded with ONE OpenSSH `sftp -b` batch
// (`put -r`) through the chain (the router's WAN address → firewall → HAProxy → main), as a user's
// bulk upload would. Measured: upload time, initial sync time (upload start → sub holds all, polled
// by count), per-file lag p50/p99 (each file's arrival on sub − its write on main: ctime − mtime
// on sub, rsync keeps main's mtime; one bulk listing), inotify watches lsyncd and the notifier hold
// on main (from /proc/<pid>/fdinfo) against fs.inotify.max_user_watches, one backup run's time.
// Checks: sub holds every file within WHARF_MANY_FILES_TAIL_S (default 2 s) of the last
// acknowledged upload (the tail: sub's last ctime − sftp's exit after its last ack); every file on
// main, on sub and in backup's latest snapshot with its sha256; lsyncd watches every folder of the
// tree, below the limit.
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { $ } from '../src/exec/index.ts';
import { parseTree, treeCommand } from '../src/restore/plan.ts';
import { sftpNode } from '../src/topology/model.ts';
import { runBackupOnce, sharedHostKey, userRoot } from '../src/workload/remote.ts';
import type { Scenario, ScenarioContext } from '../src/scenario/types.ts';
import type { LabStatus } from '../src/lab/index.ts';
import type { Topology } from '../src/topology/model.ts';
import { fileTimesCommand, parseFileTimes, type FileTimes } from './arrivals.ts';
import { ensureScenarioLab, type ScenarioLab } from './lab.ts';
import { quantile, sleep } from './outage.ts';

export const DEFAULT_MANY_FILES = 2000;
const FILE_SIZE = 1024;
/** Issue 13: sub holds every file within 2 s of the last acknowledged upload of a burst. */
export const DEFAULT_TAIL_TARGET_S = 2;

export function tailTargetSeconds(): number {
  const v = process.env.WHARF_MANY_FILES_TAIL_S;
  if (v === undefined) return DEFAULT_TAIL_TARGET_S;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || n > 3600)
    throw new Error(`WHARF_MANY_FILES_TAIL_S: expected seconds in (0, 3600], got ${JSON.stringify(v)}`);
  return n;
}

export interface BurstTail {
  /** Files of the burst found on the target. */
  arrived: number;
  /** Last arrival on the target − the last acknowledged upload (ms; < 0: replication kept pace). */
  tailMs: number;
  /** Files per second from the burst's start to the last arrival on the target. */
  replicatedPerS: number;
}

/**
 * The tail of a burst, from the target's arrival times (ctime, one bulk listing; the nodes share
 * this host's clock): `startMs` when the upload began, `ackMs` when its last upload was acknowledged.
 */
export function burstTail(arrivalsMs: number[], startMs: number, ackMs: number): BurstTail | undefined {
  if (!arrivalsMs.length) return undefined;
  const last = Math.max(...arrivalsMs);
  return {
    arrived: arrivalsMs.length,
    tailMs: last - ackMs,
    replicatedPerS: arrivalsMs.length / (Math.max(last - startMs, 1) / 1000),
  };
}

export function manyFilesCount(): number {
  const v = process.env.WHARF_MANY_FILES;
  if (v === undefined) return DEFAULT_MANY_FILES;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 100 || n > 1_000_000)
    throw new Error(`WHARF_MANY_FILES: expected a whole number 100..1000000, got ${JSON.stringify(v)}`);
  return n;
}

/** The local tree: `<dir>/<name>/dNNN/fNNNNNN.bin`, 100 files per folder; path (under name) → sha256. */
function makeTree(n: number, name: string): { dir: string; sums: Map<string, string> } {
  let base = tmpdir();
  try {
    const fs = statfsSync('/dev/shm');
    if (fs.bavail * fs.bsize > n * 8192 + 64 * 1024 ** 2) base = '/dev/shm';
  } catch {
    // no /dev/shm: the temp dir
  }
  const dir = mkdtempSync(join(base, 'wharf-many-'));
  const sums = new Map<string, string>();
  for (let i = 0; i < n; i++) {
    const folder = `d${String(Math.floor(i / 100)).padStart(3, '0')}`;
    if (i % 100 === 0) mkdirSync(join(dir, name, folder), { recursive: true });
    const rel = `${folder}/f${String(i).padStart(6, '0')}.bin`;
    const buf = randomBytes(FILE_SIZE);
    writeFileSync(join(dir, name, rel), buf);
    sums.set(`${name}/${rel}`, createHash('sha256').update(buf).digest('hex'));
  }
  return { dir, sums };
}

/** inotify watches per process (`inotify wd:` lines of its fdinfo), as `pid<TAB>comm<TAB>count` lines. */
const WATCHES =
  `for p in $(systemctl show -p MainPID --value lsyncd) $(pgrep -x inotifywait); do ` +
  `[ "$p" -gt 0 ] 2>/dev/null || continue; ` +
  `printf '%s\\t%s\\t%s\\n' "$p" "$(cat /proc/$p/comm)" "$(cat /proc/$p/fdinfo/* 2>/dev/null | grep -c '^inotify wd:')"; done; ` +
  `printf 'limit\\t%s\\n' "$(sysctl -n fs.inotify.max_user_watches)"`;

/** What a burst needs of a lab: the scenario lab, or the bench's (onLabNode). */
export interface BurstLab {
  t: Topology;
  status: LabStatus;
  sh(
    node: string,
    cmd: string,
    timeoutMs?: number,
  ): Promise<{ stdout: string; stderr: string; code: number }>;
}

export interface Burst {
  n: number;
  /** The upload folder (relative to the user's chroot) and the chroot on the SFTP nodes. */
  rel: string;
  root: string;
  /** path under the chroot → sha256 */
  want: Map<string, string>;
  /** The sftp batch's exit code and stderr's last lines. */
  exitCode: number;
  error: string;
  t0: number;
  uploadMs: number;
  /** Upload start → sub holds all (polled by count), or undefined with `have` files after the wait. */
  syncMs?: number;
  have: number;
  /** Arrival (ctime) and mtime of every file on sub (one bulk listing). */
  times: Map<string, FileTimes>;
  tail?: BurstTail;
  /** CPU seconds on main during the burst: lsyncd itself, and its finished children (rsync, ssh). */
  lsyncdCpu?: { self: number; children: number };
}

/** lsyncd's CPU ticks from /proc/<pid>/stat: `utime+stime children(cutime+cstime) hz`. */
const LSYNCD_CPU =
  'p=$(systemctl show -p MainPID --value lsyncd); [ "$p" -gt 0 ] 2>/dev/null && ' +
  "awk -v hz=$(getconf CLK_TCK) '{print $14+$15, $16+$17, hz}' /proc/$p/stat";

export function parseCpu(out: string): { self: number; children: number } | undefined {
  const [a, b, hz] = out.trim().split(/\s+/).map(Number);
  if (![a, b, hz].every((x) => Number.isFinite(x)) || !hz) return undefined;
  return { self: a! / hz!, children: b! / hz! };
}

/**
 * N small files in N/100 folders, uploaded with ONE OpenSSH `sftp -b` (`put -r`) through the chain
 * (HAProxy's sftp frontend), then sub polled by count until it holds all (or 120 s + 20 ms a file),
 * then one bulk listing of arrival times on sub. The local tree is removed afterwards.
 */
export async function uploadBurst(
  lab: BurstLab,
  n: number,
  log: (line: string) => void,
  via: 'haproxy' | 'main' = 'haproxy',
): Promise<Burst> {
  const t = lab.t;
  const s = lab.status;
  const sub = t.replication.lsyncd.to;
  const root = userRoot(t, s.demoUser.name, 'sftp');
  const name = `mf-${Date.now().toString(36)}`;
  const rel = `${t.sftp.uploadDir}/${name}`;
  const local = makeTree(n, name);
  const want = new Map([...local.sums].map(([p, sha]) => [`${t.sftp.uploadDir}/${p}`, sha]));
  log(`${n} files of ${FILE_SIZE} bytes in ${Math.ceil(n / 100)} folders at ${local.dir}`);
  // through HAProxy's sftp frontend, or (measuring replication alone) straight to main
  const host = via === 'main' ? s.nodes[sftpNode(t, 'main').name]!.addresses.lan! : s.direct.host;
  const port = via === 'main' ? t.sftp.port : (s.direct.ports.sftp ?? Object.values(s.direct.ports)[0]!);
  const known = join(local.dir, 'known_hosts');
  // known_hosts names a host on port 22 without brackets
  writeFileSync(known, `${port === 22 ? host : `[${host}]:${port}`} ${sharedHostKey(t)}\n`);
  const batch = join(local.dir, 'batch');
  writeFileSync(batch, `put -r ${join(local.dir, name)} ${rel}\n`);
  const main = sftpNode(t, 'main').name;
  const cpu0 = parseCpu((await lab.sh(main, LSYNCD_CPU)).stdout);
  try {
    const t0 = Date.now();
    const up = await $({
      nothrow: true,
      quiet: true,
      timeout: 30 * 60_000,
    })`sftp -b ${batch} -i ${s.demoUser.privateKey} -P ${port} -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=${known} -o ConnectTimeout=15 ${s.demoUser.name}@${host}`;
    const uploadMs = Date.now() - t0;
    const burst: Burst = {
      n,
      rel,
      root,
      want,
      exitCode: up.exitCode ?? 128,
      error: up.stderr.trim().split('\n').slice(-3).join(' | '),
      t0,
      uploadMs,
      have: 0,
      times: new Map(),
    };
    if (burst.exitCode !== 0) return burst;
    const countSub = async () =>
      Number(
        (await lab.sh(sub, `cd '${root}' && find '${rel}' -type f 2>/dev/null | wc -l`)).stdout.trim() || 0,
      );
    const timeout = 120_000 + n * 20;
    for (const end = Date.now() + timeout; Date.now() < end; await sleep(500)) {
      burst.have = await countSub();
      if (burst.have >= n) {
        burst.syncMs = Date.now() - t0;
        break;
      }
    }
    const cpu1 = parseCpu((await lab.sh(main, LSYNCD_CPU)).stdout);
    if (cpu0 && cpu1 && cpu1.self >= cpu0.self)
      burst.lsyncdCpu = { self: cpu1.self - cpu0.self, children: cpu1.children - cpu0.children };
    const r = await lab.sh(sub, fileTimesCommand(root, rel), 300_000);
    if (r.code !== 0) throw new Error(`listing ${root}/${rel} on ${sub}: ${r.stderr.trim()}`);
    burst.times = parseFileTimes(r.stdout);
    // the tail: sub's last arrival − the last acknowledged upload (sftp -b exits after its last ack)
    burst.tail = burstTail(
      [...burst.times.values()].map((x) => x.ctimeMs),
      t0,
      t0 + uploadMs,
    );
    return burst;
  } finally {
    rmSync(local.dir, { recursive: true, force: true });
  }
}

export async function runManyFiles(ctx: ScenarioContext, lab: ScenarioLab, n: number): Promise<void> {
  const t = lab.t;
  const s = lab.status;
  const main = sftpNode(t, 'main').name;
  const sub = t.replication.lsyncd.to;
  const backup = t.replication.backup.to;
  const folders = Math.ceil(n / 100);
  const r1 = (x: number) => Math.round(x * 10) / 10;

  // 1. one sftp batch through the chain; then sub polled by count
  const b = await uploadBurst(lab, n, ctx.log);
  const { rel, root, want, uploadMs, syncMs, have, times, tail } = b;
  {
    if (
      !ctx.check(
        `${n} files uploaded in one OpenSSH sftp batch through the chain (${s.direct.host})`,
        b.exitCode === 0,
        b.exitCode === 0
          ? `${r1(uploadMs / 1000)} s, ${Math.round(n / (uploadMs / 1000))} files/s`
          : `exit ${b.exitCode}: ${b.error}`,
      )
    )
      return;
    ctx.metric('upload (one sftp batch)', r1(uploadMs / 1000), 's');
    ctx.metric('upload rate', Math.round(n / (uploadMs / 1000)), 'files/s');
    ctx.check(
      `initial sync: ${sub} holds all ${n} files`,
      syncMs !== undefined,
      syncMs !== undefined
        ? `${r1(syncMs / 1000)} s after the upload started (${r1((syncMs - uploadMs) / 1000)} s after it ended), ${Math.round(n / (syncMs / 1000))} files/s`
        : `${have}/${n} after ${Math.round((120_000 + n * 20) / 1000)} s`,
    );
    if (syncMs !== undefined) {
      ctx.metric('initial sync (upload start → all on sub)', r1(syncMs / 1000), 's');
      ctx.metric('sync rate', Math.round(n / (syncMs / 1000)), 'files/s');
    }
    // 2. the tail after the last upload, and per-file lag: arrival on sub (ctime) − written on main
    // (mtime, kept by rsync)
    const target = tailTargetSeconds();
    if (tail) {
      ctx.metric('tail after last upload', Math.round(tail.tailMs), 'ms');
      ctx.metric('replicated rate', Math.round(tail.replicatedPerS), 'files/s');
    }
    if (b.lsyncdCpu) {
      ctx.metric('lsyncd CPU on main', r1(b.lsyncdCpu.self), 's');
      ctx.metric('lsyncd children CPU (rsync, ssh)', r1(b.lsyncdCpu.children), 's');
    }
    ctx.check(
      `${sub} holds every file within ${target} s of the last acknowledged upload`,
      tail !== undefined && tail.arrived === n && tail.tailMs <= target * 1000,
      tail
        ? `${tail.arrived}/${n} on ${sub}, the last ${r1(tail.tailMs / 1000)} s after the last ack; replicated ${Math.round(tail.replicatedPerS)} files/s vs uploaded ${Math.round(n / (uploadMs / 1000))} files/s`
        : `none of ${n} on ${sub}`,
    );
    const lag = [...times.values()].map((x) => x.ctimeMs - x.mtimeMs);
    if (lag.length) {
      ctx.metric('per-file lag p50', Math.round(quantile(lag, 0.5)), 'ms');
      ctx.metric('per-file lag p99', Math.round(quantile(lag, 0.99)), 'ms');
      ctx.log(
        `per-file lag over ${lag.length} files: p50 ${Math.round(quantile(lag, 0.5))} ms, p99 ${Math.round(quantile(lag, 0.99))} ms, max ${Math.round(Math.max(...lag))} ms`,
      );
    }

    // 3. inotify watches on main against the limit
    const w = await lab.sh(main, WATCHES);
    const rows = w.stdout
      .trim()
      .split('\n')
      .map((l) => l.split('\t'));
    const limit = Number(rows.find((r) => r[0] === 'limit')?.[1]);
    const lsyncd = rows.filter((r) => r[1] === 'lsyncd').reduce((a, r) => a + Number(r[2]), 0);
    const notify = rows.filter((r) => r[1] === 'inotifywait').reduce((a, r) => a + Number(r[2]), 0);
    const dirs = Number(
      (await lab.sh(main, `find '${t.sftp.chrootBase}' -type d | wc -l`)).stdout.trim() || 0,
    );
    ctx.metric('inotify watches lsyncd', lsyncd, 'watches');
    ctx.metric('inotify watches notifier', notify, 'watches');
    ctx.metric('fs.inotify.max_user_watches', limit, 'watches');
    ctx.check(
      `lsyncd on ${main} watches every folder of the tree, below fs.inotify.max_user_watches`,
      lsyncd >= folders + 1 && lsyncd + notify < limit,
      `lsyncd ${lsyncd}, notifier ${notify} watches for ${dirs} folders under ${t.sftp.chrootBase}; limit ${limit} (${((100 * (lsyncd + notify)) / limit).toFixed(2)} % used)`,
    );

    // 4. nothing lost: sha256 of every file on main and sub, and in the backup's latest snapshot
    const verdict = async (node: string, at: string) => {
      const r = await lab.sh(node, treeCommand(at, rel), 600_000);
      const tree = parseTree(r.stdout).tree;
      let ok = 0;
      const lost: string[] = [];
      for (const [p, sha] of want) {
        if (tree.get(p)?.sha256 === sha) ok++;
        else lost.push(p);
      }
      return { ok, lost };
    };
    for (const node of [main, sub]) {
      const v = await verdict(node, root);
      ctx.check(
        `every file on ${node} with its sha256`,
        v.ok === n,
        `ok ${v.ok}/${n}${v.lost.length ? `, lost or differing: ${v.lost.slice(0, 3).join(', ')}` : ''}`,
      );
    }
    const backupMs = await runBackupOnce(s, backup);
    ctx.metric('backup run', r1(backupMs / 1000), 's');
    const vb = await verdict(backup, userRoot(t, s.demoUser.name, 'snapshot'));
    ctx.check(
      `every file in ${backup}'s latest snapshot with its sha256`,
      vb.ok === n,
      `ok ${vb.ok}/${n}, backup run ${r1(backupMs / 1000)} s${vb.lost.length ? `, lost: ${vb.lost.slice(0, 3).join(', ')}` : ''}`,
    );
  }
}

export const manyFiles: Scenario = {
  name: 'many-files',
  description:
    'N small files in N/100 folders (2000; WHARF_MANY_FILES=20000 long): sync time, tail after the last upload ≤ 2 s, per-file lag p50/p99, inotify watches vs limit, backup time, nothing lost',
  async run(ctx) {
    const n = manyFilesCount();
    const lab = await ensureScenarioLab(ctx.log);
    try {
      await runManyFiles(ctx, lab, n);
    } finally {
      await lab.close();
    }
  },
};
export default manyFiles;
