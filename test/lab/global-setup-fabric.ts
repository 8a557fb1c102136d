// Fabric project's global setup (vitest.config.ts): lab.test.ts builds the single-HAProxy lab
// (helpers.ts FABRIC_LAB) and runbooks.test.ts takes it down; this takes it down after the project's
// files when a run left it behind (runbooks.test.ts not run, or failed before), unless WHARF_KEEP_LAB=1.
import { FABRIC_LAB, downLeftovers } from './helpers.ts';

export default function setup(): () => Promise<void> {
  return () => downLeftovers(FABRIC_LAB.stack);
}
