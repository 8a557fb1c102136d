// failback: bring sftp-main back after a failover without losing a file (pitfall 1).
// With main reachable again and still out of rotation (maint): stop and disable lsyncd on main →
// lift the fence → list both trees (path, size, mtime, sha256) and plan: sub's new files → main,
// files only main has (written before the crash, never replicated) → kept and copied to sub,
// different versions → the newer wins and the other is kept under /var/lib/wharf/failback-conflicts
// (nothing is deleted, nothing overwritten blindly) → copy (rsync --files-from on main, lsyncd's key,
// never --delete) → both sides compared by sha256 (must match, else main stays out) → writes
// paused for a few seconds (sub → maint too, its sessions cut) → catch-up pass sub → main → lsyncd
// main → sub enabled and started (delete=false as configured) → main and sub ready (main UP) →
// replication checked → probe lands on main. Killed while paused: run it again (it converges). Re-runnable after an interruption: the plan is recomputed from what both sides hold.
import { Journal } from '../src/runbook/journal.ts';
import { acquireLock } from '../src/runbook/lock.ts';
import { fileStamp } from '../src/runbook/journal.ts';
import { addressOf } from '../src/topology/inventory.ts';
import { durationMs, nodeOfKind, sftpNode } from '../src/topology/model.ts';
import {
  CONFLICTS_DIR,
  backendsOf,
  changedDuringPass,
  isOwnCopy,
  cleanupProbe,
  clearFailoverState,
  listTree,
  mismatches,
  must,
  planFailback,
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
  sleep,
  statusOf,
  type FailbackPlan,
  type Listing,
} from '../src/failover/index.ts';
import { result, stepper } from './failover.ts';
import type { Runbook } from './runbook.ts';

