// wharf drill's run: steady state → workload + watch + the schedule's faults (each healed, heals
// always run) → heal everything, settle, failback when needed → final read of main, sub and
// backup's newest snapshot → steady state again → the verdict. Every operation goes to the run
// folder's history.jsonl as it happens; schedule.json is written before anything runs.
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from '../exec/index.ts';
import type { LabStatus } from '../lab/lab.ts';
import { labNode } from '../lab/node.ts';
import { LSYNCD_CONF } from '../render/lsyncd.ts';
import { NOTIFY_SPOOL } from '../render/notify.ts';
import { runRunbookByName } from '../stack/runbooks.ts';
import type { Inventory } from '../topology/inventory.ts';
import { sftpNode, type Topology } from '../topology/model.ts';
import { haproxyGroup } from '../failover/pair.ts';
import type { Transport } from '../transport/types.ts';
import {
  readFailoverState,
  readReconcileMark,
  runtimeApi,
  serverStateCommands,
  clearReconcileMark,
} from '../failover/index.ts';
import { runWatch, type WatchSummary } from '../watch/run.ts';
import { runWorkload } from '../workload/generator.ts';
import { labEndpoint, observeUploads, runBackupOnce, userRoot, waitForUploads } from '../workload/remote.ts';
import type { ObservedFile } from '../workload/checker.ts';
import { healFault, injectFault, sweep, type FaultEnv } from './faults.ts';
import { drillFileSize, type DrillSchedule } from './schedule.ts';
import {
  drillVerdict,
  faultOutcomes,
  replicationWindow,
  rtoByKind,
  timeline,
  type Attempt,
  type DrillVerdict,
  type FaultOutcome,
  type FaultRecord,
} from './verdict.ts';

export interface DrillOptions {
  topology: Topology;
  status: LabStatus;
  inventory: Inventory;
  transports: Map<string, Transport>;
  schedule: DrillSchedule;
  /** The run folder (schedule.json, history.jsonl, result.json). */
  runDir: string;
  watch: { enabled: boolean; intervalMs: number; downForMs: number; autoFailback: boolean; settleMs: number };
  /**
   * A deliberately broken failback (the checker must catch it): main back in rotation and its
   * lsyncd restarted with `delete = true`, as in the failback-naive scenario. The lab is repaired
   * (configure) after the final read.
   */
  sabotage?: 'naive-failback';
  log: (line: string) => void;
  signal?: AbortSignal;
}

export interface SteadyState {
  ok: boolean;
  detail: string;
}

export interface DrillResult {
  kind: 'drill';
  stack: string;
  seed: number;
  startedAt: string;
  durationMs: number;
  runDir: string;
  valid: boolean;
  /** Every fault injected and healed, steady state before and after, verdict valid. */
  ok: boolean;
  interrupted: boolean;
  steadyBefore: SteadyState;
  steadyAfter: SteadyState | null;
  faults: FaultOutcome[];
  timeline: { t: number; acks: number; fails: number }[];
  verdict: DrillVerdict;
  rto: Record<string, { median: number; max: number; n: number }>;
  replication: { p50Ms: number | null; p99Ms: number | null; maxMs: number | null; unseen: number };
  workload: { clients: number; invoked: number; acknowledged: number; failedAttempts: number; bytes: number };
  failback: { ran: boolean; ok: boolean; why: string; sabotaged: boolean };
  /** Upload notices queued when the drill ended, left undelivered after the wait, and the wait. */
  notices: { queued: number; left: number; drainMs: number };
  watch: { enabled: boolean; runbooks: { runbook: string; ok: boolean }[]; alerts: number } | null;
}

/**
 * Why main still needs a failback (the failover record, else the reconcile mark on the HAProxy
 * node), or null. An unreadable node throws: "no failback needed" is never assumed.
 */
async function pendingFailback(hap: Transport): Promise<string | null> {
  const fo = await readFailoverState(hap);
  if (fo) return `failed over since ${fo.at}`;
  const mark = await readReconcileMark(hap);
  return mark ? `main held out until failback (${mark.why})` : null;
}

