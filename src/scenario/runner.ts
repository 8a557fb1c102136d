// Runs scenarios one after another, collecting checks and metrics; writes TAP and JUnit.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve, basename } from 'node:path';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import type { CheckResult, Metric, Scenario } from './types.ts';
import { toTap } from './tap.ts';

export interface ScenarioRun {
  results: CheckResult[];
  metrics: Record<string, Metric[]>;
  ok: boolean;
  durationMs: number;
}

export async function runScenarios(
  scenarios: Scenario[],
  opts: { log?: (line: string) => void; signal?: AbortSignal } = {},
): Promise<ScenarioRun> {
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const results: CheckResult[] = [];
  const metrics: Record<string, Metric[]> = {};
  const started = Date.now();
  for (const s of scenarios) {
    const ms: Metric[] = (metrics[s.name] = []);
    const t0 = Date.now();
    log(`# scenario ${s.name}: ${s.description}`);
    const ctx = {
      signal: opts.signal ?? new AbortController().signal,
      check(name: string, ok: boolean, detail?: string) {
        results.push({ scenario: s.name, name, ok, ...(detail !== undefined ? { detail } : {}) });
        log(`${ok ? 'ok    ' : 'NOT OK'} ${s.name}: ${name}${detail ? ` (${detail})` : ''}`);
        return ok;
      },
      metric(name: string, value: number, unit: string) {
        ms.push({ name, value, unit });
        log(`  metric ${name} = ${value} ${unit}`);
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
    ok: results.length > 0 && results.every((r) => r.ok),
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
