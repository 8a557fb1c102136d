// Fabric project's global setup (vitest.config.ts): lab.test.ts builds the single-HAProxy lab
// (helpers.ts FABRIC_LAB) and runbooks.test.ts takes it down; this takes it down after the project's
// files when a run left it behind (runbooks.test.ts not run, or failed before), unless WHARF_KEEP_LAB=1.
import { labDown } from '../../src/lab/lab.ts';
import { FABRIC_LAB, labelled } from './helpers.ts';

export default function setup(): () => Promise<void> {
  return async () => {
    if (process.env.WHARF_KEEP_LAB) return;
    const left = await labelled(FABRIC_LAB.stack);
    if (!left.containers.length && !left.networks.length && !left.volumes.length) return;
    process.stderr.write(`[lab teardown] lab ${FABRIC_LAB.stack}: lab down\n`);
    await labDown(FABRIC_LAB.stack);
  };
}
