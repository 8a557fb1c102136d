// drill: CI's short seeded chaos drill (wharf drill's engine) on the scenario lab — kill, partition
// and loss with wharf watch running, a mixed-size workload and its ledger, every fault healed, a
// failback when watch failed over, then the set checker over main, sub and backup's newest
// snapshot. The schedule is generated from a fixed seed before anything runs, saved, and read back
// identical (the replay's input). WHARF_DRILL_SEED / WHARF_DRILL_DURATION / WHARF_DRILL_FAULTS
// change it (the 10-minute drill with every kind: `npm run drill:long`).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { parseDuration } from '../src/core/duration.ts';
import {
  defaultTargets,
  drillChecks,
  drillShape,
  generateSchedule,
  parseSchedule,
  runDrill,
  sizedUploadNodes,
  type FaultKind,
} from '../src/drill/index.ts';
import { REPO_ROOT } from '../src/lab/state.ts';
import type { Scenario } from '../src/scenario/types.ts';
import { ensureScenarioLab } from './lab.ts';

// 4 clients, each pausing 300 ms between files: ~10 uploads/s, which the notifier keeps up with
const WORKLOAD = { clients: 4, pauseMs: 300 };

export const drill: Scenario = {
  name: 'drill',
  description:
    'seeded chaos drill (kill, partition, loss) under load with wharf watch: every fault healed, no acknowledged upload lost or corrupt on main, sub or backup',
  async run(ctx) {
    const lab = await ensureScenarioLab(ctx.log);
    try {
      const t = lab.t;
      const seed = Number(process.env.WHARF_DRILL_SEED ?? 8);
      const durationMs = parseDuration(process.env.WHARF_DRILL_DURATION ?? '45s', 'WHARF_DRILL_DURATION');
      const faults = (process.env.WHARF_DRILL_FAULTS ?? 'kill,partition,loss').split(',') as FaultKind[];
      // CI's drill acts on the nodes that carry the uploads (WHARF_DRILL_TARGETS=all: every stack node)
      const wanted = process.env.WHARF_DRILL_TARGETS ?? 'sftp-main,sftp-sub,haproxy-1';
      const all = defaultTargets(t, lab.status);
      const targets = wanted === 'all' ? all : wanted.split(',').filter((n) => all.includes(n));
      const spec = { seed, durationMs, faults, targets };
      const shape = drillShape(t, lab.status, await sizedUploadNodes(t, lab.status));
      const schedule = generateSchedule(t.name, spec, shape, WORKLOAD);
      const runDir = join(REPO_ROOT, '.wharf', 'drills', t.name, `scenario-${Date.now().toString(36)}`);
      const r = await runDrill({
        topology: t,
        status: lab.status,
        inventory: lab.inventory,
        transports: lab.transports,
        schedule,
        runDir,
        watch: { enabled: true, intervalMs: 1000, downForMs: 5000, autoFailback: false, settleMs: 10_000 },
        log: ctx.log,
        signal: ctx.signal,
      });
      const saved = parseSchedule(readFileSync(join(runDir, 'schedule.json'), 'utf8'), 'schedule.json');
      ctx.check(
        'the schedule saved before the run is the one the seed makes (replayable)',
        isDeepStrictEqual(saved, schedule) &&
          isDeepStrictEqual(generateSchedule(t.name, spec, shape, WORKLOAD), schedule),
        `${schedule.faults.length} faults: ${schedule.faults.map((f) => `${f.kind} ${f.targets.join('⇹')}`).join(', ')}`,
      );
      ctx.check(
        `every fault kind asked for ran (${faults.join(', ')})`,
        faults.every((k) => r.faults.some((f) => f.kind === k && f.error === null)),
        r.faults.map((f) => f.kind).join(', '),
      );
      // for the report: uploads per second with each fault as a band, the replication window
      const t0 = Date.parse(r.startedAt);
      ctx.series(
        'acknowledged uploads per second',
        r.timeline.map((b) => ({ t: t0 + b.t * 1000, v: b.acks })),
        '1/s',
      );
      ctx.series(
        'failed attempts per second',
        r.timeline.map((b) => ({ t: t0 + b.t * 1000, v: b.fails })),
        '1/s',
      );
      for (const f of r.faults)
        ctx.event(`${f.id} ${f.kind} ${f.targets.join(' ⇹ ')}`, t0 + f.at, {
          ...(f.healAt !== null ? { until: t0 + f.healAt } : {}),
          detail: `RTO ${f.rtoMs ?? '—'} ms`,
        });
      const { results, metrics } = drillChecks(r);
      for (const c of results) ctx.check(c.name, c.ok, c.detail);
      for (const m of metrics) ctx.metric(m.name, m.value, m.unit);
      ctx.check(
        'uploads were acknowledged all through the drill',
        r.verdict.acknowledged >= 50,
        `${r.verdict.acknowledged} acknowledged, ${r.workload.failedAttempts} failed attempts`,
      );

      // The checker must catch a broken runbook: the same drill machinery with failback replaced
      // by the seed's naive one (main back in rotation as it is, lsyncd with delete = true)
      // (off in CI's run for its time budget: failback-naive shows the checker catching the same
      // hazard there; WHARF_DRILL_SABOTAGE=1 and drill:long run it)
      if (process.env.WHARF_DRILL_SABOTAGE === '1') {
        const bad = generateSchedule(
          t.name,
          { seed: 3, durationMs: 30_000, faults: ['kill'], targets: [shape.main] },
          shape,
          WORKLOAD,
        );
        const b = await runDrill({
          topology: t,
          status: lab.status,
          inventory: lab.inventory,
          transports: lab.transports,
          schedule: bad,
          runDir: join(REPO_ROOT, '.wharf', 'drills', t.name, `scenario-sabotage-${Date.now().toString(36)}`),
          watch: { enabled: true, intervalMs: 1000, downForMs: 5000, autoFailback: false, settleMs: 10_000 },
          sabotage: 'naive-failback',
          log: ctx.log,
          signal: ctx.signal,
        });
        const lost = b.verdict.nodes.map((n) => `${n.node}: lost ${n.lost.length}`).join(', ');
        ctx.check(
          'a drill with a broken failback (naive, delete = true) is caught: acknowledged uploads reported lost, verdict invalid',
          b.failback.sabotaged && !b.valid && b.verdict.nodes.some((n) => n.lost.length > 0),
          `${b.failback.sabotaged ? 'sabotaged failback ran' : 'no failback was needed (no sabotage)'}; ${lost}`,
        );
        ctx.check(
          'the lab is repaired after the sabotage',
          b.steadyAfter?.ok ?? false,
          b.steadyAfter?.detail ?? '',
        );
      }
    } finally {
      await lab.close();
    }
  },
};
export default drill;
