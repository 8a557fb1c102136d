// large-file: one big upload through the chain and one straight to main, with the same client
// (ssh2-sftp-client, tuned fastPut) and the same way in — both from this host without Docker's
// userland proxy: chain = the router's WAN address (router → firewall → HAProxy → main), direct =
// main's lan address (the host is the lan bridge's gateway). MB/s for both and the ratio; then
// the checksums on main, on sub (lsyncd) and, after one backup run, in backup's latest snapshot.
//
// Size: WHARF_LARGE_FILE_SIZE (e.g. 256MiB) or the scenario option, default 1 GiB. The local file
// lives on tmpfs (/dev/shm) so the local disk adds no noise; the remote side writes to the node's
// overlay filesystem (Docker's overlay2 on this host's disk), which is what real uploads hit too.
import { mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LabStatus } from '../src/lab/lab.ts';
import type { Scenario, ScenarioContext } from '../src/scenario/types.ts';
import type { Topology } from '../src/topology/model.ts';
import { check } from '../src/workload/checker.ts';
import { FAST_PUT, connectSftp, writeRandomFile } from '../src/workload/generator.ts';
import {
  labEndpoint,
  nodeOfRole,
  observeUploads,
  onLabNode,
  runBackupOnce,
  userRoot,
  waitForUploads,
} from '../src/workload/remote.ts';
import { parseSize } from '../src/cli/commands/load.ts';

export const DEFAULT_LARGE_FILE_SIZE = 1024 ** 3;

/** A random file on tmpfs (falls back to the temp dir when /dev/shm is too small) and its sha256. */
export async function makeLocalFile(size: number): Promise<{ file: string; sha256: string; dir: string }> {
  const shm = '/dev/shm';
  let base = tmpdir();
  try {
    const fs = statfsSync(shm);
    if (fs.bavail * fs.bsize > size + 256 * 1024 ** 2) base = shm;
  } catch {
    // no /dev/shm: the temp dir
  }
  const dir = mkdtempSync(join(base, 'wharf-large-'));
  const file = join(dir, 'payload.bin');
  return { file, sha256: await writeRandomFile(file, size), dir };
}

export interface UploadTiming {
  seconds: number;
  MBs: number;
}

/** One fastPut of `file` to `remote` through `target`; the connection setup is not timed. */
export async function timedUpload(
  t: Topology,
  s: LabStatus,
  target: 'direct' | 'main' | 'entry',
  file: string,
  remote: string,
  size: number,
): Promise<UploadTiming> {
  const c = await connectSftp({ ...labEndpoint(t, s, target), readyTimeoutMs: 15_000 });
  try {
    const t0 = process.hrtime.bigint();
    await c.fastPut(file, remote, FAST_PUT);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    return { seconds, MBs: size / 1e6 / seconds };
  } finally {
    await c.end().catch(() => undefined);
  }
}

const r1 = (x: number) => Math.round(x * 10) / 10;
const r3 = (x: number) => Math.round(x * 1000) / 1000;

export interface LargeFileLab {
  t: Topology;
  status: LabStatus;
}

