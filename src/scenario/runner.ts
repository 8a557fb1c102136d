// Runs scenarios one after another, collecting checks and metrics; writes TAP and JUnit.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve, basename } from 'node:path';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import type { CheckResult, Metric, SampleSet, Scenario, Series, TimelineEvent } from './types.ts';
import { toTap } from './tap.ts';

export interface ScenarioRun {
  results: CheckResult[];
  metrics: Record<string, Metric[]>;
  /** Per scenario: time series, events/spans and sample sets (times in s since the scenario started). */
  series: Record<string, Series[]>;
  events: Record<string, TimelineEvent[]>;
  samples: Record<string, SampleSet[]>;
  ok: boolean;
  startedAt: string;
  durationMs: number;
}

/** The JSON document of a run (`scenario run --json`), the report's input. */
export function runJson(run: ScenarioRun) {
  return {
    kind: 'scenarios' as const,
    ok: run.ok,
    startedAt: run.startedAt,
    durationMs: run.durationMs,
    results: run.results,
    metrics: run.metrics,
    series: run.series,
    events: run.events,
    samples: run.samples,
  };
}

const sec = (ms: number) => Math.round(ms) / 1000;

export async function runScenarios(
  scenarios: Scenario[],
  opts: { log?: (line: string) => void; signal?: AbortSignal } = {},
): Promise<ScenarioRun> {
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const results: CheckResult[] = [];
  const metrics: Record<string, Metric[]> = {};
  const series: Record<string, Series[]> = {};
  const events: Record<string, TimelineEvent[]> = {};
  const samples: Record<string, SampleSet[]> = {};
  const started = Date.now();
  for (const s of scenarios) {
    const ms: Metric[] = (metrics[s.name] = []);
    const ss: Series[] = (series[s.name] = []);
    const es: TimelineEvent[] = (events[s.name] = []);
    const sa: SampleSet[] = (samples[s.name] = []);
    const t0 = Date.now();
    log(`# scenario ${s.name}: ${s.description}`);
    const ctx = {
      signal: opts.signal ?? new AbortController().signal,
      check(name: string, ok: boolean, detail?: string) {
        results.push({ scenario: s.name, name, ok, ...(detail !== undefined ? { detail } : {}) });
        log(`${ok ? 'ok    ' : 'NOT OK'} ${s.name}: ${name}${detail ? ` (${detail})` : ''}`);
        return ok;
      },
      metric(name: string, value: number, unit: string, target?: Metric['target']) {
        ms.push({ name, value, unit, ...(target ? { target } : {}) });
        log(`  metric ${name} = ${value} ${unit}${target ? ` (target ${target.op} ${target.value})` : ''}`);
      },
      series(name: string, points: { t: number; v: number }[], unit: string) {
        ss.push({ name, unit, points: points.map((p) => ({ t: sec(p.t - t0), v: p.v })) });
      },
      event(name: string, at: number, o: { until?: number; detail?: string } = {}) {
        es.push({
          name,
          t: sec(at - t0),
          ...(o.until !== undefined ? { until: sec(o.until - t0) } : {}),
          ...(o.detail !== undefined ? { detail: o.detail } : {}),
        });
      },
      samples(name: string, values: number[], unit: string) {
        sa.push({ name, unit, values });
      },
      log: (m: string) => log(`  ${s.name}: ${m}`),
    };
    try {
      await s.run(ctx);
    } catch (e) {
      ctx.check('completes without error', false, (e as Error).message.split('\n')[0]);
    }
    ms.push({ name: 'duration', value: Math.round((Date.now() - t0) / 100) / 10, unit: 's' });
  }
  return {
    results,
    metrics,
    series,
    events,
    samples,
    ok: results.length > 0 && results.every((r) => r.ok),
    startedAt: new Date(started).toISOString(),
    durationMs: Date.now() - started,
  };
}

export function writeTap(run: ScenarioRun, file: string): void {
  mkdirSync(dirname(resolve(file)), { recursive: true });
  writeFileSync(file, toTap(run.results, run.metrics));
}

/** JUnit XML made by tap-junit from flat TAP. */
export function writeJunit(run: ScenarioRun, file: string): void {
  const abs = resolve(file);
  mkdirSync(dirname(abs), { recursive: true });
  const require = createRequire(import.meta.url);
  const bin = resolve(dirname(require.resolve('tap-junit/package.json')), 'bin/tap-junit');
  const xml = execFileSync(
    process.execPath,
    [bin, '-s', 'wharf-scenarios', '-c', 'wharf-scenarios', '-n', basename(abs), '-p'],
    {
      input: toTap(run.results, run.metrics),
      encoding: 'utf8',
    },
  );
  writeFileSync(abs, xml);
}
