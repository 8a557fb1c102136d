// wharf watch: the unattended auto-failover supervisor (src/watch/). Runs in the foreground until
// SIGINT/SIGTERM or --max-duration; every event is a line on stderr (--json: a JSON line on stdout).
import type { Command } from 'commander';
import { parseDuration } from '../../core/duration.ts';
import { ReportedFailure } from '../../core/errors.ts';
import { loadTopology } from '../../topology/load.ts';
import { runWatch, type WatchEvent } from '../../watch/run.ts';
import { topologyOption } from '../inputs.ts';
import type { Io } from '../io.ts';
import { resolveInventory } from './run.ts';

interface WatchCliOptions {
  config: string;
  inventory?: string;
  interval: string;
  downFor: string;
  autoFailback?: boolean;
  settle: string;
  maxDuration?: string;
  json?: boolean;
}

/** One event as a line for people. Pure. */
export function formatWatchEvent(e: WatchEvent): string {
  switch (e.event) {
    case 'start':
      return `watch ${e.stack}: polling every ${Number(e.config.intervalMs) / 1000} s, failover after ${Number(e.config.downForMs) / 1000} s down, auto-failback ${e.config.autoFailback ? `on (settle ${Number(e.config.settleMs) / 1000} s)` : 'off'}; alerts via ${(e.config.channels as string[]).join(' + ') || 'journal only'}; journal ${e.journal}`;
    case 'observation': {
      const o = e.observation;
      if (!o.haproxy) return `${e.at} haproxy unreachable: ${o.error ?? ''}`;
      const f = (r?: Record<string, string>) =>
        Object.entries(r ?? {})
          .map(([b, s]) => `${b}=${s}`)
          .join(' ');
      return `${e.at} main ${f(o.main)} (${o.mainAnswers ? 'answers' : 'no answer'}) · sub ${f(o.sub)}${o.failedOver ? ' · failover on record' : ''}`;
    }
    case 'decision':
      return `${e.at} decision: ${e.runbook} ${JSON.stringify(e.options)} — ${e.why}`;
    case 'runbook':
      return `${e.at} ${e.runbook}: ${e.ok ? 'ok' : `FAILED: ${e.error ?? ''}`} in ${(e.durationMs / 1000).toFixed(1)} s${e.journal ? ` (journal ${e.journal})` : ''}`;
    case 'alert':
      return `${e.at} alert ${e.alert}: ${e.text} — ${e.channels.map((c) => `${c.channel} ${c.ok ? 'sent' : `FAILED (${c.error ?? ''})`}`).join(', ') || 'no channel'}`;
    case 'stop':
      return `${e.at} watch stopped: ${e.reason} (${e.polls} polls)`;
  }
}

export function registerWatch(program: Command, io: Io): void {
  const cmd = program
    .command('watch')
    .description(
      'unattended supervisor: polls HAProxy, runs failover --unplanned when main stays down, alerts',
    )
    .option('-i, --inventory <file>', "inventory (default: the running lab's generated inventory)")
    .option('--interval <time>', 'poll HAProxy this often', '1s')
    .option('--down-for <time>', 'main must be down this long (sub UP) before failover --unplanned', '10s')
    .option('--auto-failback', 'run failback by itself once main has been back and healthy for --settle')
    .option('--settle <time>', 'with --auto-failback: how long main must answer its checks first', '30s')
    .option('--max-duration <time>', 'stop after this long (default: until SIGINT/SIGTERM)')
    .option('--json', 'one JSON line per event on stdout');
  topologyOption(cmd);
  cmd.addHelpText(
    'after',
    `
Reaches HAProxy's stats socket over SSH (the runbooks' transport) and probes main's SSH banner from
the HAProxy node. Alerts (webhook + SMTP, as the topology's notifications configure them) for each
transition: haproxy unreachable/recovered, main down, failover done/FAILED, main back and waiting
for failback, main back in rotation (and failback done/FAILED with --auto-failback). Never fails
back by itself without --auto-failback. Journal: .wharf/runs/<stack>/<ts>-watch.jsonl.
Exit: 0 stopped cleanly, every alert delivered and every runbook ok; 1 otherwise; 2 bad input.`,
  );
  cmd.action(async (o: WatchCliOptions) => {
    const intervalMs = parseDuration(o.interval, { label: '--interval', minMs: 100 });
    const downForMs = parseDuration(o.downFor, { label: '--down-for', minMs: 0 });
    const settleMs = parseDuration(o.settle, { label: '--settle', minMs: 0 });
    const maxDurationMs =
      o.maxDuration !== undefined ? parseDuration(o.maxDuration, '--max-duration') : undefined;
    const topology = loadTopology(o.config);
    const { inventory } = resolveInventory(topology, o.inventory);

    const stop = new AbortController();
    const onSignal = (sig: NodeJS.Signals) => () => stop.abort(sig);
    const handlers = (['SIGINT', 'SIGTERM'] as const).map((s) => [s, onSignal(s)] as const);
    for (const [s, h] of handlers) process.once(s, h);
    try {
      const summary = await runWatch({
        topology,
        inventory,
        intervalMs,
        downForMs,
        autoFailback: Boolean(o.autoFailback),
        settleMs,
        ...(maxDurationMs !== undefined ? { maxDurationMs } : {}),
        signal: stop.signal,
        emit: (e) => (o.json ? io.out(`${JSON.stringify(e)}\n`) : io.err(`${formatWatchEvent(e)}\n`)),
        log: (l) => io.err(`${l}\n`),
      });
      if (!summary.ok) {
        io.err(`watch: an alert was not delivered or a runbook failed (journal ${summary.journal})\n`);
        throw new ReportedFailure('watch: an alert was not delivered or a runbook failed');
      }
    } finally {
      for (const [s, h] of handlers) process.removeListener(s, h);
    }
  });
}
