// The scenario registry: `wharf scenario list|run` and the README's test command use it.
// Order matters for `run all`: each scenario resets the lab to a known state first.
import { registerScenarios, registeredScenarios } from '../src/scenario/registry.ts';
import { failbackNaive } from './failback-naive.ts';
import { hostKeys } from './host-keys.ts';
import { largeFile } from './large-file.ts';
import { nodeLoss } from './node-loss.ts';
import { notification } from './notification.ts';
import { security } from './security.ts';

registerScenarios(nodeLoss, hostKeys, largeFile, failbackNaive, security, notification);

export const SCENARIOS = registeredScenarios();
export { pickScenarios } from '../src/scenario/registry.ts';
