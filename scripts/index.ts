// The runbooks `wharf run <name>` knows: importing this file registers them (src/runbook/registry.ts).
// bin/wharf.mjs, the tests, bench/ and scenarios/ import it; src/ never does.
export { install } from './install.ts';
export { configure } from './configure.ts';
export { verify } from './verify.ts';
export { failover } from './failover.ts';
export { failback } from './failback.ts';
export { restore } from './restore.ts';
