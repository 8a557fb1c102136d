// failover: take sftp-main out of service and serve from sftp-sub, without losing an upload.
// Planned (default): main → maint in every HAProxy backend (runtime API) → wait (bounded) for its
// sessions to end, then cut the rest → stop and disable lsyncd on main → final rsync main → sub
// (lsyncd's path; never --delete) → fence main out of sub's replication account → sub serves
// (it is `backup` in the same backends, so it takes over as soon as main is maint) → probe.
// --unplanned (main unreachable): main → maint at once (so it does not rejoin by itself when it
// boots), fence, record the moment and the RPO window; failback later measures what main alone had.
// State: /var/lib/wharf/failover.json on the haproxy node. Re-runnable: every step is idempotent.
import { Journal } from '../src/runbook/journal.ts';
import { acquireLock } from '../src/runbook/lock.ts';
import { addressOf } from '../src/topology/inventory.ts';
import { durationMs, nodeOfKind, sftpNode } from '../src/topology/model.ts';
import {
  backendsOf,
  cleanupProbe,
  clearFailoverState,
  fenced,
  listTree,
  lostAt,
  must,
  probeUpload,
  reachable,
  readFailoverState,
  rpoEstimate,
  rsyncOnMain,
  runtimeApi,
  serverStateCommands,
  sessionsOf,
  setFence,
  showStat,
  shutdownSessionsCommands,
  sleep,
  statusOf,
  writeFailoverState,
  type FailoverState,
} from '../src/failover/index.ts';
import type { Runbook, RunbookContext, RunbookResult } from './runbook.ts';

export interface StepLog {
  host: string;
  step: string;
  ok: boolean;
  ms: number;
  detail?: string;
}

/** A tiny step runner shared by failover and failback: log, journal, stop at the first failure. */
export function stepper(ctx: RunbookContext, journal: Journal) {
  const steps: StepLog[] = [];
  return {
    steps,
    async step<T>(host: string, name: string, fn: () => Promise<T>, detail?: (v: T) => string): Promise<T> {
      const t0 = Date.now();
      try {
        const v = await fn();
        const d = detail ? detail(v) : undefined;
        const s: StepLog = { host, step: name, ok: true, ms: Date.now() - t0, ...(d ? { detail: d } : {}) };
        steps.push(s);
        ctx.log(`ok   ${host}: ${name}${d ? ` — ${d}` : ''} (${s.ms} ms)`);
        journal.write({ host, step: name, result: 'ok', durationMs: s.ms, ...(d ? { detail: d } : {}) });
        return v;
      } catch (e) {
        const msg = (e as Error).message;
        steps.push({ host, step: name, ok: false, ms: Date.now() - t0, detail: msg });
        ctx.log(`FAIL ${host}: ${name} — ${msg}`);
        journal.write({ host, step: name, result: 'failed', durationMs: Date.now() - t0, error: msg });
        throw e;
      }
    },
  };
}

export function result(
  name: string,
  ctx: RunbookContext,
  t0: number,
  journal: Journal,
  steps: StepLog[],
  error: string | undefined,
  details: Record<string, unknown>,
): RunbookResult {
  const hosts: RunbookResult['hosts'] = {};
  for (const s of steps) {
    const h = (hosts[s.host] ??= { changes: 0 });
    if (s.ok) h.changes++;
    else h.failed ??= `${s.step}: ${s.detail ?? ''}`;
  }
  journal.write({
    host: '*',
    step: 'summary',
    result: error ? 'failed' : 'ok',
    durationMs: Date.now() - t0,
    ...(error ? { error } : {}),
  });
  return {
    runbook: name,
    ok: !error,
    check: ctx.check,
    changes: steps.filter((s) => s.ok).length,
    hosts,
    durationMs: Date.now() - t0,
    journal: journal.path,
    ...(error ? { error } : {}),
    exitCode: error ? 1 : 0,
    details: { ...details, steps },
  };
}

