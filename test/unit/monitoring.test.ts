// Monitoring renderers and `wharf status`'s model: GIVEN a topology (one HAProxy node, or a pair
// added by kind) WHEN rendered THEN targets, rules and sections follow the nodes; status data from
// sample answers. The daemons' checkers run in test/tools/validate.test.ts.
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { readFileSync } from 'node:fs';
import { loadTopology, topologyFromObject } from '../../src/topology/load.ts';
import { labInventory, type Inventory } from '../../src/topology/inventory.ts';
import type { Topology } from '../../src/topology/model.ts';
import { renderNode } from '../../src/render/index.ts';
import {
  alertRules,
  metricSections,
  renderAlertmanagerConfig,
  renderPrometheusConfig,
} from '../../src/render/monitoring.ts';
import { buildStatus, formatStatus, parseAlerts, parseQuery } from '../../src/status/model.ts';
import type { StatRow } from '../../src/failover/haproxy.ts';

// the seed has the HAProxy pair (haproxy-1, haproxy-2); `t` is the same stack with one HAProxy
const pairT = loadTopology('configs/stack.yaml');
const seedDoc = parse(readFileSync('configs/stack.yaml', 'utf8')) as { haproxy: Record<string, unknown> };
seedDoc.haproxy.pair = { enabled: false };
const t = topologyFromObject(seedDoc, 'single-haproxy.yaml');
const inv = labInventory(t);

/** The seed: its HAProxy pair, by kind, not by name. */
function withPair(): { t: Topology; inv: Inventory } {
  return { t: pairT, inv: labInventory(pairT) };
}

describe('Prometheus scrape configs', () => {
  it('node_exporter on every SFTP and HAProxy node, HAProxy exporter on every HAProxy node (mgmt addresses)', () => {
    const { t: t2, inv: inv2 } = withPair();
    const doc = parse(renderPrometheusConfig(t2, inv2).content) as {
      scrape_configs: {
        job_name: string;
        static_configs: { targets: string[]; labels?: { node: string } }[];
      }[];
      global: Record<string, unknown>;
    };
    const job = (n: string) => doc.scrape_configs.find((j) => j.job_name === n)!.static_configs;
    expect(job('node').map((c) => c.labels!.node)).toEqual([
      'haproxy-1',
      'haproxy-2',
      'sftp-main',
      'sftp-sub',
      'sftp-backup',
    ]);
    expect(job('haproxy').flatMap((c) => c.targets)).toEqual(['10.88.9.4:8405', '10.88.9.5:8405']);
    expect(doc.global).toMatchObject({ scrape_interval: '2s', evaluation_interval: '2s' });
  });
});

describe('alert rules', () => {
  const names = (tt: Topology) => alertRules(tt).map((r) => r.alert);
  it('the required rules, with the topology `for:` and thresholds', () => {
    expect(names(t)).toEqual(
      expect.arrayContaining([
        'WharfBackendDown',
        'WharfAllWriteBackendsDown',
        'WharfFailoverInEffect',
        'WharfReplicationLag',
        'WharfBackupFailed',
        'WharfBackupTooOld',
        'WharfNoticeSpoolGrowing',
        'WharfDiskAlmostFull',
        'WharfLsyncdDown',
      ]),
    );
    const r = Object.fromEntries(alertRules(t).map((x) => [x.alert, x]));
    expect(r.WharfReplicationLag!.expr).toContain('wharf_replication_lag_seconds > 15');
    // */15 → two periods are 1800 s
    expect(r.WharfBackupTooOld!.expr).toBe('time() - wharf_backup_last_success_timestamp_seconds > 1800');
    expect(r.WharfAllWriteBackendsDown!.expr).toContain('proxy=~"sftp|write"');
    expect(alertRules(t).every((x) => x.for === '4s')).toBe(true);
  });
  it('keepalived rules only with an HAProxy pair (no series, no alert, on a single node)', () => {
    expect(names(t).filter((n) => n.startsWith('WharfKeepalived'))).toEqual([]);
    const r = Object.fromEntries(alertRules(withPair().t).map((x) => [x.alert, x.expr]));
    expect(r.WharfKeepalivedNoMaster).toBe('(sum(wharf_keepalived_master) or vector(0)) == 0');
    expect(r.WharfKeepalivedTwoMasters).toBe('sum(wharf_keepalived_master) > 1');
  });
});

