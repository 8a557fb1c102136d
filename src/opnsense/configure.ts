// configure's firewall part when `firewall.kind: opnsense`: no ssh to the box; its REST API instead.
// --check prints the HTTP calls (method, path; with --diff their bodies) as the run's steps and in
// `--json` (details.opnsense) — never a key or secret. Applying runs them commit-confirmed: the
// management path (the API over a new connection) and the SFTP path (the stack's own check from
// the internet side) must work within the window, else the box's savepoint rollback (or wharf,
// on releases without one) puts the saved rules back, and the run fails saying so.
import { InputError } from '../core/errors.ts';
import type { PathCheck } from '../runbook/apply.ts';
import type { RunbookResult } from '../runbook/registry.ts';
import type { StepSummary } from '../runbook/steps.ts';
import { resolvedFirewall } from '../render/nftables.ts';
import { firewallResolveContext } from '../topology/firewall.ts';
import type { Inventory } from '../topology/inventory.ts';
import { floatingAddresses, nodeOfKind, type Topology } from '../topology/model.ts';
import { OpnClient, loadCredentials } from './client.ts';
import { opnDesired } from './desired.ts';
import { applyOpnsense, observeOpnsense, type OpnApplyResult } from './driver.ts';
import { formatOpnPlan, planOpnsense, type OpnPlan } from './plan.ts';
import type { OpnDesired } from './types.ts';

export interface OpnConfigureOptions {
  topology: Topology;
  inventory: Inventory;
  check: boolean;
  diff: boolean;
  log: (l: string) => void;
  /** The commit-confirm window (configure --confirm-timeout). */
  confirmTimeoutMs: number;
  /** The stack's other paths to keep (the SFTP banner from the internet side), by host. */
  probe?: (host: string) => Promise<PathCheck[]>;
}

/** The topology's firewall as the objects wharf owns on the box. Pure. */
export function opnsenseDesired(t: Topology, inv: Inventory, apiPort: number): OpnDesired {
  const fw = nodeOfKind(t, 'firewall').name;
  const ctx = firewallResolveContext(
    t.firewall,
    fw,
    (n) => t.nodes[n]?.networks,
    inv,
    (n) => t.networks[n].subnet,
    floatingAddresses(t, inv),
  );
  return opnDesired(resolvedFirewall(t, inv, fw), ctx, { apiPort });
}

/** The firewall node's client and desired objects, or a clear error naming the inventory field. */
export function opnsenseTarget(t: Topology, inv: Inventory) {
  const fw = nodeOfKind(t, 'firewall').name;
  const api = inv.hosts[fw]?.api;
  if (!api)
    throw new InputError(
      `hosts.${fw}.api: missing (firewall.kind is opnsense: wharf drives the box over its REST API; give url, keyFile, secretFile, caFile)`,
    );
  const client = new OpnClient(loadCredentials(api, `hosts.${fw}.api`));
  const apiPort = Number(new URL(api.url).port || 443);
  return { fw, api, client, desired: opnsenseDesired(t, inv, apiPort) };
}

/** The plan's calls as runbook steps (ids stable between --check and the run). Pure. */
export function opnSteps(fw: string, plan: OpnPlan): StepSummary[] {
  return plan.calls.map((c, i) => ({
    id: `${fw}:api ${String(i + 1).padStart(2, '0')} ${c.method} ${c.path}`,
    host: fw,
    action: `${c.method} ${c.path}`,
    why: c.why,
  }));
}

export async function configureOpnsense(o: OpnConfigureOptions): Promise<RunbookResult> {
  const t0 = Date.now();
  const { fw, api, client, desired } = opnsenseTarget(o.topology, o.inventory);
  const base = { runbook: 'configure', check: o.check, hosts: {} as RunbookResult['hosts'] };
  if (o.check) {
    const plan = planOpnsense(desired, await observeOpnsense(client), { style: client.style });
    const text = formatOpnPlan(plan, fw, { bodies: o.diff });
    for (const l of text.split('\n')) o.log(l);
    return {
      ...base,
      ok: true,
      changes: plan.changes.length,
      steps: opnSteps(fw, plan),
      hosts: { [fw]: { changes: plan.changes.length } },
      durationMs: Date.now() - t0,
      exitCode: 0,
      details: {
        opnsense: {
          host: fw,
          url: api.url,
          version: plan.version,
          warnings: plan.warnings,
          calls: plan.calls,
        },
      },
    };
  }
  const probeClient = new OpnClient(client.creds, 4000);
  const apiCheck = async (): Promise<PathCheck> => {
    const name = `management: ${fw}'s API (new connection)`;
    const c0 = Date.now();
    try {
      // its own short deadline: a probe waiting on a cut path must not outlast the window
      await probeClient.call('GET', '/api/core/firmware/status');
      return { name, ok: true, detail: `answers in ${Date.now() - c0} ms`, required: true };
    } catch (e) {
      return { name, ok: false, detail: (e as Error).message.slice(0, 200), required: true };
    }
  };
  let r: OpnApplyResult;
  try {
    r = await applyOpnsense(client, desired, {
      confirm: {
        probe: async () => [await apiCheck(), ...((await o.probe?.(fw)) ?? []).filter((c) => !c.required)],
        windowMs: o.confirmTimeoutMs,
        boxWindowMs: api.rollbackSeconds * 1000,
      },
      log: o.log,
    });
  } catch (e) {
    const msg = `${fw}: ${(e as Error).message}`;
    return {
      ...base,
      ok: false,
      changes: 0,
      steps: [],
      hosts: { [fw]: { changes: 0, failed: msg } },
      durationMs: Date.now() - t0,
      error: msg,
      exitCode: e instanceof InputError ? 2 : 1,
    };
  }
  const steps = opnSteps(fw, r.plan).map((s) => ({
    ...s,
    result: r.ok ? ('ok' as const) : ('rolled-back' as const),
  }));
  o.log(`${fw}: ${r.detail}`);
  return {
    ...base,
    ok: r.ok,
    changes: r.ok ? r.plan.changes.length : 0,
    steps,
    hosts: { [fw]: { changes: r.ok ? r.plan.changes.length : 0, ...(r.ok ? {} : { failed: r.detail }) } },
    durationMs: Date.now() - t0,
    ...(r.ok ? {} : { error: `${fw}: ${r.detail}` }),
    exitCode: r.ok ? 0 : 1,
    details: {
      opnsense: {
        host: fw,
        version: r.plan.version,
        calls: r.plan.calls,
        reverted: r.reverted ?? null,
        revertSeconds: r.revertSeconds ?? null,
        checks: r.checks ?? [],
      },
    },
  };
}