export const failover: Runbook = {
  name: 'failover',
  description: 'take sftp-main out of service and serve from sftp-sub (--unplanned when main is unreachable)',
  async run(ctx) {
    const t0 = Date.now();
    const { topology: t, inventory: inv } = ctx;
    const runsDir = ctx.runsDir ?? '.wharf/runs';
    const journal = new Journal(runsDir, t.name, 'failover', []);
    const { steps, step } = stepper(ctx, journal);
    const main = sftpNode(t, 'main').name;
    const sub = t.replication.lsyncd.to;
    const hapName = nodeOfKind(t, 'haproxy').name;
    const tr = (n: string) => {
      const x = ctx.transports.get(n);
      if (!x) throw new Error(`${n}: not in the inventory`);
      return x;
    };
    const unplannedAsked = Boolean(ctx.options.unplanned);
    const drainMs = durationMs(String(ctx.options.drainTimeout ?? '30s'));
    const details: Record<string, unknown> = { main, sub, mode: unplannedAsked ? 'unplanned' : 'planned' };
    if (ctx.check) {
      ctx.log(
        `plan: ${main} → maint in ${backendsOf(t, main).join(', ')}; ${unplannedAsked ? '' : 'drain sessions, final sync, stop lsyncd on main; '}fence ${main} on ${sub}; probe`,
      );
      return result('failover', ctx, t0, journal, [], undefined, details);
    }
    let lock: ReturnType<typeof acquireLock> | undefined;
    let error: string | undefined;
    let paused = false;
    try {
      lock = acquireLock(runsDir, t.name, 'failover');
      if (lock.tookOver) ctx.log(`warning: ${lock.tookOver}`);
      const hap = tr(hapName);
      // preflight: haproxy and sub must answer; main only for a planned failover
      await step(
        '*',
        'preflight',
        async () => {
          for (const n of [hapName, sub])
            if (!(await reachable(ctx.transports.get(n)))) throw new Error(`${n} is unreachable`);
          const up = await reachable(ctx.transports.get(main), unplannedAsked ? 3000 : 8000);
          if (!up && !unplannedAsked)
            throw new Error(`${main} is unreachable: use --unplanned to fail over without it`);
          return up;
        },
        (up) => `${main} ${up ? 'reachable' : 'unreachable'}`,
      );
      const unplanned = unplannedAsked;
      const shared = backendsOf(t, main).filter((b) => backendsOf(t, sub).includes(b));
      const pauseSub = shared.map((b) => `set server ${b}/${sub} state maint`);
      const prev = await readFailoverState(hap);
      const state0: FailoverState = {
        at: prev?.at ?? new Date().toISOString(),
        mode: prev?.mode ?? (unplanned ? 'unplanned' : 'planned'),
        main,
        sub,
        phase: 'started',
        ...(prev?.rpo ? { rpo: prev.rpo } : {}),
      };
      if (prev) ctx.log(`resuming a failover started at ${prev.at} (${prev.mode}, ${prev.phase})`);
      // when HAProxy saw main go (its checks failed): the moment of loss for the RPO window
      const seenLost = lostAt(await showStat(hap, t), t, main, Date.now());
      const state: FailoverState = {
        ...state0,
        ...(prev?.lostAt
          ? { lostAt: prev.lostAt }
          : seenLost
            ? { lostAt: new Date(seenLost).toISOString() }
            : {}),
      };
      details.at = state.at;
      if (state.lostAt) details.lostAt = state.lostAt;
      await step(
        hapName,
        'record failover state',
        () => writeFailoverState(hap, state),
        () => state.at,
      );
      // lsyncd off before writes pause (stopping it takes seconds): the final sync covers the rest
      if (!unplanned)
        await step(main, 'stop and disable lsyncd', () =>
          must(tr(main), 'systemctl disable --now lsyncd 2>&1'),
        );
      await step(
        hapName,
        `${main} → maint`,
        async () => {
          // Planned: sub is held in maint too until the final sync is done, so no client writes
          // to sub while main's last files are copied there (an upload cut on main and retried on
          // sub could otherwise be overwritten by main's half-written copy: found by the lab test).
          // New connections wait (are refused) for the drain + sync; existing ones finish on main.
          await runtimeApi(hap, t, [
            ...(unplanned ? [] : pauseSub),
            ...serverStateCommands(t, main, 'maint'),
            ...(unplanned ? serverStateCommands(t, sub, 'ready') : []),
          ]);
          paused = !unplanned;
          return statusOf(await showStat(hap, t), t, main);
        },
        (s) => JSON.stringify(s),
      );
      if (!unplanned) {
        const left = await step(
          hapName,
          `wait for ${main}'s sessions to end (≤ ${drainMs / 1000} s)`,
          async () => {
            const end = Date.now() + drainMs;
            let n = sessionsOf(await showStat(hap, t), t, main);
            while (n > 0 && Date.now() < end) {
              await sleep(250);
              n = sessionsOf(await showStat(hap, t), t, main);
            }
            return n;
          },
          (n) => (n ? `${n} session(s) still open: cutting them` : 'no session left'),
        );
        if (left > 0)
          await step(hapName, 'shutdown sessions', () =>
            runtimeApi(hap, t, shutdownSessionsCommands(t, main)),
          );
        const m = tr(main);
        // The fence comes after the final sync: when sub already refuses main, an earlier run
        // synced (or failed over unplanned) and main has taken no write since (maint, lsyncd off).
        if (await fenced(tr(sub), addressOf(inv, main, 'lan')))
          ctx.log(`skip   ${main}: final sync → ${sub} — already fenced by an earlier run`);
        else
          await step(main, `final sync → ${sub} (rsync, no delete)`, () =>
            must(m, rsyncOnMain(t, inv, 'push', { update: true }), 600_000),
          );
      } else {
        await step(hapName, `cut ${main}'s sessions`, () =>
          runtimeApi(hap, t, shutdownSessionsCommands(t, main)),
        );
        const s = tr(sub);
        const rpo = await step(
          sub,
          'RPO window (newest replicated file on sub)',
          async () =>
            rpoEstimate({
              lostAt: Date.parse(state.lostAt ?? state.at),
              delaySec: t.replication.lsyncd.delay,
              sub: await listTree(s, t),
            }),
          (r) =>
            `${main} lost at ${r.lostAt}; ` +
            (r.windowSec !== undefined
              ? `writes to it in the ${r.windowSec} s before (since the newest replicated file, ${r.newestReplicated}) may be missing on ${sub}`
              : `nothing replicated before it on ${sub}`) +
            `; failback lists them`,
        );
        state.rpo = prev?.rpo ?? rpo;
        details.rpo = state.rpo;
      }
      await step(
        sub,
        `fence ${main} out of replication`,
        async () => {
          await setFence(tr(sub), addressOf(inv, main, 'lan'), true);
          return fenced(tr(sub), addressOf(inv, main, 'lan'));
        },
        (f) => (f ? 'fenced' : 'NOT fenced'),
      );
      await step(
        hapName,
        `${sub} serves`,
        async () => {
          await runtimeApi(hap, t, serverStateCommands(t, sub, 'ready'));
          paused = false;
          const end = Date.now() + 10_000;
          for (;;) {
            const st = statusOf(await showStat(hap, t), t, sub);
            const ok = backendsOf(t, main)
              .filter((b) => backendsOf(t, sub).includes(b))
              .every((b) => st[b]?.startsWith('UP'));
            if (ok) return st;
            if (Date.now() > end) throw new Error(`${sub} is not UP: ${JSON.stringify(st)}`);
            await sleep(250);
          }
        },
        (s) => JSON.stringify(s),
      );
      const probe = await step(
        'entrypoint',
        'probe upload lands on sub',
        async () => {
          const p = await probeUpload(t, inv, tr(sub));
          if (!p.ok) throw new Error(p.detail);
          return p;
        },
        (p) => p.detail,
      );
      await cleanupProbe(probe, undefined, [tr(sub)], 0);
      details.probeMs = probe.ms;
      state.phase = 'done';
      await step(
        hapName,
        'failover complete',
        () => writeFailoverState(hap, state),
        () => `failed over since ${state.at}`,
      );
    } catch (e) {
      error = (e as Error).message;
      if (paused) {
        // a planned failover that failed before sub took over: undo, main keeps serving
        ctx.log(`failover aborted: ${main} back in rotation, lsyncd restarted, fence lifted`);
        const hap = ctx.transports.get(hapName)!;
        await runtimeApi(hap, t, [
          ...serverStateCommands(t, main, 'ready'),
          ...serverStateCommands(t, sub, 'ready'),
        ]).catch(() => '');
        await setFence(tr(sub), addressOf(inv, main, 'lan'), false).catch(() => false);
        await tr(main)
          .exec('systemctl enable --now lsyncd', { timeoutMs: 30_000 })
          .catch(() => undefined);
        await clearFailoverState(hap).catch(() => undefined);
      }
    } finally {
      lock?.release();
    }
    return result('failover', ctx, t0, journal, steps, error, details);
  },
};
export default failover;
