// large-file: one big upload through the chain and one straight to main per client — ssh2-sftp-client
// (tuned fastPut), OpenSSH `sftp` with aes128-gcm and with its default cipher — the same way in:
// both from this host without Docker's userland proxy: chain = the router's WAN address (router →
// firewall → HAProxy → main), direct = main's lan address (the host is the lan bridge's gateway).
// Alternating order, lsyncd's copy awaited between uploads (scenarios/chain-direct.ts). MB/s and
// the chain/direct ratio per client; then the checksums on main, on sub (lsyncd) and, after one
// backup run, in backup's latest snapshot (of the chain uploads; the direct ones are removed once
// on sub).
//
// Size: WHARF_LARGE_FILE_SIZE (e.g. 256MiB) or the scenario option, default 1 GiB; rounds:
// WHARF_LARGE_FILE_ROUNDS (default 1; the ratio is then the median of the rounds' ratios). The local file
// lives on tmpfs (/dev/shm) so the local disk adds no noise; the remote side writes to the node's
// overlay filesystem (Docker's overlay2 on this host's disk), which is what real uploads hit too.
import { mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { InputError } from '../src/core/errors.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LabStatus } from '../src/lab/lab.ts';
import type { Scenario, ScenarioContext } from '../src/scenario/types.ts';
import type { Topology } from '../src/topology/model.ts';
import { check } from '../src/workload/checker.ts';
import { writeRandomFile } from '../src/workload/generator.ts';
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
import {
  CLIENT_LABEL,
  CLIENTS,
  PATH_LABEL,
  PATH_TARGET,
  formatRatio,
  formatSeries,
  measureChainDirect,
  uploader,
} from './chain-direct.ts';

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

const r1 = (x: number) => Math.round(x * 10) / 10;
const r3 = (x: number) => Math.round(x * 1000) / 1000;

export interface LargeFileLab {
  t: Topology;
  status: LabStatus;
}

/** The scenario's body on a ready lab (the scenario lab, or any provisioned lab in tests/bench). */
export async function runLargeFile(
  ctx: ScenarioContext,
  lab: LargeFileLab,
  size: number,
  rounds = 1,
): Promise<void> {
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
  const settledOk = new Set<string>();
  ctx.log(
    `${(size / 1024 ** 2).toFixed(0)} MiB payload at ${local.file}; remote fs on ${main}: ${fsType || '?'}`,
  );
  const work = mkdtempSync(join(tmpdir(), 'wharf-large-'));
  const up = uploader(t, s, work);
  const clients = CLIENTS;
  // every upload (remote path) that was acknowledged, and the ones kept for the checksum checks
  const acked: string[] = [];
  const kept: string[] = [];
  const lagMs: number[] = [];
  let results: Awaited<ReturnType<typeof measureChainDirect>> = [];
  try {
    results = await measureChainDirect({
      up,
      clients,
      rounds,
      local: local.file,
      size,
      remote: (client, path, round) => `${dir}/${prefix}-${client}-${path}-${round}.bin`,
      log: ctx.log,
      onUpload(client, path, _round, u, remote) {
        const ep = labEndpoint(t, s, PATH_TARGET[path]);
        const what = `${path} upload acknowledged, ${CLIENT_LABEL[client]} (${PATH_LABEL[path]} ${ep.host}:${ep.port})`;
        if (u instanceof Error) return ctx.check(what, false, u.message);
        acked.push(remote);
        ctx.check(what, true, `${r1(u.MBs)} MB/s, ${r1(u.seconds)} s`);
      },
      // lsyncd's copy awaited (checksum on sub) before the next upload, so the next one does not
      // share the CPU with a replication still running; the direct copies are then removed (the
      // chain's stay for the checks below and the backup), which keeps the backup run short
      async settle(remote) {
        const repl = await waitForUploads(
          s,
          sub,
          sftpRoot,
          dir,
          remote.slice(dir.length + 1),
          new Map([[remote, local.sha256]]),
          120_000 + (size / 50e6) * 1000,
        );
        lagMs.push(repl.waitedMs);
        if (!repl.complete) ctx.log(`warning: ${remote} not on ${sub} after ${r1(repl.waitedMs / 1000)} s`);
        if (remote.includes('-chain-')) kept.push(remote);
        else await onLabNode(s, main, `rm -f ${sftpRoot}/${remote}`);
        if (repl.complete) settledOk.add(remote);
      },
    });
  } finally {
    rmSync(local.dir, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  }
  for (const r of results) {
    const label = CLIENT_LABEL[r.client];
    const m = r.summary;
    if (!Number.isNaN(m.chainMedian)) ctx.metric(`chain throughput, ${label}`, r1(m.chainMedian), 'MB/s');
    if (!Number.isNaN(m.directMedian)) ctx.metric(`direct throughput, ${label}`, r1(m.directMedian), 'MB/s');
    // The ratio is a measurement, not a check: speed targets live in `npm run bench`.
    if (!Number.isNaN(m.ratio)) ctx.metric(`chain/direct ratio, ${label}`, r3(m.ratio), '');
    ctx.log(
      `${label} (${r.cipher}): chain ${formatSeries(r.chainMBs)} / direct ${formatSeries(r.directMBs)} MB/s, chain/direct ${formatRatio(m)}`,
    );
  }
  // each acknowledged upload reached sub whole (checked while settling, before the next upload)
  ctx.check(
    `every acknowledged upload reached ${sub} with the same sha256 before the next one started`,
    acked.length > 0 && acked.every((p) => settledOk.has(p)),
    `${acked.filter((p) => settledOk.has(p)).length}/${acked.length} uploads`,
  );
  const acks = kept.map((path, i) => ({
    path,
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

export function largeFileRounds(): number {
  const text = process.env.WHARF_LARGE_FILE_ROUNDS;
  if (text === undefined || text === '') return 1;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 20)
    throw new InputError(
      `WHARF_LARGE_FILE_ROUNDS: expected a whole number 1–20, got ${JSON.stringify(text)}`,
    );
  return n;
}

export function makeLargeFile(size?: string): Scenario {
  return {
    name: 'large-file',
    description:
      'a large upload (1 GiB; WHARF_LARGE_FILE_SIZE) through the chain and straight to main with ssh2-sftp-client and OpenSSH sftp (aes128-gcm, default): MB/s, ratios, checksums on main, sub, backup',
    async run(ctx) {
      const bytes = largeFileSize(size);
      const rounds = largeFileRounds();
      // Loaded when the scenario runs, so `wharf scenario list` does not need the lab code.
      const { ensureScenarioLab } = await import('./lab.ts');
      const lab = await ensureScenarioLab(ctx.log);
      try {
        await runLargeFile(ctx, lab, bytes, rounds);
      } finally {
        await lab.close();
      }
    },
  };
}

export const largeFile: Scenario = makeLargeFile();
