// wharf watch's loop (the side effects around the pure nextWatch): poll the HAProxy node over the
// runbooks' SSH transport every interval (one round trip: `show stat` on the stats socket, main's
// health-check banner probed from the HAProxy node, the failover record), feed nextWatch, carry out
// its decisions (runbooks through the registry, alerts through the notice channels, queued so a slow
// channel never delays a failover), and journal every change in .wharf/runs/<stack>/<ts>-watch.jsonl.
import { shQuote } from '../exec/index.ts';
import { socatLine, parseStat, statusOf } from '../failover/haproxy.ts';
import { FAILOVER_STATE } from '../failover/remote.ts';
import { Journal, type JournalResult } from '../runbook/journal.ts';
import type { RunbookResult } from '../runbook/registry.ts';
import { runRunbookByName } from '../stack/runbooks.ts';
import { sshTransports, closeAll } from '../transport/index.ts';
import type { Transport } from '../transport/types.ts';
import { addressOf, type Inventory } from '../topology/inventory.ts';
import { haproxyNodes, sftpNode, type Topology } from '../topology/model.ts';
import { alertChannels, sendAlert, type AlertChannels, type ChannelResult } from './alert.ts';
import {
  initialWatchState,
  nextWatch,
  type Decision,
  type Observation,
  type WatchConfig,
  type WatchInput,
} from './machine.ts';

export interface WatchOptions {
  topology: Topology;
  inventory: Inventory;
  intervalMs: number;
  downForMs: number;
  autoFailback: boolean;
  settleMs: number;
  /** Stop after this long (tests, drills); undefined: until the signal aborts. */
  maxDurationMs?: number;
  /** Aborted by SIGINT/SIGTERM (the CLI); the reason is journalled. */
  signal?: AbortSignal;
  runsDir?: string;
  transports?: Map<string, Transport>;
  /** Every event as it happens (the CLI prints them). */
  emit?: (e: WatchEvent) => void;
  /** Runbook output lines. */
  log?: (line: string) => void;
  /** Alert retries per channel (default 4) and the first pause (default 1 s, doubling). */
  alertAttempts?: number;
  alertRetryDelayMs?: number;
}

export type WatchEvent =
  | { event: 'start'; at: string; stack: string; journal: string; config: Record<string, unknown> }
  | { event: 'observation'; at: string; observation: Observation }
  | { event: 'decision'; at: string; runbook: string; options: Record<string, unknown>; why: string }
  | {
      event: 'runbook';
      at: string;
      runbook: string;
      ok: boolean;
      error?: string;
      journal?: string;
      durationMs: number;
    }
  | { event: 'alert'; at: string; alert: string; text: string; ok: boolean; channels: ChannelResult[] }
  | { event: 'stop'; at: string; reason: string; polls: number };

export interface WatchSummary {
  journal: string;
  reason: string;
  polls: number;
  alerts: { alert: string; ok: boolean }[];
  runbooks: { runbook: string; ok: boolean }[];
  /** Every alert delivered on every channel and every runbook run ok. */
  ok: boolean;
}

/**
 * The one shell line a poll runs on the HAProxy node; its output is read by parsePoll. Main's SSH
 * banner is probed (2 s at most) only when it decides something: a failover on record (is main
 * back?) or main in MAINT/DRAIN (an operator's maintenance, or a dead main held out). Pure.
 */
