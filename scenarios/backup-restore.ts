// backup-restore: dated snapshots with retention, the restore runbook, and the empty-source guard.
// Known state → a file and a folder uploaded through the entry point (SFTP) → 2 backup runs → the
// file changed and part of the folder deleted on main (SFTP) → 2 more runs: the topology's retention
// (3 in the scenario lab) holds, names are dated (UTC, the run's time) → restore with bad input
// (unknown snapshot through the CLI: exit 2; `..` and an unknown user: InputError naming the flag;
// nothing changed) → the file from the older snapshot without --force: refused, the conflict named,
// main unchanged → with --force: main and sub hold the old version (sha256), main's newer one kept →
// the folder (no --force needed: only missing files) → main and sub hold it, a file only main had
// left alone → sub's upload tree hidden under an empty mount (an unmounted data disk): the backup
// run refuses (exit 3, no new snapshot) and its alert reaches the notify sink by webhook and SMTP.
import { createHash, randomBytes } from 'node:crypto';
import { $ } from '../src/exec/index.ts';
import { InputError } from '../src/core/errors.ts';
import { REPO_ROOT } from '../src/lab/state.ts';
import { readNotices, type Notice } from '../src/lab/sink/notice.ts';
import {
  parseTree,
  SNAPSHOT_NAME,
  snapshotsCommand,
  parseSnapshots,
  treeCommand,
} from '../src/restore/plan.ts';
import { runRunbookByName } from '../src/stack/runbooks.ts';
import { nodeOfKind, sftpNode } from '../src/topology/model.ts';
import { connectSftp } from '../src/workload/generator.ts';
import { onLabNode, userRoot } from '../src/workload/remote.ts';
import type { Scenario, ScenarioContext } from '../src/scenario/types.ts';
import {
  awaitLsyncdStartup,
  ensureScenarioLab,
  scenarioTopology,
  unmountOver,
  type ScenarioLab,
} from './lab.ts';
import { until } from './outage.ts';

const SINK_MESSAGES = '/var/lib/wharf-sink/messages.jsonl';
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const r1 = (x: number) => Math.round(x * 10) / 10;

/** sha256 of every file under `root/path` on a node (paths relative to root). */
async function sums(
  lab: ScenarioLab,
  node: string,
  root: string,
  path: string,
): Promise<Map<string, string>> {
  const r = await onLabNode(lab.status, node, treeCommand(root, path), 120_000);
  if (r.code !== 0) throw new Error(`listing ${root}/${path} on ${node}: ${r.stderr.trim()}`);
  const out = new Map<string, string>();
  for (const [p, e] of parseTree(r.stdout).tree) if (e.kind === 'f') out.set(p, e.sha256 ?? '');
  return out;
}

/** Which of `want` (path → sha256) a listing lacks or holds with other content. */
const differing = (have: Map<string, string>, want: Record<string, string>) =>
  Object.entries(want)
    .filter(([p, s]) => have.get(p) !== s)
    .map(([p]) => p);

