// `wharf status`: the stack's live state as data, from what the HAProxy nodes' stats sockets and
// Prometheus' API answered, and its lines for people. Pure.
import type { Topology } from '../topology/model.ts';
import { nodesOfKind, sftpNode } from '../topology/model.ts';
import type { StatRow } from '../failover/haproxy.ts';

/** One sample of a Prometheus instant query (`/api/v1/query`, resultType vector). */
export interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** A firing or pending alert from Prometheus' `/api/v1/alerts`. */
export interface ActiveAlert {
  name: string;
  state: string;
  labels: Record<string, string>;
  activeAt?: string;
  summary?: string;
}

/** What one HAProxy node answered (null rows: unreachable; then `error` says why). */
export interface HaproxyObservation {
  node: string;
  rows: StatRow[] | null;
  reconcileMark: boolean;
  failoverRecord: boolean;
  error?: string;
}

export interface MetricsObservation {
  /** The monitor node the queries ran on. */
  node: string;
  samples: Record<string, Sample[]>;
  alerts: ActiveAlert[];
  error?: string;
}

/** The Prometheus queries `wharf status` asks (name → PromQL). */
export const STATUS_QUERIES: Record<string, string> = {
  keepalived: 'wharf_keepalived_master',
  lag: 'wharf_replication_lag_seconds',
  fenced: 'wharf_replication_fenced',
  lsyncd: 'wharf_lsyncd_up',
  backupSuccess: 'wharf_backup_last_success_timestamp_seconds',
  backupDuration: 'wharf_backup_last_success_duration_seconds',
  backupRun: 'wharf_backup_last_run_timestamp_seconds',
  backupExit: 'wharf_backup_last_exit_code',
  snapshots: 'wharf_backup_snapshots',
  spool: 'wharf_notify_spool_length',
  spoolOldest: 'wharf_notify_spool_oldest_age_seconds',
  up: 'up',
};

/** Parse `/api/v1/query` JSON into samples; throws with the API's own error text. */
export function parseQuery(json: string): Sample[] {
  const doc = JSON.parse(json) as {
    status: string;
    error?: string;
    data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
  };
  if (doc.status !== 'success') throw new Error(`prometheus: ${doc.error ?? doc.status}`);
  return (doc.data?.result ?? []).map((r) => ({ labels: r.metric, value: Number(r.value[1]) }));
}

/** Parse `/api/v1/alerts` JSON. */
export function parseAlerts(json: string): ActiveAlert[] {
  const doc = JSON.parse(json) as {
    status: string;
    error?: string;
    data?: {
      alerts: {
        labels: Record<string, string>;
        annotations?: Record<string, string>;
        state: string;
        activeAt?: string;
      }[];
    };
  };
  if (doc.status !== 'success') throw new Error(`prometheus: ${doc.error ?? doc.status}`);
  return (doc.data?.alerts ?? []).map((a) => ({
    name: a.labels.alertname ?? '?',
    state: a.state,
    labels: a.labels,
    ...(a.activeAt ? { activeAt: a.activeAt } : {}),
    ...(a.annotations?.summary ? { summary: a.annotations.summary } : {}),
  }));
}

export interface StackStatus {
  stack: string;
  at: string;
  /** Every host answered. */
  reachable: boolean;
  unreachable: { node: string; error: string }[];
  haproxy: {
    nodes: string[];
    /** The HAProxy node holding the floating address (keepalived), or the only one. */
    active: string | null;
    activeFrom: 'keepalived' | 'single node' | 'unknown';
    backends: Record<string, Record<string, Record<string, { status: string; sessions: number }>>>;
  };
  failover: {
    inEffect: boolean;
    /** Backends whose writes are on a backup server right now. */
    writesOnBackup: string[];
    reconcileMark: boolean;
    failoverRecord: boolean;
  };
  replication: {
    lagSeconds: number | null;
    fenced: boolean | null;
    lsyncdUp: boolean | null;
  };
  backup: {
    lastSuccess: string | null;
    lastSuccessDurationSeconds: number | null;
    lastRun: string | null;
    lastExitCode: number | null;
    snapshots: number | null;
  };
  notices: { spool: number | null; oldestSeconds: number | null };
  targetsDown: string[];
  alerts: ActiveAlert[];
  metrics: { from: string | null; note?: string };
}

