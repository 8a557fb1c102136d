#!/usr/bin/env -S npx tsx
// configure: everything the renderers produce (haproxy.cfg, sshd_config, lsyncd, backup job,
// notifier, nftables, routes, sysctls) plus users, chroots, shared host keys and replication keys.
// One step per resource change (`<host>:file /etc/haproxy/haproxy.cfg`…), applied by the resource
// engine: each file is checked by its daemon's own tool before it replaces the old one, a failed
// reload or health check restores it. Router and firewall rulesets are commit-confirmed: the box arms
// its own revert, wharf checks management ssh (a new connection) and the SFTP path (from the WAN
// side), and only then confirms (--confirm-timeout).
import { z } from 'zod';
import { defineRunbook, registerRunbook } from '../src/runbook/registry.ts';
import { runResourceRunbook } from '../src/runbook/resource-runbook.ts';
import { runAsScript } from '../src/cli/standalone.ts';
import { configureDesired } from '../src/stack/desired.ts';
import { ensureStackSecrets } from '../src/stack/secrets.ts';
import { stackConfirmHooks } from '../src/stack/confirm.ts';
import { durationOption } from '../src/runbook/options.ts';

export const configure = defineRunbook({
  name: 'configure',
  description:
    'render and apply every config, user, chroot and key; validate, reload, health-check, roll back',
  honours: { only: true, diff: true },
  options: z.object({
    confirmTimeout: durationOption(
      '60s',
      'router and firewall ruleset changes are commit-confirmed: the box reverts a change by itself unless wharf has checked management ssh and the SFTP path and confirmed it within this window (5s..1h)',
      { minMs: 5000, maxMs: 3_600_000, range: 'a window of 5s..1h, like 30s or 2m' },
    ),
  }),
  run(ctx) {
    const secrets = ensureStackSecrets(ctx.topology, ctx.inventory);
    const desired = configureDesired(ctx.topology, ctx.inventory, secrets, ctx.only, {
      confirmTimeoutMs: ctx.options.confirmTimeout,
    });
    const hidden = [
      secrets.replication.private,
      ...Object.values(secrets.hostKeys).map((k) => k.private),
      ...Object.values(ctx.inventory.users ?? {}).flatMap((u) =>
        [u.passwordHash, u.password].filter((x): x is string => !!x),
      ),
      ...ctx.topology.sftp.users.map((u) => u.passwordHash).filter((x): x is string => !!x),
    ];
    return runResourceRunbook(ctx, 'configure', desired, hidden, {
      confirm: stackConfirmHooks(ctx.topology, ctx.inventory),
    });
  },
});
registerRunbook(configure);
export default configure;
await runAsScript(import.meta.url, 'configure');
