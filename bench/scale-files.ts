// bench "scale: files": bursts of 1k, 5k (and 20k with WHARF_BENCH_FILES_20K=1: ≈ 2–4 min more on
// 2 shared cores) small files in folders of 100, each uploaded with ONE OpenSSH `sftp -b` through
// HAProxy (scenarios/many-files.ts' uploadBurst). Per size: upload files/s, replicated files/s
// (burst start → last arrival on sub), and the tail: sub's last arrival − the last acknowledged
// upload, against the target (≤ 2 s, issue 13). Between sizes lsyncd is stopped while the files go.
//   called by bench/run.ts (its lab), or on its own against the scenario lab:
//   WHARF_SCENARIO_STACK=name:octet npx tsx bench/scale-files.ts [--files 1000,5000] [--via-main]
// (--via-main: straight to main's sshd, for replication alone when HAProxy's checks flap on a loaded host)
import { pathToFileURL } from 'node:url';
import type { LabStatus } from '../src/lab/index.ts';
import type { Topology } from '../src/topology/model.ts';
import { nodeOfRole, onLabNode } from '../src/workload/remote.ts';
import { DEFAULT_TAIL_TARGET_S, uploadBurst, type BurstLab } from '../scenarios/many-files.ts';

export interface ScaleFilesRow {
  files: number;
  uploadPerS: number;
  replicatedPerS?: number;
  tailMs?: number;
  /** CPU seconds of lsyncd on main during the burst (itself / its rsync and ssh children) */
  lsyncdCpuS?: { self: number; children: number };
  /** every file on sub (by count) */
  complete: boolean;
  error?: string;
}

/** The sizes of a run: 1k and 5k; 20k when WHARF_BENCH_FILES_20K=1. */
export const scaleFileSizes = (env = process.env): number[] =>
  env.WHARF_BENCH_FILES_20K === '1' ? [1000, 5000, 20000] : [1000, 5000];

export async function scaleFiles(
  lab: BurstLab,
  sizes: number[],
  log: (line: string) => void,
  via: 'haproxy' | 'main' = 'haproxy',
): Promise<ScaleFilesRow[]> {
  const main = nodeOfRole(lab.t, 'main');
  const sub = lab.t.replication.lsyncd.to;
  const out: ScaleFilesRow[] = [];
  for (const n of sizes) {
    const b = await uploadBurst(lab, n, log, via);
    const row: ScaleFilesRow = {
      files: n,
      uploadPerS: Math.round(n / (b.uploadMs / 1000)),
      complete: b.syncMs !== undefined,
      ...(b.exitCode !== 0 && { error: `sftp exit ${b.exitCode}: ${b.error}` }),
      ...(b.lsyncdCpu && {
        lsyncdCpuS: {
          self: Math.round(b.lsyncdCpu.self * 10) / 10,
          children: Math.round(b.lsyncdCpu.children * 10) / 10,
        },
      }),
      ...(b.tail && {
        replicatedPerS: Math.round(b.tail.replicatedPerS),
        tailMs: Math.round(b.tail.tailMs),
      }),
    };
    out.push(row);
    log(
      `${n} files: upload ${row.uploadPerS} files/s, replicated ${row.replicatedPerS ?? '-'} files/s, tail ${row.tailMs ?? '-'} ms, lsyncd CPU ${row.lsyncdCpuS ? `${row.lsyncdCpuS.self} s + children ${row.lsyncdCpuS.children} s` : '-'}${row.complete ? '' : ` (${b.have}/${n} on ${sub})`}${row.error ? ` (${row.error})` : ''}`,
    );
    // the next size starts from empty folders; lsyncd stopped so the deletions cost it nothing
    const dir = `${b.root}/${b.rel}`;
    await lab.sh(main, `systemctl stop lsyncd; rm -rf '${dir}'; systemctl start lsyncd`, 600_000);
    await lab.sh(sub, `rm -rf '${dir}'`, 600_000);
  }
  return out;
}

/** bench/run.ts: one call, rows in its table. */
export async function benchScaleFiles(
  t: Topology,
  s: LabStatus,
  row: (name: string, value: string, target: string, pass?: boolean) => void,
  say: (line: string) => void,
): Promise<ScaleFilesRow[]> {
  const sizes = scaleFileSizes();
  say(`== scale: files (${sizes.join(', ')} × 1 KiB in folders of 100, one sftp batch through HAProxy)`);
  const lab: BurstLab = { t, status: s, sh: (node, cmd, ms) => onLabNode(s, node, cmd, ms) };
  const rows = await scaleFiles(lab, sizes, (l) => say(`  ${l}`));
  for (const r of rows)
    row(
      `scale: ${r.files} files (upload / replicated files/s; tail after last upload)`,
      r.error
        ? `failed: ${r.error.slice(0, 60)}`
        : `${r.uploadPerS} / ${r.replicatedPerS ?? '-'}; ${r.tailMs === undefined ? '-' : `${(r.tailMs / 1000).toFixed(1)} s`}`,
      `≤ ${DEFAULT_TAIL_TARGET_S} s`,
      !r.error && r.complete && r.tailMs !== undefined && r.tailMs <= DEFAULT_TAIL_TARGET_S * 1000,
    );
  if (!sizes.includes(20000)) say('  (20k files: WHARF_BENCH_FILES_20K=1)');
  return rows;
}

// On its own: against the scenario lab (WHARF_SCENARIO_STACK), brought to a known state first.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await import('../scripts/index.ts'); // the runbooks the lab's reset runs
  const { ensureScenarioLab } = await import('../scenarios/lab.ts');
  const a = process.argv.indexOf('--files');
  const sizes = a > 0 ? process.argv[a + 1]!.split(',').map(Number) : scaleFileSizes();
  if (!sizes.every((n) => Number.isInteger(n) && n >= 100))
    throw new Error(`--files: expected sizes ≥ 100 separated by commas, got ${process.argv[a + 1]}`);
  const lab = await ensureScenarioLab((l) => console.log(`  ${l}`));
  try {
    const via = process.argv.includes('--via-main') ? 'main' : 'haproxy';
    const rows = await scaleFiles(lab, sizes, (l) => console.log(l), via);
    console.log(JSON.stringify(rows));
  } finally {
    await lab.close();
  }
}