/** The steady state a drill starts from and must end in: no failover pending, verify passes. */
export async function steadyState(o: {
  topology: Topology;
  inventory: Inventory;
  transports: Map<string, Transport>;
}): Promise<SteadyState> {
  const t = o.topology;
  const group = haproxyGroup(t, (n) => o.transports.get(n));
  const hap = group.host;
  let pending: string | null;
  try {
    pending = await pendingFailback(group);
  } catch (e) {
    return { ok: false, detail: `${hap}: cannot read the failover state: ${(e as Error).message}` };
  }
  if (pending) return { ok: false, detail: `${pending}: run failback first` };
  const v = await runRunbookByName('verify', { ...o, log: () => {} });
  if (!v.ok) {
    const failed = v.steps.filter((s) => s.result === 'failed').map((s) => `${s.id}: ${s.error ?? ''}`);
    return { ok: false, detail: `verify failed: ${failed.join('; ') || v.error}` };
  }
  return { ok: true, detail: `verify: ${v.steps.length} checks passed, no failover pending` };
}

export class DrillRefused extends Error {}

export async function runDrill(o: DrillOptions): Promise<DrillResult> {
  const t = o.topology;
  const s = o.schedule;
  const main = sftpNode(t, 'main').name;
  const sub = t.replication.lsyncd.to;
  const backup = t.replication.backup.to;
  const hapGroup = haproxyGroup(t, (n) => o.transports.get(n));
  const hapName = hapGroup.host;
  const user = o.status.demoUser.name;
  const dir = t.sftp.uploadDir;
  const root = userRoot(t, user, 'sftp');
  mkdirSync(o.runDir, { recursive: true });
  writeFileSync(join(o.runDir, 'schedule.json'), JSON.stringify(s, null, 2) + '\n');
  const historyFile = join(o.runDir, 'history.jsonl');
  writeFileSync(historyFile, '');
  let t0 = Date.now();
  const rel = () => Date.now() - t0;
  const history = (e: Record<string, unknown>) =>
    appendFileSync(historyFile, JSON.stringify({ t: rel(), at: new Date().toISOString(), ...e }) + '\n');
  const env: FaultEnv = { t, status: o.status, log: o.log };

  o.log(
    `drill ${t.name}: seed ${s.seed}, ${s.faults.length} faults over ${s.durationMs / 1000} s; run folder ${o.runDir}`,
  );
  const steadyBefore = await steadyState(o);
  history({ type: 'steady-state', phase: 'before', ...steadyBefore });
  if (!steadyBefore.ok) throw new DrillRefused(`the lab is not in its steady state: ${steadyBefore.detail}`);
  o.log(`steady state: ${steadyBefore.detail}`);

  const startedAt = new Date();
  t0 = Date.now();
  const prefix = `drill-${s.seed}-${t0.toString(36)}`;
  const attempts: Attempt[] = [];
  const open = new Map<string, Attempt>();
  const seenOnSub = new Map<string, number>();
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  o.signal?.addEventListener('abort', onAbort);
  let bytes = 0;

  // sub's holdings, once a second (docker exec: works while sub's network is cut)
  const subNode = labNode(t.name, sub);
  const samplerStop = new AbortController();
  const sampler = (async () => {
    const cmd = `cd ${JSON.stringify(`${root}/${dir}`)} 2>/dev/null && find . -maxdepth 1 -type f -name '${prefix}*' -printf '%f\\n'`;
    while (!samplerStop.signal.aborted) {
      const at = rel();
      const r = await subNode.exec(['sh', '-c', cmd], { timeoutMs: 5000 }).catch(() => null);
      if (r && r.code === 0)
        for (const name of r.stdout.split('\n'))
          if (name && !seenOnSub.has(`${dir}/${name}`)) seenOnSub.set(`${dir}/${name}`, at);
      await sleep(1000);
    }
  })();

  // wharf watch, as an operator runs it
  const watchStop = new AbortController();
  const watch: Promise<WatchSummary> | undefined = o.watch.enabled
    ? runWatch({
        topology: t,
        inventory: o.inventory,
        intervalMs: o.watch.intervalMs,
        downForMs: o.watch.downForMs,
        autoFailback: o.watch.autoFailback,
        settleMs: o.watch.settleMs,
        signal: watchStop.signal,
        alertAttempts: 1,
        emit: (e) => {
          if (e.event !== 'observation') history({ type: 'watch', ...e });
          if (e.event === 'decision' || e.event === 'runbook')
            o.log(
              `  watch: ${e.event === 'decision' ? `decides ${e.runbook}: ${e.why}` : `${e.runbook} ${e.ok ? 'ok' : `failed: ${e.error}`}`}`,
            );
        },
        log: () => {},
      })
    : undefined;

  const workload = runWorkload({
    endpoint: { ...labEndpoint(t, o.status, 'entry'), readyTimeoutMs: 3000 },
    clients: s.workload.clients,
    filesPerClient: 1_000_000,
    size: (c, i) => drillFileSize(s.workload.sizeSeed, c, i),
    dir,
    prefix,
    signal: stop.signal,
    pauseMs: s.workload.pauseMs,
    retryDelayMs: 200,
    retryMaxDelayMs: 3000,
    onEvent: (e) => {
      if (e.kind === 'conn') return; // a connection's own end/close/error: its attempt's fail says it
      const key = (client: number) => String(client);
      if (e.kind === 'invoke') {
        const a: Attempt = { path: e.path, sha256: e.sha256, client: e.client, invokedAt: e.at - t0 };
        attempts.push(a);
        open.set(key(e.client), a);
        history({
          type: 'invoke',
          client: e.client,
          path: e.path,
          size: e.size,
          sha256: e.sha256,
          attempt: e.attempt,
        });
      } else {
        const client = e.kind === 'ack' ? e.ack.client : e.client;
        const a = open.get(key(client));
        open.delete(key(client));
        if (a) {
          a.ok = e.kind === 'ack';
          a.endedAt = e.at - t0;
          if (e.kind === 'fail') a.error = e.error;
        }
        if (e.kind === 'ack') {
          bytes += e.ack.size;
          history({ type: 'ok', client, path: e.ack.path });
        } else history({ type: 'fail', client, path: e.path, error: e.error });
      }
    },
  });

  // the schedule
  const records: FaultRecord[] = s.faults.map((fault) => ({ fault }));
  let interrupted = false;
  for (const r of records) {
    const f = r.fault;
    while (rel() < f.at && !stop.signal.aborted) await sleep(Math.min(250, f.at - rel()));
    if (stop.signal.aborted) {
      interrupted = true;
      break;
    }
    const what = `${f.id} ${f.kind} ${f.targets.join(' ⇹ ')}${Object.keys(f.params).length ? ' ' + JSON.stringify(f.params) : ''}`;
    r.injectedAt = rel();
    try {
      r.injected = await injectFault(env, f);
      history({
        type: 'fault',
        phase: 'inject',
        id: f.id,
        kind: f.kind,
        targets: f.targets,
        ok: true,
        detail: r.injected,
      });
      o.log(`[${(r.injectedAt / 1000).toFixed(1)} s] ${what}: ${r.injected}`);
    } catch (e) {
      r.injectError = (e as Error).message;
      history({
        type: 'fault',
        phase: 'inject',
        id: f.id,
        kind: f.kind,
        targets: f.targets,
        ok: false,
        error: r.injectError,
      });
      o.log(`[${(r.injectedAt / 1000).toFixed(1)} s] ${what}: NOT injected: ${r.injectError}`);
    }
    const until = r.injectedAt + f.holdMs;
    while (rel() < until && !stop.signal.aborted) await sleep(Math.min(250, until - rel()));
    // heals always run, also after an interrupt
    try {
      r.healed = await healFault(env, f);
      r.healedAt = rel();
      history({
        type: 'fault',
        phase: 'heal',
        id: f.id,
        kind: f.kind,
        targets: f.targets,
        ok: true,
        detail: r.healed,
      });
      o.log(`[${(r.healedAt / 1000).toFixed(1)} s] ${f.id} healed: ${r.healed}`);
    } catch (e) {
      r.healError = (e as Error).message;
      history({ type: 'fault', phase: 'heal', id: f.id, ok: false, error: r.healError });
      o.log(`${f.id} heal FAILED: ${r.healError}`);
    }
  }
  while (rel() < s.durationMs && !stop.signal.aborted) await sleep(250);
  if (o.signal?.aborted) interrupted = true;
  stop.abort();
  const w = await workload;
  const durationMs = rel();
  o.log(`workload stopped: ${w.acks.length} acknowledged, ${w.failures.length} failed attempts`);

  // heal everything (again: a fault that failed to heal, or a drill interrupted mid-fault)
  let sweepError: string | undefined;
  const swept = await sweep(env, [...new Set(s.faults.flatMap((f) => f.targets))]).catch((e: Error) => {
    sweepError = e.message;
    return [`sweep FAILED: ${e.message}`];
  });
  for (const x of swept) o.log(`sweep: ${x}`);
  history({ type: 'sweep', done: swept, ...(sweepError ? { error: sweepError } : {}) });

  // settle: let watch finish what it decided, then stop it
  await sleep(Math.max(3000, o.watch.downForMs + 2 * o.watch.intervalMs));
  watchStop.abort();
  const ws = await watch;
  o.log(
    `settled${ws ? `; watch ran ${ws.runbooks.map((r) => `${r.runbook} (${r.ok ? 'ok' : 'failed'})`).join(', ') || 'no runbook'}` : ''}`,
  );

  // failback when the stack is failed over or main is held out
  let pending: string | null = null;
  const failback = {
    ran: false,
    ok: true,
    why: 'not needed (no failover on record, no reconcile mark)',
    sabotaged: false,
  };
  try {
    pending = await pendingFailback(hapGroup);
  } catch (e) {
    // not knowing is not "not needed": the failback check fails, the steady state after says why
    failback.ok = false;
    failback.why = `${hapName}: cannot read the failover state: ${(e as Error).message}`;
    o.log(`failback: ${failback.why}`);
  }
  if (pending) {
    failback.ran = true;
    failback.why = pending;
    if (o.sabotage === 'naive-failback') {
      failback.sabotaged = true;
      o.log(
        `failback (SABOTAGED: main back in rotation, lsyncd restarted with delete = true) — ${failback.why}`,
      );
      await naiveFailback(o, main);
    } else {
      o.log(`failback — ${failback.why}`);
      const r = await runRunbookByName('failback', {
        topology: t,
        inventory: o.inventory,
        transports: o.transports,
        log: () => {},
      });
      failback.ok = r.ok;
      if (!r.ok) o.log(`failback FAILED: ${r.error}`);
    }
    history({ type: 'failback', ...failback });
  }

  // final read: sub caught up (or its deadline), then main, sub and backup's newest snapshot
  const want = new Map<string, string>();
  for (const a of [...attempts].sort((x, y) => (x.endedAt ?? 0) - (y.endedAt ?? 0)))
    if (a.ok) want.set(a.path, a.sha256);
  const onSub = await waitForUploads(
    o.status,
    sub,
    root,
    dir,
    prefix,
    want,
    (t.replication.lsyncd.delay + 60) * 1000,
  );
  const onMain = await observeUploads(o.status, main, root, dir, prefix);
  let onBackup: ObservedFile[] = [];
  let backupNote = '';
  try {
    await runBackupOnce(o.status, backup);
    onBackup = await observeUploads(o.status, backup, userRoot(t, user, 'snapshot'), dir, prefix);
  } catch (e) {
    backupNote = (e as Error).message.split('\n')[0]!;
    o.log(`backup run failed: ${backupNote}`);
  }
  const verdict = drillVerdict(attempts, {
    [main]: onMain,
    [sub]: onSub.files,
    [`${backup} (latest snapshot)`]: onBackup,
  });
  samplerStop.abort();
  await sampler;
  if (failback.sabotaged) await repairAfterSabotage(o, main);

  // the notices of the drill's uploads (and of failback's copies) drain before verify's probe
  const notices = await drainNotices(o, o.log);
  history({ type: 'notices', ...notices });

  const steadyAfter = await steadyState(o).catch((e: Error) => ({ ok: false, detail: e.message }));
  history({ type: 'steady-state', phase: 'after', ...steadyAfter });
  o.log(`steady state after: ${steadyAfter.ok ? 'ok' : 'NOT reached'}: ${steadyAfter.detail}`);

  const faults = faultOutcomes(records, attempts, seenOnSub);
  const result: DrillResult = {
    kind: 'drill',
    stack: t.name,
    seed: s.seed,
    startedAt: startedAt.toISOString(),
    durationMs,
    runDir: o.runDir,
    valid: verdict.valid && !backupNote,
    ok:
      verdict.valid &&
      !backupNote &&
      steadyAfter.ok &&
      failback.ok &&
      !interrupted &&
      !sweepError &&
      records.every((r) => !r.injectError && !r.healError),
    interrupted,
    steadyBefore,
    steadyAfter,
    faults,
    timeline: timeline(attempts, durationMs),
    verdict,
    rto: rtoByKind(faults),
    replication: replicationWindow(attempts, seenOnSub),
    workload: {
      clients: s.workload.clients,
      invoked: attempts.length,
      acknowledged: verdict.acknowledged,
      failedAttempts: attempts.filter((a) => a.ok === false).length,
      bytes,
    },
    failback,
    notices,
    watch: ws ? { enabled: true, runbooks: ws.runbooks, alerts: ws.alerts.length } : null,
  };
  writeFileSync(join(o.runDir, 'result.json'), JSON.stringify(result, null, 2) + '\n');
  o.signal?.removeEventListener('abort', onAbort);
  return result;
}

