// A runbook run: lock → journal → preflight (all hosts) → observe → plan → print → apply → summary.
// Runbooks build the desired state and call `runRunbook`; this is the whole engine loop.
import { exitCodeOf, RunError } from '../core/errors.ts';
import { mask } from '../transport/mask.ts';
import type { Transport } from '../transport/types.ts';
import { applyPlan, type ConfirmHooks, type HealthHook, type HostResult } from './apply.ts';
import { Journal, onInterrupt } from './journal.ts';
import { acquireLock } from './lock.ts';
import { observeHost, type Observation } from './observe.ts';
import { changeSummary, formatPlan, plan as makePlan, planChangeCount, type Plan } from './plan.ts';
import { preflight, PreflightError, type PreflightOptions } from './preflight.ts';
import { defaultReporter, type Reporter } from './progress.ts';
import type { DesiredState } from './resources.ts';

export interface RunOptions {
  /** Stack name: the lock and the journal folder are per stack. */
  stack: string;
  /** Runbook name (journal file name, summary). */
  runbook: string;
  desired: DesiredState;
  transports: ReadonlyMap<string, Transport>;
  /** Default `.wharf/runs`. */
  runsDir?: string;
  /** Plan only: print the plan, change nothing. */
  check?: boolean;
  /** Show unified diffs in the printed plan (secrets masked). */
  diff?: boolean;
  /** Preflight options, or false to skip (only for tests of other parts). */
  preflight?: PreflightOptions | false;
  health?: HealthHook;
  /** Paths and fresh connections for commit-confirmed units (router and firewall rulesets). */
  confirm?: ConfirmHooks;
  healthTimeoutMs?: number;
  /** Host directory for wharf's own state (pending-reload markers). Default /var/lib/wharf. */
  stateDir?: string;
  /** Values never shown anywhere (passwords, keys). Secret files' contents are added. */
  secrets?: string[];
  /** Progress and plan output (default: live on a TTY, plain lines otherwise, on stderr). */
  reporter?: Reporter;
}

export interface RunSummary {
  runbook: string;
  ok: boolean;
  check: boolean;
  /** Changes planned (with --check) or made. */
  changes: number;
  hosts: Record<string, { changes: number; failed?: string }>;
  durationMs: number;
  journal: string;
  error?: string;
  exitCode: number;
}

/** Secret values of a desired state: secret files' contents (masked everywhere). */
export function secretsOf(desired: DesiredState): string[] {
  const out: string[] = [];
  for (const rs of Object.values(desired))
    for (const r of rs) if (r.kind === 'file' && r.secret) out.push(r.content);
  return out;
}