const first = (xs: Sample[] | undefined): number | null => (xs && xs.length ? xs[0]!.value : null);
const iso = (epoch: number | null): string | null =>
  epoch === null ? null : new Date(epoch * 1000).toISOString();

export function buildStatus(
  t: Topology,
  hap: HaproxyObservation[],
  metrics: MetricsObservation | null,
  now: Date,
): StackStatus {
  const unreachable = [
    ...hap.filter((h) => h.rows === null).map((h) => ({ node: h.node, error: h.error ?? 'no answer' })),
    ...(metrics?.error ? [{ node: metrics.node, error: metrics.error }] : []),
  ];
  const s = metrics?.error ? undefined : metrics?.samples;
  const backends: StackStatus['haproxy']['backends'] = {};
  for (const h of hap) {
    if (!h.rows) continue;
    const per: Record<string, Record<string, { status: string; sessions: number }>> = {};
    for (const name of Object.keys(t.haproxy.backends)) {
      per[name] = {};
      for (const r of h.rows.filter((x) => x.proxy === name))
        per[name][r.server] = { status: r.status, sessions: r.scur };
    }
    backends[h.node] = per;
  }
  // active HAProxy: keepalived's MASTER when a pair reports it, else the only node
  const masters = (s?.keepalived ?? []).filter((x) => x.value === 1).map((x) => x.labels.node ?? '?');
  const nodes = nodesOfKind(t, 'haproxy').map((n) => n.name);
  let active: string | null = null;
  let activeFrom: StackStatus['haproxy']['activeFrom'] = 'unknown';
  if (s?.keepalived?.length) {
    active = masters.length === 1 ? masters[0]! : null;
    activeFrom = 'keepalived';
  } else if (nodes.length === 1) {
    active = nodes[0]!;
    activeFrom = 'single node';
  }
  // failover: a write backend served by a backup server, the reconcile mark, a failover on record
  const view = (active && backends[active]) || Object.values(backends)[0];
  const writesOnBackup: string[] = [];
  for (const [name, b] of Object.entries(t.haproxy.backends)) {
    if (b.readOnly || !view?.[name]) continue;
    const up = (node: string) => view[name]![node]?.status.startsWith('UP') ?? false;
    if (!b.servers.some((x) => !x.backup && up(x.node)) && b.servers.some((x) => x.backup && up(x.node)))
      writesOnBackup.push(name);
  }
  const reconcileMark = hap.some((h) => h.reconcileMark);
  const failoverRecord = hap.some((h) => h.failoverRecord);
  const lsyncdSample = (s?.lsyncd ?? []).find((x) => x.labels.node === t.replication.lsyncd.from);
  const down = (s?.up ?? [])
    .filter((x) => x.value === 0)
    .map((x) => `${x.labels.job}/${x.labels.node ?? x.labels.instance}`);
  return {
    stack: t.name,
    at: now.toISOString(),
    reachable: unreachable.length === 0,
    unreachable,
    haproxy: { nodes, active, activeFrom, backends },
    failover: {
      inEffect: writesOnBackup.length > 0 || reconcileMark || failoverRecord,
      writesOnBackup,
      reconcileMark,
      failoverRecord,
    },
    replication: {
      lagSeconds: first(s?.lag),
      fenced: s?.fenced?.length ? first(s.fenced) === 1 : null,
      lsyncdUp: lsyncdSample ? lsyncdSample.value === 1 : null,
    },
    backup: {
      lastSuccess: iso(first(s?.backupSuccess)),
      lastSuccessDurationSeconds: first(s?.backupDuration),
      lastRun: iso(first(s?.backupRun)),
      lastExitCode: first(s?.backupExit),
      snapshots: first(s?.snapshots),
    },
    notices: { spool: first(s?.spool), oldestSeconds: first(s?.spoolOldest) },
    targetsDown: down,
    alerts: metrics?.alerts ?? [],
    metrics: metrics
      ? { from: metrics.node, ...(metrics.error ? { note: `unreachable: ${metrics.error}` } : {}) }
      : { from: null, note: 'no monitor node in the inventory: metrics, lag, backup and alerts not shown' },
  };
}

