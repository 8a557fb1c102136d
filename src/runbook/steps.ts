// The step model every runbook shares: observe → a plan of typed steps (data) → one executor.
// A step says which host, what and why; a guard re-checked right before it runs; the effect; and
// its undo, described as data (the commands it will run). The executor takes the stack's lock,
// journals every step by id, reports progress, stops at the first failed step and runs the undos of
// the completed steps in reverse. An undo that fails is a failed step too (host, commands, error):
// the run exits 1 and nothing claims a state it did not reach.
import { InputError, RunError } from '../core/errors.ts';
import { Journal, onInterrupt } from './journal.ts';
import { acquireLock } from './lock.ts';
import type { Reporter } from './progress.ts';
import type { RunbookResult } from './registry.ts';

export interface UndoSpec {
  host: string;
  /** What the undo does, e.g. "sftp-main and sftp-sub → ready". */
  action: string;
  /** What it will run, as data: shell commands, or HAProxy runtime API commands. */
  commands: string[];
  run(): Promise<unknown>;
}

export interface Guard {
  /** The condition, e.g. "sftp-main still in maint". */
  what: string;
  /** true when met; false or a reason when not. */
  check(): Promise<boolean | string>;
}

/** A step's result: a detail line, or a skip with its reason. */
export type StepOutcome = void | string | { skipped: string };

export interface Step {
  /** Stable id: the same in `--check`, in the run's output and in the journal. */
  id: string;
  /** A node name, `*` (several hosts) or `entrypoint`. */
  host: string;
  action: string;
  why: string;
  guard?: Guard;
  undo?: UndoSpec;
  /** A check: what must hold. A failed check is recorded and the run goes on (and fails at the end). */
  expect?: string;
  /**
   * The point of no return: once this step is done, a later failure no longer undoes the earlier
   * steps (the stack is left for a re-run, which resumes); the text says why.
   */
  commits?: string;
  /** Changes nothing (observations, waits, checks): not counted as a change. */
  readOnly?: boolean;
  run(): Promise<StepOutcome>;
}

export interface StepPlan {
  runbook: string;
  steps: Step[];
  /** Lines printed before the steps (what was observed, counts, conflicts…). */
  notes?: string[];
  /** Filled by the steps while they run (RPO, copy counts…): the result's `details`. */
  details?: Record<string, unknown>;
  /** Set when there is nothing to do: printed, no step runs. */
  nothingToDo?: string;
}

export type StepResult = 'ok' | 'failed' | 'skipped' | 'not-run' | 'rolled-back';

export interface StepSummary {
  id: string;
  host: string;
  action: string;
  why: string;
  expect?: string;
  guard?: string;
  undo?: { host: string; action: string; commands: string[] };
  commits?: string;
  result?: StepResult;
  detail?: string;
  error?: string;
  durationMs?: number;
  /** Undo steps (`undo:<id>`): the step they undo. */
  undoes?: string;
}

/** A plan as data (what --check --json prints). Pure. */
export function stepSummary(s: Step): StepSummary {
  return {
    id: s.id,
    host: s.host,
    action: s.action,
    why: s.why,
    ...(s.expect ? { expect: s.expect } : {}),
    ...(s.guard ? { guard: s.guard.what } : {}),
    ...(s.undo ? { undo: { host: s.undo.host, action: s.undo.action, commands: s.undo.commands } } : {}),
    ...(s.commits ? { commits: s.commits } : {}),
  };
}

export const planChanges = (steps: readonly Step[]): number => steps.filter((s) => !s.readOnly).length;

export function stepsJson(p: StepPlan): { runbook: string; steps: StepSummary[]; changes: number } {
  return { runbook: p.runbook, steps: p.steps.map(stepSummary), changes: planChanges(p.steps) };
}

/** The plan as text (what --check prints). Pure. */
export function formatSteps(p: StepPlan): string {
  const out = [`${p.runbook}: ${p.steps.length} step(s)`];
  for (const n of p.notes ?? []) out.push(`  ${n}`);
  if (p.nothingToDo) out.push(`  nothing to do: ${p.nothingToDo}`);
  p.steps.forEach((s, i) => {
    out.push(`  ${String(i + 1).padStart(2)}. ${s.id} [${s.host}] ${s.action}`);
    out.push(`      why: ${s.why}`);
    if (s.expect) out.push(`      expect: ${s.expect}`);
    if (s.guard) out.push(`      guard: ${s.guard.what}`);
    if (s.undo) out.push(`      undo [${s.undo.host}]: ${s.undo.action}: ${s.undo.commands.join('; ')}`);
    if (s.commits) out.push(`      point of no return: ${s.commits}`);
  });
  return out.join('\n');
}