export async function runRunbook(o: RunOptions): Promise<RunSummary & { plan?: Plan }> {
  const t0 = Date.now();
  const secrets = [...(o.secrets ?? []), ...secretsOf(o.desired)];
  const reporter = o.reporter ?? defaultReporter(process.stderr, secrets);
  const runsDir = o.runsDir ?? '.wharf/runs';
  const hosts = Object.keys(o.desired);
  for (const h of hosts)
    if (!o.transports.has(h)) throw new RunError(`${h}: no transport (not in the inventory?)`);
  const lock = acquireLock(runsDir, o.stack, o.runbook);
  const journal = new Journal(runsDir, o.stack, o.runbook, secrets);
  const summary: RunSummary & { plan?: Plan } = {
    runbook: o.runbook,
    ok: false,
    check: Boolean(o.check),
    changes: 0,
    hosts: Object.fromEntries(hosts.map((h) => [h, { changes: 0 }])),
    durationMs: 0,
    journal: journal.path,
    exitCode: 1,
  };
  const offInterrupt = onInterrupt(journal, () => lock.release(), t0);
  const finish = (err?: unknown) => {
    summary.durationMs = Date.now() - t0;
    if (err) {
      summary.error = mask((err as Error).message, secrets);
      summary.exitCode = exitCodeOf(err);
    } else summary.exitCode = summary.ok ? 0 : 1;
    journal.write({
      host: '*',
      step: 'summary',
      result: summary.ok ? 'ok' : 'failed',
      durationMs: summary.durationMs,
      detail: { changes: summary.changes, hosts: summary.hosts, check: summary.check },
      ...(summary.error ? { error: summary.error } : {}),
    });
    return summary;
  };
  try {
    journal.write({
      host: '*',
      step: 'run',
      result: 'started',
      durationMs: 0,
      detail: { stack: o.stack, hosts, check: Boolean(o.check) },
    });
    if (lock.tookOver) {
      reporter.line(`warning: ${lock.tookOver}`);
      journal.write({ host: '*', step: 'lock', result: 'ok', durationMs: 0, detail: lock.tookOver });
    }
    // Preflight every host before touching any.
    if (o.preflight !== false) {
      const tp = Date.now();
      for (const h of hosts) reporter.step(h, 'preflight');
      try {
        const res = await preflight(
          hosts.map((h) => o.transports.get(h)!),
          o.preflight ?? {},
        );
        journal.write({
          host: '*',
          step: 'preflight',
          result: 'ok',
          durationMs: Date.now() - tp,
          detail: res.map((r) => ({ host: r.host, durationMs: r.durationMs })),
        });
      } catch (e) {
        if (e instanceof PreflightError)
          for (const r of e.results) {
            summary.hosts[r.host] = { changes: 0, failed: r.problems.join('; ') };
            reporter.done(r.host, false, r.problems.join('; '));
          }
        journal.write({
          host: '*',
          step: 'preflight',
          result: 'failed',
          durationMs: Date.now() - tp,
          error: (e as Error).message,
        });
        throw e;
      }
    }
    // Observe (one round trip per host) and plan.
    const observed: Record<string, Observation[]> = {};
    await Promise.all(
      hosts.map(async (h) => {
        reporter.step(h, 'observe');
        const ts = Date.now();
        observed[h] = await observeHost(o.transports.get(h)!, o.desired[h]!, o.stateDir);
        journal.write({ host: h, step: 'observe', result: 'ok', durationMs: Date.now() - ts });
      }),
    );
    const p = makePlan(o.desired, observed, secrets);
    summary.plan = p;
    for (const [h, cs] of Object.entries(p.hosts)) {
      summary.hosts[h] = { changes: cs.length };
      for (const c of cs)
        journal.write({
          id: `${h}:${c.id}`,
          host: h,
          step: 'plan',
          change: changeSummary(c),
          result: 'planned',
          durationMs: 0,
        });
      reporter.done(
        h,
        true,
        o.check ? `${cs.length} change${cs.length === 1 ? '' : 's'} planned` : 'planned',
      );
    }
    reporter.line(formatPlan(p, { diff: o.diff, secrets }));
    summary.changes = planChangeCount(p);
    if (o.check || summary.changes === 0) {
      summary.ok = true;
      return finish();
    }
    const results: HostResult[] = await applyPlan(p, {
      transports: o.transports,
      reporter,
      journal,
      secrets,
      ...(o.stateDir ? { stateDir: o.stateDir } : {}),
      ...(o.health ? { health: o.health } : {}),
      ...(o.confirm ? { confirm: o.confirm } : {}),
      ...(o.healthTimeoutMs !== undefined ? { healthTimeoutMs: o.healthTimeoutMs } : {}),
    });
    summary.changes = 0;
    for (const r of results) {
      summary.hosts[r.host] = { changes: r.applied, ...(r.error ? { failed: r.error } : {}) };
      summary.changes += r.applied;
    }
    const failed = results.filter((r) => !r.ok);
    if (failed.length) {
      throw new RunError(
        `apply failed on ${failed.map((r) => r.host).join(', ')}:\n${failed.map((r) => r.error).join('\n')}`,
      );
    }
    summary.ok = true;
    return finish();
  } catch (e) {
    reporter.line(`error: ${mask((e as Error).message, secrets)}`);
    return finish(e);
  } finally {
    offInterrupt();
    reporter.close();
    lock.release();
  }
}

/** The `--json` summary object (no plan, no file contents). */
export function jsonSummary(s: RunSummary): {
  runbook: string;
  ok: boolean;
  check: boolean;
  changes: number;
  hosts: RunSummary['hosts'];
  durationMs: number;
  journal: string;
  error?: string;
} {
  return {
    runbook: s.runbook,
    ok: s.ok,
    check: s.check,
    changes: s.changes,
    hosts: s.hosts,
    durationMs: s.durationMs,
    journal: s.journal,
    ...(s.error ? { error: s.error } : {}),
  };
}