const ago = (isoAt: string | null, now: string): string => {
  if (!isoAt) return 'never';
  const s = Math.round((Date.parse(now) - Date.parse(isoAt)) / 1000);
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
};
const known = <T>(v: T | null, f: (x: T) => string): string => (v === null ? 'unknown' : f(v));

/** Lines for people. */
export function formatStatus(s: StackStatus, t: Topology): string[] {
  const firing = s.alerts.filter((a) => a.state === 'firing');
  const verdict = !s.reachable
    ? 'UNREACHABLE HOSTS'
    : firing.length || s.failover.inEffect
      ? 'DEGRADED'
      : 'OK';
  const out = [`stack ${s.stack}: ${verdict} (${s.at})`];
  for (const u of s.unreachable) out.push(`  ERROR: ${u.node} unreachable: ${u.error}`);
  const act =
    s.haproxy.active !== null
      ? `${s.haproxy.active} (${s.haproxy.activeFrom === 'keepalived' ? 'keepalived MASTER' : 'the only HAProxy node'})`
      : s.haproxy.activeFrom === 'keepalived'
        ? 'NONE or several: keepalived reports no single MASTER'
        : 'unknown (no keepalived metrics)';
  out.push(`active HAProxy: ${act}`);
  for (const [node, per] of Object.entries(s.haproxy.backends)) {
    out.push(`  ${node}:`);
    for (const [b, servers] of Object.entries(per)) {
      const list = Object.entries(servers)
        .map(([srv, v]) => {
          const backup = t.haproxy.backends[b]?.servers.find((x) => x.node === srv)?.backup;
          return `${srv} ${v.status}${backup ? ' (backup)' : ''} ${v.sessions} sess`;
        })
        .join(', ');
      out.push(`    backend ${b.padEnd(6)} ${list || 'no servers'}`);
    }
  }
  const f = s.failover;
  out.push(
    `failover: ${
      f.inEffect
        ? `IN EFFECT (${[
            f.writesOnBackup.length ? `writes on the backup server in ${f.writesOnBackup.join(', ')}` : '',
            f.reconcileMark ? `${sftpNode(t, 'main').name} held out until failback` : '',
            f.failoverRecord ? 'a failover on record' : '',
          ]
            .filter(Boolean)
            .join('; ')})`
        : 'none'
    }`,
  );
  if (s.metrics.note) out.push(`metrics: ${s.metrics.note}`);
  if (s.metrics.from && !s.metrics.note) {
    const r = s.replication;
    out.push(
      `replication ${t.replication.lsyncd.from} → ${t.replication.lsyncd.to}: lag ${known(r.lagSeconds, (v) => `${v}s`)}, lsyncd ${known(r.lsyncdUp, (v) => (v ? 'active' : 'NOT RUNNING'))}${r.fenced ? `, ${sftpNode(t, 'main').name} fenced (failed over)` : ''}`,
    );
    const b = s.backup;
    out.push(
      `backup: last success ${ago(b.lastSuccess, s.at)}${b.lastSuccessDurationSeconds !== null ? ` (took ${b.lastSuccessDurationSeconds}s)` : ''}, last run ${ago(b.lastRun, s.at)} exit ${known(b.lastExitCode, String)}, ${known(b.snapshots, String)} snapshot(s)`,
    );
    out.push(
      `notices: spool ${known(s.notices.spool, String)}${s.notices.oldestSeconds ? `, oldest ${s.notices.oldestSeconds}s` : ''}`,
    );
    if (s.targetsDown.length) out.push(`scrape targets down: ${s.targetsDown.join(', ')}`);
    out.push(`alerts firing: ${firing.length ? '' : 'none'}`);
    for (const a of firing) {
      const where = ['node', 'proxy', 'server']
        .map((k) => a.labels[k])
        .filter(Boolean)
        .join(' ');
      out.push(
        `  ${a.name}${where ? ` (${where})` : ''}${a.activeAt ? ` since ${a.activeAt}` : ''}: ${a.summary ?? ''}`,
      );
    }
    const pending = s.alerts.filter((a) => a.state !== 'firing');
    if (pending.length) out.push(`alerts pending: ${pending.map((a) => a.name).join(', ')}`);
  }
  return out;
}
