// What a drill concludes, from its history alone (pure): the set checker per node (Jepsen's
// set-checker: acknowledged uploads present, lost, corrupt; unacknowledged attempts that landed
// anyway are "recovered"; anything else under the run's prefix is "unexpected"), the RTO of each
// fault (first upload started after the fault and acknowledged), the lag after each heal (until
// sub held every upload acknowledged before the heal), the replication window (ack → on sub), and
// the throughput timeline with its fault bands.
import type { ObservedFile } from '../workload/checker.ts';
import type { FaultKind, ScheduledFault } from './schedule.ts';

export interface Attempt {
  path: string;
  sha256: string;
  client: number;
  /** ms since the drill's start. */
  invokedAt: number;
  /** The attempt's end: ok (acknowledged) or fail; undefined: still in flight at the stop. */
  ok?: boolean;
  endedAt?: number;
  error?: string;
}

export interface FaultRecord {
  fault: ScheduledFault;
  /** ms since start, as they really happened. */
  injectedAt?: number;
  healedAt?: number;
  injectError?: string;
  healError?: string;
  injected?: string;
  healed?: string;
}

export interface NodeSetVerdict {
  node: string;
  ok: number;
  lost: string[];
  corrupt: string[];
  unexpected: string[];
  recovered: string[];
}

export interface FaultOutcome {
  id: string;
  kind: FaultKind;
  targets: string[];
  at: number;
  healAt: number | null;
  rtoMs: number | null;
  lagAfterHealMs: number | null;
  injected: string | null;
  error: string | null;
}

export interface DrillVerdict {
  acknowledged: number;
  nodes: NodeSetVerdict[];
  valid: boolean;
}

/** The set checker over one node's files. Acks: the last acknowledged content of each path wins. */
export function checkSet(node: string, attempts: Attempt[], observed: ObservedFile[]): NodeSetVerdict {
  const acked = new Map<string, string>();
  const tried = new Map<string, Set<string>>();
  for (const a of [...attempts].sort((x, y) => (x.endedAt ?? Infinity) - (y.endedAt ?? Infinity))) {
    if (a.ok) acked.set(a.path, a.sha256);
    (tried.get(a.path) ?? tried.set(a.path, new Set()).get(a.path)!).add(a.sha256);
  }
  const seen = new Map(observed.map((f) => [f.path, f.sha256]));
  const v: NodeSetVerdict = { node, ok: 0, lost: [], corrupt: [], unexpected: [], recovered: [] };
  for (const [path, sha] of acked) {
    const got = seen.get(path);
    if (got === undefined) v.lost.push(path);
    else if (got !== sha) v.corrupt.push(path);
    else v.ok++;
  }
  for (const f of observed) {
    if (acked.has(f.path)) continue;
    if (tried.get(f.path)?.has(f.sha256)) v.recovered.push(f.path);
    else v.unexpected.push(f.path);
  }
  return v;
}

export function drillVerdict(attempts: Attempt[], byNode: Record<string, ObservedFile[]>): DrillVerdict {
  const nodes = Object.entries(byNode).map(([n, files]) => checkSet(n, attempts, files));
  return {
    acknowledged: new Set(attempts.filter((a) => a.ok).map((a) => a.path)).size,
    nodes,
    valid: nodes.every((n) => n.lost.length === 0 && n.corrupt.length === 0),
  };
}

/** RTO: from the fault's start to the first ack of an upload invoked after it (null: none). */
export function rtoOf(r: FaultRecord, attempts: Attempt[]): number | null {
  if (r.injectedAt === undefined) return null;
  let first: number | undefined;
  for (const a of attempts)
    if (a.ok && a.invokedAt >= r.injectedAt && (first === undefined || a.endedAt! < first)) first = a.endedAt;
  return first === undefined ? null : first - r.injectedAt;
}

/**
 * Lag after a heal: from the heal until sub held every upload acknowledged before it (sub's
 * first sightings, ms since start). null: not all of them seen before the drill's last sighting.
 */