export function pollCommand(t: Topology, main: string, mainAddr: string): string {
  const probe = `exec 3<>/dev/tcp/${mainAddr}/${t.sftp.port} && head -c 16 <&3`;
  // show stat's status is field 18 (1-based): a row of main in MAINT or DRAIN (administrative)
  const mainMaint = `^[^,]*,${main.replace(/[^\w-]/g, '.')},([^,]*,){15}(MAINT|DRAIN)`;
  return [
    `s=$(${socatLine(t.haproxy.stats.socket, ['show stat'])}); r=$?; printf '%s\\n' "$s"; echo "@@stat=$r"`,
    `if [ -e ${shQuote(FAILOVER_STATE)} ]; then f=1; if grep -Eq '"phase": *"done"' ${shQuote(FAILOVER_STATE)}; ` +
      `then echo @@failover=done; else echo @@failover=started; fi; else echo @@failover=no; f=0; fi`,
    `if [ $f = 1 ] || printf '%s\\n' "$s" | grep -Eq ${shQuote(mainMaint)}; then ` +
      `echo "@@probe=$(timeout 2 bash -c ${shQuote(probe)} 2>/dev/null | tr -dc '[:print:]')"; fi`,
  ].join('; ');
}

/** A poll's output → the observation nextWatch takes. Pure. */
export function parsePoll(t: Topology, out: string, main: string, sub: string): Observation {
  const stat = /^@@stat=(\d+)$/m.exec(out)?.[1];
  const csv = out.split(/^@@stat=/m)[0] ?? '';
  const rows = parseStat(csv);
  if (stat !== '0' || !rows.length)
    return {
      kind: 'observation',
      haproxy: false,
      error: `stats socket ${t.haproxy.stats.socket}: ${stat === undefined ? 'no answer' : `socat exit ${stat}`}${
        rows.length ? '' : ', no server rows'
      }: ${csv.trim().slice(0, 200)}`,
    };
  const banner = /^@@probe=(.*)$/m.exec(out)?.[1];
  const mainStatus = statusOf(rows, t, main);
  const out_ = rows.filter((r) => r.server === main && r.proxy in mainStatus && !r.status.startsWith('UP'));
  return {
    kind: 'observation',
    haproxy: true,
    main: mainStatus,
    sub: statusOf(rows, t, sub),
    ...(banner !== undefined ? { mainAnswers: banner.startsWith(t.haproxy.check.expect) } : {}),
    ...(out_.length ? { mainOutForMs: Math.min(...out_.map((r) => r.lastchg)) * 1000 } : {}),
    failedOver: /^@@failover=done$/m.test(out),
    ...(/^@@failover=started$/m.test(out) ? { failoverIncomplete: true } : {}),
  };
}

const abortableSleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

