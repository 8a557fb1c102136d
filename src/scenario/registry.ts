// The scenario catalogue as the CLI sees it. Scenarios live in scenarios/ (the application) and
// register themselves here (scenarios/index.ts); src/ never imports them. Entry points
// (bin/wharf.mjs, tests) load scenarios/index.ts before the CLI runs.
import type { Scenario } from './types.ts';

const catalogue = new Map<string, Scenario>();

/** Add scenarios in `run all` order; a second scenario under the same name is a programming error. */
export function registerScenarios(...list: Scenario[]): void {
  for (const s of list) {
    const had = catalogue.get(s.name);
    if (had && had !== s) throw new Error(`scenario "${s.name}" is registered twice`);
    catalogue.set(s.name, s);
  }
}

/** The registered scenarios by name, in registration order. */
export function registeredScenarios(): Record<string, Scenario> {
  return Object.fromEntries(catalogue);
}

/** Scenarios by name, in the order given; unknown names are returned separately. */
export function pickScenarios(
  names: string[],
  registry: Record<string, Scenario> = registeredScenarios(),
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
