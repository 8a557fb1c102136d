// install and configure on the step model: each resource Change is a step `<host>:<change id>`,
// applied by the resource engine (runRunbook → applyHost: per-host order, hosts concurrently,
// validate before rename, rollback on failure), which journals every change under that id.
import type { Plan } from './plan.ts';
import type { RunbookContext, RunbookResult } from './registry.ts';
import type { DesiredState } from './resources.ts';
import { runRunbook } from './run.ts';
import type { StepSummary } from './steps.ts';

const UNDO: Record<string, string> = {
  file: 'restore the previous content, owner and mode (or remove a new file)',
  unit: 'restore the files and reload/restart the unit again',
};

/** The engine's plan as steps (data). Pure. */
export function resourceSteps(p: Plan): StepSummary[] {
  return Object.values(p.hosts).flatMap((cs) =>
    cs.map((c) => {
      const undo = UNDO[c.resource.kind];
      return {
        id: `${c.host}:${c.id}`,
        host: c.host,
        action: `${c.kind} ${c.id}`,
        why: c.why,
        ...(undo ? { undo: { host: c.host, action: undo, commands: [`rollback ${c.id} (apply.ts)`] } } : {}),
      };
    }),
  );
}

export async function runResourceRunbook(
  ctx: RunbookContext<unknown>,
  runbook: string,
  desired: DesiredState,
  secrets: string[] = [],
): Promise<RunbookResult> {
  const s = await runRunbook({
    stack: ctx.topology.name,
    runbook,
    desired,
    transports: ctx.transports,
    check: ctx.check,
    diff: ctx.diff,
    secrets,
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
