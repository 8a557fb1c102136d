// The OPNsense driver's side effects: observe the box through its search grids, execute a plan's
// calls (each answer checked: `{"result":"saved"}`, validation failures named by field), then load
// them, commit-confirmed: the filter savepoint arms the box's own rollback where the release still
// has it, wharf's checks run, and only then is the rollback cancelled. A failed check makes wharf
// put its saved objects back through the API (the same planner, saved state as desired).
import { RunError } from '../core/errors.ts';
import type { OpnClient } from './client.ts';
import { apiPath, hasDNatApi, parseVersion, versionFromStatus } from './paths.ts';
import { ownedAsDesired, planOpnsense, type OpnPlan } from './plan.ts';
import type { GridRow, HttpCall, OpnDesired, OpnObserved, SearchGrid } from './types.ts';

/** A search grid, all rows (`rowCount: -1`, as the UI's "all" does). */
async function search(c: OpnClient, path: string): Promise<GridRow[]> {
  const r = await c.call('POST', path, { current: 1, rowCount: -1, sort: {}, searchPhrase: '' });
  const g = r.json as Partial<SearchGrid>;
  if (!g || !Array.isArray(g.rows))
    throw new RunError(`POST ${path}: expected a search grid {rows, rowCount, total, current}`);
  return g.rows;
}

export async function observeOpnsense(c: OpnClient): Promise<OpnObserved> {
  const st = await c.call('GET', '/api/core/firmware/status');
  const version = versionFromStatus(st.json);
  if (!version) throw new RunError('GET /api/core/firmware/status: no product_version in the answer');
  const v = parseVersion(version);
  const P = (ctl: string, cmd: string) => apiPath(c.style, 'firewall', ctl, cmd);
  const [aliases, rules] = await Promise.all([
    search(c, P('alias', 'searchItem')),
    search(c, P('filter', 'searchRule')),
  ]);
  const nat = v && hasDNatApi(v) ? await search(c, P('d_nat', 'searchRule')) : null;
  // searchRule also lists automatic and legacy rules (no uuid, or not ours): only rows with a uuid count
  return { version, aliases, rules: rules.filter((r) => typeof r.uuid === 'string' && r.uuid), nat };
}

function failure(call: HttpCall, json: unknown): string | null {
  const j = (json ?? {}) as Record<string, unknown>;
  const p = call.path;
  if (/\/(add|set)(_?[iI]tem|_?[rR]ule)\b/.test(p) && j.result !== 'saved') {
    const v = j.validations as Record<string, unknown> | undefined;
    const details = v
      ? Object.entries(v).map(([k, m]) => `${k}: ${Array.isArray(m) ? m.join('; ') : String(m)}`)
      : [];
    return `result ${JSON.stringify(j.result ?? null)}${details.length ? ` — ${details.join(', ')}` : ''}`;
  }
  if (/\/del(_?[iI]tem|_?[rR]ule)\b/.test(p) && j.result !== 'deleted')
    return `result ${JSON.stringify(j.result ?? null)}`;
  if (/\/reconfigure$/.test(p) && j.status !== 'ok') return `status ${JSON.stringify(j.status ?? null)}`;
  if (/\/(apply|savepoint|cancel_?[rR]ollback)(\/|$)/.test(p)) {
    const s = String(j.status ?? '')
      .trim()
      .toLowerCase();
    if (!s || s.startsWith('error') || s === 'failed') return `status ${JSON.stringify(j.status ?? null)}`;
  }
  return null;
}

/** Execute calls in order; the first refused one stops the run (error names the call and why). */
export async function executeCalls(c: OpnClient, calls: HttpCall[], log: (l: string) => void): Promise<void> {
  for (const call of calls) {
    const path = call.path;
    const r = await c.call(call.method, path, call.body);
    const bad = failure({ ...call, path }, r.json);
    if (bad) throw new RunError(`${call.method} ${path} (${call.why}): ${bad}`);
    log(`  ${call.method} ${path}: ok (${call.why})`);
  }
}

/** One path wharf checks after a change (the same shape as the runbook engine's PathCheck). */
export interface OpnPathCheck {
  name: string;
  ok: boolean;
  detail: string;
  /** Must work after the change even if it did not before (management). */
  required?: boolean;
}

/** Paths failing now that must not: required ones and those that worked before. Pure. */
export const brokenChecks = (now: OpnPathCheck[], baseline: OpnPathCheck[]): OpnPathCheck[] =>
  now.filter((c) => !c.ok && (c.required || baseline.find((b) => b.name === c.name)?.ok));

export interface OpnApplyResult {
  plan: OpnPlan;
  /** true: the new state stands (confirmed, or nothing to confirm). */
  ok: boolean;
  /** Not confirmed: who put the saved state back ('none': nobody, seen within the wait). */
  reverted?: 'wharf' | 'box' | 'none';
  /** Not confirmed and rolled back by the box: seconds from loading the change to seeing it gone. */
  revertSeconds?: number;
  checks?: OpnPathCheck[];
  detail: string;
  durationMs: number;
}

export interface OpnConfirm {
  /** The paths (management, SFTP), probed before the change and after it until they work. */
  probe: () => Promise<OpnPathCheck[]>;
  /** How long the paths may take to work after the change is loaded. */
  windowMs: number;
  /** The box's own rollback window (OPNsense: 60 s after apply/{revision}). */
  boxWindowMs: number;
}