/** The scenario's body on a ready lab (the scenario lab, or any provisioned lab in tests/bench). */
export async function runLargeFile(ctx: ScenarioContext, lab: LargeFileLab, size: number): Promise<void> {
  const { t, status: s } = lab;
  const user = s.demoUser.name;
  const dir = t.sftp.uploadDir;
  const main = nodeOfRole(t, 'main');
  const sub = nodeOfRole(t, 'sub');
  const backup = nodeOfRole(t, 'backup');
  const prefix = `large-${Date.now().toString(36)}`;
  const sftpRoot = userRoot(t, user, 'sftp');
  const fsType = (await onLabNode(s, main, `stat -f -c %T ${sftpRoot}`)).stdout.trim();
  const local = await makeLocalFile(size);
  ctx.log(
    `${(size / 1024 ** 2).toFixed(0)} MiB payload at ${local.file}; remote fs on ${main}: ${fsType || '?'}`,
  );
  const paths = { chain: `${dir}/${prefix}-chain.bin`, direct: `${dir}/${prefix}-direct.bin` };
  const timing: Partial<Record<'chain' | 'direct', UploadTiming>> = {};
  const lagMs: number[] = [];
  try {
    // Chain first, then direct; each waits until lsyncd has copied it to sub, so the next upload
    // does not share the CPU with a replication still running.
    for (const [leg, target] of [
      ['chain', 'direct'],
      ['direct', 'main'],
    ] as const) {
      const ep = labEndpoint(t, s, target);
      try {
        timing[leg] = await timedUpload(t, s, target, local.file, paths[leg], size);
        ctx.check(
          `${leg} upload acknowledged (${target === 'direct' ? 'router WAN → firewall → HAProxy → main' : 'main lan'} ${ep.host}:${ep.port})`,
          true,
          `${r1(timing[leg].MBs)} MB/s, ${r1(timing[leg].seconds)} s`,
        );
      } catch (e) {
        ctx.check(`${leg} upload acknowledged (${ep.host}:${ep.port})`, false, (e as Error).message);
        continue;
      }
      const repl = await waitForUploads(
        s,
        sub,
        sftpRoot,
        dir,
        paths[leg].slice(dir.length + 1),
        new Map([[paths[leg], local.sha256]]),
        120_000 + (size / 50e6) * 1000,
      );
      lagMs.push(repl.waitedMs);
    }
  } finally {
    rmSync(local.dir, { recursive: true, force: true });
  }
  if (timing.chain && timing.direct) {
    const ratio = timing.chain.MBs / timing.direct.MBs;
    ctx.metric('chain throughput', r1(timing.chain.MBs), 'MB/s');
    ctx.metric('direct throughput', r1(timing.direct.MBs), 'MB/s');
    ctx.metric('chain/direct ratio', r3(ratio), '');
    // The ratio is a measurement, not a check: speed targets live in `npm run bench` (≥ 0.95 there).
    ctx.log(`chain ${r1(timing.chain.MBs)} MB/s / direct ${r1(timing.direct.MBs)} MB/s = ratio ${r3(ratio)}`);
  }
  const acks = (Object.keys(timing) as ('chain' | 'direct')[]).map((leg, i) => ({
    path: paths[leg],
    size,
    sha256: local.sha256,
    ackAt: Date.now(),
    client: i,
    attempts: 1,
  }));
  const short = local.sha256.slice(0, 12);
  const verdictOf = (node: string, files: Awaited<ReturnType<typeof observeUploads>>) =>
    check(acks, { [node]: files }).nodes[0]!;

  const onMain = verdictOf(main, await observeUploads(s, main, sftpRoot, dir, prefix));
  ctx.check(
    `checksums equal on ${main}`,
    acks.length > 0 && onMain.ok === acks.length,
    `${onMain.ok}/${acks.length} files sha256 ${short}…, lost ${onMain.lost.length}, corrupt ${onMain.corrupt.length}`,
  );
  const onSubFiles = await waitForUploads(
    s,
    sub,
    sftpRoot,
    dir,
    prefix,
    new Map(acks.map((a) => [a.path, a.sha256])),
    30_000,
  );
  const onSub = verdictOf(sub, onSubFiles.files);
  if (lagMs.length)
    ctx.metric('replication to sub (upload done → on sub)', r1(Math.max(...lagMs) / 1000), 's');
  ctx.check(
    `checksums equal on ${sub} (lsyncd)`,
    acks.length > 0 && onSub.ok === acks.length,
    `${onSub.ok}/${acks.length} files, lost ${onSub.lost.length}, corrupt ${onSub.corrupt.length}, on sub ≤ ${r1(Math.max(0, ...lagMs) / 1000)} s after upload`,
  );
  const backupMs = await runBackupOnce(s, backup);
  ctx.metric('backup run', r1(backupMs / 1000), 's');
  const onBackup = verdictOf(
    backup,
    await observeUploads(s, backup, userRoot(t, user, 'snapshot'), dir, prefix),
  );
  ctx.check(
    `checksums equal in ${backup}'s latest snapshot`,
    acks.length > 0 && onBackup.ok === acks.length,
    `${onBackup.ok}/${acks.length} files, lost ${onBackup.lost.length}, corrupt ${onBackup.corrupt.length}, backup run ${r1(backupMs / 1000)} s`,
  );
}

export function largeFileSize(option?: string): number {
  const text = option ?? process.env.WHARF_LARGE_FILE_SIZE;
  return text ? parseSize(text, 'WHARF_LARGE_FILE_SIZE') : DEFAULT_LARGE_FILE_SIZE;
}

export function makeLargeFile(size?: string): Scenario {
  return {
    name: 'large-file',
    description:
      'a large upload (1 GiB; WHARF_LARGE_FILE_SIZE) through the chain and straight to main: MB/s, ratio, checksums on main, sub, backup',
    async run(ctx) {
      const bytes = largeFileSize(size);
      // Loaded when the scenario runs, so `wharf scenario list` does not need the lab code.
      const { ensureScenarioLab } = await import('./lab.ts');
      const lab = await ensureScenarioLab(ctx.log);
      try {
        await runLargeFile(ctx, lab, bytes);
      } finally {
        await lab.close();
      }
    },
  };
}

export const largeFile: Scenario = makeLargeFile();
