// `wharf status`: ask every HAProxy node's stats socket and the monitor node's Prometheus over SSH
// (the runbooks' transport), in parallel, one round trip per host. A host that does not answer is
// recorded with the transport's error, never silently left out.
import type { Topology } from '../topology/model.ts';
import { nodesOfKind } from '../topology/model.ts';
import type { Inventory } from '../topology/inventory.ts';
import type { Transport } from '../transport/types.ts';
import { shQuote } from '../exec/index.ts';
import { parseStat, socatLine } from '../failover/haproxy.ts';
import { RECONCILE_MARK } from '../render/agent.ts';
import { FAILOVER_STATE } from '../failover/remote.ts';
import { PROMETHEUS_PORT } from '../render/monitoring.ts';
import {
  STATUS_QUERIES,
  buildStatus,
  parseAlerts,
  parseQuery,
  type HaproxyObservation,
  type MetricsObservation,
  type StackStatus,
} from './model.ts';

const SEP = '@@wharf-status@@';
const TIMEOUT_MS = 20_000;

async function observeHaproxy(
  t: Topology,
  node: string,
  tr: Transport | undefined,
): Promise<HaproxyObservation> {
  const none = { node, rows: null, reconcileMark: false, failoverRecord: false };
  if (!tr) return { ...none, error: 'not in the inventory' };
  const cmd = [
    socatLine(t.haproxy.stats.socket, ['show stat']),
    `echo ${SEP}`,
    `test -e ${shQuote(RECONCILE_MARK)} && echo mark`,
    `test -e ${shQuote(FAILOVER_STATE)} && echo record`,
    'true',
  ].join('; ');
  try {
    const r = await tr.exec(cmd, { timeoutMs: TIMEOUT_MS });
    const [stat = '', flags = ''] = r.stdout.split(SEP);
    const rows = parseStat(stat);
    if (!rows.length)
      return {
        ...none,
        error: `HAProxy's stats socket ${t.haproxy.stats.socket} did not answer: ${r.stderr.trim() || 'no rows'}`,
      };
    return { node, rows, reconcileMark: /\bmark\b/.test(flags), failoverRecord: /\brecord\b/.test(flags) };
  } catch (e) {
    return { ...none, error: (e as Error).message.split('\n')[0]! };
  }
}

async function observeMetrics(node: string, tr: Transport): Promise<MetricsObservation> {
  const base = `http://127.0.0.1:${PROMETHEUS_PORT}/api/v1`;
  const names = Object.keys(STATUS_QUERIES);
  const cmd = [
    ...names.map(
      (n) =>
        `curl -fsS --max-time 5 -G --data-urlencode ${shQuote(`query=${STATUS_QUERIES[n]}`)} ${base}/query; echo; echo ${SEP}`,
    ),
    `curl -fsS --max-time 5 ${base}/alerts`,
  ].join('; ');
  try {
    const r = await tr.exec(cmd, { timeoutMs: TIMEOUT_MS });
    const parts = r.stdout.split(SEP).map((p) => p.trim());
    if (parts.some((p) => !p))
      return {
        node,
        samples: {},
        alerts: [],
        error: `Prometheus (127.0.0.1:${PROMETHEUS_PORT} on ${node}) did not answer: ${r.stderr.trim().split('\n')[0] ?? ''}`,
      };
    const samples: MetricsObservation['samples'] = {};
    names.forEach((n, i) => (samples[n] = parseQuery(parts[i]!)));
    return { node, samples, alerts: parseAlerts(parts[names.length]!) };
  } catch (e) {
    return { node, samples: {}, alerts: [], error: (e as Error).message.split('\n')[0]! };
  }
}

export async function collectStatus(
  t: Topology,
  inv: Inventory,
  transports: Map<string, Transport>,
): Promise<StackStatus> {
  const monitor = nodesOfKind(t, 'monitor').find((n) => inv.hosts[n.name] && transports.get(n.name));
  const [hap, metrics] = await Promise.all([
    Promise.all(nodesOfKind(t, 'haproxy').map((n) => observeHaproxy(t, n.name, transports.get(n.name)))),
    monitor && t.monitoring.enabled
      ? observeMetrics(monitor.name, transports.get(monitor.name)!)
      : Promise.resolve(null),
  ]);
  return buildStatus(t, hap, metrics, new Date());
}