export interface OpnApplyOptions {
  /** Commit-confirmed: absent, the change is applied without checks. */
  confirm?: OpnConfirm;
  log?: (l: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Plan against the box now and apply. With `confirm`: the filter savepoint arms the box's own
 * rollback (where the release has it), the paths are probed until they work or the window (less a
 * margin, and never past the box's window) ends; then the rollback is cancelled. Not confirmed:
 * with a savepoint armed, wharf sends the box nothing (the cut path may be the one it would use)
 * and waits to SEE the box put the saved rules back; without one (26.1.5, 26.7+), wharf itself
 * re-applies the saved objects through the API.
 */
export async function applyOpnsense(
  c: OpnClient,
  desired: OpnDesired,
  o: OpnApplyOptions = {},
): Promise<OpnApplyResult> {
  const t0 = Date.now();
  const log = o.log ?? (() => {});
  const before = await observeOpnsense(c);
  const plan = planOpnsense(desired, before, { style: c.style });
  for (const w of plan.warnings) log(`  ! ${w}`);
  if (!plan.calls.length) return { plan, ok: true, detail: 'no change', durationMs: Date.now() - t0 };
  const saved = ownedAsDesired(before);
  const P = (cmd: string, ...p: string[]) => apiPath(c.style, 'firewall', 'filter', cmd, ...p);
  const cf = o.confirm;
  const baseline = cf ? await cf.probe() : [];
  let revision: string | undefined;
  if (cf && plan.savepoint === 'yes') {
    const r = await c.call('POST', P('savepoint'));
    revision = String((r.json as Record<string, unknown>).revision ?? '');
    if (!revision) throw new RunError(`POST ${P('savepoint')}: no revision in the answer`);
    log(`  POST ${P('savepoint')}: revision ${revision} (the box rolls the filter back unless confirmed)`);
  }
  const rev = revision;
  const calls = rev
    ? plan.calls.map((k) =>
        k.path === P('apply') ? { ...k, path: P('apply', rev), why: `${k.why}; arm the box's rollback` } : k,
      )
    : plan.calls;
  await executeCalls(c, calls, log);
  const armedAt = Date.now();
  if (!cf)
    return {
      plan,
      ok: true,
      detail: `${plan.changes.length} change(s) applied`,
      durationMs: Date.now() - t0,
    };

  const window = Math.min(cf.windowMs, rev ? cf.boxWindowMs : Infinity);
  const deadline = armedAt + window - Math.min(3000, window / 4);
  let checks: OpnPathCheck[] = [];
  let broken: OpnPathCheck[] = [];
  for (;;) {
    checks = await cf.probe();
    broken = brokenChecks(checks, baseline);
    // paths that only worked once the window was over prove nothing: the box may have rolled
    // back meanwhile (a probe waiting on a cut path answers right after the rollback)
    if (!broken.length && Date.now() > deadline)
      broken = [
        {
          name: 'confirm window',
          ok: false,
          detail: `the paths worked only ${((Date.now() - armedAt) / 1000).toFixed(1)} s after loading, past the ${(window / 1000).toFixed(0)} s window`,
        },
      ];
    if (!broken.length || Date.now() >= deadline) break;
    await sleep(500);
  }
  const paths = checks.map((k) => `${k.name}: ${k.ok ? 'ok' : 'FAILED'} (${k.detail})`).join('; ');
  if (!broken.length) {
    if (rev)
      await executeCalls(
        c,
        [{ method: 'POST', path: P('cancelRollback', rev), why: 'confirmed: cancel the rollback' }],
        log,
      );
    const after = ((Date.now() - armedAt) / 1000).toFixed(1);
    return {
      plan,
      ok: true,
      checks,
      detail: `confirmed ${after} s after loading: ${paths || 'no paths to check'}`,
      durationMs: Date.now() - t0,
    };
  }
  const why = broken.map((k) => `${k.name}: ${k.detail}`).join('; ');
  const rulesBack = async (): Promise<boolean> => {
    try {
      const now = await observeOpnsense(c);
      return !planOpnsense(saved, now, { style: c.style }).changes.some((x) => x.kind === 'rule');
    } catch {
      return false; // still cut off
    }
  };
  if (rev) {
    log(`  NOT confirmed (${why}): waiting for the box to roll back by itself`);
    const until = armedAt + cf.boxWindowMs + 30_000;
    while (Date.now() < until) {
      if (await rulesBack()) {
        const took = (Date.now() - armedAt) / 1000;
        return {
          plan,
          ok: false,
          reverted: 'box',
          revertSeconds: took,
          checks,
          detail: `change not confirmed (${why}); the box reverted it by itself (its savepoint rollback of the filter rules), seen ${took.toFixed(1)} s after the change was loaded (its window ${Math.round(cf.boxWindowMs / 1000)} s)`,
          durationMs: Date.now() - t0,
        };
      }
      await sleep(1000);
    }
    return {
      plan,
      ok: false,
      reverted: 'none',
      checks,
      detail: `change not confirmed (${why}); the box's rollback was NOT seen within ${Math.round((until - armedAt) / 1000)} s`,
      durationMs: Date.now() - t0,
    };
  }
  log(`  NOT confirmed (${why}); the box has no working savepoint: wharf re-applies the saved rules`);
  try {
    const now = await observeOpnsense(c);
    await executeCalls(c, planOpnsense(saved, now, { style: c.style }).calls, log);
    return {
      plan,
      ok: false,
      reverted: 'wharf',
      checks,
      detail: `change not confirmed (${why}); wharf put the saved rules back through the API`,
      durationMs: Date.now() - t0,
    };
  } catch (e) {
    return {
      plan,
      ok: false,
      reverted: 'none',
      checks,
      detail: `change not confirmed (${why}); NOT reverted: ${(e as Error).message} (this release has no rollback of its own)`,
      durationMs: Date.now() - t0,
    };
  }
}
