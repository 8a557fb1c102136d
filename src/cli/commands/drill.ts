// wharf drill: seeded chaos against the lab (src/drill/). The schedule is made from the seed and
// saved before anything runs; --replay runs a saved one again; --plan only prints it; --heal undoes
// whatever drill fault a killed drill left behind.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { parseDuration } from '../../core/duration.ts';
import { InputError, ReportedFailure, RunError } from '../../core/errors.ts';
import {
  FAULT_HELP,
  FAULT_KINDS,
  DrillRefused,
  defaultTargets,
  drillChecks,
  drillShape,
  formatDrillVerdict,
  generateSchedule,
  parseSchedule,
  runDrill,
  sizedUploadNodes,
  sweep,
  type DrillSchedule,
  type FaultKind,
} from '../../drill/index.ts';
import { labStatus } from '../../lab/lab.ts';
import { writeJunit } from '../../scenario/runner.ts';
import { loadInventory, loadTopology } from '../../topology/load.ts';
import { sshTransports, closeAll } from '../../transport/index.ts';
import type { Transport } from '../../transport/types.ts';
import { topologyOption } from '../inputs.ts';
import { printJson, type Io } from '../io.ts';

interface DrillCliOptions {
  config: string;
  seed?: string;
  duration: string;
  faults: string;
  targets?: string;
  clients: string;
  pause: string;
  replay?: string;
  plan?: boolean;
  heal?: boolean;
  watch: boolean;
  downFor: string;
  autoFailback?: boolean;
  sabotage?: string;
  json?: boolean;
  junit?: string;
}

const list = (flag: string, text: string, known: readonly string[]): string[] => {
  const xs = text
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  if (xs.length === 0) throw new InputError(`${flag}: empty list`);
  for (const x of xs)
    if (!known.includes(x))
      throw new InputError(`${flag}: unknown ${JSON.stringify(x)} (known: ${known.join(', ')})`);
  return [...new Set(xs)];
};

const stamp = () => new Date().toISOString().replace(/[:.]/g, '-');