export function lagAfterHeal(
  healedAt: number,
  attempts: Attempt[],
  seenOnSub: Map<string, number>,
): number | null {
  let worst = 0;
  for (const a of attempts) {
    if (!a.ok || a.endedAt! > healedAt) continue;
    const s = seenOnSub.get(a.path);
    if (s === undefined) return null;
    worst = Math.max(worst, s - healedAt);
  }
  return worst;
}

export function quantile(xs: number[], q: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

/** Replication window: for each acknowledged upload, ack → first seen on sub (p50, p99, max). */
export function replicationWindow(attempts: Attempt[], seenOnSub: Map<string, number>) {
  const xs: number[] = [];
  let unseen = 0;
  for (const a of attempts) {
    if (!a.ok) continue;
    const s = seenOnSub.get(a.path);
    if (s === undefined) unseen++;
    else xs.push(Math.max(0, s - a.endedAt!));
  }
  return { p50Ms: quantile(xs, 0.5), p99Ms: quantile(xs, 0.99), maxMs: quantile(xs, 1), unseen };
}

/** Acks and failures per second since the start. */
export function timeline(
  attempts: Attempt[],
  durationMs: number,
): { t: number; acks: number; fails: number }[] {
  const n = Math.max(1, Math.ceil(durationMs / 1000));
  const out = Array.from({ length: n }, (_, t) => ({ t, acks: 0, fails: 0 }));
  for (const a of attempts) {
    if (a.endedAt === undefined) continue;
    const b = out[Math.min(n - 1, Math.floor(a.endedAt / 1000))]!;
    if (a.ok) b.acks++;
    else b.fails++;
  }
  return out;
}

export function faultOutcomes(
  records: FaultRecord[],
  attempts: Attempt[],
  seenOnSub: Map<string, number>,
): FaultOutcome[] {
  return records.map((r) => ({
    id: r.fault.id,
    kind: r.fault.kind,
    targets: r.fault.targets,
    at: r.injectedAt ?? r.fault.at,
    healAt: r.healedAt ?? null,
    rtoMs: rtoOf(r, attempts),
    lagAfterHealMs: r.healedAt === undefined ? null : lagAfterHeal(r.healedAt, attempts, seenOnSub),
    injected: r.injected ?? null,
    error: r.injectError ?? r.healError ?? null,
  }));
}

/** RTO per fault kind: median and max over the faults that had one. */
export function rtoByKind(
  outcomes: FaultOutcome[],
): Record<string, { median: number; max: number; n: number }> {
  const by = new Map<string, number[]>();
  for (const o of outcomes)
    if (o.rtoMs !== null) (by.get(o.kind) ?? by.set(o.kind, []).get(o.kind)!).push(o.rtoMs);
  const out: Record<string, { median: number; max: number; n: number }> = {};
  for (const [k, xs] of by) out[k] = { median: quantile(xs, 0.5)!, max: quantile(xs, 1)!, n: xs.length };
  return out;
}

export function formatDrillVerdict(v: DrillVerdict): string {
  const rows = v.nodes.map(
    (n) =>
      `  ${n.node.padEnd(28)} ok ${String(n.ok).padStart(5)}  lost ${String(n.lost.length).padStart(3)}  corrupt ${String(n.corrupt.length).padStart(3)}  unexpected ${String(n.unexpected.length).padStart(3)}  recovered ${String(n.recovered.length).padStart(3)}` +
      (n.lost.length ? `\n    lost: ${n.lost.slice(0, 5).join(', ')}${n.lost.length > 5 ? ', …' : ''}` : '') +
      (n.corrupt.length
        ? `\n    corrupt: ${n.corrupt.slice(0, 5).join(', ')}${n.corrupt.length > 5 ? ', …' : ''}`
        : ''),
  );
  return [
    `acknowledged uploads: ${v.acknowledged}`,
    ...rows,
    v.valid ? 'verdict: VALID (no acknowledged upload lost or corrupt on any node)' : 'verdict: INVALID',
  ].join('\n');
}
