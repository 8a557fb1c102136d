// haproxy-loss: the HAProxy pair survives the loss of its active node. Known state → clients upload
// through the entry point (router → firewall → the floating address) → round 1: the container of
// whichever HAProxy holds the floating address is killed (Engine API, as the drill's faults do),
// ≥ 3 times: uploads resume (RTO = kill → first upload started after it acknowledged), keepalived
// moved the address (the other node holds it, the firewall's neighbour entry for it now carries the
// other node's MAC), the killed node is started again and must come back as BACKUP (its
// wharf_keepalived_master gauge 0, the holder's 1) and receive its peer's stick-table updates →
// round 2: only HAProxy's main process is SIGKILLed on the active node (its container lives on),
// ≥ 3 times: same checks (keepalived's vrrp_script notices the dead process, systemd restarts
// HAProxy 5 s later as the backup) → the checker: every acknowledged upload on main and sub.
// WHARF_HAPROXY_LOSS_KILLS kills per round (CI: 1; the RTO medians: 3).
import { connect } from 'node:net';
import { labNode } from '../src/lab/node.ts';
import { waitReady } from '../src/lab/lab.ts';
import { vipHolder } from '../src/drill/faults.ts';
import { KEEPALIVED_METRIC, KEEPALIVED_PROM } from '../src/render/keepalived.ts';
import { RATE_TABLE } from '../src/render/haproxy.ts';
import { nodeOfKind, vipAddress } from '../src/topology/model.ts';
import { haproxyGroup, readReconcileMark } from '../src/failover/index.ts';
import { runRunbookByName } from '../src/stack/runbooks.ts';
import { formatVerdict } from '../src/workload/checker.ts';
import type { Scenario, ScenarioContext } from '../src/scenario/types.ts';
import { ensureScenarioLab, type ScenarioLab } from './lab.ts';
import { checkEverywhere, median, startWorkload, until, type RunningWorkload } from './outage.ts';

type Round = 'node kill' | 'process kill';

/** The MAC the firewall's neighbour table has for `addr` (`ip neigh` in its network namespace). */
async function neighbourMac(lab: ScenarioLab, addr: string): Promise<string | undefined> {
  const fw = nodeOfKind(lab.t, 'firewall').name;
  const r = await labNode(lab.t.name, fw).exec(['ip', 'neigh', 'show', addr], { timeoutMs: 10_000 });
  return /lladdr ([0-9a-f:]{17})/i.exec(r.stdout)?.[1]?.toLowerCase();
}

/** The keepalived gauge a node's notify script wrote (1 MASTER, 0 otherwise), undefined if none. */
async function gauge(lab: ScenarioLab, node: string): Promise<number | undefined> {
  const r = await labNode(lab.t.name, node).exec(['cat', KEEPALIVED_PROM], { timeoutMs: 10_000 });
  const m = new RegExp(`^${KEEPALIVED_METRIC}\\{vip="([^"]+)"\\} ([01])$`, 'm').exec(r.stdout);
  return m && m[1] === vipAddress(lab.t) ? Number(m[2]) : undefined;
}

/** One new connection through the entry point (reads the SSH banner, closes): a fresh rate-table entry. */
function touchEntry(lab: ScenarioLab): Promise<void> {
  return new Promise((resolve) => {
    const c = connect(lab.endpoint.port, lab.endpoint.host);
    const done = () => {
      c.destroy();
      resolve();
    };
    c.once('data', done);
    c.once('error', done);
    c.setTimeout(5000, done);
  });
}

/** Whether a node's HAProxy rate table holds `key` (it learnt it, or its peer pushed it). */
async function rateTableHas(lab: ScenarioLab, node: string, key: string): Promise<boolean> {
  const r = await labNode(lab.t.name, node).exec(
    [
      'sh',
      '-c',
      `echo "show table ${RATE_TABLE} key ${key}" | socat -t 2 stdio UNIX-CONNECT:${lab.t.haproxy.stats.socket}`,
    ],
    { timeoutMs: 10_000 },
  );
  return r.stdout.includes(`key=${key} `);
}

interface KillResult {
  rtoMs?: number;
  ok: boolean;
}

