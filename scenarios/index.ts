// The scenario registry: `wharf scenario list|run` and the README's test command use it.
// Order matters for `run all`: each scenario resets the lab to a known state first.
import type { Scenario } from '../src/scenario/types.ts';
import { failbackNaive } from './failback-naive.ts';
import { hostKeys } from './host-keys.ts';
import { largeFile } from './large-file.ts';
import { nodeLoss } from './node-loss.ts';

export const SCENARIOS: Record<string, Scenario> = Object.fromEntries(
  [nodeLoss, hostKeys, largeFile, failbackNaive].map((s) => [s.name, s]),
);

/** Scenarios by name, in the order given; unknown names are returned separately. */
export function pickScenarios(
  names: string[],
  registry: Record<string, Scenario> = SCENARIOS,
): { picked: Scenario[]; unknown: string[] } {
  const picked: Scenario[] = [];
  const unknown: string[] = [];
  for (const n of names) {
    const s = registry[n];
    if (s) picked.push(s);
    else unknown.push(n);
  }
  return { picked, unknown };
}