/** Wait (bounded) until the notifier's spool is empty; how many were queued and how long it took. */
async function drainNotices(o: DrillOptions, log: (l: string) => void) {
  const t = o.topology;
  const node = t.notifications.on === 'main' ? sftpNode(t, 'main').name : t.replication.backup.to;
  const tr = o.transports.get(node)!;
  const count = async () => {
    const r = await tr.exec(`find ${NOTIFY_SPOOL} -maxdepth 1 -name '*.notice' | wc -l`, {
      timeoutMs: 20_000,
    });
    return r.code === 0 ? Number(r.stdout.trim()) : NaN;
  };
  const t0 = Date.now();
  const queued = await count();
  let left = queued;
  while (left > 0 && Date.now() - t0 < NOTICE_DRAIN_MS) {
    await sleep(2000);
    left = await count();
  }
  const r = { queued, left, drainMs: Date.now() - t0 };
  log(
    `notices: ${queued} queued on ${node} after the drill; ${left === 0 ? `drained in ${(r.drainMs / 1000).toFixed(1)} s` : `${left} still queued after ${NOTICE_DRAIN_MS / 1000} s`}`,
  );
  return r;
}

/** How long the drill waits for the notice spool to drain before the steady-state check. */
const NOTICE_DRAIN_MS = 240_000;