export interface ExecuteOptions {
  stack: string;
  runsDir?: string;
  check: boolean;
  log: (line: string) => void;
  reporter?: Reporter;
  /** Values masked in the journal. */
  secrets?: readonly string[];
}

/** A runbook's result (registry.ts), from a step run: it always has a journal. */
export type ExecuteResult = RunbookResult & { journal: string; details?: Record<string, unknown> };

const errText = (e: unknown) => (e instanceof Error ? e.message : String(e));

/**
 * Lock → observe and plan (`build`) → journal the plan → print it (--check stops here) → run the
 * steps in order → on the first failure, run the completed steps' undos in reverse.
 */
export async function executeSteps(
  runbook: string,
  o: ExecuteOptions,
  build: () => Promise<StepPlan>,
): Promise<ExecuteResult> {
  const t0 = Date.now();
  const runsDir = o.runsDir ?? '.wharf/runs';
  const lock = acquireLock(runsDir, o.stack, runbook);
  const journal = new Journal(runsDir, o.stack, runbook, o.secrets ?? []);
  const say = (l: string) => (o.reporter ? o.reporter.line(l) : o.log(l));
  const out: ExecuteResult = {
    runbook,
    ok: false,
    check: o.check,
    changes: 0,
    steps: [],
    hosts: {},
    durationMs: 0,
    journal: journal.path,
    exitCode: 1,
  };
  const failures: string[] = [];
  const readOnly = new Set<string>();
  const offInterrupt = onInterrupt(journal, () => lock.release(), t0);
  try {
    journal.write({ host: '*', step: 'run', result: 'started', durationMs: 0, detail: { check: o.check } });
    if (lock.tookOver) say(`warning: ${lock.tookOver}`);
    let plan: StepPlan;
    try {
      plan = await build();
    } catch (e) {
      journal.write({
        host: '*',
        step: 'observe',
        result: 'failed',
        durationMs: Date.now() - t0,
        error: errText(e),
      });
      throw e;
    }
    out.details = plan.details;
    out.steps = plan.steps.map(stepSummary);
    for (const s of plan.steps) if (s.readOnly) readOnly.add(s.id);
    for (const s of plan.steps)
      journal.write({
        id: s.id,
        host: s.host,
        step: 'plan',
        result: 'planned',
        durationMs: 0,
        detail: s.action,
      });
    if (o.check || plan.nothingToDo) {
      say(formatSteps(plan));
      out.changes = plan.nothingToDo ? 0 : planChanges(plan.steps);
      out.ok = true;
      return out;
    }
    for (const n of plan.notes ?? []) say(n);
    const done: { step: Step; index: number }[] = [];
    let failed = false;
    for (const [i, s] of plan.steps.entries()) {
      const sum = out.steps[i]!;
      const ts = Date.now();
      o.reporter?.step(s.host, s.action);
      try {
        if (s.guard) {
          const g = await s.guard.check();
          if (g !== true)
            throw new Error(`guard not met: ${s.guard.what}${typeof g === 'string' ? ` (${g})` : ''}`);
        }
        const r = await s.run();
        sum.durationMs = Date.now() - ts;
        if (r && typeof r === 'object') {
          sum.result = 'skipped';
          sum.detail = r.skipped;
          say(`skip ${s.host}: ${s.action} — ${r.skipped}`);
        } else {
          sum.result = 'ok';
          if (r) sum.detail = r;
          say(`ok   ${s.host}: ${s.action}${r ? ` — ${r}` : ''} (${sum.durationMs} ms)`);
          if (s.commits) done.length = 0;
          else done.push({ step: s, index: i });
        }
        journal.write({
          id: s.id,
          host: s.host,
          step: s.action,
          result: sum.result,
          durationMs: sum.durationMs,
          ...(sum.detail ? { detail: sum.detail } : {}),
        });
      } catch (e) {
        sum.durationMs = Date.now() - ts;
        sum.result = 'failed';
        sum.error = errText(e);
        say(`FAIL ${s.host}: ${s.action} — ${sum.error}`);
        journal.write({
          id: s.id,
          host: s.host,
          step: s.action,
          result: 'failed',
          durationMs: sum.durationMs,
          error: sum.error,
        });
        failures.push(`step ${s.id} on ${s.host} failed: ${sum.error}`);
        if (s.expect) continue;
        failed = true;
        break;
      }
    }
    for (const s of out.steps) s.result ??= 'not-run';
    if (failed) {
      // undo what was done, newest first; every undo is tried and reported
      for (const { step: s, index } of [...done].reverse()) {
        if (!s.undo) continue;
        const u = s.undo;
        const ts = Date.now();
        const sum: StepSummary = {
          id: `undo:${s.id}`,
          host: u.host,
          action: `undo: ${u.action}`,
          why: `${s.id} was done and the run stopped before its point of no return`,
          undo: { host: u.host, action: u.action, commands: u.commands },
          undoes: s.id,
        };
        out.steps.push(sum);
        try {
          await u.run();
          sum.result = 'ok';
          out.steps[index]!.result = 'rolled-back';
          say(`undo ${u.host}: ${u.action} (${Date.now() - ts} ms)`);
        } catch (e) {
          sum.result = 'failed';
          sum.error = errText(e);
          say(`FAIL ${u.host}: undo: ${u.action} — ran: ${u.commands.join('; ')} — ${sum.error}`);
          failures.push(`undo ${s.id} on ${u.host} failed (ran: ${u.commands.join('; ')}): ${sum.error}`);
        }
        sum.durationMs = Date.now() - ts;
        journal.write({
          id: sum.id,
          host: u.host,
          step: 'undo',
          result: sum.result,
          durationMs: sum.durationMs,
          detail: { undoes: s.id, action: u.action, commands: u.commands },
          ...(sum.error ? { error: sum.error } : {}),
        });
      }
    }
    out.ok = failures.length === 0;
    return out;
  } catch (e) {
    failures.push(errText(e));
    // bad input found while observing (an unknown snapshot, a path not there): nothing ran; the
    // caller reports it as bad input (exit 2), naming the flag
    if (e instanceof InputError) throw e;
    say(`error: ${errText(e)}`);
    return out;
  } finally {
    for (const s of out.steps) {
      const h = (out.hosts[s.host] ??= { changes: 0 });
      if (s.result === 'ok' && !s.undoes && !readOnly.has(s.id)) h.changes++;
      if (s.result === 'failed') h.failed ??= `${s.id}: ${s.error ?? ''}`;
    }
    if (!o.check && out.steps.some((s) => s.result)) {
      out.changes = Object.values(out.hosts).reduce((n, h) => n + h.changes, 0);
    }
    out.durationMs = Date.now() - t0;
    if (failures.length) {
      out.ok = false;
      out.error = failures.join('\n');
    }
    out.exitCode = out.ok ? 0 : 1;
    journal.write({
      host: '*',
      step: 'summary',
      result: out.ok ? 'ok' : 'failed',
      durationMs: out.durationMs,
      detail: { changes: out.changes, check: o.check },
      ...(out.error ? { error: out.error } : {}),
    });
    offInterrupt();
    lock.release();
  }
}

/** Fail a check step: throws with what was expected and what was seen. */
export function unmet(expect: string, seen: string): never {
  throw new RunError(`expected ${expect}; ${seen}`);
}

/** Run a step runbook with a runbook context (lock, journal and log from the context). */
export function runStepPlan(
  ctx: {
    topology: { name: string };
    check: boolean;
    runsDir?: string;
    log: (l: string) => void;
    reporter?: Reporter;
  },
  runbook: string,
  build: () => Promise<StepPlan>,
): Promise<ExecuteResult> {
  return executeSteps(
    runbook,
    {
      stack: ctx.topology.name,
      check: ctx.check,
      log: ctx.log,
      ...(ctx.runsDir ? { runsDir: ctx.runsDir } : {}),
      ...(ctx.reporter ? { reporter: ctx.reporter } : {}),
    },
    build,
  );
}
