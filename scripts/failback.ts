#!/usr/bin/env -S npx tsx
// failback: bring sftp-main back after a failover without losing a file (pitfall 1).
// It looks at the data, not only at its record: both trees are compared whether or not
// failover.json exists (an outage nobody ran a runbook for leaves only the agent's "needs
// reconcile" mark, or nothing); nothing to do only when neither exists, main is UP, lsyncd active
// and sub holds nothing main lacks. The mark is cleared when main is back UP (main-ready).
// Observe: both trees (path, size, mtime, sha256) → planFailback: sub's new files → main, files only
// main has (written before the crash, never replicated) → kept and copied to sub, different versions
// → the newer wins and the other is kept under /var/lib/wharf/failback-conflicts (nothing deleted,
// nothing overwritten blindly). Steps: main stays in maint → stop lsyncd on main → lift the fence →
// copy pass (re-planned from fresh listings; rsync --files-from on main, lsyncd's key, never
// --delete) → both sides compared by sha256 → writes paused (sub → maint, its sessions cut) →
// catch-up pass sub → main → lsyncd main → sub started → main and sub ready (main UP; point of no
// return) → replication checked → probe lands on main. Killed or failed: run it again (converges).
import type { Transport } from '../src/transport/types.ts';
import { z } from 'zod';
import { sleep } from 'zx';
import { defineRunbook, registerRunbook, type RunbookContext } from '../src/runbook/registry.ts';
import { booleanOption } from '../src/runbook/options.ts';
import { fileStamp } from '../src/runbook/journal.ts';
import { runStepPlan, type Step, type StepOutcome, type StepPlan } from '../src/runbook/steps.ts';
import { runAsScript } from '../src/cli/standalone.ts';
import { addressOf } from '../src/topology/inventory.ts';
import { durationMs, sftpNode } from '../src/topology/model.ts';
import { haproxyGroup } from '../src/failover/pair.ts';
import { RECONCILE_TABLE } from '../src/render/agent.ts';
import {
  CONFLICTS_DIR,
  FAILOVER_STATE,
  backendsOf,
  changedDuringPass,
  cleanupProbe,
  clearFailoverState,
  isOwnCopy,
  listTree,
  mismatches,
  must,
  planFailback,
  cutUploads,
  closeLogCommand,
  type CutUploads,
  failbackReasons,
  readReconcileMark,
  clearReconcileMark,
  saveServerState,
  RECONCILE_MARK,
  probeUpload,
  reachable,
  readFailoverState,
  rpoMeasured,
  rsyncOnMain,
  runtimeApi,
  saveConflictsCommand,
  serverStateCommands,
  setFence,
  showStat,
  statusOf,
  type Conflict,
  type FailbackPlan,
  type Listing,
} from '../src/failover/index.ts';

export const failbackOptions = z.object({
  force: booleanOption('fail back even when nothing shows a failover (no record, main UP, lsyncd active)'),
});
type Options = z.output<typeof failbackOptions>;

