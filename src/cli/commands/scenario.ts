// wharf scenario list | run NAME…: scenarios against the scenario lab, as flat TAP (stdout or
// --tap FILE) and JUnit (--junit FILE, made by tap-junit). Checks carry their measured numbers.
import type { Command } from 'commander';
import { InputError, ReportedFailure, RunError } from '../../core/errors.ts';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { runJson, runScenarios, writeJunit, writeTap } from '../../scenario/runner.ts';
import { reportInputFrom } from '../../report/load.ts';
import { DEFAULT_TOPOLOGY } from '../../topology/load.ts';
import { REPO_ROOT } from '../../lab/state.ts';
import { writeReport } from './report.ts';
import { toTap } from '../../scenario/tap.ts';
import { pickScenarios, registeredScenarios } from '../../scenario/registry.ts';
import type { Scenario } from '../../scenario/types.ts';
import { type Io, printJson } from '../io.ts';

interface RunOptions {
  tap?: string;
  junit?: string;
  json?: boolean | string;
  report?: string;
}

/**
 * `registry` is the scenario set: by default the registered catalogue (scenarios/index.ts, loaded by
 * the entry point); tests pass their own.
 */
export function registerScenario(
  program: Command,
  io: Io,
  registry: Record<string, Scenario> = registeredScenarios(),
): void {
  const known = () => {
    if (!Object.keys(registry).length)
      throw new RunError('no scenarios are registered: the entry point must load scenarios/index.ts');
  };
  const sc = program
    .command('scenario')
    .description('scenarios: known state → act → check invariants → metrics (TAP / JUnit)');

  sc.command('list')
    .description('the scenarios and what each proves')
    .option('--json', 'JSON output')
    .action((o: { json?: boolean }) => {
      known();
      const all = Object.values(registry).map((s) => ({ name: s.name, description: s.description }));
      if (o.json) printJson(io, all);
      else {
        const w = Math.max(...all.map((s) => s.name.length));
        io.out(all.map((s) => `${s.name.padEnd(w)}  ${s.description}`).join('\n') + '\n');
      }
    });

  sc.command('run')
    .description('run scenarios in the order given ("all": every scenario)')
    .argument('<names...>', `scenario names: ${Object.keys(registry).join(', ')}, or all`)
    .option('--tap <file>', 'write flat TAP here (default: TAP on stdout)')
    .option('--junit <file>', 'write JUnit XML here (made by tap-junit; one testcase per check)')
    .option(
      '--json [file]',
      'one JSON document (results, metrics, series, events, samples): to FILE, or instead of TAP on stdout',
    )
    .option('--report <file>', 'write the HTML report of this run here (as `wharf report`)')
    .addHelpText(
      'after',
      `
Progress goes to stderr. Exit: 0 every check passed, 1 a check failed, 2 unknown scenario name.`,
    )
    .action(async (names: string[], o: RunOptions) => {
      known();
      const wanted = names.includes('all') ? Object.keys(registry) : names;
      const { picked, unknown } = pickScenarios(wanted, registry);
      if (unknown.length) {
        throw new InputError(
          `unknown scenario${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')} (scenarios: ${Object.keys(registry).join(', ')})`,
        );
      }
      const run = await runScenarios(picked, { log: (l) => io.err(`${l}\n`) });
      if (o.tap) writeTap(run, o.tap);
      if (o.junit) writeJunit(run, o.junit);
      const doc = runJson(run);
      if (typeof o.json === 'string') {
        mkdirSync(dirname(resolve(o.json)), { recursive: true });
        writeFileSync(o.json, `${JSON.stringify(doc, null, 2)}\n`);
      }
      if (o.report) {
        // the scenario lab's topology file when given, else the default stack: the same graph
        const topo = process.env.WHARF_SCENARIO_TOPOLOGY ?? join(REPO_ROOT, DEFAULT_TOPOLOGY);
        writeReport(o.report, {
          inputs: [reportInputFrom(doc, typeof o.json === 'string' ? o.json : 'scenario run')],
          topologyFile: topo,
          title: `wharf scenarios: ${picked.map((s) => s.name).join(', ')}`,
        });
      }
      if (o.json === true) printJson(io, doc);
      else if (!o.tap) io.out(toTap(run.results, run.metrics));
      const failed = run.results.filter((r) => !r.ok).length;
      io.err(
        `scenarios: ${picked.map((s) => s.name).join(', ')}: ${run.results.length - failed}/${run.results.length} checks ok in ${(run.durationMs / 1000).toFixed(1)} s${o.junit ? ` (JUnit ${o.junit})` : ''}${o.report ? ` (report ${o.report})` : ''}\n`,
      );
      if (!run.ok) throw new ReportedFailure(`${failed} check(s) failed`);
    });
}