export const failback: Runbook = {
  name: 'failback',
  description:
    "bring sftp-main back after a failover: sub's new files to main (never delete), verify by checksum, restore lsyncd, main in rotation",
  async run(ctx) {
    const t0 = Date.now();
    const { topology: t, inventory: inv } = ctx;
    const runsDir = ctx.runsDir ?? '.wharf/runs';
    const journal = new Journal(runsDir, t.name, 'failback', []);
    const { steps, step } = stepper(ctx, journal);
    const main = sftpNode(t, 'main').name;
    const sub = t.replication.lsyncd.to;
    const hapName = nodeOfKind(t, 'haproxy').name;
    const base = t.sftp.chrootBase;
    const tr = (n: string) => {
      const x = ctx.transports.get(n);
      if (!x) throw new Error(`${n}: not in the inventory`);
      return x;
    };
    const details: Record<string, unknown> = { main, sub };

    /**
     * One copy pass: list both trees, plan, keep the losing versions of conflicts, copy (never
     * delete), then check that every file of the listings is identical on both sides (`both`), or
     * that sub's files are on main (`toMain`: the catch-up after main is back in rotation, when
     * lsyncd carries main's new files to sub).
     */
    const syncPass = async (label: string, dir: 'both' | 'toMain', original?: Listing) => {
      const m = tr(main);
      const s = tr(sub);
      const [lm, ls] = await step(
        '*',
        `${label}: list both trees (sha256)`,
        () => Promise.all([listTree(m, t), listTree(s, t)]),
        ([a, b]) => `${main} ${a.size} files, ${sub} ${b.size} files`,
      );
      const plan: FailbackPlan = planFailback(lm, ls);
      const all = dir === 'both' ? plan.conflicts : plan.conflicts.filter((c) => c.winner === 'sub');
      // main's version came from sub in an earlier pass (an upload caught in flight): an update
      const conflicts = all.filter((c) => !(original && isOwnCopy(c.path, original, lm)));
      ctx.log(
        `${label}: ${plan.toMain.length} file(s) ${sub} → ${main}` +
          (dir === 'both' ? `, ${plan.toSub.length} ${main} → ${sub}` : ` (${main}'s new files: lsyncd)`) +
          `, ${conflicts.length} conflict(s)` +
          (all.length > conflicts.length ? `, ${all.length - conflicts.length} in-flight update(s)` : '') +
          `, ${plan.same} same`,
      );
      if (dir === 'both' && plan.onlyMain.length)
        ctx.log(
          `files only ${main} had (never reached ${sub}; kept): ${plan.onlyMain.slice(0, 20).join(', ')}${plan.onlyMain.length > 20 ? ', …' : ''}`,
        );
      if (conflicts.length) {
        const dest = `${CONFLICTS_DIR}/${fileStamp(new Date())}`;
        const lose = (w: 'main' | 'sub') => conflicts.filter((c) => c.winner !== w).map((c) => c.path);
        if (lose('sub').length)
          await step(main, `${label}: keep ${lose('sub').length} losing version(s) in ${dest}`, () =>
            must(m, saveConflictsCommand(base, `${dest}/${main}`, lose('sub'))),
          );
        if (lose('main').length)
          await step(sub, `${label}: keep ${lose('main').length} losing version(s) in ${dest}`, () =>
            must(s, saveConflictsCommand(base, `${dest}/${sub}`, lose('main'))),
          );
      }
      if (plan.toMain.length)
        await step(main, `${label}: copy ${plan.toMain.length} file(s) from ${sub} (rsync, no delete)`, () =>
          must(m, rsyncOnMain(t, inv, 'pull', { files: true }), 1_800_000, plan.toMain.join('\n') + '\n'),
        );
      if (dir === 'both' && plan.toSub.length)
        await step(main, `${label}: copy ${plan.toSub.length} file(s) to ${sub} (rsync, no delete)`, () =>
          must(m, rsyncOnMain(t, inv, 'push', { files: true }), 1_800_000, plan.toSub.join('\n') + '\n'),
        );
      const checked = await step(
        '*',
        dir === 'both'
          ? `${label}: both sides equal by sha256`
          : `${label}: every file of ${sub} on ${main}, same sha256`,
        async () => {
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
          return known(dir === 'both' ? a : b).size;
        },
        (k) => `${k} files checked`,
      );
      return { plan, main: lm, sub: ls, checked };
    };
    let lock: ReturnType<typeof acquireLock> | undefined;
    let error: string | undefined;
    let paused = false;
    try {
      lock = acquireLock(runsDir, t.name, 'failback');
      if (lock.tookOver) ctx.log(`warning: ${lock.tookOver}`);
      await step('*', 'preflight', async () => {
        for (const n of [hapName, sub, main])
          if (!(await reachable(ctx.transports.get(n))))
            throw new Error(`${n} is unreachable${n === main ? ' (still down? start it first)' : ''}`);
      });
      const hap = tr(hapName);
      const m = tr(main);
      const s = tr(sub);
      const state = await readFailoverState(hap);
      details.failedOverAt = state?.at;
      if (!state && !ctx.options.force) {
        const st = statusOf(await showStat(hap, t), t, main);
        const lsy = (await m.exec('systemctl is-active lsyncd')).stdout.trim();
        if (Object.values(st).every((x) => x.startsWith('UP')) && lsy === 'active') {
          ctx.log(
            `not failed over (no ${'/var/lib/wharf/failover.json'} on ${hapName}, ${main} UP, lsyncd active): nothing to do`,
          );
          details.nothingToDo = true;
          return result('failback', ctx, t0, journal, steps, undefined, details);
        }
        ctx.log(`no failover record, but ${main} is ${JSON.stringify(st)} and lsyncd ${lsy}: failing back`);
      }
      if (ctx.check) {
        ctx.log(
          `plan: keep ${main} in maint, stop lsyncd, copy ${sub} ↔ ${main} (no delete), compare sha256, start lsyncd, ${main} → ready, probe`,
        );
        return result('failback', ctx, t0, journal, steps, undefined, details);
      }
      await step(hapName, `${main} stays out of rotation (maint)`, () =>
        runtimeApi(hap, t, serverStateCommands(t, main, 'maint')),
      );
      await step(main, 'stop and disable lsyncd', () => must(m, 'systemctl disable --now lsyncd 2>&1'));
      await step(
        sub,
        `lift the fence on ${main}`,
        () => setFence(s, addressOf(inv, main, 'lan'), false),
        (c) => (c ? 'lifted' : 'was not fenced'),
      );
      // Pass 1 (main out of rotation): the whole difference, both ways.
      const first = await syncPass('sync', 'both');
      if (state?.at)
        details.rpo = rpoMeasured(first.plan.onlyMain, first.main, Date.parse(state.lostAt ?? state.at));
      details.plan = {
        toMain: first.plan.toMain.length,
        toSub: first.plan.toSub.length,
        onlyMain: first.plan.onlyMain,
        conflicts: first.plan.conflicts,
        same: first.plan.same,
      };
      // Writes pause for the catch-up: sub → maint where it backs main up (new connections are
      // refused, clients retry), its open sessions cut; what they wrote since pass 1 goes to main
      // while nobody writes anywhere (no race with a client's retry), then lsyncd starts.
      const shared = backendsOf(t, main).filter((b) => backendsOf(t, sub).includes(b));
      await step(
        hapName,
        `pause writes: ${sub} → maint in ${shared.join(', ')}, its sessions cut`,
        async () => {
          paused = true;
          await runtimeApi(hap, t, [
            ...shared.map((b) => `set server ${b}/${sub} state maint`),
            ...shared.map((b) => `shutdown sessions server ${b}/${sub}`),
          ]);
        },
      );
      const last = await syncPass('catch-up', 'toMain', first.main);
      details.catchUp = last.plan.toMain.length;
      // Only now lsyncd (its startup sync is a full main → sub rsync that would overwrite a newer
      // version on sub): everything sub had is on main, and sub takes no more writes.
      await step(main, 'enable and start lsyncd (main → sub, delete=false)', async () => {
        await must(m, 'systemctl enable --now lsyncd 2>&1');
        await sleep(1000);
        const r = await m.exec('systemctl is-active lsyncd');
        if (r.stdout.trim() !== 'active') throw new Error(`lsyncd is ${r.stdout.trim()}`);
      });
      await step(
        hapName,
        `${main} → ready, UP`,
        async () => {
          await runtimeApi(hap, t, [
            ...serverStateCommands(t, main, 'ready'),
            ...serverStateCommands(t, sub, 'ready'),
          ]);
          paused = false;
          const end = Date.now() + (t.haproxy.check.rise + 2) * durationMs(t.haproxy.check.inter) + 10_000;
          for (;;) {
            const st = statusOf(await showStat(hap, t), t, main);
            if (backendsOf(t, main).every((b) => st[b]?.startsWith('UP'))) return st;
            if (Date.now() > end) throw new Error(`${main} is not UP: ${JSON.stringify(st)}`);
            await sleep(200);
          }
        },
        (st) => JSON.stringify(st),
      );
      // lsyncd carries main's files to sub: wait until everything main held at this point is there
      await step(
        sub,
        `lsyncd replicates ${main} → ${sub}`,
        async () => {
          const want = await listTree(m, t);
          const end = Date.now() + (t.replication.lsyncd.delay + 60) * 1000;
          for (;;) {
            // compare with main's current content: a file being uploaded when `want` was taken
            // changes on main and reaches sub in its final form
            const [now, have] = await Promise.all([listTree(m, t), listTree(s, t)]);
            const missing = [...want.keys()].filter((p) => have.get(p)?.sha256 !== now.get(p)?.sha256);
            if (!missing.length) return want.size;
            if (Date.now() > end)
              throw new Error(`${missing.length} file(s) not replicated: ${missing.slice(0, 5).join(', ')}`);
            await sleep(500);
          }
        },
        (n) => `${n} files of ${main} on ${sub}`,
      );
      const probe = await step(
        'entrypoint',
        'probe upload lands on main',
        async () => {
          const p = await probeUpload(t, inv, m);
          if (!p.ok) throw new Error(p.detail);
          return p;
        },
        (p) => p.detail,
      );
      await cleanupProbe(probe, s, [m, s], (t.replication.lsyncd.delay + 10) * 1000);
      await step(hapName, 'failover record closed', () => clearFailoverState(hap));
    } catch (e) {
      error = (e as Error).message;
      if (paused) {
        // failed while writes were paused: sub serves again, main stays out (run failback again)
        ctx.log(`failback stopped: ${sub} serves again, ${main} stays in maint`);
        await runtimeApi(ctx.transports.get(hapName)!, t, serverStateCommands(t, sub, 'ready')).catch(
          () => '',
        );
      }
    } finally {
      lock?.release();
    }
    return result('failback', ctx, t0, journal, steps, error, details);
  },
};
export default failback;
