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
    if (!s || s === 'error' || s === 'failed') return `status ${JSON.stringify(j.status ?? null)}`;
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

export interface ConfirmResult {
  ok: boolean;
  detail: string;
}

export interface OpnApplyResult {
  plan: OpnPlan;
  /** true: the new state stands (checks passed, or nothing to check). */
  ok: boolean;
  /** After a failed check: who put the saved state back. */
  reverted?: 'wharf' | 'box' | 'none';
  detail: string;
  durationMs: number;
}

export interface OpnApplyOptions {
  /** wharf's checks after the change is loaded (management and SFTP paths); absent: no checks. */
  confirm?: () => Promise<ConfirmResult>;
  /** How long to wait for the box's own rollback when wharf cannot reach the API any more. */
  boxRollbackMs?: number;
  log?: (l: string) => void;
}

/** Plan against the box now and apply, commit-confirmed when `confirm` is given. */
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
  const useSavepoint = !!o.confirm && plan.savepoint === 'yes';
  let revision: string | undefined;
  if (useSavepoint) {
    const r = await c.call('POST', P('savepoint'));
    revision = String((r.json as Record<string, unknown>).revision ?? '');
    if (!revision) throw new RunError(`POST ${P('savepoint')}: no revision in the answer`);
    log(`  POST ${P('savepoint')}: revision ${revision} (the box rolls back the filter unless confirmed)`);
  }
  const rev = revision;
  const calls = rev
    ? plan.calls.map((k) =>
        k.path === P('apply') ? { ...k, path: P('apply', rev), why: `${k.why}; arm the box's rollback` } : k,
      )
    : plan.calls;
  await executeCalls(c, calls, log);
  if (!o.confirm)
    return {
      plan,
      ok: true,
      detail: `${plan.changes.length} change(s) applied`,
      durationMs: Date.now() - t0,
    };

  const check = await o.confirm();
  if (check.ok) {
    if (revision)
      await executeCalls(
        c,
        [{ method: 'POST', path: P('cancelRollback', revision), why: 'confirm: cancel the rollback' }],
        log,
      );
    return { plan, ok: true, detail: `confirmed: ${check.detail}`, durationMs: Date.now() - t0 };
  }
  log(`  check failed: ${check.detail}; putting the saved rules back`);
  try {
    const now = await observeOpnsense(c);
    const back = planOpnsense(saved, now, { style: c.style });
    if (!back.calls.length && revision)
      // the box's own rollback was quicker than wharf: say so, wharf changed nothing
      return {
        plan,
        ok: false,
        reverted: 'box',
        detail: `rolled back by the box before wharf's revert: ${check.detail}`,
        durationMs: Date.now() - t0,
      };
    await executeCalls(c, back.calls, log);
    if (revision) await c.call('POST', P('cancelRollback', revision)).catch(() => undefined); // already back; the timer may stay
    return {
      plan,
      ok: false,
      reverted: 'wharf',
      detail: `reverted by wharf through the API: ${check.detail}`,
      durationMs: Date.now() - t0,
    };
  } catch (e) {
    if (!revision)
      return {
        plan,
        ok: false,
        reverted: 'none',
        detail: `NOT reverted (${(e as Error).message}); the box has no savepoint rollback: ${check.detail}`,
        durationMs: Date.now() - t0,
      };
    const waitMs = o.boxRollbackMs ?? 75_000;
    log(
      `  the API is unreachable (${(e as Error).message}); waiting up to ${Math.round(waitMs / 1000)} s for the box's rollback`,
    );
    const deadline = Date.now() + waitMs;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 2000));
      try {
        const now = await observeOpnsense(c);
        const rest = planOpnsense(saved, now, { style: c.style });
        if (!rest.changes.some((x) => x.kind === 'rule'))
          return {
            plan,
            ok: false,
            reverted: 'box',
            detail: `rolled back by the box: ${check.detail}`,
            durationMs: Date.now() - t0,
          };
      } catch {
        /* still cut off */
      }
    }
    return {
      plan,
      ok: false,
      reverted: 'none',
      detail: `NOT reverted within ${Math.round(waitMs / 1000)} s: ${check.detail}`,
      durationMs: Date.now() - t0,
    };
  }
}
