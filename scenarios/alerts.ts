// alerts: Prometheus + Alertmanager on the monitor node deliver each fault's alert to the notify
// sink (Slack-compatible webhook and mail), and a resolved notice after the heal (issue 11):
//   (b) the backup job's empty-source guard refuses a run (guard file removed on the source, the
//       backup service started) → WharfBackupFailed; guard back + a good run → resolved;
//   (c) lsyncd stopped on main → WharfLsyncdDown; started → resolved;
//   (a) sftp-main killed (Engine API) → WharfBackendDown; started + failback → resolved.
// (a) and (b) run side by side (different nodes, different alerts: the backup pulls from sub);
// (c) after them: a dead main stops lsyncd too, so (c)'s alert would not say which fault caused it.
// Time to alert = fault → both channels' firing notice; time to resolve = the heal's start → both
// channels' resolved notice.
import { sftpNode, nodesOfKind } from '../src/topology/model.ts';
import { alertOf, readNotices, SINK_MESSAGES_PATH, type Notice } from '../src/lab/sink/index.ts';
import { labNode } from '../src/lab/node.ts';
import { runRunbookByName } from '../src/stack/runbooks.ts';
import type { Scenario, ScenarioContext } from '../src/scenario/types.ts';
import { ensureScenarioLab, startNode, type ScenarioLab } from './lab.ts';
import { until } from './outage.ts';
import { parseDuration } from '../src/core/duration.ts';

/**
 * Alerts must arrive within this long (issue 11: 2 minutes). WHARF_ALERTS_DEADLINE (e.g. 30s)
 * shortens it, for proving a check fails against a broken rule without waiting 2 minutes per check.
 */
const DEADLINE_MS = process.env.WHARF_ALERTS_DEADLINE
  ? parseDuration(process.env.WHARF_ALERTS_DEADLINE, 'WHARF_ALERTS_DEADLINE')
  : 120_000;

interface Arrival {
  /** epoch ms when both channels had it (null: not within the deadline) */
  at: number | null;
  channels: string[];
}

function sinkNode(lab: ScenarioLab): string {
  const n = nodesOfKind(lab.t, 'notify-sink')[0];
  if (!n) throw new Error(`topology ${lab.t.name} has no notify-sink node`);
  return n.name;
}

async function alertNotices(lab: ScenarioLab, since: number): Promise<Notice[]> {
  const r = await lab.sh(sinkNode(lab), `cat ${SINK_MESSAGES_PATH} 2>/dev/null || true`, 15_000);
  return readNotices(r.stdout).filter((n) => Date.parse(n.receivedAt) >= since && alertOf(n) !== null);
}

/** Wait until the sink has `alertname` with `status` on every channel since `since`. */
async function awaitAlert(
  lab: ScenarioLab,
  alertname: string,
  status: 'firing' | 'resolved',
  since: number,
  ms = DEADLINE_MS,
): Promise<Arrival> {
  const want = [
    ...(lab.t.notifications.webhook.enabled ? ['webhook'] : []),
    ...(lab.t.notifications.smtp.enabled ? ['smtp'] : []),
  ];
  let got: Notice[] = [];
  const ok = await until(
    ms,
    async () => {
      got = (await alertNotices(lab, since)).filter((n) => {
        const a = alertOf(n)!;
        return a.alertname === alertname && a.status === status;
      });
      return want.every((k) => got.some((n) => n.kind === k));
    },
    1000,
  );
  const channels = [...new Set(got.map((n) => n.kind))];
  if (!ok) return { at: null, channels };
  const at = Math.max(
    ...want.map((k) => Math.min(...got.filter((n) => n.kind === k).map((n) => Date.parse(n.receivedAt)))),
  );
  return { at, channels };
}