/** What a copy plan will do, in words (plan notes and step reasons). Pure. */
export function describeFailbackPlan(p: FailbackPlan, main: string, sub: string): string[] {
  const lines = [
    `${p.toMain.length} file(s) ${sub} → ${main} (new or newer on ${sub}), ${p.toSub.length} ${main} → ${sub} (only on ${main}, or newer there), ${p.conflicts.length} conflict(s), ${p.same} same`,
  ];
  if (p.onlyMain.length)
    lines.push(
      `files only ${main} had (never reached ${sub}; kept and copied): ${p.onlyMain.slice(0, 20).join(', ')}${p.onlyMain.length > 20 ? ', …' : ''}`,
    );
  for (const c of p.conflicts.slice(0, 20))
    lines.push(
      `conflict ${c.path}: ${c.winner}'s version ${c.by === 'cut' ? `wins (${c.winner === 'main' ? sub : main}'s is a cut upload: its SFTP session ended before the client closed it)` : 'is newer and wins'}; the other is kept in ${CONFLICTS_DIR}`,
    );
  return lines;
}

export async function planFailbackRun(ctx: RunbookContext<Options>): Promise<StepPlan> {
  const { topology: t, inventory: inv } = ctx;
  const main = sftpNode(t, 'main').name;
  const sub = t.replication.lsyncd.to;
  // every HAProxy (both of a pair): admin states, the record and the mark go to each
  const hap = haproxyGroup(t, (n) => ctx.transports.get(n));
  const hapName = hap.host;
  const base = t.sftp.chrootBase;
  const tr = (n: string) => {
    const x = ctx.transports.get(n);
    if (!x) throw new Error(`${n}: not in the inventory`);
    return x;
  };
  const details: Record<string, unknown> = { main, sub };
  // observe: every host answers, the failover record, both trees
  if (!(await reachable(hap))) throw new Error(`${hapName} is unreachable`);
  for (const n of [sub, main])
    if (!(await reachable(ctx.transports.get(n))))
      throw new Error(`${n} is unreachable${n === main ? ' (still down? start it first)' : ''}`);
  const m = tr(main);
  const s = tr(sub);
  const state = await readFailoverState(hap);
  const mark = await readReconcileMark(hap);
  details.failedOverAt = state?.at;
  if (mark) details.mark = mark;
  const notes: string[] = [];
  // Observe the data whether or not a failover is on record: both trees (sha256, both directions),
  // main's place in rotation, lsyncd, the mark. A run re-lists right before copying.
  const [om, os] = await Promise.all([listTree(m, t), listTree(s, t)]);
  // which versions are cut uploads (their last SFTP write ended in "forced close"): they lose
  // conflicts whatever their mtime (the last day of each node's SFTP close log)
  const since = Date.now() / 1000 - 86_400;
  const readCut = async (x: Transport) =>
    cutUploads((await x.exec(closeLogCommand(since), { timeoutMs: 120_000 })).stdout);
  const [cutMain, cutSub] = await Promise.all([readCut(m), readCut(s)]);
  const cut: CutUploads = { main: cutMain, sub: cutSub };
  const observed: FailbackPlan = planFailback(om, os, cut);
  const mainStatus = statusOf(await showStat(hap, t), t, main);
  const lsyncd = (await m.exec('systemctl is-active lsyncd')).stdout.trim();
  const reasons = failbackReasons(
    { record: !!state, mark: !!mark, mainStatus, lsyncd, plan: observed },
    main,
    sub,
  );
  details.observed = {
    toMain: observed.toMain.length,
    toSub: observed.toSub.length,
    onlyMain: observed.onlyMain.length,
    onlySub: observed.onlySub.length,
    conflicts: observed.conflicts,
    same: observed.same,
  };
  details.reasons = reasons;
  if (!reasons.length && !ctx.options.force) {
    details.nothingToDo = true;
    return {
      runbook: 'failback',
      steps: [],
      details,
      nothingToDo: `not failed over (no ${FAILOVER_STATE} and no ${RECONCILE_MARK} on ${hapName}, ${main} UP, lsyncd active, ${sub} holds nothing ${main} lacks: ${observed.same} same, ${observed.toSub.length} on their way to ${sub})`,
    };
  }
  notes.push(`failing back: ${reasons.join('; ') || '--force'}`);
  notes.push(`copy plan as observed now (re-planned from fresh listings right before copying):`);
  notes.push(...describeFailbackPlan(observed, main, sub).map((l) => `  ${l}`));

  const shared = backendsOf(t, main).filter((b) => backendsOf(t, sub).includes(b));
  const subReady = serverStateCommands(t, sub, 'ready');

  /**
   * One copy pass as steps: list both trees, keep the losing versions of conflicts, copy (never
   * delete), then check that every file of the listings is identical on both sides (`both`), or
   * that sub's files are on main (`toMain`: the catch-up, lsyncd carries main's new files to sub).
   */
  const pass = (id: string, label: string, dir: 'both' | 'toMain', original?: () => Listing) => {
    let lm: Listing = new Map();
    let ls: Listing = new Map();
    let plan: FailbackPlan = planFailback(lm, ls, cut);
    /** rsync on main (lsyncd's key, never --delete): `pull` from sub, `push` to sub. */
    const copy = async (direction: 'pull' | 'push', files: string[]): Promise<StepOutcome> => {
      if (!files.length) return { skipped: 'nothing to copy' };
      await must(m, rsyncOnMain(t, inv, direction, { files: true }), 1_800_000, files.join('\n') + '\n');
      return `${files.length} file(s)`;
    };
    let conflicts: Conflict[] = [];
    const out = { plan: () => plan, main: () => lm };
    const expected =
      dir === 'toMain'
        ? `what ${sub} took since the first pass`
        : observed
          ? `${observed.toMain.length} file(s) ${sub} → ${main}, ${observed.toSub.length} ${main} → ${sub}, ${observed.conflicts.length} conflict(s) as observed`
          : 'counted when listed';
    const steps: Step[] = [
      {
        id: `${id}:list`,
        host: '*',
        action: `${label}: list both trees (sha256)`,
        why: `the copy is planned from what both sides hold right now (${expected})`,
        readOnly: true,
        run: async () => {
          [lm, ls] = await Promise.all([listTree(m, t), listTree(s, t)]);
          plan = planFailback(lm, ls, cut);
          const all = dir === 'both' ? plan.conflicts : plan.conflicts.filter((c) => c.winner === 'sub');
          // main's version came from sub in an earlier pass (an upload caught in flight): an update
          const orig = original?.();
          conflicts = all.filter((c) => !(orig && isOwnCopy(c.path, orig, lm)));
          ctx.log(
            `${label}: ${plan.toMain.length} file(s) ${sub} → ${main}` +
              (dir === 'both'
                ? `, ${plan.toSub.length} ${main} → ${sub}`
                : ` (${main}'s new files: lsyncd)`) +
              `, ${conflicts.length} conflict(s)` +
              (all.length > conflicts.length
                ? `, ${all.length - conflicts.length} in-flight update(s)`
                : '') +
              `, ${plan.same} same`,
          );
          if (dir === 'both' && plan.onlyMain.length)
            ctx.log(
              `files only ${main} had (never reached ${sub}; kept): ${plan.onlyMain.slice(0, 20).join(', ')}${plan.onlyMain.length > 20 ? ', …' : ''}`,
            );
          return `${main} ${lm.size} files, ${sub} ${ls.size} files`;
        },
      },
      {
        id: `${id}:keep-conflicts`,
        host: '*',
        action: `${label}: keep the losing versions of conflicts in ${CONFLICTS_DIR}`,
        why: 'where both sides changed a file the newer wins; the other version is kept, never deleted',
        run: async () => {
          if (!conflicts.length) return { skipped: 'no conflict' };
          const dest = `${CONFLICTS_DIR}/${fileStamp(new Date())}`;
          const lose = (w: 'main' | 'sub') => conflicts.filter((c) => c.winner !== w).map((c) => c.path);
          if (lose('sub').length) await must(m, saveConflictsCommand(base, `${dest}/${main}`, lose('sub')));
          if (lose('main').length) await must(s, saveConflictsCommand(base, `${dest}/${sub}`, lose('main')));
          return `kept ${lose('sub').length} on ${main}, ${lose('main').length} on ${sub} in ${dest}`;
        },
      },
      {
        id: `${id}:to-main`,
        host: main,
        action: `${label}: copy ${sub}'s new files to ${main} (rsync, no delete)`,
        why: `uploads ${sub} took while failed over must be on ${main} before lsyncd runs again (its startup sync would remove them)`,
        run: () => copy('pull', plan.toMain),
      },
    ];
    if (dir === 'both')
      steps.push({
        id: `${id}:to-sub`,
        host: main,
        action: `${label}: copy files only ${main} has to ${sub} (rsync, no delete)`,
        why: `files written on ${main} that never reached ${sub} (RPO window) are kept, and copied`,
        run: () => copy('push', plan.toSub),
      });
    steps.push({
      id: `${id}:verify`,
      host: '*',
      action:
        dir === 'both'
          ? `${label}: both sides equal by sha256`
          : `${label}: every file of ${sub} on ${main}, same sha256`,
      why: 'a copy is trusted only when the checksums match; otherwise main stays out',
      readOnly: true,
      run: async () => {
        const [a, b] = await Promise.all([listTree(m, t), listTree(s, t)]);
        // files that arrived after the listing are the next pass's (or lsyncd's) business
        const known = (l: Listing) => new Map([...l].filter(([p]) => lm.has(p) || ls.has(p)));
        // uploads still being written on sub (it serves during this pass): the catch-up's
        const flight = new Set(dir === 'both' ? changedDuringPass(ls, lm, b) : []);
        if (flight.size)
          ctx.log(
            `${label}: ${flight.size} file(s) changed on ${sub} during the pass (uploads in flight), left to the catch-up: ${[...flight].slice(0, 5).join(', ')}`,
          );
        const bad =
          dir === 'both'
            ? mismatches(known(a), known(b)).filter((p) => !flight.has(p))
            : [...known(b)]
                // a newer version on main (a retry after the cut) goes to sub with lsyncd
                .filter(([p, f]) => a.get(p)?.sha256 !== f.sha256 && !((a.get(p)?.mtime ?? 0) > f.mtime))
                .map(([p]) => p);
        if (bad.length) throw new Error(`${bad.length} file(s) differ: ${bad.slice(0, 10).join(', ')}`);
        return `${known(dir === 'both' ? a : b).size} files checked`;
      },
    });
    return { steps, ...out };
  };

  const first = pass('sync', 'sync', 'both');
  const last = pass('catch-up', 'catch-up', 'toMain', first.main);
  const steps: Step[] = [
    {
      id: 'main-maint',
      host: hapName,
      action: `${main} stays out of rotation (maint)`,
      why: `${main} lacks what ${sub} took: it must not serve before both sides are reconciled`,
      run: async () => void (await runtimeApi(hap, t, serverStateCommands(t, main, 'maint'))),
    },
    {
      id: 'stop-lsyncd',
      host: main,
      action: 'stop and disable lsyncd',
      why: `its startup sync (main → sub) would overwrite ${sub}'s newer files`,
      run: async () => void (await must(m, 'systemctl disable --now lsyncd 2>&1')),
    },
    {
      id: 'lift-fence',
      host: sub,
      action: `lift the fence on ${main}`,
      why: `the copy uses the replication account, which refuses ${main} while fenced (lsyncd is off now)`,
      run: async () =>
        (await setFence(s, addressOf(inv, main, 'lan'), false)) ? 'lifted' : 'was not fenced',
    },
    ...first.steps,
    {
      id: 'record-plan',
      host: '*',
      action: 'record what the first pass copied (RPO measured)',
      why: 'the run reports what main alone had (files lost from sub\u2019s view) and the copy counts',
      readOnly: true,
      run: async () => {
        const p = first.plan();
        if (state?.at)
          details.rpo = rpoMeasured(p.onlyMain, first.main(), Date.parse(state.lostAt ?? state.at));
        details.plan = {
          toMain: p.toMain.length,
          toSub: p.toSub.length,
          onlyMain: p.onlyMain,
          conflicts: p.conflicts,
          same: p.same,
        };
        return `${p.toMain.length} → ${main}, ${p.toSub.length} → ${sub}, ${p.conflicts.length} conflict(s)`;
      },
    },
    {
      id: 'pause-writes',
      host: hapName,
      action: `pause writes: ${sub} → maint in ${shared.join(', ')}, its sessions cut`,
      why: `what ${sub} took since the first pass goes to ${main} while nobody writes anywhere (no race with a client's retry)`,
      undo: {
        host: hapName,
        action: `${sub} serves again (${main} stays in maint: run failback again)`,
        commands: subReady,
        run: () => runtimeApi(hap, t, subReady),
      },
      run: async () =>
        void (await runtimeApi(hap, t, [
          ...shared.map((b) => `set server ${b}/${sub} state maint`),
          ...shared.map((b) => `shutdown sessions server ${b}/${sub}`),
        ])),
    },
    ...last.steps,
    {
      id: 'start-lsyncd',
      host: main,
      action: 'enable and start lsyncd (main → sub, delete=false)',
      why: `only now: everything ${sub} had is on ${main}, and ${sub} takes no more writes`,
      run: async () => {
        await must(m, 'systemctl enable --now lsyncd 2>&1');
        await sleep(1000);
        const r = await m.exec('systemctl is-active lsyncd');
        if (r.stdout.trim() !== 'active') throw new Error(`lsyncd is ${r.stdout.trim()}`);
      },
    },
    {
      id: 'main-ready',
      host: hapName,
      action: `${main} → ready, UP; the "needs reconcile" mark cleared`,
      why: `${main} serves again, ${sub} backs it up again. The agent is paused on ${main}'s lines meanwhile (while ${main} comes UP it is DOWN for a moment, which the agent would take for an outage), and the mark goes only once ${main} is UP: a failure here leaves it, and ${main} in maint`,
      commits: `${main} takes writes from here: the failover is over`,
      run: async () => {
        const agent = (v: 'enable' | 'disable') => backendsOf(t, main).map((b) => `${v} agent ${b}/${main}`);
        await runtimeApi(hap, t, agent('disable'));
        try {
          // sub → ready only once main is UP: a backup in rotation before that would take writes
          // main lacks (the catch-up is done)
          await runtimeApi(hap, t, serverStateCommands(t, main, 'ready'));
          const end = Date.now() + (t.haproxy.check.rise + 2) * durationMs(t.haproxy.check.inter) + 10_000;
          for (;;) {
            const st = statusOf(await showStat(hap, t), t, main);
            if (backendsOf(t, main).every((b) => st[b]?.startsWith('UP'))) {
              // the shared outage flag first: while it is set, haproxy.cfg's use-server rule sends
              // every new connection to a ready sub, which would take writes main lacks
              await runtimeApi(hap, t, [`set table ${RECONCILE_TABLE} key 1 data.gpt0 0`]);
              await runtimeApi(hap, t, subReady);
              await clearReconcileMark(hap, true, t.haproxy.stats.socket);
              await saveServerState(hap, t);
              return JSON.stringify(st);
            }
            if (Date.now() > end) {
              await runtimeApi(hap, t, serverStateCommands(t, main, 'maint'));
              throw new Error(`${main} is not UP: ${JSON.stringify(st)} (back in maint; the mark is kept)`);
            }
            await sleep(200);
          }
        } finally {
          await runtimeApi(hap, t, agent('enable'));
        }
      },
    },
    {
      id: 'replicated',
      host: sub,
      action: `lsyncd replicates ${main} → ${sub}`,
      why: 'replication is proven working before the failover record closes',
      readOnly: true,
      run: async () => {
        const want = await listTree(m, t);
        const end = Date.now() + (t.replication.lsyncd.delay + 60) * 1000;
        for (;;) {
          // compare with main's current content: a file being uploaded when `want` was taken
          // changes on main and reaches sub in its final form
          const [now, have] = await Promise.all([listTree(m, t), listTree(s, t)]);
          const missing = [...want.keys()].filter((p) => have.get(p)?.sha256 !== now.get(p)?.sha256);
          if (!missing.length) return `${want.size} files of ${main} on ${sub}`;
          if (Date.now() > end)
            throw new Error(`${missing.length} file(s) not replicated: ${missing.slice(0, 5).join(', ')}`);
          await sleep(500);
        }
      },
    },
    {
      id: 'probe',
      host: 'entrypoint',
      action: 'probe upload lands on main',
      why: 'proves the entry point writes to main end to end',
      readOnly: true,
      run: async () => {
        const p = await probeUpload(t, inv, m);
        if (!p.ok) throw new Error(p.detail);
        await cleanupProbe(p, s, [m, s], (t.replication.lsyncd.delay + 10) * 1000);
        return p.detail;
      },
    },
    {
      id: 'close-record',
      host: hapName,
      action: 'failover record closed',
      why: `${FAILOVER_STATE} → failover.last.json: the stack is not failed over any more`,
      run: async () => void (await clearFailoverState(hap)),
    },
  ];
  details.catchUp = 0;
  const catchUp = steps.find((x) => x.id === 'catch-up:to-main')!;
  const runCatchUp = catchUp.run;
  catchUp.run = async () => {
    details.catchUp = last.plan().toMain.length;
    return runCatchUp();
  };
  return { runbook: 'failback', steps, details, notes };
}

export const failback = defineRunbook({
  name: 'failback',
  description:
    "bring sftp-main back after a failover: sub's new files to main (never delete), verify by checksum, restore lsyncd, main in rotation",
  options: failbackOptions,
  run: (ctx) => runStepPlan(ctx, 'failback', () => planFailbackRun(ctx)),
});
registerRunbook(failback);
export default failback;
await runAsScript(import.meta.url, 'failback');
