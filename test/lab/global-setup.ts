// Lab project's global setup (vitest.config.ts): the shared scenario lab (scenarios/lab.ts,
// WHARF_SCENARIO_STACK or `scen` on 10.96.x) is brought up and provisioned by the first lab file
// that uses it (ensureScenarioLab) and reused by the others; no file takes it down, so nothing pulls
// it away from under a later file. It comes down once, after every lab file, unless WHARF_KEEP_LAB=1
// (npm test runs the scenario lab's files in two vitest runs: the first keeps it for the second).
import { scenarioTopology } from '../../scenarios/lab.ts';
import { labDown } from '../../src/lab/lab.ts';
import { labelled } from './helpers.ts';

export default function setup(): () => Promise<void> {
  return async () => {
    if (process.env.WHARF_KEEP_LAB) return;
    const stack = scenarioTopology().t.name;
    // nothing to take down (no lab file used it, or it was never up): no engine round trips
    const left = await labelled(stack);
    if (!left.containers.length && !left.networks.length && !left.volumes.length) return;
    process.stderr.write(`[lab teardown] scenario lab ${stack}: lab down\n`);
    await labDown(stack);
  };
}
