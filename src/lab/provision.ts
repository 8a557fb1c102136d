// The lab's last step: install → configure → verify against the lab's generated inventory,
// through exactly the code path an operator uses on production hosts (`wharf run`).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderNode } from '../render/index.ts';
import type { Inventory } from '../topology/inventory.ts';
import { RunError } from '../core/errors.ts';
import { loadInventory } from '../topology/load.ts';
import type { Topology } from '../topology/model.ts';
import { runRunbookByName } from '../stack/runbooks.ts';
import { getRunbook, type RunbookResult } from '../runbook/registry.ts';
import { readState, stateDir } from './state.ts';
import { ensureStackSecrets, sftpKnownHosts } from '../stack/secrets.ts';
import { provisionOpnsenseLab } from './opnsense/provision.ts';

export interface ProvisionResult {
  results: RunbookResult[];
  durationMs: number;
}

export const PROVISION_RUNBOOKS = ['install', 'configure', 'verify'] as const;

/**
 * Kernel settings that are not namespaced (fs.inotify.*) are read-only inside containers: the lab's
 * nodes share this host's kernel, so the lab raises them here (never lowers), like a VM's kernel.
 */
export function raiseHostSysctls(t: Topology, inv: Inventory, log: (line: string) => void): void {
  const want = new Map<string, number>();
  for (const node of Object.keys(inv.hosts)) {
    if (!t.nodes[node] || t.nodes[node].labOnly) continue;
    for (const [k, v] of Object.entries(renderNode(t, inv, node).sysctls)) {
      if (k.startsWith('fs.') && /^\d+$/.test(v)) want.set(k, Math.max(Number(v), want.get(k) ?? 0));
    }
  }
  // every systemd node takes inotify instances from the host's per-user budget (128 by default):
  // a few labs exhaust it and restarted nodes fail to boot
  want.set('fs.inotify.max_user_instances', Math.max(8192, want.get('fs.inotify.max_user_instances') ?? 0));
  for (const [k, v] of want) {
    const file = `/proc/sys/${k.replace(/\./g, '/')}`;
    const now = Number(readFileSync(file, 'utf8').trim());
    if (now >= v) continue;
    try {
      writeFileSync(file, String(v));
      log(`host kernel: ${k} ${now} → ${v} (shared by the lab's nodes)`);
    } catch (e) {
      throw new RunError(
        `cannot raise ${k} to ${v} on this host (the lab's nodes share its kernel): ${(e as Error).message}`,
      );
    }
  }
}

/** known_hosts for SFTP clients of the lab: the stack's shared host keys at every entry port. */
export const sftpKnownHostsFile = (stack: string): string => join(stateDir(stack), 'known_hosts.sftp');

export function writeSftpKnownHosts(t: Topology, inv: Inventory): string {
  const state = readState(t.name);
  const names = state ? Object.values(state.ports.entry).map((p) => `[127.0.0.1]:${p}`) : [];
  const file = sftpKnownHostsFile(t.name);
  writeFileSync(file, sftpKnownHosts(ensureStackSecrets(t, inv), names));
  return file;
}

export async function provisionLab(
  t: Topology,
  log: (line: string) => void = () => {},
): Promise<ProvisionResult> {
  const t0 = Date.now();
  for (const name of PROVISION_RUNBOOKS) getRunbook(name); // registered? (scripts/index.ts)
  const inventoryFile = join(stateDir(t.name), 'inventory.yaml');
  let inventory = loadInventory(inventoryFile, t);
  raiseHostSysctls(t, inventory, log);
  // an OPNsense firewall: the node becomes the emulated box (its API) before configure drives it
  if (t.firewall.kind === 'opnsense')
    inventory = await provisionOpnsenseLab(t, inventory, inventoryFile, log);
  const results: RunbookResult[] = [];
  for (const name of PROVISION_RUNBOOKS) {
    log(`provision: ${name}`);
    const r = await runRunbookByName(name, { topology: t, inventory, log });
    results.push(r);
    log(
      `provision: ${name} ${r.ok ? 'ok' : 'FAILED'}: ${r.changes} change(s) in ${(r.durationMs / 1000).toFixed(1)} s`,
    );
    if (!r.ok)
      throw new RunError(
        `lab provisioning: ${name} failed: ${r.error ?? 'see the journal ' + (r.journal ?? '')}`,
      );
  }
  writeSftpKnownHosts(t, inventory);
  return { results, durationMs: Date.now() - t0 };
}
