// configure: everything the renderers produce (haproxy.cfg, sshd_config, lsyncd, backup job,
// notifier, nftables, routes, sysctls) plus users, chroots, shared host keys and replication keys.
// Each file is checked by its daemon's own tool before it replaces the old one.
import { runRunbook } from '../src/runbook/index.ts';
import { configureDesired } from '../src/stack/desired.ts';
import { ensureStackSecrets } from '../src/stack/secrets.ts';
import type { Runbook } from './runbook.ts';

export const configure: Runbook = {
  name: 'configure',
  description:
    'render and apply every config, user, chroot and key; validate, reload, health-check, roll back',
  async run(ctx) {
    const secrets = ensureStackSecrets(ctx.topology, ctx.inventory);
    const desired = configureDesired(ctx.topology, ctx.inventory, secrets, ctx.only);
    const hidden = [
      secrets.replication.private,
      ...Object.values(secrets.hostKeys).map((k) => k.private),
      ...Object.values(ctx.inventory.users ?? {}).flatMap((u) =>
        [u.passwordHash, u.password].filter((x): x is string => !!x),
      ),
      ...ctx.topology.sftp.users.map((u) => u.passwordHash).filter((x): x is string => !!x),
    ];
    return runRunbook({
      stack: ctx.topology.name,
      runbook: 'configure',
      desired,
      transports: ctx.transports,
      check: ctx.check,
      diff: ctx.diff,
      secrets: hidden,
      ...(ctx.runsDir ? { runsDir: ctx.runsDir } : {}),
      ...(ctx.reporter ? { reporter: ctx.reporter } : {}),
    });
  },
};
export default configure;