export async function runWatch(o: WatchOptions): Promise<WatchSummary> {
  const t = o.topology;
  const main = sftpNode(t, 'main').name;
  const sub = t.replication.lsyncd.to;
  const hapName = haproxyNodes(t).join('+');
  const mainAddr = addressOf(o.inventory, main, 'lan');
  const channels: AlertChannels = alertChannels(t, o.inventory);
  const config: WatchConfig = {
    downForMs: o.downForMs,
    autoFailback: o.autoFailback,
    settleMs: o.settleMs,
    main,
    sub,
  };
  const runsDir = o.runsDir ?? '.wharf/runs';
  const secrets = channels.webhook?.secret ? [channels.webhook.url] : [];
  const journal = new Journal(runsDir, t.name, 'watch', secrets);
  const own = !o.transports;
  const transports = o.transports ?? (sshTransports(o.inventory, undefined) as Map<string, Transport>);
  // every HAProxy (both of a pair): the first that answers is observed (both check main themselves;
  // the runbooks watch starts act on both)
  const haps = haproxyNodes(t).map((n) => {
    const x = transports.get(n);
    if (!x) throw new Error(`${n}: not in the inventory`);
    return x;
  });
  const now = () => new Date().toISOString();
  const emit = (e: WatchEvent) => o.emit?.(e);
  const summary: WatchSummary = {
    journal: journal.path,
    reason: '',
    polls: 0,
    alerts: [],
    runbooks: [],
    ok: true,
  };
  const started = Date.now();

  journal.write({
    host: '*',
    step: 'run',
    result: 'started',
    durationMs: 0,
    detail: {
      ...config,
      intervalMs: o.intervalMs,
      maxDurationMs: o.maxDurationMs ?? null,
      channels: Object.keys(channels),
    },
  });
  emit({
    event: 'start',
    at: now(),
    stack: t.name,
    journal: journal.path,
    config: {
      intervalMs: o.intervalMs,
      downForMs: o.downForMs,
      autoFailback: o.autoFailback,
      settleMs: o.settleMs,
      maxDurationMs: o.maxDurationMs ?? null,
      channels: Object.keys(channels),
    },
  });
  if (!channels.webhook && !channels.smtp)
    o.log?.('watch: notifications has neither webhook nor smtp enabled: alerts go to the journal only');

  // Alerts go out in order, one after another, without holding up the polls and runbooks.
  let alertChain: Promise<void> = Promise.resolve();
  const queueAlert = (alert: string, text: string) => {
    const at = now();
    alertChain = alertChain.then(async () => {
      const t0 = Date.now();
      const results = await sendAlert(
        channels,
        { event: alert, text, stack: t.name, at },
        {
          attempts: o.alertAttempts ?? 4,
          retryDelayMs: o.alertRetryDelayMs ?? 1000,
          onAttemptFailed: (c, e) => o.log?.(`watch: alert ${alert} via ${c} failed (will retry): ${e}`),
        },
      );
      const ok = results.every((r) => r.ok);
      summary.alerts.push({ alert, ok });
      if (!ok) summary.ok = false;
      for (const r of results)
        journal.write({
          id: `alert:${alert}:${r.channel}`,
          host: '*',
          step: 'alert',
          result: r.ok ? 'ok' : 'failed',
          durationMs: Date.now() - t0,
          ...(r.error ? { error: `${r.channel}: ${r.error} (after ${r.attempts} attempt(s))` } : {}),
          detail: { alert, text, channel: r.channel, attempts: r.attempts, queuedAt: at },
        });
      if (!results.length)
        journal.write({
          id: `alert:${alert}`,
          host: '*',
          step: 'alert',
          result: 'skipped',
          durationMs: 0,
          detail: { alert, text, why: 'no channel configured' },
        });
      for (const r of results.filter((x) => !x.ok))
        o.log?.(
          `watch: alert ${alert} NOT delivered via ${r.channel} after ${r.attempts} attempt(s): ${r.error}`,
        );
      emit({ event: 'alert', at: now(), alert, text, ok, channels: results });
    });
  };

  let state = initialWatchState();
  const pending: WatchInput[] = [];
  // A signal while a runbook runs: the runbook's own handler journals its interruption and exits the
  // process (130/143; every step is re-runnable); this line, written first, says so in watch's journal.
  let running: string | undefined;
  const onAbort = () => {
    if (running)
      journal.write({
        host: '*',
        step: 'summary',
        result: 'failed',
        durationMs: Date.now() - started,
        error: `stopped by ${String(o.signal?.reason ?? 'signal')} during ${running} (see its journal)`,
        detail: { reason: `stopped by ${String(o.signal?.reason ?? 'signal')} during ${running}` },
      });
  };
  o.signal?.addEventListener('abort', onAbort, { once: true });
  const act = async (d: Decision): Promise<void> => {
    if (d.kind === 'alert') {
      journal.write({
        id: `transition:${d.alert}`,
        host: '*',
        step: 'transition',
        result: 'ok',
        durationMs: 0,
        detail: { alert: d.alert, text: d.text },
      });
      queueAlert(d.alert, d.text);
      return;
    }
    journal.write({
      id: `decision:${d.runbook}`,
      host: '*',
      step: 'decision',
      result: 'planned',
      durationMs: 0,
      detail: { runbook: d.runbook, options: d.options, why: d.why },
    });
    emit({ event: 'decision', at: now(), runbook: d.runbook, options: d.options, why: d.why });
    const t0 = Date.now();
    let res: RunbookResult | undefined;
    let error: string | undefined;
    running = d.runbook;
    try {
      res = await runRunbookByName(d.runbook, {
        topology: t,
        inventory: o.inventory,
        transports,
        runsDir,
        options: d.options,
        log: (l) => o.log?.(`[${d.runbook}] ${l}`),
      });
      if (!res.ok) error = res.error ?? 'failed';
    } catch (e) {
      error = (e as Error).message;
    } finally {
      running = undefined;
    }
    const ok = error === undefined;
    summary.runbooks.push({ runbook: d.runbook, ok });
    if (!ok) summary.ok = false;
    journal.write({
      id: `runbook:${d.runbook}`,
      host: '*',
      step: 'runbook',
      result: ok ? 'ok' : 'failed',
      durationMs: Date.now() - t0,
      ...(error ? { error } : {}),
      detail: {
        runbook: d.runbook,
        options: d.options,
        journal: res?.journal ?? null,
        changes: res?.changes ?? null,
      },
    });
    emit({
      event: 'runbook',
      at: now(),
      runbook: d.runbook,
      ok,
      ...(error ? { error } : {}),
      ...(res?.journal ? { journal: res.journal } : {}),
      durationMs: Date.now() - t0,
    });
    pending.push({ kind: 'runbook', runbook: d.runbook, ok, ...(error ? { error } : {}) });
  };

  const feed = async (input: WatchInput) => {
    const r = nextWatch(state, input, Date.now(), config);
    state = r.state;
    for (const d of r.decisions) await act(d);
  };

  let lastSeen = '';
  let reason = '';
  try {
    for (;;) {
      if (o.signal?.aborted) {
        reason = `stopped by ${String(o.signal.reason ?? 'signal')}`;
        break;
      }
      if (o.maxDurationMs !== undefined && Date.now() - started >= o.maxDurationMs) {
        reason = `--max-duration ${o.maxDurationMs / 1000} s reached`;
        break;
      }
      const tick = Date.now();
      const polled = await Promise.all(
        haps.map((h) => observe(h, t, main, mainAddr, sub, Math.max(5000, o.intervalMs * 5))),
      );
      const obs = polled.find((x) => x.haproxy) ?? polled[0]!;
      summary.polls++;
      // journal what changed (not the growing outage age)
      const seen = JSON.stringify({
        ...obs,
        mainOutForMs: undefined,
        error: obs.error ? obs.error.slice(0, 80) : undefined,
      });
      if (seen !== lastSeen) {
        lastSeen = seen;
        journal.write({
          host: hapName,
          step: 'observe',
          result: obs.haproxy ? 'ok' : 'failed',
          durationMs: Date.now() - tick,
          detail: obs,
          ...(obs.error ? { error: obs.error } : {}),
        });
        emit({ event: 'observation', at: now(), observation: obs });
      }
      await feed(obs);
      while (pending.length) await feed(pending.shift()!);
      await abortableSleep(Math.max(0, o.intervalMs - (Date.now() - tick)), o.signal);
    }
  } catch (e) {
    reason = `error: ${(e as Error).message}`;
    summary.ok = false;
    throw e;
  } finally {
    await alertChain;
    summary.reason = reason;
    const result: JournalResult = reason.startsWith('error') ? 'failed' : 'ok';
    journal.write({
      host: '*',
      step: 'summary',
      result,
      durationMs: Date.now() - started,
      detail: { reason, polls: summary.polls, alerts: summary.alerts, runbooks: summary.runbooks },
    });
    emit({ event: 'stop', at: now(), reason, polls: summary.polls });
    o.signal?.removeEventListener('abort', onAbort);
    if (own) await closeAll(transports.values());
  }
  return summary;
}

async function observe(
  hap: Transport,
  t: Topology,
  main: string,
  mainAddr: string,
  sub: string,
  timeoutMs: number,
): Promise<Observation> {
  try {
    const r = await hap.exec(pollCommand(t, main, mainAddr), { timeoutMs });
    return parsePoll(t, r.stdout, main, sub);
  } catch (e) {
    return { kind: 'observation', haproxy: false, error: `${hap.host}: ${(e as Error).message}` };
  }
}
