// replication-lag: main → sub lag under a steady workload. Known state → 2 SFTP clients upload 32 KiB
// files back to back through the entry point for WHARF_LAG_SECONDS (default 12 s) → lag of every
// acknowledged upload = its arrival on sub (the file's ctime there, read in one bulk listing: rsync
// renames it into place; the nodes share this host's clock) − its acknowledgement. A poll of sub
// (one listing command per 250 ms for all uploads of the run) measures the same from the outside and
// must agree with it (polled ≥ arrival, within a poll interval and an ssh round trip). Then the
// checker: every acknowledged upload on main and sub with its sha256.
import { formatVerdict } from '../src/workload/checker.ts';
import { userRoot } from '../src/workload/remote.ts';
import type { Scenario, ScenarioContext } from '../src/scenario/types.ts';
import { fileTimes } from './arrivals.ts';
import { ensureScenarioLab, type ScenarioLab } from './lab.ts';
import { checkEverywhere, median, quantile, sleep, startWorkload, until } from './outage.ts';

const POLL_MS = 250;

export async function runReplicationLag(
  ctx: ScenarioContext,
  lab: ScenarioLab,
  seconds: number,
): Promise<void> {
  const t = lab.t;
  const sub = t.replication.lsyncd.to;
  const root = userRoot(t, lab.status.demoUser.name, 'sftp');
  const dir = t.sftp.uploadDir;
  const prefix = `lag-${Date.now().toString(36)}`;
  const seen = new Map<string, number>();
  let polls = 0;
  const poll = async () => {
    const r = await lab.sh(
      sub,
      `cd '${root}' && find '${dir}' -maxdepth 1 -type f -name '${prefix}*' -printf '%p\\n'`,
    );
    const at = Date.now();
    polls++;
    for (const p of r.stdout.split('\n')) if (p && !seen.has(p)) seen.set(p, at);
  };
  const w = startWorkload(lab, { prefix, clients: 2, size: 32 * 1024 });
  const t0 = Date.now();
  try {
    while (Date.now() - t0 < seconds * 1000) {
      await poll();
      await sleep(POLL_MS);
    }
  } finally {
    await w.stop();
  }
  const acks = w.acks;
  const rate = acks.length / seconds;
  if (
    !ctx.check(
      'steady workload through the entry point',
      acks.length >= 50,
      `${acks.length} uploads acknowledged in ${seconds} s (${rate.toFixed(1)} files/s), ${w.failures.length} failed attempts`,
    )
  )
    return;
  // keep polling until sub holds every acknowledged upload
  await until(
    (t.replication.lsyncd.delay + 30) * 1000,
    async () => {
      await poll();
      return acks.every((a) => seen.has(a.path));
    },
    POLL_MS,
  );
  const times = await fileTimes(lab, sub, root, dir, `${prefix}*`);
  const lag = acks.filter((a) => times.has(a.path)).map((a) => times.get(a.path)!.ctimeMs - a.ackAt);
  const polled = acks.filter((a) => seen.has(a.path)).map((a) => seen.get(a.path)! - a.ackAt);
  // outside view minus arrival, per file: ≥ 0 (seen after it arrived), < a poll + an ssh round trip
  const gap = acks
    .filter((a) => seen.has(a.path) && times.has(a.path))
    .map((a) => seen.get(a.path)! - times.get(a.path)!.ctimeMs);
  const ms = (x: number) => Math.round(x);
  if (lag.length) {
    ctx.metric('lag p50', ms(quantile(lag, 0.5)), 'ms');
    ctx.metric('lag p99', ms(quantile(lag, 0.99)), 'ms');
    ctx.metric('lag max', ms(Math.max(...lag)), 'ms');
  }
  if (polled.length) {
    ctx.metric('lag p50 (polled)', ms(quantile(polled, 0.5)), 'ms');
    ctx.metric('lag p99 (polled)', ms(quantile(polled, 0.99)), 'ms');
  }
  ctx.metric('uploads', acks.length, 'files');
  ctx.metric('upload rate', Math.round(rate * 10) / 10, 'files/s');
  const bound = (t.replication.lsyncd.delay + 10) * 1000;
  // a copy may land before the client records its ack (CI: −1 ms): lsyncd fires a batch once its
  // oldest event is `delay` old, so a file closed late in the batch goes at once, while the client
  // still stats the file after its close; anything earlier than 1 s would be a wrong clock or path
  ctx.check(
    `every upload on ${sub}, lag p99 ≤ lsyncd delay + 10 s`,
    lag.length === acks.length && quantile(lag, 0.99) <= bound && Math.min(...lag) >= -1000,
    `${lag.length}/${acks.length} arrived; lag p50 ${ms(quantile(lag, 0.5))} ms, p99 ${ms(quantile(lag, 0.99))} ms, min ${ms(Math.min(...lag))} ms, max ${ms(Math.max(...lag))} ms`,
  );
  const slack = POLL_MS + 1000;
  ctx.check(
    'arrival times agree with polling sub from outside',
    gap.length === acks.length && quantile(gap, 0.01) >= -50 && median(gap) <= slack,
    `${polls} polls; polled − arrival: p1 ${ms(quantile(gap, 0.01))} ms, median ${ms(median(gap))} ms, p99 ${ms(quantile(gap, 0.99))} ms (expected 0..${slack} ms)`,
  );
  const c = await checkEverywhere(lab, acks, prefix);
  ctx.log(formatVerdict(c.verdict));
  for (const nv of c.verdict.nodes)
    ctx.check(
      `every acknowledged upload on ${nv.node} with its sha256`,
      nv.ok === acks.length && !nv.lost.length && !nv.corrupt.length,
      `ok ${nv.ok}/${acks.length}, lost ${nv.lost.length}, corrupt ${nv.corrupt.length}`,
    );
}

export const lagSeconds = (): number => {
  const s = Number(process.env.WHARF_LAG_SECONDS ?? 12);
  if (!Number.isFinite(s) || s < 3 || s > 3600)
    throw new Error(`WHARF_LAG_SECONDS: expected 3..3600 seconds, got ${process.env.WHARF_LAG_SECONDS}`);
  return s;
};

export const replicationLag: Scenario = {
  name: 'replication-lag',
  description:
    'main → sub lag p50/p99 under a steady workload (arrival ctime on sub − ack, cross-checked by polling); nothing lost',
  async run(ctx) {
    const seconds = lagSeconds();
    const lab = await ensureScenarioLab(ctx.log);
    try {
      await runReplicationLag(ctx, lab, seconds);
    } finally {
      await lab.close();
    }
  },
};
export default replicationLag;
