// node-loss: uploads keep working when sftp-main dies, and when it comes back nothing a client was
// told OK for is lost. Known state → 4 clients upload small files through the entry point → main→sub
// lag measured → `docker kill` sftp-main (a real kill, not a stop) → RTO = death → first upload
// acknowledged after it → the workload continues on sub → `failover --unplanned` (main to maint,
// fenced, RPO window recorded) → `docker start` main: it must stay out of rotation → `failback`
// while the workload still runs → the checker: every acknowledged upload on main, sub and, after
// one backup run, in backup's latest snapshot, with its sha256.
import { runRunbookByName } from '../src/stack/runbooks.ts';
import { nodeOfKind, sftpNode } from '../src/topology/model.ts';
import { formatVerdict } from '../src/workload/checker.ts';
import { showStat, statusOf } from '../src/failover/index.ts';
import type { Scenario, ScenarioContext } from '../src/scenario/types.ts';
import type { Transport } from '../src/transport/types.ts';
import type { Ack } from '../src/workload/ledger.ts';
import { userRoot } from '../src/workload/remote.ts';
import { ensureScenarioLab, startNode, type ScenarioLab } from './lab.ts';
import { checkEverywhere, killAndMeasureRto, measureLag, sleep, startWorkload, until } from './outage.ts';

/** How often HAProxy's view of main is read after the kill (one `show stat` over SSH each time). */
const MARKED_DOWN_POLL_MS = 200;

/**
 * The first moment (epoch ms) HAProxy shows `node` DOWN (or MAINT) in every backend that has it,
 * polled from now until then or `timeoutMs`; undefined when never seen.
 */
async function whenMarkedDown(
  lab: ScenarioLab,
  hap: Transport,
  node: string,
  timeoutMs: number,
): Promise<number | undefined> {
  let at: number | undefined;
  await until(
    timeoutMs,
    async () => {
      const st = statusOf(await showStat(hap, lab.t).catch(() => []), lab.t, node);
      const s = Object.values(st);
      if (s.length && s.every((x) => /^(DOWN|MAINT)/.test(x))) at = Date.now();
      return at !== undefined;
    },
    MARKED_DOWN_POLL_MS,
  );
  return at;
}

/** Acknowledged and failed uploads per second, from `from` to `to` (epoch ms; bins start at `from`). */
export function perSecond(times: number[], from: number, to: number): { t: number; v: number }[] {
  const n = Math.max(1, Math.ceil((to - from) / 1000));
  const bins = new Array<number>(n).fill(0);
  for (const x of times) {
    const i = Math.floor((x - from) / 1000);
    if (i >= 0 && i < n) bins[i]!++;
  }
  return bins.map((v, i) => ({ t: from + i * 1000, v }));
}

/**
 * Per-file main → sub replication lag of uploads acknowledged before `before` (epoch ms): each
 * file's ctime on sub (set when rsync renamed it into place) minus its ack time. Files sub did not
 * hold by `before` are left out (counted in `missing`). Container clocks are the host's clock.
 */
async function lagSamples(
  lab: ScenarioLab,
  acks: Ack[],
  before: number,
): Promise<{ values: number[]; missing: number }> {
  const sub = lab.t.replication.lsyncd.to;
  const root = userRoot(lab.t, lab.status.demoUser.name, 'sftp');
  const r = await lab.sh(sub, `cd '${root}' && find . -type f -printf '%P %C@\\n'`, 60_000);
  const ctime = new Map<string, number>();
  for (const line of r.stdout.split('\n')) {
    const m = /^(.*) (\d+(?:\.\d+)?)$/.exec(line.trim());
    if (m) ctime.set(m[1]!, Math.round(Number(m[2]) * 1000));
  }
  const values: number[] = [];
  let missing = 0;
  for (const a of acks.filter((x) => x.ackAt < before)) {
    const c = ctime.get(a.path.replace(/^\/+/, ''));
    if (c !== undefined && c < before) values.push(c - a.ackAt);
    else missing++;
  }
  return { values, missing };
}

export interface NodeLossResult {
  rtoMs?: number;
  lagMs?: number;
  rpo?: unknown;
  lost: number;
  acks: number;
}

