#!/usr/bin/env -S npx tsx
// failover: take sftp-main out of service and serve from sftp-sub, without losing an upload.
// Planned (default): stop lsyncd on main → main → maint in every HAProxy backend, sub held in maint
// too (writes pause) → wait (bounded by --drain-timeout) for main's sessions to end, then cut the
// rest → final rsync main → sub (lsyncd's path; never --delete) → fence main out of sub's
// replication account → sub serves (point of no return) → probe.
// --unplanned (main unreachable): main → maint at once (so it does not rejoin by itself when it
// boots), fence, record the moment and the RPO window; failback later measures what main alone had.
// Both modes set the "needs reconcile" mark (/var/lib/wharf/needs-reconcile on the haproxy node):
// HAProxy's agent then holds main in maint across reloads, restarts and reboots until failback.
// State: /var/lib/wharf/failover.json on the haproxy node. Re-runnable: every step is idempotent,
// and a run that stops before sub serves undoes its steps in reverse (each undo reported).
import { z } from 'zod';
import { sleep } from 'zx';
import { defineRunbook, registerRunbook, type RunbookContext } from '../src/runbook/registry.ts';
import { booleanOption, durationOption } from '../src/runbook/options.ts';
import { runStepPlan, type Step, type StepPlan } from '../src/runbook/steps.ts';
import { runAsScript } from '../src/cli/standalone.ts';
import { addressOf } from '../src/topology/inventory.ts';
import { sftpNode } from '../src/topology/model.ts';
import { haproxyGroup } from '../src/failover/pair.ts';
import {
  FAILOVER_STATE,
  backendsOf,
  cleanupProbe,
  clearFailoverState,
  fenced,
  RECONCILE_MARK,
  clearReconcileMark,
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
  setReconcileMark,
  showStat,
  shutdownSessionsCommands,
  statusOf,
  writeFailoverState,
  type FailoverState,
} from '../src/failover/index.ts';

export const failoverOptions = z.object({
  unplanned: booleanOption('main is unreachable: promote sub now (no drain, no final sync)'),
  drainTimeout: durationOption(
    '30s',
    "planned: how long main's sessions may take to end before they are cut",
  ),
});
type Options = z.output<typeof failoverOptions>;

