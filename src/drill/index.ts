// wharf drill: seeded chaos against the lab with a Jepsen-style verdict.
// schedule.ts (pure: seed → schedule), faults.ts (inject/heal/sweep), verdict.ts (pure: history →
// verdict, RTO, lag), run.ts (the run). This file: the lab's shape for the generator, the default
// targets, and the drill's result as checks (TAP/JUnit, like a scenario's).
import type { LabStatus } from '../lab/lab.ts';
import { labNode } from '../lab/node.ts';
import type { CheckResult, Metric } from '../scenario/types.ts';
import { nodeOfKind, sftpNode, type Topology } from '../topology/model.ts';
import type { DrillLabShape } from './schedule.ts';
import type { DrillResult } from './run.ts';

export * from './schedule.ts';
export * from './verdict.ts';
export { runDrill, steadyState, DrillRefused, type DrillResult, type DrillOptions } from './run.ts';
export { sweep, injectFault, healFault } from './faults.ts';

/** Node roles and data networks of a running lab (what the generator picks from). */
export function drillShape(t: Topology, s: LabStatus, sizedUploads: string[] = []): DrillLabShape {
  const networks: Record<string, string[]> = {};
  for (const [name, n] of Object.entries(s.nodes))
    networks[name] = Object.keys(n.addresses).filter((k) => k !== 'mgmt');
  const main = sftpNode(t, 'main').name;
  return {
    main,
    sub: t.replication.lsyncd.to,
    backup: t.replication.backup.to,
    haproxy: nodeOfKind(t, 'haproxy').name,
    haproxies: t.haproxy.pair.nodes,
    notifier: t.notifications.on === 'main' ? main : t.replication.backup.to,
    networks,
    sizedUploads,
  };
}

/** SFTP nodes whose chroot base is a mount of its own (a size-limited upload disk: disk-full). */
export async function sizedUploadNodes(t: Topology, s: LabStatus): Promise<string[]> {
  const out: string[] = [];
  for (const n of Object.keys(s.nodes)) {
    if (t.nodes[n]?.kind !== 'sftp') continue;
    const i = await labNode(t.name, n).inspectOrNull();
    if (i?.mounts.some((m) => m.destination === t.sftp.chrootBase)) out.push(n);
  }
  return out;
}

/** Every stack node the drill may touch by default: not the lab's bastion (no stack node), not the WAN client. */
export function defaultTargets(t: Topology, s: LabStatus): string[] {
  return Object.keys(s.nodes).filter((n) => {
    const k = t.nodes[n]?.kind;
    return k !== undefined && k !== 'wan-client';
  });
}

/** The drill as checks and metrics (one TAP point / JUnit testcase each). Pure. */
export function drillChecks(r: DrillResult): { results: CheckResult[]; metrics: Metric[] } {
  const scenario = `drill seed ${r.seed}`;
  const results: CheckResult[] = [];
  const c = (name: string, ok: boolean, detail?: string) =>
    results.push({ scenario, name, ok, ...(detail !== undefined ? { detail } : {}) });
  c('steady state before', r.steadyBefore.ok, r.steadyBefore.detail);
  for (const f of r.faults)
    c(
      `${f.id} ${f.kind} ${f.targets.join(' ⇹ ')} injected and healed`,
      f.error === null && f.healAt !== null,
      f.error ?? `RTO ${f.rtoMs ?? '—'} ms, lag after heal ${f.lagAfterHealMs ?? '—'} ms`,
    );
  for (const n of r.verdict.nodes)
    c(
      `no acknowledged upload lost or corrupt on ${n.node}`,
      n.lost.length === 0 && n.corrupt.length === 0,
      `ok ${n.ok}, lost ${n.lost.length}, corrupt ${n.corrupt.length}, unexpected ${n.unexpected.length}, recovered ${n.recovered.length}` +
        (n.lost.length ? `; lost: ${n.lost.slice(0, 3).join(', ')}` : ''),
    );
  c(
    'failback',
    r.failback.ok && !r.failback.sabotaged,
    r.failback.sabotaged ? 'sabotaged (naive failback)' : r.failback.why,
  );
  c(
    'upload notices delivered after the drill',
    r.notices.left === 0,
    `${r.notices.queued} queued at the end, ${r.notices.left} left after ${(r.notices.drainMs / 1000).toFixed(1)} s`,
  );
  c('steady state after', r.steadyAfter?.ok ?? false, r.steadyAfter?.detail ?? 'not checked');
  if (r.interrupted) c('ran to the end', false, 'interrupted');
  const metrics: Metric[] = [
    { name: 'acknowledged', value: r.verdict.acknowledged, unit: 'uploads' },
    { name: 'failed attempts', value: r.workload.failedAttempts, unit: 'attempts' },
    ...Object.entries(r.rto).flatMap(([k, v]) => [
      { name: `rto ${k} median`, value: v.median, unit: 'ms' },
      { name: `rto ${k} max`, value: v.max, unit: 'ms' },
    ]),
    { name: 'notices queued at the end', value: r.notices.queued, unit: 'notices' },
    { name: 'notice drain', value: Math.round(r.notices.drainMs / 100) / 10, unit: 's' },
    ...(r.replication.p99Ms !== null
      ? [{ name: 'replication window p99', value: r.replication.p99Ms, unit: 'ms' }]
      : []),
  ];
  return { results, metrics };
}
