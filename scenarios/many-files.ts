// many-files: N small files in N/100 folders (WHARF_MANY_FILES, default 2000; the long variant
// 20 000). The tree is made on this host's tmpfs and uploaded with ONE OpenSSH `sftp -b` batch
// (`put -r`) through the chain (the router's WAN address → firewall → HAProxy → main), as a user's
// bulk upload would. Measured: upload time, initial sync time (upload start → sub holds all, polled
// by count), per-file lag p50/p99 (each file's arrival on sub − its write on main: ctime − mtime
// on sub, rsync keeps main's mtime; one bulk listing), inotify watches lsyncd and the notifier hold
// on main (from /proc/<pid>/fdinfo) against fs.inotify.max_user_watches, one backup run's time.
// Checks: every file on main, on sub and in backup's latest snapshot with its sha256; lsyncd
// watches every folder of the tree, below the limit.
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { $ } from '../src/exec/index.ts';
import { parseTree, treeCommand } from '../src/restore/plan.ts';
import { sftpNode } from '../src/topology/model.ts';
import { runBackupOnce, sharedHostKey, userRoot } from '../src/workload/remote.ts';
import type { Scenario, ScenarioContext } from '../src/scenario/types.ts';
import { fileTimes } from './arrivals.ts';
import { ensureScenarioLab, type ScenarioLab } from './lab.ts';
import { quantile, sleep } from './outage.ts';

export const DEFAULT_MANY_FILES = 2000;
const FILE_SIZE = 1024;

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

export async function runManyFiles(ctx: ScenarioContext, lab: ScenarioLab, n: number): Promise<void> {
  const t = lab.t;
  const s = lab.status;
  const main = sftpNode(t, 'main').name;
  const sub = t.replication.lsyncd.to;
  const backup = t.replication.backup.to;
  const root = userRoot(t, s.demoUser.name, 'sftp');
  const name = `mf-${Date.now().toString(36)}`;
  const rel = `${t.sftp.uploadDir}/${name}`;
  const folders = Math.ceil(n / 100);
  const r1 = (x: number) => Math.round(x * 10) / 10;

  const local = makeTree(n, name);
  const want = new Map([...local.sums].map(([p, sha]) => [`${t.sftp.uploadDir}/${p}`, sha]));
  ctx.log(`${n} files of ${FILE_SIZE} bytes in ${folders} folders at ${local.dir}`);
  const port = s.direct.ports.sftp ?? Object.values(s.direct.ports)[0]!;
  const known = join(local.dir, 'known_hosts');
  // known_hosts names a host on port 22 without brackets
  writeFileSync(known, `${port === 22 ? s.direct.host : `[${s.direct.host}]:${port}`} ${sharedHostKey(t)}\n`);
  const batch = join(local.dir, 'batch');
  writeFileSync(batch, `put -r ${join(local.dir, name)} ${rel}\n`);
  try {
    // 1. one sftp batch through the chain; sub polled by count meanwhile
    const countSub = async () =>
      Number(
        (await lab.sh(sub, `cd '${root}' && find '${rel}' -type f 2>/dev/null | wc -l`)).stdout.trim() || 0,
      );
    const t0 = Date.now();
    const up = $({
      nothrow: true,
      quiet: true,
      timeout: 30 * 60_000,
    })`sftp -b ${batch} -i ${s.demoUser.privateKey} -P ${port} -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=${known} -o ConnectTimeout=15 ${s.demoUser.name}@${s.direct.host}`;
    const uploaded = await up;
    const uploadMs = Date.now() - t0;
    if (
      !ctx.check(
        `${n} files uploaded in one OpenSSH sftp batch through the chain (${s.direct.host}:${port})`,
        uploaded.exitCode === 0,
        uploaded.exitCode === 0
          ? `${r1(uploadMs / 1000)} s, ${Math.round(n / (uploadMs / 1000))} files/s`
          : `exit ${uploaded.exitCode}: ${uploaded.stderr.trim().split('\n').slice(-3).join(' | ')}`,
      )
    )
      return;
    ctx.metric('upload (one sftp batch)', r1(uploadMs / 1000), 's');
    ctx.metric('upload rate', Math.round(n / (uploadMs / 1000)), 'files/s');
    const timeout = 120_000 + n * 20;
    let have = 0;
    let syncMs: number | undefined;
    for (const end = Date.now() + timeout; Date.now() < end; await sleep(500)) {
      have = await countSub();
      if (have >= n) {
        syncMs = Date.now() - t0;
        break;
      }
    }
    ctx.check(
      `initial sync: ${sub} holds all ${n} files`,
      syncMs !== undefined,
      syncMs !== undefined
        ? `${r1(syncMs / 1000)} s after the upload started (${r1((syncMs - uploadMs) / 1000)} s after it ended), ${Math.round(n / (syncMs / 1000))} files/s`
        : `${have}/${n} after ${timeout / 1000} s`,
    );
    if (syncMs !== undefined) {
      ctx.metric('initial sync (upload start → all on sub)', r1(syncMs / 1000), 's');
      ctx.metric('sync rate', Math.round(n / (syncMs / 1000)), 'files/s');
    }

    // 2. per-file lag: arrival on sub (ctime) − written on main (mtime, kept by rsync)
    const times = await fileTimes(lab, sub, root, rel);
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
  } finally {
    rmSync(local.dir, { recursive: true, force: true });
  }
}

export const manyFiles: Scenario = {
  name: 'many-files',
  description:
    'N small files in N/100 folders (2000; WHARF_MANY_FILES=20000 long): sync time, per-file lag p50/p99, inotify watches vs limit, backup time, nothing lost',
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
