// install: the Debian packages each node's role needs (idempotent: installed ones are left alone).
import { runRunbook } from '../src/runbook/index.ts';
import { installDesired } from '../src/stack/desired.ts';
import type { Runbook } from './runbook.ts';

export const install: Runbook = {
  name: 'install',
  description: 'install the Debian packages of every node role (haproxy, openssh, lsyncd, nftables, …)',
  async run(ctx) {
    const desired = installDesired(ctx.topology, ctx.inventory, ctx.only);
    return runRunbook({
      stack: ctx.topology.name,
      runbook: 'install',
      desired,
      transports: ctx.transports,
      check: ctx.check,
      diff: ctx.diff,
      ...(ctx.runsDir ? { runsDir: ctx.runsDir } : {}),
      ...(ctx.reporter ? { reporter: ctx.reporter } : {}),
    });
  },
};
export default install;