/** The broken failback of the failback-naive scenario (a test of the checker, never a product path). */
async function naiveFailback(o: DrillOptions, main: string): Promise<void> {
  const t = o.topology;
  const tm = o.transports.get(main)!;
  const hap = haproxyGroup(t, (n) => o.transports.get(n));
  const conf = (await tm.readFile(LSYNCD_CONF))?.toString('utf8') ?? '';
  await tm.writeFileAtomic(LSYNCD_CONF, conf.replace(/delete\s*=\s*[^,\n]+,/, 'delete = true,'), {
    mode: 0o644,
    owner: 'root',
    group: 'root',
  });
  await tm.exec('systemctl restart lsyncd', { timeoutMs: 30_000 });
  await clearReconcileMark(hap, true, t.haproxy.stats.socket);
  await runtimeApi(hap, t, serverStateCommands(t, main, 'ready'));
  // the startup sync (rsync --delete main → sub) runs now
  await sleep((t.replication.lsyncd.delay + 10) * 1000);
}

async function repairAfterSabotage(o: DrillOptions, main: string): Promise<void> {
  o.log('repairing the sabotage: configure (rendered lsyncd config), lsyncd restarted');
  const r = await runRunbookByName('configure', {
    topology: o.topology,
    inventory: o.inventory,
    transports: o.transports,
    log: () => {},
  });
  if (!r.ok) o.log(`configure FAILED: ${r.error}`);
  await o.transports.get(main)!.exec('systemctl restart lsyncd', { timeoutMs: 30_000 });
  // failback decides itself whether there is anything to reconcile (it compares both trees)
  const f = await runRunbookByName('failback', {
    topology: o.topology,
    inventory: o.inventory,
    transports: o.transports,
    log: () => {},
  });
  if (!f.ok) o.log(`failback after the sabotage FAILED: ${f.error}`);
}