/** Observe (failover record on HAProxy), then the plan of steps. */
export async function planFailover(ctx: RunbookContext<Options>): Promise<StepPlan> {
  const { topology: t, inventory: inv } = ctx;
  const main = sftpNode(t, 'main').name;
  const sub = t.replication.lsyncd.to;
  // every HAProxy (both of a pair): admin states, the record and the mark go to each
  const tr = (n: string) => {
    const x = ctx.transports.get(n);
    if (!x) throw new Error(`${n}: not in the inventory`);
    return x;
  };
  const hap = haproxyGroup(t, (n) => ctx.transports.get(n));
  const hapName = hap.host;
  const unplanned = ctx.options.unplanned;
  const drainMs = ctx.options.drainTimeout;
  const mainAddr = addressOf(inv, main, 'lan');
  const shared = backendsOf(t, main).filter((b) => backendsOf(t, sub).includes(b));
  const prev = (await reachable(hap, 5000)) ? await readFailoverState(hap) : null;
  const details: Record<string, unknown> = { main, sub, mode: unplanned ? 'unplanned' : 'planned' };
  const state: FailoverState = {
    at: prev?.at ?? new Date().toISOString(),
    mode: prev?.mode ?? (unplanned ? 'unplanned' : 'planned'),
    main,
    sub,
    phase: 'started',
    ...(prev?.rpo ? { rpo: prev.rpo } : {}),
    ...(prev?.lostAt ? { lostAt: prev.lostAt } : {}),
  };
  details.at = state.at;
  const inMaint = {
    what: `${main} still in maint in ${backendsOf(t, main).join(', ')}`,
    check: async () => {
      const st = statusOf(await showStat(hap, t), t, main);
      return Object.values(st).every((s) => s === 'MAINT') || JSON.stringify(st);
    },
  };
  const readyBoth = [...serverStateCommands(t, main, 'ready'), ...serverStateCommands(t, sub, 'ready')];
  const pauseSub = shared.map((b) => `set server ${b}/${sub} state maint`);
  const toMaint = [
    ...(unplanned ? [] : pauseSub),
    ...serverStateCommands(t, main, 'maint'),
    ...(unplanned ? serverStateCommands(t, sub, 'ready') : []),
  ];
  let sessionsLeft = 0;
  const steps: Step[] = [
    {
      id: 'preflight',
      host: '*',
      action: `${hapName} and ${sub} answer${unplanned ? '' : `, ${main} answers`}`,
      why: 'nothing changes unless the hosts the failover needs answer over SSH',
      readOnly: true,
      run: async () => {
        if (!(await reachable(hap))) throw new Error(`${hapName} is unreachable`);
        if (!(await reachable(ctx.transports.get(sub)))) throw new Error(`${sub} is unreachable`);
        const up = await reachable(ctx.transports.get(main), unplanned ? 3000 : 8000);
        if (!up && !unplanned)
          throw new Error(`${main} is unreachable: use --unplanned to fail over without it`);
        return `${main} ${up ? 'reachable' : 'unreachable'}`;
      },
    },
    {
      id: 'record-state',
      host: hapName,
      action: prev ? `resume the failover record of ${prev.at}` : `record the failover in ${FAILOVER_STATE}`,
      why: prev
        ? `a failover started at ${prev.at} (${prev.mode}, ${prev.phase}) is on record: this run resumes it`
        : 'failback and later runs read it (when, which mode, the RPO window)',
      ...(prev || unplanned
        ? {}
        : {
            undo: {
              host: hapName,
              action: 'close the failover record',
              commands: [`mv -f ${FAILOVER_STATE} /var/lib/wharf/failover.last.json`],
              run: () => clearFailoverState(hap),
            },
          }),
      run: async () => {
        if (prev) ctx.log(`resuming a failover started at ${prev.at} (${prev.mode}, ${prev.phase})`);
        // when HAProxy saw main go (its checks failed): the moment of loss for the RPO window
        const seen = state.lostAt ? undefined : lostAt(await showStat(hap, t), t, main, Date.now());
        if (seen) state.lostAt = new Date(seen).toISOString();
        if (state.lostAt) details.lostAt = state.lostAt;
        await writeFailoverState(hap, state);
        return state.at;
      },
    },
  ];
  if (!unplanned)
    steps.push({
      id: 'stop-lsyncd',
      host: main,
      action: 'stop and disable lsyncd',
      why: 'stopping it takes seconds, so before writes pause; the final sync covers what it had not sent',
      undo: {
        host: main,
        action: 'enable and start lsyncd again',
        commands: ['systemctl enable --now lsyncd'],
        run: () => must(tr(main), 'systemctl enable --now lsyncd 2>&1', 30_000),
      },
      run: async () => void (await must(tr(main), 'systemctl disable --now lsyncd 2>&1')),
    });
  steps.push({
    id: 'main-maint',
    host: hapName,
    action: `${main} → maint`,
    why: unplanned
      ? `${main} is lost: in maint it cannot rejoin by itself when it boots; ${sub} (backup server) takes over`
      : `new sessions stop going to ${main}; ${sub} is held in maint too until the final sync is done, so nobody writes to ${sub} while main's last files are copied there`,
    ...(unplanned
      ? {}
      : {
          undo: {
            host: hapName,
            action: `${main} and ${sub} → ready (main serves again)`,
            commands: readyBoth,
            run: () => runtimeApi(hap, t, readyBoth),
          },
        }),
    run: async () => {
      await runtimeApi(hap, t, toMaint);
      return JSON.stringify(statusOf(await showStat(hap, t), t, main));
    },
  });
  // non-preemptive failover: the HAProxy agent answers "maint" for main while the mark exists,
  // also after a reload/restart of HAProxy or a reboot of main; only failback clears it
  let marked = false;
  steps.push({
    id: 'mark',
    host: hapName,
    action: `mark ${main} "needs reconcile" (${RECONCILE_MARK})`,
    why: `while it exists HAProxy's agent holds ${main} in maint (a reload, restart or reboot cannot put it back): ${sub} takes writes ${main} will lack until failback has reconciled`,
    undo: {
      host: hapName,
      action: 'remove the mark this run set',
      commands: [`rm -f ${RECONCILE_MARK}`],
      run: async () => {
        if (marked) await clearReconcileMark(hap, false, t.haproxy.stats.socket);
      },
    },
    run: async () => {
      marked = await setReconcileMark(
        hap,
        `failover${unplanned ? ' --unplanned' : ''}`,
        `failover of ${main} to ${sub}`,
      );
      return marked ? 'set' : { skipped: 'already set' };
    },
  });
  if (!unplanned) {
    steps.push(
      {
        id: 'drain',
        host: hapName,
        action: `wait for ${main}'s sessions to end (≤ ${drainMs / 1000} s)`,
        why: 'uploads in progress on main finish there rather than being cut',
        guard: inMaint,
        readOnly: true,
        run: async () => {
          const end = Date.now() + drainMs;
          let n = sessionsOf(await showStat(hap, t), t, main);
          while (n > 0 && Date.now() < end) {
            await sleep(250);
            n = sessionsOf(await showStat(hap, t), t, main);
          }
          sessionsLeft = n;
          return n ? `${n} session(s) still open: cutting them` : 'no session left';
        },
      },
      {
        id: 'cut-sessions',
        host: hapName,
        action: `cut ${main}'s remaining sessions`,
        why: 'the drain timeout bounds the pause; a cut upload is retried by its client and lands on sub',
        run: async () => {
          if (!sessionsLeft) return { skipped: 'no session left' };
          await runtimeApi(hap, t, shutdownSessionsCommands(t, main));
          return `${sessionsLeft} session(s) cut`;
        },
      },
      {
        id: 'final-sync',
        host: main,
        action: `final sync → ${sub} (rsync, no delete)`,
        why: `what lsyncd had not sent yet reaches ${sub} before it serves; skipped when ${sub} already refuses ${main} (an earlier run synced, main took no write since)`,
        guard: inMaint,
        run: async () => {
          if (await fenced(tr(sub), mainAddr)) return { skipped: 'already fenced by an earlier run' };
          await must(tr(main), rsyncOnMain(t, inv, 'push', { update: true }), 600_000);
        },
      },
    );
  } else {
    steps.push(
      {
        id: 'cut-sessions',
        host: hapName,
        action: `cut ${main}'s sessions`,
        why: `sessions still attached to the lost ${main} are cut so clients reconnect to ${sub}`,
        run: async () => void (await runtimeApi(hap, t, shutdownSessionsCommands(t, main))),
      },
      {
        id: 'rpo',
        host: sub,
        action: 'RPO window (newest replicated file on sub)',
        why: `uploads made to ${main} after its last replicated file may be missing on ${sub}: failback lists them`,
        readOnly: true,
        run: async () => {
          const rpo = rpoEstimate({
            lostAt: Date.parse(state.lostAt ?? state.at),
            delaySec: t.replication.lsyncd.delay,
            sub: await listTree(tr(sub), t),
          });
          state.rpo = prev?.rpo ?? rpo;
          details.rpo = state.rpo;
          return (
            `${main} lost at ${rpo.lostAt}; ` +
            (rpo.windowSec !== undefined
              ? `writes to it in the ${rpo.windowSec} s before (since the newest replicated file, ${rpo.newestReplicated}) may be missing on ${sub}`
              : `nothing replicated before it on ${sub}`) +
            '; failback lists them'
          );
        },
      },
    );
  }
  steps.push(
    {
      id: 'fence',
      host: sub,
      action: `fence ${main} out of replication`,
      why: `${main}'s lsyncd (enabled at boot) must not overwrite what ${sub} takes from now on`,
      ...(unplanned
        ? {}
        : {
            undo: {
              host: sub,
              action: `lift the fence on ${main}`,
              commands: [`remove "!${mainAddr}" from the from= pattern of ~sync/.ssh/authorized_keys`],
              run: () => setFence(tr(sub), mainAddr, false),
            },
          }),
      run: async () => {
        await setFence(tr(sub), mainAddr, true);
        if (!(await fenced(tr(sub), mainAddr))) throw new Error('NOT fenced after writing the keys');
        return 'fenced';
      },
    },
    {
      id: 'sub-serves',
      host: hapName,
      action: `${sub} serves`,
      why: `${sub} → ready in ${shared.join(', ')}; as the backup server it takes the writes while ${main} is in maint`,
      commits: `${sub} takes writes from here: going back would split the data (re-run failover to finish, or failback)`,
      run: async () => {
        await runtimeApi(hap, t, serverStateCommands(t, sub, 'ready'));
        const end = Date.now() + 10_000;
        for (;;) {
          const st = statusOf(await showStat(hap, t), t, sub);
          if (shared.every((b) => st[b]?.startsWith('UP'))) return JSON.stringify(st);
          if (Date.now() > end) throw new Error(`${sub} is not UP: ${JSON.stringify(st)}`);
          await sleep(250);
        }
      },
    },
    {
      id: 'probe',
      host: 'entrypoint',
      action: 'probe upload lands on sub',
      why: 'proves the entry point writes to sub end to end',
      readOnly: true,
      run: async () => {
        const p = await probeUpload(t, inv, tr(sub));
        if (!p.ok) throw new Error(p.detail);
        await cleanupProbe(p, undefined, [tr(sub)], 0);
        details.probeMs = p.ms;
        return p.detail;
      },
    },
    {
      id: 'complete',
      host: hapName,
      action: 'failover complete',
      why: 'the record says done: failback is the only way back',
      run: async () => {
        state.phase = 'done';
        await writeFailoverState(hap, state);
        return `failed over since ${state.at}`;
      },
    },
  );
  return {
    runbook: 'failover',
    steps,
    details,
    notes: prev ? [`on record: a failover started at ${prev.at} (${prev.mode}, ${prev.phase}): resumed`] : [],
  };
}

export const failover = defineRunbook({
  name: 'failover',
  description: 'take sftp-main out of service and serve from sftp-sub (--unplanned when main is unreachable)',
  options: failoverOptions,
  run: (ctx) => runStepPlan(ctx, 'failover', () => planFailover(ctx)),
});
registerRunbook(failover);
export default failover;
await runAsScript(import.meta.url, 'failover');
