#!/usr/bin/env -S npx tsx
// restore: bring back one file or folder of a user as it was in a backup snapshot, onto main; lsyncd
// carries it to sub. `--snapshot NAME|latest --user NAME --path PATH [--force]`.
// Observe: the operator's input (each problem names its flag: exit 2, nothing changed), no failover
// on record (main must be the one serving), the snapshots on the backup node, the path in the
// snapshot and on main (sha256) → planRestore (src/restore/plan.ts): what main lacks is created,
// what is equal is left, a different version on main is a conflict the plan names (overwritten only
// with --force, main's version kept first in /var/lib/wharf/restore-replaced), nothing is deleted.
// Steps: no conflict / nothing blocked → keep main's versions (--force) → copy (rsync on the backup
// node, pushed to main over the replication account, written via rsync's temp dir so a file appears
// whole; guard: main unchanged since the plan; undo: remove what was created, put kept versions
// back) → main holds the snapshot's version by sha256 (point of no return) → sub holds it (lsyncd).
// Restored files get the restore's time as mtime: they are the newest version, so lsyncd's
// `update = true` (and failback's newer-wins) carry them instead of keeping sub's newer copy.
import { z } from 'zod';
import { sleep } from 'zx';
import { posix } from 'node:path';
import { defineRunbook, registerRunbook, type RunbookContext } from '../src/runbook/registry.ts';
import { booleanOption, stringOption } from '../src/runbook/options.ts';
import { fileStamp } from '../src/runbook/journal.ts';
import { runStepPlan, type Step, type StepPlan } from '../src/runbook/steps.ts';
import { runAsScript } from '../src/cli/standalone.ts';
import { InputError } from '../src/core/errors.ts';
import { shQuote } from '../src/exec/index.ts';
import { addressOf } from '../src/topology/inventory.ts';
import { sftpNode } from '../src/topology/model.ts';
import { haproxyGroup } from '../src/failover/pair.ts';
import { BACKUP_KEY, BACKUP_KNOWN_HOSTS } from '../src/render/backup.ts';
import {
  must,
  reachable,
  readFailoverState,
  readReconcileMark,
  saveConflictsCommand,
} from '../src/failover/index.ts';
import {
  RESTORE_KEEP_DIR,
  checkRestoreInput,
  describeRestorePlan,
  parseSnapshots,
  parseTree,
  planRestore,
  resolveSnapshot,
  snapshotsCommand,
  treeCommand,
  undoCommand,
  type TreeListing,
} from '../src/restore/plan.ts';
import type { Transport } from '../src/transport/types.ts';

export const restoreOptions = z.object({
  snapshot: stringOption('NAME', 'the snapshot to restore from: its name (e.g. 20261130T045400Z) or latest'),
  user: stringOption('USER', 'the SFTP user whose file or folder it is'),
  path: stringOption('PATH', "the file or folder, inside the user's chroot (e.g. upload/report.csv)"),
  force: booleanOption("overwrite files that differ on main (main's version is kept first)"),
});
type Options = z.output<typeof restoreOptions>;

const list = async (tr: Transport, root: string, path: string): Promise<TreeListing> =>
  parseTree((await must(tr, treeCommand(root, path), 300_000)).stdout);

