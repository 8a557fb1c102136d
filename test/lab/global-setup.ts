// Lab project's global setup (vitest.config.ts): the shared scenario lab (scenarios/lab.ts,
// WHARF_SCENARIO_STACK or `scen` on 10.96.x) is brought up and provisioned by the first lab file
// that uses it (ensureScenarioLab) and reused by the others; no file takes it down, so nothing pulls
// it away from under a later file. It comes down once, after every lab file, unless WHARF_KEEP_LAB=1
// (npm test runs the scenario lab's files in two vitest runs: the first keeps it for the second).
import { scenarioTopology } from '../../scenarios/lab.ts';
import { downLeftovers } from './helpers.ts';

export default function setup(): () => Promise<void> {
  return () => downLeftovers(scenarioTopology().t.name);
}
