#!/usr/bin/env -S npx tsx
// The long drill (`npm run drill:long`): every fault kind on every stack node for 10 minutes
// (WHARF_DRILL_DURATION), seed fixed (WHARF_DRILL_SEED, default 7), run twice from the same
// schedule (the second run is a replay of the first one's schedule.json). The scenario lab is made
// with size-limited upload disks (disk-full needs them) and provisioned first. Prints each run's
// verdict table, RTO per fault kind and lag after heals; exit 1 when either run is not valid.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { parseDuration } from '../src/core/duration.ts';
import {
  FAULT_KINDS,
  defaultTargets,
  drillShape,
  formatDrillVerdict,
  generateSchedule,
  parseSchedule,
  runDrill,
  sizedUploadNodes,
  steadyState,
  type DrillResult,
} from '../src/drill/index.ts';
import { UPLOAD_DISK_ENV } from '../src/lab/disks.ts';
import { labStatus, labUp } from '../src/lab/lab.ts';
import { provisionLab } from '../src/lab/provision.ts';
import { REPO_ROOT } from '../src/lab/state.ts';
import { labHandle, resetScenarioLab, scenarioTopology } from './lab.ts';
import './index.ts';
import '../scripts/index.ts';

const log = (l: string) => process.stderr.write(l + '\n');
// 8 GiB: ten minutes of the drill's workload is ~2 GB on the node taking the writes (a disk the
// workload itself fills would be a disk-full of its own, not the scheduled one)
process.env[UPLOAD_DISK_ENV] ??= '8GiB';
const { file, t } = scenarioTopology();
log(`drill:long on ${t.name}: lab up with upload disks of ${process.env[UPLOAD_DISK_ENV]}, provision`);
await labUp(t, { topologyFile: file, log });
// SFTP nodes recreated with their new disks are empty: HAProxy rightly holds main out until a
// failback (the reset below runs it); provisioning's verify fails until then
await provisionLab(t, log).catch((e: Error) =>
  log(`provision: ${e.message.split('\n')[0]}; reset (failback), then the steady state`),
);
const lab = labHandle(t, await labStatus(t), log);
await resetScenarioLab(lab);
const steady = await steadyState({ topology: t, inventory: lab.inventory, transports: lab.transports });
if (!steady.ok) throw new Error(`the lab is not in its steady state: ${steady.detail}`);
const seed = Number(process.env.WHARF_DRILL_SEED ?? 7);
const durationMs = parseDuration(process.env.WHARF_DRILL_DURATION ?? '10m', 'WHARF_DRILL_DURATION');
const shape = drillShape(t, lab.status, await sizedUploadNodes(t, lab.status));
const schedule = generateSchedule(
  t.name,
  { seed, durationMs, faults: [...FAULT_KINDS], targets: defaultTargets(t, lab.status) },
  shape,
  { clients: 4, pauseMs: 300 },
);
const results: DrillResult[] = [];
let replayed = schedule;
for (const round of [1, 2]) {
  const runDir = join(REPO_ROOT, '.wharf', 'drills', t.name, `long-${Date.now().toString(36)}-${round}`);
  log(`\n=== drill ${round}/2 (seed ${seed}${round === 2 ? ', replay of run 1' : ''}): ${runDir}`);
  const r = await runDrill({
    topology: t,
    status: lab.status,
    inventory: lab.inventory,
    transports: lab.transports,
    schedule: replayed,
    runDir,
    watch: { enabled: true, intervalMs: 1000, downForMs: 5000, autoFailback: false, settleMs: 10_000 },
    log,
  });
  results.push(r);
  replayed = parseSchedule(readFileSync(join(runDir, 'schedule.json'), 'utf8'), 'schedule.json');
  // the second run starts from the same known state (empty upload folders, no failover)
  if (round === 1) await resetScenarioLab(lab);
}
await lab.close();

const same = isDeepStrictEqual(replayed, schedule);
for (const [i, r] of results.entries()) {
  console.log(
    `\n## run ${i + 1}: ${r.ok ? 'ok' : 'NOT ok'}, ${(r.durationMs / 1000).toFixed(0)} s, ${r.runDir}`,
  );
  console.log(formatDrillVerdict(r.verdict));
  console.log('RTO per fault kind (median / max, ms):');
  for (const [k, v] of Object.entries(r.rto))
    console.log(`  ${k.padEnd(10)} ${v.median} / ${v.max} (${v.n})`);
  const lags = r.faults.map((f) => f.lagAfterHealMs).filter((x): x is number => x !== null);
  console.log(
    `lag after heals: ${lags.length} measured, max ${Math.max(0, ...lags)} ms; ${r.faults.length - lags.length} not caught up before the final read`,
  );
  console.log(
    `faults with an error: ${
      r.faults
        .filter((f) => f.error)
        .map((f) => `${f.id} ${f.error}`)
        .join('; ') || 'none'
    }`,
  );
}
console.log(`\nsame schedule both runs: ${same ? 'yes' : 'NO'}`);
process.exit(results.every((r) => r.valid) && same ? 0 : 1);