export async function planRestoreRun(ctx: RunbookContext<Options>): Promise<StepPlan> {
  const { topology: t, inventory: inv, options: o } = ctx;
  const input = checkRestoreInput(t, o);
  const main = sftpNode(t, 'main').name;
  const sub = t.replication.lsyncd.to;
  const backup = t.replication.backup.to;
  const hap = haproxyGroup(t, (n) => ctx.transports.get(n));
  const tr = (n: string) => {
    const x = ctx.transports.get(n);
    if (!x) throw new Error(`${n}: not in the inventory`);
    return x;
  };
  for (const n of [backup, main, sub])
    if (!(await reachable(ctx.transports.get(n)))) throw new Error(`${n} is unreachable`);
  if (!(await reachable(hap))) throw new Error(`${hap.host} is unreachable`);
  const [b, m, s] = [tr(backup), tr(main), tr(sub)];
  const fo = await readFailoverState(hap);
  const mark = await readReconcileMark(hap);
  if (fo || mark)
    throw new Error(
      `the stack is failed over to ${sub} (${fo ? `since ${fo.at}` : 'needs-reconcile mark'}): restore writes to ${main}; run failback first`,
    );
  const snapDir = t.replication.backup.snapshotDir;
  const snapshot = resolveSnapshot(
    input.snapshot,
    parseSnapshots((await must(b, snapshotsCommand(snapDir))).stdout),
    backup,
  );
  const snapRoot = `${snapDir}/${snapshot}/${input.user}`;
  const userRoot = `${t.sftp.chrootBase}/${input.user}`;
  const snap = await list(b, snapRoot, input.path);
  if (!snap.tree.size)
    throw new InputError(
      `--path: "${input.path}" is not in snapshot ${snapshot} of user ${input.user} (on ${backup}: ${snapRoot}/${input.path})`,
    );
  const observed = await list(m, userRoot, input.path);
  const plan = planRestore(snap, observed, o.force);
  const mainAddr = addressOf(inv, main, 'lan');
  const details: Record<string, unknown> = {
    snapshot,
    user: input.user,
    path: input.path,
    create: plan.create,
    overwrite: plan.overwrite,
    newDirs: plan.newDirs,
    conflicts: plan.conflicts,
    blocked: plan.blocked,
    same: plan.same,
    extra: plan.extra.length,
  };
  const notes = [
    `restore ${input.user}:${input.path} as it was in snapshot ${snapshot} (${backup}) onto ${main}`,
    ...describeRestorePlan(plan, o.force),
  ];
  if (plan.blocked.length || (plan.conflicts.length && !o.force))
    notes.push(
      `a run refuses (step conflicts): ${plan.blocked.length} blocked, ${plan.conflicts.length} conflict(s)${plan.conflicts.length && !o.force ? ' without --force' : ''}; nothing would change`,
    );
  const copies = [...plan.create, ...plan.overwrite];
  if (!copies.length && !plan.newDirs.length && !plan.conflicts.length && !plan.blocked.length)
    return {
      runbook: 'restore',
      steps: [],
      details,
      notes,
      nothingToDo: `${main} holds ${input.user}:${input.path} as in snapshot ${snapshot} already (${plan.same} entr(ies) equal)`,
    };

  const keptRoot = plan.overwrite.length
    ? posix.join(RESTORE_KEEP_DIR, fileStamp(new Date()), input.user)
    : undefined;
  const undo = undoCommand(userRoot, keptRoot, { ...plan, overwrite: keptRoot ? plan.overwrite : [] });
  const l = t.replication.lsyncd;
  const ssh = `ssh -i ${BACKUP_KEY} -p ${t.sftp.port} -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=${BACKUP_KNOWN_HOSTS} -o ConnectTimeout=10`;
  // no -t: the restored version is the newest (see the header); -I: the planned list is copied
  const rsync = [
    'rsync -rlpgoD --numeric-ids -I --files-from=-',
    `-e ${shQuote(ssh)}`,
    `--rsync-path=${shQuote('sudo /usr/bin/rsync')}`,
    `--temp-dir=${shQuote(`${t.sftp.chrootBase}/${l.tempDir}`)}`,
    shQuote(`${snapRoot}/`),
    shQuote(`${l.user}@${mainAddr}:${userRoot}/`),
  ].join(' ');
  /** Every snapshot file and symlink under the path, equal on the other side. */
  const differing = (have: TreeListing, only?: string[]) =>
    (only ?? [...snap.tree.keys()]).filter((p) => {
      const a = snap.tree.get(p)!;
      const x = have.tree.get(p);
      if (a.kind === 'd') return x?.kind !== 'd';
      return !x || x.kind !== a.kind || (a.kind === 'f' ? x.sha256 !== a.sha256 : x.target !== a.target);
    });

  const steps: Step[] = [
    {
      id: 'conflicts',
      host: main,
      action: o.force
        ? 'nothing blocked (a folder against a file, a parent that is not a folder)'
        : "no conflict: main's differing files are overwritten only with --force",
      why: 'a restore never overwrites a different version without being told to, and never writes through a symlink',
      readOnly: true,
      run: async () => {
        const bad = [...plan.blocked, ...(o.force ? [] : plan.conflicts)];
        if (bad.length)
          throw new Error(
            `${plan.conflicts.length} conflict(s), ${plan.blocked.length} blocked: ` +
              bad
                .slice(0, 10)
                .map((c) => `${c.path} (${c.why})`)
                .join('; ') +
              (plan.conflicts.length && !o.force ? '; run with --force to overwrite' : ''),
          );
        return `${copies.length} file(s) to copy, ${plan.same} equal`;
      },
    },
  ];
  if (keptRoot)
    steps.push({
      id: 'keep-replaced',
      host: main,
      action: `keep main's versions of ${plan.overwrite.length} file(s) in ${posix.dirname(keptRoot)}`,
      why: '--force overwrites them; the versions they replace are kept, never thrown away',
      run: async () => {
        await must(
          m,
          saveConflictsCommand(
            t.sftp.chrootBase,
            posix.dirname(keptRoot),
            plan.overwrite.map((p) => `${input.user}/${p}`),
          ),
          300_000,
        );
        return keptRoot;
      },
    });
  steps.push(
    {
      id: 'copy',
      host: backup,
      action: `copy ${copies.length} file(s) and ${plan.newDirs.length} folder(s) of snapshot ${snapshot} to ${main} (rsync, no delete)`,
      why: `the snapshot holds ${input.user}:${input.path} as it was; ${main} is where writes land and lsyncd starts`,
      guard: {
        what: `${main} still holds what the plan saw at ${input.path}`,
        check: async () => {
          const now = await list(m, userRoot, input.path);
          const changed = [...copies, ...plan.newDirs].filter((p) => {
            const was = observed.tree.get(p);
            const is = now.tree.get(p);
            return was?.kind !== is?.kind || was?.sha256 !== is?.sha256 || was?.target !== is?.target;
          });
          const parents = [...now.parents].filter(([, k]) => k !== 'd').map(([p]) => p);
          if (parents.length) return `not a folder any more: ${parents.join(', ')}`;
          return changed.length ? `changed since the plan: ${changed.slice(0, 5).join(', ')}` : true;
        },
      },
      undo: {
        host: main,
        action: 'remove the files and folders the restore created, put the kept versions back',
        commands: [undo],
        run: () => must(m, undo, 300_000),
      },
      run: async () => {
        const files = [...plan.newDirs, ...copies];
        await must(b, rsync, 1_800_000, files.join('\n') + '\n');
        return `${files.length} entr(ies)`;
      },
    },
    {
      id: 'verify',
      host: main,
      action: `${main} holds ${input.path} as in snapshot ${snapshot} (sha256)`,
      why: 'a restore counts only when the checksums match',
      readOnly: true,
      commits: 'main holds the restored version; what follows only waits for lsyncd',
      run: async () => {
        const bad = differing(await list(m, userRoot, input.path));
        if (bad.length) throw new Error(`${bad.length} differ on ${main}: ${bad.slice(0, 10).join(', ')}`);
        return `${snap.tree.size} entr(ies) equal`;
      },
    },
    {
      id: 'replicated',
      host: sub,
      action: `lsyncd carries the restored file(s) to ${sub}`,
      why: `${sub} serves when ${main} fails and feeds the backups: the restore is complete when it holds them`,
      readOnly: true,
      run: async () => {
        const end = Date.now() + (l.delay + 60) * 1000;
        for (;;) {
          const bad = differing(await list(s, userRoot, input.path), copies);
          if (!bad.length) return `${copies.length} file(s) on ${sub}`;
          if (Date.now() > end)
            throw new Error(
              `${bad.length} not on ${sub} after ${l.delay + 60} s: ${bad.slice(0, 10).join(', ')}`,
            );
          await sleep(300);
        }
      },
    },
  );
  const hostsFile = (await b.readFile(BACKUP_KNOWN_HOSTS))?.toString('utf8') ?? '';
  if (!hostsFile.split('\n').some((x) => x.startsWith(`${mainAddr} `)))
    throw new Error(
      `${backup}: ${BACKUP_KNOWN_HOSTS} does not pin ${main} (${mainAddr}): run configure first`,
    );
  if (keptRoot) details.keptIn = keptRoot;
  return { runbook: 'restore', steps, details, notes };
}

export const restore = defineRunbook({
  name: 'restore',
  description:
    "bring back a user's file or folder as it was in a backup snapshot onto main (never overwrites without --force); lsyncd carries it to sub",
  options: restoreOptions,
  run: (ctx) => {
    // bad flags are reported before any lock, journal or host (exit 2)
    checkRestoreInput(ctx.topology, ctx.options);
    return runStepPlan(ctx, 'restore', () => planRestoreRun(ctx));
  },
});
registerRunbook(restore);
export default restore;
await runAsScript(import.meta.url, 'restore');
