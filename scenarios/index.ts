// The scenario registry: `wharf scenario list|run` and the README's test command use it.
// Order matters for `run all`: each scenario resets the lab to a known state first. smoke comes
// first: a broken stack fails there, fast.
import { registerScenarios, registeredScenarios } from '../src/scenario/registry.ts';
import { alerts } from './alerts.ts';
import { backupRestore } from './backup-restore.ts';
import { drill } from './drill.ts';
import { failbackNaive } from './failback-naive.ts';
import { firewallChange } from './firewall-change.ts';
import { haproxyLoss } from './haproxy-loss.ts';
import { hostKeys } from './host-keys.ts';
import { largeFile } from './large-file.ts';
import { manyClients } from './many-clients.ts';
import { manyFiles } from './many-files.ts';
import { nodeLoss } from './node-loss.ts';
import { partition } from './partition.ts';
import { notification } from './notification.ts';
import { readWriteSplit } from './read-write-split.ts';
import { replicationLag } from './replication-lag.ts';
import { security } from './security.ts';
import { smoke } from './smoke.ts';

registerScenarios(
  smoke,
  nodeLoss,
  haproxyLoss,
  hostKeys,
  largeFile,
  failbackNaive,
  readWriteSplit,
  partition,
  security,
  firewallChange,
  notification,
  backupRestore,
  replicationLag,
  manyFiles,
  manyClients,
  alerts,
  drill,
);

export const SCENARIOS = registeredScenarios();
export { pickScenarios } from '../src/scenario/registry.ts';