/** One kill of the active HAProxy (its container or its process), its checks, and the way back. */
async function killActive(
  lab: ScenarioLab,
  ctx: ScenarioContext,
  w: RunningWorkload,
  round: Round,
  i: number,
): Promise<KillResult> {
  const t = lab.t;
  const pair = t.haproxy.pair.nodes;
  const vip = vipAddress(t);
  const env = { t, status: lab.status, log: ctx.log };
  const L = `${round} ${i}: `;
  let holder: string | undefined;
  await until(30_000, async () => !!(holder = await vipHolder(env, pair)), 500);
  if (!ctx.check(`${L}one HAProxy holds ${vip} before the kill`, !!holder, holder ?? 'none within 30 s'))
    return { ok: false };
  const other = pair.find((n) => n !== holder)!;
  const macs = {
    [holder!]: (await labNode(t.name, holder!).inspect()).macs.dmz?.toLowerCase(),
    [other]: (await labNode(t.name, other).inspect()).macs.dmz?.toLowerCase(),
  };
  const macBefore = await neighbourMac(lab, vip);
  const n = labNode(t.name, holder!);
  const calledAt = Date.now();
  if (round === 'node kill') await n.kill();
  else {
    const r = await n.exec(['systemctl', 'kill', '-s', 'KILL', '--kill-whom=main', 'haproxy'], {
      timeoutMs: 10_000,
    });
    if (!ctx.check(`${L}SIGKILL HAProxy's main process on ${holder}`, r.code === 0, r.stderr.trim()))
      return { ok: false };
  }
  const diedAt = Date.now();
  ctx.event(`${round} ${holder}`, diedAt);
  // RTO: the first upload started after the kill and acknowledged
  let first: number | undefined;
  await until(30_000, () => {
    first = w.acks
      .filter((a) => (a.startedAt ?? 0) >= diedAt)
      .map((a) => a.ackAt)
      .sort((a, b) => a - b)[0];
    return first !== undefined;
  });
  const rtoMs = first !== undefined ? first - diedAt : undefined;
  ctx.check(
    `${L}uploads succeed again after the ${round} of ${holder}`,
    rtoMs !== undefined,
    rtoMs !== undefined
      ? `RTO ${rtoMs} ms (call took ${diedAt - calledAt} ms)`
      : 'no upload acknowledged within 30 s',
  );
  if (rtoMs !== undefined) ctx.metric(`${L}RTO`, rtoMs, 'ms');
  // the address moved: the other node holds it, the firewall now reaches it at the other's MAC
  let now: string | undefined;
  let mac: string | undefined;
  await until(
    15_000,
    async () => {
      now = await vipHolder(env, pair);
      mac = await neighbourMac(lab, vip);
      return now === other && mac === macs[other];
    },
    250,
  );
  ctx.check(
    `${L}${vip} moved from ${holder} to ${other}; the firewall's neighbour entry changed MAC`,
    now === other && mac === macs[other] && macBefore === macs[holder!],
    `holder now ${now ?? 'none'}; firewall: ${vip} at ${macBefore ?? '?'} before (${holder} ${macs[holder!]}), ${mac ?? '?'} after (${other} ${macs[other]})`,
  );
  // the way back: the killed node returns as BACKUP, the address stays where it is (nopreempt)
  if (round === 'node kill') {
    await n.start();
    await waitReady(lab.sshConfig, holder!, Date.now() + 300_000); // a loaded machine boots slowly
  }
  let back = false;
  let g: [number | undefined, number | undefined] = [undefined, undefined];
  await until(
    60_000,
    async () => {
      g = [await gauge(lab, holder!), await gauge(lab, other)];
      const active = (
        await n.exec(['systemctl', 'is-active', 'haproxy', 'keepalived'], { timeoutMs: 10_000 })
      ).stdout;
      back = g[0] === 0 && g[1] === 1 && !/inactive|failed|activating/.test(active);
      return back && (await vipHolder(env, pair)) === other;
    },
    500,
  );
  ctx.check(
    `${L}${holder} back as BACKUP (${KEEPALIVED_METRIC} ${holder} ${g[0] ?? '?'}, ${other} ${g[1] ?? '?'}), ${vip} stays on ${other}`,
    back,
    back ? `${((Date.now() - diedAt) / 1000).toFixed(1)} s after the kill` : 'not within 60 s',
  );
  if (round === 'node kill') {
    // peers: a new client connection lands on the holder only; the restarted node (which serves no
    // client) must get the holder's rate-table entry for that source pushed to it
    const src = lab.status.nodes['wan-client']?.addresses.wan ?? '';
    let synced = false;
    await until(
      10_000,
      async () => {
        await touchEntry(lab);
        return (synced = await rateTableHas(lab, holder!, src));
      },
      1000,
    );
    ctx.check(
      `${L}${other}'s rate-limit entry for ${src} reached ${holder} through peers`,
      synced,
      synced ? `${RATE_TABLE} key=${src} on ${holder}` : `not on ${holder} within 10 s`,
    );
  }
  return { ok: rtoMs !== undefined && back, ...(rtoMs !== undefined ? { rtoMs } : {}) };
}

