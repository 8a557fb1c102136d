// install and configure on the step model: each resource Change is a step `<host>:<change id>`,
// applied by the resource engine (runRunbook → applyHost: per-host order, hosts concurrently,
// validate before rename, rollback on failure), which journals every change under that id.
import { shJoin } from '../exec/index.ts';
import { octal } from '../transport/shell.ts';
import { unitCommand, type ConfirmHooks } from './apply.ts';
import type { Change, Plan } from './plan.ts';
import type { RunbookContext, RunbookResult } from './registry.ts';
import type { DesiredState } from './resources.ts';
import { runRunbook } from './run.ts';
import type { StepSummary } from './steps.ts';

/**
 * What apply.ts's rollback does for a change if a later change, check, reload or health check on
 * that host fails: files are put back as observed (or removed when new), reloaded units are
 * reloaded again with the restored files. Packages, users, directories, sysctls and routes are
 * kept (no undo). Pure.
 */
export function resourceUndo(c: Change): StepSummary['undo'] | undefined {
  const r = c.resource;
  if (r.kind === 'file' && c.before?.kind === 'file') {
    const b = c.before.stat;
    return b
      ? {
          host: c.host,
          action: 'restore the previous file as observed',
          commands: [
            `write the observed ${b.size}-byte content back to ${r.path} (temp file, then rename; ${b.owner}:${b.group} ${octal(b.mode)})`,
          ],
        }
      : { host: c.host, action: 'remove the new file', commands: [shJoin(['rm', '-f', '--', r.path])] };
  }
  if (r.kind === 'unit' && (c.kind === 'reload' || c.kind === 'restart') && r.confirm) {
    return {
      host: c.host,
      action: `before it is confirmed: the host reverts by itself after ${r.confirm.timeoutMs / 1000} s; after: re-apply ${r.name} with the restored files`,
      commands: [shJoin(r.confirm.restore)],
    };
  }
  if (r.kind === 'unit' && (c.kind === 'reload' || c.kind === 'restart')) {
    const what = r.apply === 'restart' ? 'restart' : 'reload';
    let cmd: string;
    try {
      cmd = shJoin(unitCommand(r, what));
    } catch {
      return undefined;
    }
    return { host: c.host, action: `${what} ${r.name} again with the restored files`, commands: [cmd] };
  }
  return undefined;
}

/** The engine's plan as steps (data). Pure. */
export function resourceSteps(p: Plan): StepSummary[] {
  return Object.values(p.hosts).flatMap((cs) =>
    cs.map((c) => {
      const undo = resourceUndo(c);
      return {
        id: `${c.host}:${c.id}`,
        host: c.host,
        action: `${c.kind} ${c.id}`,
        why: c.why,
        ...(undo ? { undo } : {}),
      };
    }),
  );
}

export async function runResourceRunbook(
  ctx: RunbookContext<unknown>,
  runbook: string,
  desired: DesiredState,
  secrets: string[] = [],
  extra: { confirm?: ConfirmHooks } = {},
): Promise<RunbookResult> {
  const s = await runRunbook({
    stack: ctx.topology.name,
    runbook,
    desired,
    transports: ctx.transports,
    check: ctx.check,
    diff: ctx.diff,
    secrets,
    ...(extra.confirm ? { confirm: extra.confirm } : {}),
    ...(ctx.runsDir ? { runsDir: ctx.runsDir } : {}),
    ...(ctx.reporter ? { reporter: ctx.reporter } : {}),
  });
  const steps = s.plan ? resourceSteps(s.plan) : [];
  if (!s.check)
    for (const st of steps) {
      const h = s.hosts[st.host];
      st.result = h?.failed ? 'failed' : 'ok';
      if (h?.failed) st.error = h.failed;
    }
  const { plan: _plan, ...rest } = s;
  return { ...rest, steps };
}
