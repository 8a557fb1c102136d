#!/usr/bin/env -S npx tsx
// configure: everything the renderers produce (haproxy.cfg, sshd_config, lsyncd, backup job,
// notifier, nftables, routes, sysctls) plus users, chroots, shared host keys and replication keys.
// One step per resource change (`<host>:file /etc/haproxy/haproxy.cfg`…), applied by the resource
// engine: each file is checked by its daemon's own tool before it replaces the old one, a failed
// reload or health check restores it. Router and firewall rulesets are commit-confirmed: the box arms
// its own revert, wharf checks management ssh (a new connection) and the SFTP path (from the WAN
// side), and only then confirms (--confirm-timeout). An OPNsense firewall (firewall.kind: opnsense) is
// not an ssh host: its rules, aliases and port forwards go through its REST API (src/opnsense).
import { z } from 'zod';
import { defineRunbook, registerRunbook } from '../src/runbook/registry.ts';
import { runResourceRunbook } from '../src/runbook/resource-runbook.ts';
import { runAsScript } from '../src/cli/standalone.ts';
import { configureDesired } from '../src/stack/desired.ts';
import { ensureStackSecrets } from '../src/stack/secrets.ts';
import { stackConfirmHooks } from '../src/stack/confirm.ts';
import { durationOption } from '../src/runbook/options.ts';
import { configureOpnsense } from '../src/opnsense/configure.ts';
import { nodeOfKind } from '../src/topology/model.ts';
import type { RunbookResult } from '../src/runbook/registry.ts';

/** Two parts of one run (the ssh hosts, the OPNsense box) as one result. Pure. */
export function joinResults(a: RunbookResult, b: RunbookResult): RunbookResult {
  const error = [a.error, b.error].filter(Boolean).join('; ');
  return {
    runbook: a.runbook,
    ok: a.ok && b.ok,
    check: a.check,
    changes: a.changes + b.changes,
    steps: [...a.steps, ...b.steps],
    hosts: { ...a.hosts, ...b.hosts },
    durationMs: a.durationMs + b.durationMs,
    ...(a.journal ? { journal: a.journal } : {}),
    ...(error ? { error } : {}),
    exitCode: Math.max(a.exitCode, b.exitCode),
    ...(a.details !== undefined || b.details !== undefined
      ? { details: { ...(a.details as object), ...(b.details as object) } }
      : {}),
  };
}

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
  async run(ctx) {
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
    const hooks = stackConfirmHooks(ctx.topology, ctx.inventory);
    const fw = nodeOfKind(ctx.topology, 'firewall').name;
    const opnsense = ctx.topology.firewall.kind === 'opnsense' && (!ctx.only || ctx.only.includes(fw));
    const ssh = Object.keys(desired).length
      ? await runResourceRunbook(ctx, 'configure', desired, hidden, { confirm: hooks })
      : undefined;
    if (!opnsense) return ssh ?? runResourceRunbook(ctx, 'configure', desired, hidden, { confirm: hooks });
    if (ssh && !ssh.ok) return ssh; // the box is left alone after a failed run
    // firewall.kind: opnsense — the box over its REST API, commit-confirmed (src/opnsense)
    const box = await configureOpnsense({
      topology: ctx.topology,
      inventory: ctx.inventory,
      check: ctx.check,
      diff: ctx.diff,
      log: ctx.log,
      confirmTimeoutMs: ctx.options.confirmTimeout,
      probe: (host) => hooks.probe(host),
    });
    return ssh ? joinResults(ssh, box) : box;
  },
});
registerRunbook(configure);
export default configure;
await runAsScript(import.meta.url, 'configure');