export function registerDrill(program: Command, io: Io): void {
  const cmd = program
    .command('drill')
    .description('seeded chaos against the lab: faults + workload + watch, then a Jepsen-style verdict')
    .option('--seed <n>', 'seed of the schedule (default: a random one, printed)')
    .option('--duration <time>', 'how long the workload runs (faults fit inside it)', '2m')
    .option(
      '--faults <kinds>',
      `fault kinds, comma-separated: ${FAULT_KINDS.join(',')}`,
      'kill,pause,restart,partition,loss,bandwidth,delay,process',
    )
    .option('--targets <nodes>', 'nodes the faults may touch (default: every stack node but the WAN client)')
    .option('--clients <n>', 'concurrent upload clients', '4')
    .option('--pause <time>', "each client's pause between two files", '500ms')
    .option(
      '--replay <dir>',
      "run a previous drill's schedule.json again (seed, faults and targets come from it)",
    )
    .option('--plan', 'print the schedule and stop (nothing runs)')
    .option('--heal', 'undo every drill fault left on the lab (after a drill was killed) and stop')
    .option('--no-watch', 'run without wharf watch (nobody fails over)')
    .option('--down-for <time>', 'watch: main down this long before failover --unplanned', '5s')
    .option('--auto-failback', 'watch: fail back by itself')
    .option('--sabotage <what>', 'break a runbook on purpose to test the checker: naive-failback')
    .option('--json', 'print the result as JSON on stdout')
    .option('--junit <file>', 'write the checks as JUnit XML (tap-junit)');
  topologyOption(cmd);
  cmd.addHelpText(
    'after',
    `
Fault kinds:
${FAULT_KINDS.map((k) => `  ${k.padEnd(10)} ${FAULT_HELP[k]}`).join('\n')}

Run folder: .wharf/drills/<stack>/<time>/ — schedule.json (written before anything runs),
history.jsonl (every invoke/ok/fail, fault and watch event as it happens), result.json.
Every fault is healed (also on Ctrl-C); the drill ends with a sweep of every node, a settle, a
failback when the stack is failed over, a final read of main, sub and backup's newest snapshot,
and the steady-state check again. Refuses to start unless verify passes and nothing is failed over.
Exit: 0 valid and every fault injected and healed; 1 an acknowledged upload lost or corrupt, a
fault not applied or healed, or the steady state not reached again; 2 bad input.`,
  );
  cmd.action(async (o: DrillCliOptions) => {
    // flags first (exit 2, nothing touched), then the lab
    const t = loadTopology(o.config);
    if (o.sabotage !== undefined && o.sabotage !== 'naive-failback')
      throw new InputError(`--sabotage: unknown ${JSON.stringify(o.sabotage)} (known: naive-failback)`);
    const downForMs = parseDuration(o.downFor, { label: '--down-for', minMs: 0 });
    const seed = o.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(o.seed);
    if (!/^\d+$/.test(String(o.seed ?? seed)) || seed >= 2 ** 32)
      throw new InputError(`--seed: expected an integer 0…2^32-1, got ${JSON.stringify(o.seed)}`);
    const clients = Number(o.clients);
    if (!/^\d+$/.test(o.clients) || clients < 1 || clients > 64)
      throw new InputError(`--clients: expected 1…64, got ${JSON.stringify(o.clients)}`);
    const durationMs = parseDuration(o.duration, { label: '--duration', minMs: 20_000 });
    const faults = list('--faults', o.faults, FAULT_KINDS) as FaultKind[];
    const pauseMs = parseDuration(o.pause, { label: '--pause', minMs: 0 });
    let replayed: DrillSchedule | undefined;
    if (o.replay) {
      const f = existsSync(join(o.replay, 'schedule.json')) ? join(o.replay, 'schedule.json') : o.replay;
      if (!existsSync(f)) throw new InputError(`--replay: no ${f}`);
      try {
        replayed = parseSchedule(readFileSync(f, 'utf8'), f);
      } catch (e) {
        throw new InputError(`--replay: ${(e as Error).message}`);
      }
      if (replayed.stack !== t.name)
        throw new InputError(
          `--replay: the schedule is for stack ${replayed.stack}, the topology is ${t.name}`,
        );
    }

    const status = await labStatus(t);
    const inventory = loadInventory(status.inventory, t);
    const targetsAll = defaultTargets(t, status);
    let schedule: DrillSchedule;
    if (replayed) schedule = replayed;
    else {
      const targets = o.targets ? list('--targets', o.targets, targetsAll) : targetsAll;
      try {
        schedule = generateSchedule(
          t.name,
          { seed, durationMs, faults, targets },
          drillShape(t, status, await sizedUploadNodes(t, status)),
          { clients, pauseMs },
        );
      } catch (e) {
        throw new InputError((e as Error).message);
      }
    }
    const env = { t, status, log: (l: string) => io.err(l + '\n') };

    if (o.heal) {
      const done = await sweep(env, targetsAll);
      io.err(done.length ? done.map((d) => `healed: ${d}`).join('\n') + '\n' : 'nothing to heal\n');
      return;
    }
    if (o.plan) {
      if (o.json) printJson(io, schedule);
      else
        io.out(
          `drill ${t.name}: seed ${schedule.seed}, ${schedule.durationMs / 1000} s, ${schedule.workload.clients} clients\n` +
            schedule.faults
              .map(
                (f) =>
                  `  ${f.id} at ${(f.at / 1000).toFixed(1).padStart(6)} s for ${(f.holdMs / 1000).toFixed(1).padStart(5)} s  ${f.kind.padEnd(9)} ${f.targets.join(' ⇹ ')}${Object.keys(f.params).length ? ' ' + JSON.stringify(f.params) : ''}`,
              )
              .join('\n') +
            '\n',
        );
      return;
    }

    const runDir = resolve('.wharf', 'drills', t.name, stamp());
    mkdirSync(runDir, { recursive: true });
    const transports = sshTransports(inventory, undefined) as Map<string, Transport>;
    const stop = new AbortController();
    const onSignal = (sig: NodeJS.Signals) => () => {
      io.err(`\n${sig}: stopping the drill; every fault is healed first\n`);
      stop.abort(sig);
    };
    const handlers = (['SIGINT', 'SIGTERM'] as const).map((s) => [s, onSignal(s)] as const);
    for (const [s, h] of handlers) process.once(s, h);
    try {
      const r = await runDrill({
        topology: t,
        status,
        inventory,
        transports,
        schedule,
        runDir,
        watch: {
          enabled: o.watch,
          intervalMs: 1000,
          downForMs,
          autoFailback: Boolean(o.autoFailback),
          settleMs: 10_000,
        },
        ...(o.sabotage ? { sabotage: 'naive-failback' as const } : {}),
        log: (l) => io.err(l + '\n'),
        signal: stop.signal,
      });
      const { results, metrics } = drillChecks(r);
      if (o.junit)
        writeJunit(
          {
            results,
            metrics: { [`drill seed ${r.seed}`]: metrics },
            series: {},
            events: {},
            samples: {},
            ok: r.ok,
            startedAt: r.startedAt,
            durationMs: r.durationMs,
          },
          o.junit,
        );
      if (o.json) printJson(io, r);
      else {
        const rows = r.faults.map(
          (f) =>
            `  ${f.id} ${f.kind.padEnd(9)} ${f.targets.join(' ⇹ ').padEnd(28)} RTO ${f.rtoMs === null ? '—' : `${f.rtoMs} ms`}  lag after heal ${f.lagAfterHealMs === null ? '—' : `${f.lagAfterHealMs} ms`}${f.error ? `  ERROR ${f.error}` : ''}`,
        );
        const rto = Object.entries(r.rto).map(
          ([k, v]) => `  ${k.padEnd(9)} median ${v.median} ms, max ${v.max} ms (${v.n})`,
        );
        io.out(
          [
            `drill ${r.stack} seed ${r.seed}: ${(r.durationMs / 1000).toFixed(0)} s, ${r.workload.invoked} attempts, ${r.workload.acknowledged} acknowledged, ${r.workload.failedAttempts} failed attempts`,
            'faults:',
            ...rows,
            'RTO per fault kind:',
            ...rto,
            `replication window (ack → on ${t.replication.lsyncd.to}): p50 ${r.replication.p50Ms ?? '—'} ms, p99 ${r.replication.p99Ms ?? '—'} ms, max ${r.replication.maxMs ?? '—'} ms`,
            `failback: ${r.failback.ran ? (r.failback.ok ? 'ran' : 'FAILED') : 'not needed'} (${r.failback.why})`,
            `steady state after: ${r.steadyAfter?.ok ? 'ok' : 'NOT reached'} — ${r.steadyAfter?.detail ?? ''}`,
            formatDrillVerdict(r.verdict),
            `run folder: ${r.runDir}`,
            '',
          ].join('\n'),
        );
      }
      if (!r.ok)
        throw new ReportedFailure(
          `drill: ${r.valid ? 'a fault or the steady state failed' : 'acknowledged uploads lost or corrupt'}`,
        );
    } catch (e) {
      if (e instanceof DrillRefused) throw new RunError(`drill refused: ${e.message}`);
      throw e;
    } finally {
      for (const [s, h] of handlers) process.removeListener(s, h);
      await closeAll(transports.values());
    }
  });
}
