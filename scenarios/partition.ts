// partition: cut main ⇹ sub (the drill's partition fault: nftables netdev rules on main's lan
// interface matched on sub's MAC, entered from the host) while clients upload through the entry
// point. Uploads must go on on main (HAProxy's checks see main fine: only replication is cut), sub
// falls behind, and after the heal lsyncd catches up by itself: every acknowledged upload on main
// and on sub with its sha256; the lag after the heal is reported (heal → sub holds every upload
// acknowledged before it).
import { healFault, injectFault } from '../src/drill/faults.ts';
import type { ScheduledFault } from '../src/drill/schedule.ts';
import { sftpNode } from '../src/topology/model.ts';
import type { Scenario } from '../src/scenario/types.ts';
import { formatVerdict } from '../src/workload/checker.ts';
import { observeUploads, userRoot } from '../src/workload/remote.ts';
import { ensureScenarioLab } from './lab.ts';
import { checkEverywhere, sleep, startWorkload, until } from './outage.ts';

const HOLD_MS = 10_000;

export const partition: Scenario = {
  name: 'partition',
  description:
    'main ⇹ sub cut (nftables) under load: uploads go on on main, replication catches up after the heal, nothing lost; lag after the heal',
  async run(ctx) {
    const lab = await ensureScenarioLab(ctx.log);
    const t = lab.t;
    const main = sftpNode(t, 'main').name;
    const sub = t.replication.lsyncd.to;
    const root = userRoot(t, lab.status.demoUser.name, 'sftp');
    const fault: ScheduledFault = {
      id: 'scen-partition',
      kind: 'partition',
      targets: [main, sub],
      at: 0,
      holdMs: HOLD_MS,
      params: {},
    };
    const env = { t, status: lab.status, log: ctx.log };
    // ~20 uploads/s (2 clients, 100 ms between files): a steady stream, not a small-file burst
    const w = startWorkload(lab, {
      prefix: `part-${Date.now().toString(36)}`,
      clients: 2,
      size: 16 * 1024,
      pauseMs: 100,
    });
    let healedAt = 0;
    let cutAt = 0;
    try {
      try {
        await until(30_000, () => w.acks.length >= 10);
        cutAt = Date.now();
        ctx.log(await injectFault(env, fault));
        await sleep(HOLD_MS);
        // while cut: sub holds none of the uploads acknowledged since the cut (replication stopped)
        const during = w.acks.filter((a) => a.ackAt > cutAt + t.replication.lsyncd.delay * 1000 + 2000);
        const onSub = new Set(
          (await observeUploads(lab.status, sub, root, t.sftp.uploadDir, w.prefix)).map((f) => f.path),
        );
        ctx.check(
          `uploads go on on ${main} while it is cut from ${sub}`,
          during.length >= 20,
          `${during.length} acknowledged during the ${HOLD_MS / 1000} s cut`,
        );
        ctx.check(
          `the cut is real: ${sub} did not get them meanwhile`,
          during.length > 0 && during.every((a) => !onSub.has(a.path)),
          `${during.filter((a) => onSub.has(a.path)).length} of ${during.length} on ${sub}`,
        );
      } finally {
        ctx.log(await healFault(env, fault));
        healedAt = Date.now();
      }
      // replication catches up by itself (lsyncd retries): every upload acknowledged before the heal on sub
      const before = w.acks.filter((a) => a.ackAt <= healedAt);
      let lagMs: number | undefined;
      await until(
        (t.replication.lsyncd.delay + 60) * 1000,
        async () => {
          const have = new Set(
            (await observeUploads(lab.status, sub, root, t.sftp.uploadDir, w.prefix)).map((f) => f.path),
          );
          if (before.every((a) => have.has(a.path))) lagMs = Date.now() - healedAt;
          return lagMs !== undefined;
        },
        250,
      );
      const r = await w.stop();
      ctx.check(
        `${sub} caught up after the heal`,
        lagMs !== undefined,
        lagMs !== undefined ? `lag after the heal ${lagMs} ms` : 'not within lsyncd.delay + 60 s',
      );
      if (lagMs !== undefined) ctx.metric('lag after heal', lagMs, 'ms', { op: '<=', value: 30_000 });
      ctx.event('main ⇹ sub cut', cutAt, { until: healedAt });
      const { verdict } = await checkEverywhere(lab, r.acks, w.prefix);
      ctx.log(formatVerdict(verdict));
      ctx.check(
        `every acknowledged upload on ${main} and ${sub} with its sha256`,
        verdict.valid,
        verdict.nodes
          .map((n) => `${n.node}: ok ${n.ok}, lost ${n.lost.length}, corrupt ${n.corrupt.length}`)
          .join('; '),
      );
      ctx.metric('acknowledged', verdict.acknowledged, 'uploads');
    } finally {
      await w.stop();
      await lab.close();
    }
  },
};
export default partition;