describe('metrics generator and node files', () => {
  it('sections by role', () => {
    expect(metricSections(t, 'sftp-main')).toEqual(['disk', 'lsyncd', 'notify']);
    expect(metricSections(t, 'sftp-sub')).toEqual(['disk', 'lag']);
    expect(metricSections(t, 'sftp-backup')).toEqual(['disk', 'backup']);
    expect(metricSections(t, 'haproxy')).toEqual(['reconcile']);
  });
  it('every HAProxy node gets node_exporter on mgmt and the generator; monitoring off: none', () => {
    const { t: t2, inv: inv2 } = withPair();
    const r = renderNode(t2, inv2, 'haproxy-2');
    expect(r.packages).toContain('prometheus-node-exporter');
    expect(r.files.find((f) => f.path === '/etc/default/prometheus-node-exporter')!.content).toContain(
      '--web.listen-address=10.88.9.5:9100',
    );
    const off = structuredClone(t);
    off.monitoring.enabled = false;
    expect(renderNode(off, inv, 'sftp-main').packages).not.toContain('prometheus-node-exporter');
    expect(renderNode(off, inv, 'monitor').files.map((f) => f.path)).not.toContain(
      '/etc/prometheus/prometheus.yml',
    );
  });
  it('Alertmanager sends to the stack webhook (Slack) and mail, resolved notices too', () => {
    const doc = parse(renderAlertmanagerConfig(t, inv).content) as {
      global: Record<string, unknown>;
      receivers: { slack_configs: Record<string, unknown>[]; email_configs: Record<string, unknown>[] }[];
    };
    // the monitor is on mgmt alone: the sink is reached on its mgmt address
    expect(doc.global.smtp_smarthost).toBe('10.88.9.20:2525');
    expect(doc.receivers[0]!.slack_configs[0]).toMatchObject({
      api_url: 'http://10.88.9.20:8080/hooks/upload',
      send_resolved: true,
      username: 'wharf-alertmanager',
    });
    expect(doc.receivers[0]!.email_configs[0]).toMatchObject({ to: 'ops@example.org', send_resolved: true });
  });
});

describe('wharf status model', () => {
  const rows = (main: string, sub: string): StatRow[] =>
    ['sftp', 'write', 'read'].flatMap((p) => [
      { proxy: p, server: 'sftp-main', scur: 0, status: main, lastchg: 1 },
      { proxy: p, server: 'sftp-sub', scur: 1, status: sub, lastchg: 1 },
    ]);
  const q = (metric: string, v: number, labels: Record<string, string> = {}) =>
    JSON.stringify({
      status: 'success',
      data: {
        resultType: 'vector',
        result: [{ metric: { __name__: metric, ...labels }, value: [0, String(v)] }],
      },
    });
  it('parses the API and builds the state: single HAProxy, failed over, an alert firing', () => {
    const alerts = parseAlerts(
      JSON.stringify({
        status: 'success',
        data: {
          alerts: [
            {
              labels: { alertname: 'WharfBackendDown', server: 'sftp-main' },
              state: 'firing',
              annotations: { summary: 's' },
            },
          ],
        },
      }),
    );
    const s = buildStatus(
      t,
      [{ node: 'haproxy', rows: rows('DOWN', 'UP'), reconcileMark: true, failoverRecord: false }],
      {
        node: 'monitor',
        samples: {
          lag: parseQuery(q('wharf_replication_lag_seconds', 3, { node: 'sftp-sub' })),
          lsyncd: parseQuery(q('wharf_lsyncd_up', 0, { node: 'sftp-main' })),
          backupExit: parseQuery(q('wharf_backup_last_exit_code', 3)),
        },
        alerts,
      },
      new Date('2026-11-30T08:00:00Z'),
    );
    expect(s.haproxy).toMatchObject({ active: 'haproxy', activeFrom: 'single node' });
    expect(s.failover).toEqual({
      inEffect: true,
      writesOnBackup: ['sftp', 'write'],
      reconcileMark: true,
      failoverRecord: false,
    });
    expect(s.replication).toEqual({ lagSeconds: 3, fenced: null, lsyncdUp: false });
    expect(s.backup.lastExitCode).toBe(3);
    const text = formatStatus(s, t).join('\n');
    expect(text).toMatch(/^stack seed: DEGRADED/);
    expect(text).toContain('lsyncd NOT RUNNING');
    expect(text).toContain('WharfBackendDown (sftp-main)');
  });
  it('active HAProxy from keepalived; an unreachable host is named', () => {
    const { t: t2 } = withPair();
    const keep = parseQuery(
      JSON.stringify({
        status: 'success',
        data: {
          resultType: 'vector',
          result: [
            { metric: { node: 'haproxy' }, value: [0, '0'] },
            { metric: { node: 'haproxy-2' }, value: [0, '1'] },
          ],
        },
      }),
    );
    const s = buildStatus(
      t2,
      [
        {
          node: 'haproxy',
          rows: null,
          reconcileMark: false,
          failoverRecord: false,
          error: 'ssh: connect refused',
        },
        { node: 'haproxy-2', rows: rows('UP', 'UP'), reconcileMark: false, failoverRecord: false },
      ],
      { node: 'monitor', samples: { keepalived: keep }, alerts: [] },
      new Date(),
    );
    expect(s.haproxy).toMatchObject({ active: 'haproxy-2', activeFrom: 'keepalived' });
    expect(s.reachable).toBe(false);
    expect(s.unreachable).toEqual([{ node: 'haproxy', error: 'ssh: connect refused' }]);
    expect(formatStatus(s, t2)[1]).toBe('  ERROR: haproxy unreachable: ssh: connect refused');
    expect(() => parseQuery(JSON.stringify({ status: 'error', error: 'bad query' }))).toThrow(
      'prometheus: bad query',
    );
  });
});