export async function runBackupRestore(ctx: ScenarioContext, lab: ScenarioLab): Promise<void> {
  const t = lab.t;
  const user = lab.status.demoUser.name;
  const main = sftpNode(t, 'main').name;
  const sub = t.replication.lsyncd.to;
  const backup = t.replication.backup.to;
  const sink = nodeOfKind(t, 'notify-sink').name;
  const retention = t.replication.backup.retention;
  const root = userRoot(t, user, 'sftp');
  const dir = `${t.sftp.uploadDir}/br-${Date.now().toString(36)}`;
  const waitMs = (t.replication.lsyncd.delay + 30) * 1000;
  const rb = (options: Record<string, unknown>, check = false) =>
    runRunbookByName('restore', {
      topology: t,
      inventory: lab.inventory,
      transports: lab.transports,
      log: (l) => ctx.log(`[restore] ${l}`),
      options,
      check,
    });
  const onSub = async (want: Record<string, string>) => {
    let bad: string[] = [];
    const ok = await until(
      waitMs,
      async () => (bad = differing(await sums(lab, sub, root, dir), want)).length === 0,
      300,
    );
    return { ok, bad };
  };

  // the timer must not add a snapshot of its own while the scenario counts them
  await lab.sh(backup, 'systemctl stop wharf-backup.timer');
  try {
    // 1. a file and a folder, uploaded through the entry point
    const v1: Record<string, Buffer> = {
      [`${dir}/report.txt`]: randomBytes(4096),
      [`${dir}/docs/a.txt`]: randomBytes(1024),
      [`${dir}/docs/b.txt`]: randomBytes(2048),
      [`${dir}/docs/sub/c.txt`]: randomBytes(512),
    };
    const v1sums = Object.fromEntries(Object.entries(v1).map(([p, b]) => [p, sha(b)]));
    const v2 = randomBytes(5000);
    const extra = randomBytes(300);
    const c = await connectSftp({ ...lab.endpoint, readyTimeoutMs: 15_000 });
    try {
      await c.mkdir(`${dir}/docs/sub`, true);
      for (const [p, b] of Object.entries(v1)) await c.put(b, p);
    } finally {
      await c.end().catch(() => undefined);
    }
    const up = await onSub(v1sums);
    if (
      !ctx.check(
        `uploads replicated to ${sub}`,
        up.ok,
        up.bad.length ? `missing ${up.bad.join(', ')}` : '4 files',
      )
    )
      return;

    // 2. backup runs: dated snapshots, retention
    const snapshots = async () =>
      parseSnapshots((await lab.sh(backup, snapshotsCommand(t.replication.backup.snapshotDir))).stdout);
    const runs: { ms: number; startedAt: number; ok: boolean; err: string }[] = [];
    const backupOnce = async () => {
      const startedAt = Date.now();
      const r = await lab.sh(backup, 'systemctl start wharf-backup.service', 300_000);
      runs.push({ ms: Date.now() - startedAt, startedAt, ok: r.code === 0, err: r.stderr.trim() });
      return (await snapshots()).names;
    };
    const t0 = Date.now();
    const first = await backupOnce();
    const older = (await backupOnce()).at(-1)!;
    // 3. the file changed, part of the folder deleted, a new file added, on main (SFTP)
    const c2 = await connectSftp({ ...lab.endpoint, readyTimeoutMs: 15_000 });
    try {
      await c2.put(v2, `${dir}/report.txt`);
      await c2.delete(`${dir}/docs/b.txt`);
      await c2.delete(`${dir}/docs/sub/c.txt`);
      await c2.put(extra, `${dir}/docs/new.txt`);
    } finally {
      await c2.end().catch(() => undefined);
    }
    const changed = await onSub({ [`${dir}/report.txt`]: sha(v2), [`${dir}/docs/new.txt`]: sha(extra) });
    ctx.check(`changes on ${main} replicated to ${sub}`, changed.ok, changed.bad.join(', '));
    await backupOnce();
    const kept = await backupOnce();
    const failedRuns = runs.filter((r) => !r.ok);
    const dated = kept.every((n) => {
      const at = Date.parse(n.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, '$1-$2-$3T$4:$5:$6Z'));
      return SNAPSHOT_NAME.test(n) && at >= Math.floor(t0 / 1000) * 1000 - 1000 && at <= Date.now() + 1000;
    });
    ctx.check(
      `${runs.length} backup runs keep the newest ${retention} dated snapshots (retention)`,
      failedRuns.length === 0 &&
        kept.length === retention &&
        dated &&
        new Set(kept).size === kept.length &&
        !kept.includes(first[0]!) &&
        kept.includes(older),
      `kept ${kept.join(', ')}; first ${first[0]} pruned: ${!kept.includes(first[0]!)}; ${failedRuns.length} failed run(s)${failedRuns.length ? `: ${failedRuns[0]!.err}` : ''}`,
    );
    const mean = runs.reduce((a, r) => a + r.ms, 0) / runs.length;
    ctx.metric('backup run (mean of 4, small tree)', r1(mean / 1000), 's');
    ctx.metric('snapshots kept', kept.length, 'snapshots');

    // 4. bad input: exit 2, naming the flag, nothing changed
    const before = await sums(lab, main, root, dir);
    const { file } = scenarioTopology();
    const cli = await $({
      nothrow: true,
      quiet: true,
      timeout: 120_000,
      cwd: REPO_ROOT,
    })`node bin/wharf.mjs run restore -c ${file} --snapshot 20000101T000000Z --user ${user} --path ${dir}`;
    ctx.check(
      'restore from an unknown snapshot: exit 2 naming --snapshot',
      cli.exitCode === 2 && /--snapshot: no snapshot "20000101T000000Z"/.test(cli.stderr),
      `exit ${cli.exitCode}: ${cli.stderr.trim().split('\n').at(-1)}`,
    );
    for (const [flag, opts] of [
      ['--path', { snapshot: older, user, path: `${dir}/../../../etc/passwd` }],
      ['--user', { snapshot: older, user: 'nobody', path: dir }],
    ] as const) {
      let err: unknown;
      try {
        await rb(opts);
      } catch (e) {
        err = e;
      }
      ctx.check(
        `restore with a bad ${flag}: refused as bad input naming ${flag}`,
        err instanceof InputError && err.message.startsWith(`${flag}:`),
        err instanceof Error ? err.message : 'not refused',
      );
    }
    const afterBad = await sums(lab, main, root, dir);
    ctx.check(
      `bad input changed nothing on ${main}`,
      before.size > 0 && JSON.stringify([...before]) === JSON.stringify([...afterBad]),
      `${afterBad.size} files as before`,
    );

    // 5. the file as it was in the older snapshot: refused without --force, the conflict named
    const report = `${dir}/report.txt`;
    const plan = await rb({ snapshot: older, user, path: report }, true);
    const conflicts = ((plan.details as { conflicts?: { path: string }[] })?.conflicts ?? []).map(
      (x) => x.path,
    );
    ctx.check(
      'restore --check names the conflict',
      plan.ok && conflicts.includes(report),
      conflicts.join(', '),
    );
    const refused = await rb({ snapshot: older, user, path: report });
    const mainNow = await sums(lab, main, root, report);
    ctx.check(
      `restore without --force refuses to overwrite a different file (${main} unchanged)`,
      !refused.ok && (refused.error ?? '').includes(report) && mainNow.get(report) === sha(v2),
      `${refused.ok ? 'ran' : 'refused'}: ${(refused.error ?? '').slice(0, 160)}; main ${mainNow.get(report) === sha(v2) ? 'still the newer version' : 'changed'}`,
    );
    const t1 = Date.now();
    const forced = await rb({ snapshot: older, user, path: report, force: true });
    const fileMs = Date.now() - t1;
    const keptIn = (forced.details as { keptIn?: string })?.keptIn;
    const mainF = await sums(lab, main, root, report);
    const subF = await sums(lab, sub, root, report);
    const keptSum = keptIn
      ? (await lab.sh(main, `sha256sum '${keptIn}/${report}' 2>/dev/null`)).stdout.slice(0, 64)
      : '';
    ctx.check(
      `restore --force: the file as it was in ${older} on ${main} (sha256)`,
      forced.ok && mainF.get(report) === v1sums[report],
      forced.ok
        ? `${(fileMs / 1000).toFixed(1)} s, sha256 ${v1sums[report]!.slice(0, 12)}…`
        : (forced.error ?? ''),
    );
    ctx.check(
      `the restored file replicated to ${sub} (sha256)`,
      subF.get(report) === v1sums[report],
      `${sub}: ${subF.get(report)?.slice(0, 12) ?? 'missing'}…`,
    );
    ctx.check(
      "main's newer version kept, not thrown away",
      keptSum === sha(v2),
      `${keptIn ?? 'not kept'}: ${keptSum.slice(0, 12)}…`,
    );
    ctx.metric('restore one file (--force)', r1(fileMs / 1000), 's');

    // 6. the folder as it was: the deleted files come back, the others are left alone
    const t2 = Date.now();
    const folder = await rb({ snapshot: older, user, path: `${dir}/docs` });
    const folderMs = Date.now() - t2;
    const docs = Object.fromEntries(Object.entries(v1sums).filter(([p]) => p.startsWith(`${dir}/docs/`)));
    const mainD = await sums(lab, main, root, `${dir}/docs`);
    const subD = await sums(lab, sub, root, `${dir}/docs`);
    const created = (folder.details as { create?: string[] })?.create ?? [];
    ctx.check(
      `restore of a folder: its files as they were in ${older} on ${main} (sha256)`,
      folder.ok && differing(mainD, docs).length === 0 && created.length === 2,
      folder.ok
        ? `${(folderMs / 1000).toFixed(1)} s; created ${created.join(', ')}; differing ${differing(mainD, docs).join(', ') || 'none'}`
        : (folder.error ?? ''),
    );
    ctx.check(
      `the restored folder on ${sub} (sha256)`,
      differing(subD, docs).length === 0,
      `differing ${differing(subD, docs).join(', ') || 'none'}`,
    );
    ctx.check(
      'a file the snapshot lacks is left alone (a restore deletes nothing)',
      mainD.get(`${dir}/docs/new.txt`) === sha(extra),
      mainD.has(`${dir}/docs/new.txt`) ? 'still there' : 'gone',
    );
    ctx.metric('restore one folder', r1(folderMs / 1000), 's');

    // 7. the empty-source guard: sub's upload tree hidden under an empty mount (an unmounted disk)
    const base = t.sftp.chrootBase;
    const beforeGuard = (await snapshots()).names;
    const t3 = new Date(Date.now() - 1000).toISOString();
    let refusedRun = { code: -1, status: '' };
    const mounted = await lab.sh(sub, `mount -t tmpfs -o size=1m,mode=755 wharf-empty-source '${base}'`);
    if (
      !ctx.check(
        `${sub}: an empty file system mounted over ${base}`,
        mounted.code === 0,
        mounted.stderr.trim(),
      )
    )
      return;
    try {
      const r = await lab.sh(backup, 'systemctl start wharf-backup.service', 120_000);
      const st = await lab.sh(backup, 'systemctl show -p ExecMainStatus --value wharf-backup.service');
      refusedRun = { code: r.code, status: st.stdout.trim() };
    } finally {
      ctx.log(`umount on ${sub}: ${await unmountOver(lab, sub, base)}`);
      // what lsyncd copied meanwhile went into the empty file system: its startup sync (a full
      // rsync main → sub, no delete) copies it again onto sub's real tree
      await lab.sh(main, 'systemctl restart lsyncd');
      await awaitLsyncdStartup(lab);
    }
    const afterGuard = (await snapshots()).names;
    ctx.check(
      'the empty-source guard refuses the backup run (exit 3, no new snapshot)',
      refusedRun.code !== 0 && refusedRun.status === '3' && afterGuard.join() === beforeGuard.join(),
      `systemctl start exit ${refusedRun.code}, backup.sh exit ${refusedRun.status}; snapshots ${afterGuard.length} (before ${beforeGuard.length})`,
    );
    let alerts: Notice[] = [];
    await until(
      30_000,
      async () => {
        const raw = await onLabNode(lab.status, sink, `cat ${SINK_MESSAGES} 2>/dev/null || true`);
        alerts = readNotices(raw.stdout).filter(
          (n) =>
            n.receivedAt >= t3 &&
            (n.kind === 'smtp'
              ? n.headers['x-wharf-event'] === 'backup-refused'
              : (n.body as { wharf?: { event?: string } })?.wharf?.event === 'backup-refused'),
        );
        return alerts.some((n) => n.kind === 'smtp') && alerts.some((n) => n.kind === 'webhook');
      },
      500,
    );
    const hook = alerts.find((n) => n.kind === 'webhook');
    const mail = alerts.find((n) => n.kind === 'smtp');
    ctx.check(
      'the refusal raised an alert on both notice channels (webhook + SMTP at the notify sink)',
      !!hook && !!mail,
      `webhook ${hook ? 'received' : 'missing'}, SMTP ${mail ? `"${mail.subject.slice(0, 90)}"` : 'missing'}`,
    );
  } finally {
    await lab.sh(backup, 'systemctl start wharf-backup.timer');
  }
}

export const backupRestore: Scenario = {
  name: 'backup-restore',
  description:
    'dated snapshots with retention; restore of a file and a folder from an older snapshot (refused without --force, replicated); the empty-source guard refuses and alerts',
  async run(ctx) {
    const lab = await ensureScenarioLab(ctx.log);
    try {
      await runBackupRestore(ctx, lab);
    } finally {
      await lab.close();
    }
  },
};
export default backupRestore;
