#!/usr/bin/env -S npx tsx
// install: the Debian packages each node's role needs (idempotent: installed ones are left alone).
// One step per package change (`<host>:package <name>`), applied by the resource engine.
import { z } from 'zod';
import { defineRunbook, registerRunbook } from '../src/runbook/registry.ts';
import { runResourceRunbook } from '../src/runbook/resource-runbook.ts';
import { runAsScript } from '../src/cli/standalone.ts';
import { installDesired } from '../src/stack/desired.ts';

export const install = defineRunbook({
  name: 'install',
  description: 'install the Debian packages of every node role (haproxy, openssh, lsyncd, nftables, …)',
  honours: { only: true, diff: true },
  options: z.object({}),
  run: (ctx) => runResourceRunbook(ctx, 'install', installDesired(ctx.topology, ctx.inventory, ctx.only)),
});
registerRunbook(install);
export default install;
await runAsScript(import.meta.url, 'install');