/** One fault: inject, await the alert, heal, await the resolved notice; checks and metrics. */
async function faultRound(
  lab: ScenarioLab,
  ctx: ScenarioContext,
  o: {
    label: string;
    alert: string;
    inject: () => Promise<void>;
    /** Returns the earliest time the fault can be over (default: when the heal returned). */
    heal: () => Promise<number | void>;
  },
): Promise<void> {
  const t0 = Date.now();
  await o.inject();
  const fired = await awaitAlert(lab, o.alert, 'firing', t0);
  const tta = fired.at === null ? null : fired.at - t0;
  if (tta !== null) ctx.metric(`${o.label}: time to alert`, tta / 1000, 's', { op: '<=', value: 120 });
  ctx.check(
    `${o.label}: ${o.alert} arrives at the notify sink (webhook + mail) within 2 min`,
    tta !== null,
    tta !== null
      ? `${(tta / 1000).toFixed(1)} s after the fault`
      : `not within ${DEADLINE_MS / 1000} s (got: ${fired.channels.join(', ') || 'nothing'})`,
  );
  ctx.event(`${o.label}: fault`, t0, { until: Date.now() });
  const h0 = Date.now();
  const over = await o.heal();
  const h1 = Date.now();
  // a resolved notice before the fault can be over (a flapping rule) fails the check
  const earliest = over ?? h1;
  // no firing notice: nothing can resolve (the check fails without waiting again)
  const resolved =
    fired.at === null
      ? { at: null, channels: [] }
      : await awaitAlert(lab, o.alert, 'resolved', Math.max(t0, fired.at));
  // from the heal's start: a heal may clear the condition before it ends (failback puts main back
  // in rotation, then probes)
  const ttr = resolved.at === null ? null : resolved.at - h0;
  if (ttr !== null)
    ctx.metric(`${o.label}: time to resolve (from the heal's start)`, ttr / 1000, 's', {
      op: '<=',
      value: 120,
    });
  ctx.check(
    `${o.label}: a resolved notice for ${o.alert} arrives after the heal (webhook + mail)`,
    ttr !== null && resolved.at! >= earliest,
    ttr !== null
      ? `${(ttr / 1000).toFixed(1)} s after the heal started (the heal took ${((h1 - h0) / 1000).toFixed(1)} s; the fault was over at the earliest ${((earliest - h0) / 1000).toFixed(1)} s after it started)`
      : `not within ${DEADLINE_MS / 1000} s (got: ${resolved.channels.join(', ') || 'nothing'})`,
  );
}

export const alerts: Scenario = {
  name: 'alerts',
  description:
    'Prometheus + Alertmanager: backup refused, lsyncd stopped, main killed → the alert at the notify sink (webhook + mail) within 2 min, resolved after the heal',
  async run(ctx) {
    const lab = await ensureScenarioLab(ctx.log);
    const t = lab.t;
    if (!t.monitoring.enabled || !nodesOfKind(t, 'monitor').length) {
      ctx.check('the topology has a monitor node with monitoring enabled', false, 'not configured so');
      return;
    }
    const main = sftpNode(t, 'main').name;
    const from = t.replication.backup.from;
    const backup = t.replication.backup.to;
    const guard = `${t.sftp.chrootBase}/${t.replication.backup.guardFile}`;
    // the same content as configure's (src/stack/desired.ts), so a later configure run finds no change
    const guardText = `wharf: replicated SFTP tree of stack ${t.name}\n`;
    const must = async (node: string, cmd: string, what: string) => {
      const r = await lab.sh(node, cmd, 120_000);
      if (r.code !== 0 && !/^systemctl start wharf-backup/.test(cmd))
        throw new Error(`${what} on ${node} failed (exit ${r.code}): ${r.stderr.trim()}`);
      return r;
    };

    const backupRefused = faultRound(lab, ctx, {
      label: 'backup refused',
      alert: 'WharfBackupFailed',
      inject: async () => {
        await must(from, `rm -f '${guard}'`, 'removing the guard file');
        const r = await must(
          backup,
          'systemctl start wharf-backup.service; systemctl show -p ExecMainStatus --value wharf-backup.service',
          'backup run',
        );
        ctx.check(
          'the empty-source guard refuses the run (exit 3)',
          r.stdout.trim().endsWith('3'),
          `backup.sh exit ${r.stdout.trim()}`,
        );
      },
      heal: async () => {
        await must(
          from,
          `printf '%s' '${guardText.replace(/'/g, "'\\''")}' > '${guard}'`,
          'restoring the guard file',
        );
        const r = await must(
          backup,
          'systemctl start wharf-backup.service; systemctl show -p ExecMainStatus --value wharf-backup.service',
          'backup run',
        );
        ctx.check(
          'a good backup run after the repair (exit 0)',
          r.code === 0 && r.stdout.trim().endsWith('0'),
          `backup.sh exit ${r.stdout.trim()}`,
        );
      },
    });
    const mainKilled = faultRound(lab, ctx, {
      label: 'main killed',
      alert: 'WharfBackendDown',
      inject: () => labNode(t.name, main).kill(),
      heal: async () => {
        await startNode(lab, main);
        // main serves again at the earliest once its node is up (failback puts it back in rotation)
        const back = Date.now();
        const fb = await runRunbookByName('failback', {
          topology: t,
          inventory: lab.inventory,
          transports: lab.transports,
          log: (l) => ctx.log(`[failback] ${l}`),
        });
        ctx.check(
          'failback after main is back',
          fb.ok,
          fb.ok ? `${(fb.durationMs / 1000).toFixed(1)} s` : String(fb.error),
        );
        return back;
      },
    });
    const [a, b] = await Promise.allSettled([mainKilled, backupRefused]);
    for (const r of [a, b]) if (r.status === 'rejected') throw r.reason;

    await faultRound(lab, ctx, {
      label: 'lsyncd stopped',
      alert: 'WharfLsyncdDown',
      inject: async () => void (await must(main, 'systemctl stop lsyncd', 'stopping lsyncd')),
      heal: async () => void (await must(main, 'systemctl start lsyncd', 'starting lsyncd')),
    });
  },
};