export const haproxyLoss: Scenario = {
  name: 'haproxy-loss',
  description:
    'the active HAProxy of the keepalived pair killed under load (its container ×3, then its process ×3): uploads resume, the floating address moves, nothing acknowledged is lost',
  async run(ctx) {
    const lab = await ensureScenarioLab(ctx.log);
    const t = lab.t;
    try {
      if (
        !ctx.check('the stack has an HAProxy pair', t.haproxy.pair.enabled, t.haproxy.pair.nodes.join(', '))
      )
        return;
      // CI: one kill per round; the full measurement (median of ≥ 3): WHARF_HAPROXY_LOSS_KILLS=3
      const kills = Math.max(1, Number(process.env.WHARF_HAPROXY_LOSS_KILLS ?? 1));
      // 2 clients, a short pause between files: steady uploads, few connections against the
      // per-source rate limit (every lab client shares the wan-client's address)
      const w = startWorkload(lab, { prefix: `hl-${Date.now().toString(36)}`, clients: 2, pauseMs: 300 });
      const rtos: Record<Round, number[]> = { 'node kill': [], 'process kill': [] };
      try {
        const warm = await until(30_000, () => w.acks.length >= 10);
        if (
          !ctx.check('workload running before the first kill', warm, `${w.acks.length} uploads acknowledged`)
        )
          return;
        rounds: for (const round of ['node kill', 'process kill'] as const)
          for (let i = 1; i <= kills; i++) {
            const r = await killActive(lab, ctx, w, round, i);
            if (r.rtoMs !== undefined) rtos[round].push(r.rtoMs);
            if (!r.ok) break rounds;
          }
        for (const round of ['node kill', 'process kill'] as const)
          if (rtos[round].length) {
            ctx.metric(`RTO median, HAProxy ${round}`, median(rtos[round]), 'ms', {
              op: '<=',
              value: 10_000,
            });
            ctx.log(`RTO per ${round}: ${rtos[round].join(', ')} ms`);
          }
        const n = w.acks.length;
        await until(10_000, () => w.acks.length >= n + 5);
      } finally {
        const res = await w.stop();
        ctx.log(
          `workload: ${res.acks.length} acks, ${res.failures.length} failed attempts, ${res.abandoned.length} abandoned`,
        );
      }
      // main's own health checks may fail while the pair switches (a loaded machine: the SSH banner
      // later than `timeouts.check`): sub then takes writes, and main lacks them until failback, by
      // design. failback compares both trees itself; whether it had anything to do is reported.
      const mark = await readReconcileMark(haproxyGroup(t, (x) => lab.transports.get(x)));
      const fb = await runRunbookByName('failback', {
        topology: t,
        inventory: lab.inventory,
        transports: lab.transports,
        log: (l) => ctx.log(`[failback] ${l}`),
      });
      const fd = fb.details as { nothingToDo?: boolean; reasons?: string[] } | undefined;
      ctx.check(
        'failback after the run (main in rotation throughout, or reconciled)',
        fb.ok,
        fb.ok
          ? fd?.nothingToDo
            ? 'nothing to do: main stayed in rotation'
            : `main was out of rotation during the run (${mark?.why ?? (fd?.reasons ?? []).join('; ')}); reconciled in ${(fb.durationMs / 1000).toFixed(1)} s`
          : (fb.error ?? ''),
      );
      const c = await checkEverywhere(lab, w.acks, w.prefix, { backup: false });
      ctx.log(formatVerdict(c.verdict));
      let lost = 0;
      for (const nv of c.verdict.nodes) {
        lost += nv.lost.length + nv.corrupt.length;
        ctx.check(
          `every acknowledged upload on ${nv.node} with its sha256`,
          nv.lost.length === 0 && nv.corrupt.length === 0,
          `acknowledged ${c.verdict.acknowledged}, ok ${nv.ok}, lost ${nv.lost.length}, corrupt ${nv.corrupt.length}`,
        );
      }
      ctx.metric('lost', lost, 'files', { op: '<=', value: 0 });
    } finally {
      // whatever a failed run left: both HAProxy nodes running
      for (const n of t.haproxy.pair.nodes) {
        const node = labNode(t.name, n);
        const i = await node.inspectOrNull();
        if (i && !i.running) {
          await node.start();
          await waitReady(lab.sshConfig, n, Date.now() + 120_000).catch(() => undefined);
        }
      }
      await lab.close();
    }
  },
};
export default haproxyLoss;