/** One node-loss round on a lab in the known state (the scenario and `npm run bench` use it). */
export async function nodeLossRound(
  lab: ScenarioLab,
  ctx: Pick<ScenarioContext, 'check' | 'metric' | 'log'> &
    Partial<Pick<ScenarioContext, 'series' | 'event' | 'samples'>>,
  o: { backup?: boolean; label?: string } = {},
): Promise<NodeLossResult> {
  const t = lab.t;
  const main = sftpNode(t, 'main').name;
  const sub = t.replication.lsyncd.to;
  const hap = lab.transports.get(nodeOfKind(t, 'haproxy').name)!;
  const L = o.label ? `${o.label}: ` : '';
  const rb = (name: string, options: Record<string, boolean> = {}) =>
    runRunbookByName(name, {
      topology: t,
      inventory: lab.inventory,
      transports: lab.transports,
      log: (l) => ctx.log(`[${name}] ${l}`),
      options,
    });
  const w = startWorkload(lab, { prefix: `nl-${Date.now().toString(36)}` });
  const w0 = Date.now();
  const out: NodeLossResult = { lost: 0, acks: 0 };
  // for the report: what happened when (epoch ms)
  let died: number | undefined;
  let restarted: number | undefined;
  try {
    const warm = await until(30_000, () => w.acks.length >= 20);
    if (!ctx.check(`${L}workload running before the kill`, warm, `${w.acks.length} uploads acknowledged`))
      return out;
    const lag = await measureLag(lab, w.acks[w.acks.length - 1]!);
    if (lag !== undefined) {
      out.lagMs = lag;
      ctx.metric(`${L}main→sub lag`, lag, 'ms');
    }
    ctx.check(
      `${L}replication main → sub before the kill`,
      lag !== undefined,
      lag !== undefined ? `lag ${lag} ms` : 'not replicated',
    );

    const before = w.acks.length;
    const markedDown = whenMarkedDown(lab, hap, main, 30_000);
    const k = await killAndMeasureRto(lab, w);
    died = k.diedAt;
    ctx.event?.(`docker kill ${main}`, k.diedAt);
    const down = await markedDown;
    if (down !== undefined) {
      ctx.event?.(`HAProxy marks ${main} down`, down);
      ctx.metric(`${L}kill → marked down`, down - k.diedAt, 'ms');
    }
    if (k.rtoMs !== undefined) {
      out.rtoMs = k.rtoMs;
      ctx.metric(`${L}RTO`, k.rtoMs, 'ms', { op: '<=', value: 2000 });
      ctx.event?.('first upload acknowledged after the kill', k.diedAt + k.rtoMs);
    }
    const failsAfter = w.failures.filter((f) => f.at > k.diedAt).length;
    for (const f of w.failures.filter((x) => x.at > k.diedAt))
      ctx.log(`${L}attempt failed ${f.at - k.diedAt} ms after the kill: ${f.error}`);
    ctx.check(
      `${L}uploads resume through the entry point after docker kill ${main}`,
      k.rtoMs !== undefined,
      k.rtoMs !== undefined
        ? `RTO ${k.rtoMs} ms (kill → first ack; docker kill call took ${k.diedAt - k.calledAt} ms), ${failsAfter} failed attempt(s) retried`
        : 'no upload acknowledged within 30 s',
    );
    if (k.rtoMs === undefined) return out;
    await until(10_000, () => w.acks.filter((a) => a.ackAt > k.diedAt).length >= 20);
    ctx.check(
      `${L}workload continues on ${sub}`,
      w.acks.filter((a) => a.ackAt > k.diedAt).length >= 20,
      `${w.acks.length - before} uploads acknowledged since the kill`,
    );

    if (ctx.samples) {
      const ls = await lagSamples(lab, w.acks, k.diedAt);
      ctx.samples(`${L}main→sub lag per file (before the kill)`, ls.values, 'ms');
      ctx.log(
        `${L}lag samples: ${ls.values.length} files; ${ls.missing} acknowledged before the kill not on sub by then`,
      );
    }

    const foAt = Date.now();
    const fo = await rb('failover', { unplanned: true });
    ctx.event?.('failover --unplanned', foAt, { until: Date.now() });
    const rpo = (
      fo.details as { rpo?: { windowSec?: number; idleBoundSec: number; lostAt: string } } | undefined
    )?.rpo;
    ctx.check(
      `${L}failover --unplanned`,
      fo.ok,
      fo.ok
        ? `${(fo.durationMs / 1000).toFixed(1)} s; main lost at ${rpo?.lostAt ?? '?'} (HAProxy), RPO window estimated from sub ${rpo?.windowSec ?? '?'} s (idle floor ${rpo?.idleBoundSec ?? '?'} s)`
        : (fo.error ?? ''),
    );
    if (rpo?.windowSec !== undefined)
      ctx.metric(`${L}RPO window (estimated at failover)`, rpo.windowSec, 's');

    await startNode(lab, main);
    restarted = Date.now();
    ctx.event?.(`${main} dead`, died, { until: restarted, detail: 'docker kill → docker start' });
    await sleep(3000); // HAProxy would need rise × inter (~1 s) to take main back if it were not in maint
    const st = statusOf(await showStat(hap, t), t, main);
    ctx.check(
      `${L}${main} restarted stays out of rotation`,
      Object.values(st).every((s) => s === 'MAINT'),
      JSON.stringify(st),
    );

    // Failback pauses writes for a few seconds. All lab clients share one source address (the
    // wan-client's), and HAProxy refuses a source above 20 connections / 10 s: clients retrying
    // every 100 ms through a pause lock themselves (and the runbook's probe) out. From here on
    // their backoff starts at 3 s (doubling per failure in a row up to 5 s): 4 clients stay under it.
    w.setRetryDelay(3000);
    const fbAt = Date.now();
    const fb = await rb('failback');
    ctx.event?.('failback', fbAt, { until: Date.now() });
    const d = fb.details as
      | {
          rpo?: { files: number; windowSec: number };
          plan?: { toMain: number; toSub: number; onlyMain: string[] };
          catchUp?: number;
        }
      | undefined;
    ctx.check(
      `${L}failback`,
      fb.ok,
      fb.ok
        ? `${(fb.durationMs / 1000).toFixed(1)} s; ${d?.plan?.toMain ?? 0} file(s) sub → main, ${d?.plan?.toSub ?? 0} only on main kept and copied to sub, ${d?.catchUp ?? 0} in the catch-up pass`
        : (fb.error ?? ''),
    );
    if (d?.rpo) {
      out.rpo = d.rpo;
      ctx.metric(`${L}RPO measured (files only main had)`, d.rpo.files, 'files');
      ctx.metric(`${L}RPO window (measured at failback)`, d.rpo.windowSec, 's');
    }
    // a few uploads after the failback, on main again
    const n = w.acks.length;
    await until(10_000, () => w.acks.length >= n + 8);
  } finally {
    const res = await w.stop();
    const end = Date.now();
    ctx.series?.(
      `${L}uploads acknowledged per second`,
      perSecond(
        res.acks.map((a) => a.ackAt),
        w0,
        end,
      ),
      'uploads/s',
    );
    ctx.series?.(
      `${L}failed attempts per second`,
      perSecond(
        res.failures.map((f) => f.at),
        w0,
        end,
      ),
      'uploads/s',
    );
    if (died !== undefined && restarted === undefined)
      ctx.event?.(`${main} dead`, died, { until: end, detail: 'not restarted by the scenario' });
    out.acks = res.acks.length;
    ctx.log(
      `${L}workload: ${res.acks.length} acks, ${res.failures.length} failed attempts, ${res.abandoned.length} abandoned`,
    );
  }
  const c = await checkEverywhere(lab, w.acks, w.prefix, { backup: o.backup ?? true });
  ctx.log(formatVerdict(c.verdict));
  for (const nv of c.verdict.nodes) {
    out.lost += nv.lost.length + nv.corrupt.length;
    ctx.check(
      `${L}every acknowledged upload on ${nv.node} with its sha256`,
      nv.lost.length === 0 && nv.corrupt.length === 0,
      `acknowledged ${c.verdict.acknowledged}, ok ${nv.ok}, lost ${nv.lost.length}, corrupt ${nv.corrupt.length}, unexpected ${nv.unexpected.length}` +
        (nv.lost.length ? ` (lost: ${nv.lost.slice(0, 3).join(', ')})` : ''),
    );
  }
  ctx.metric(`${L}lost`, out.lost, 'files', { op: '<=', value: 0 });
  return out;
}

export const nodeLoss: Scenario = {
  name: 'node-loss',
  description:
    'docker kill sftp-main under load: RTO, failover --unplanned, restart, failback; every acknowledged upload on main, sub, backup',
  async run(ctx) {
    const lab = await ensureScenarioLab(ctx.log);
    try {
      await nodeLossRound(lab, ctx);
    } finally {
      await lab.close();
    }
  },
};
export default nodeLoss;
