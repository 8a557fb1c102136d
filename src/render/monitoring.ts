// Metrics and alerts (issue 11). Pure renderers.
//
// - Every SFTP and HAProxy node runs Debian's prometheus-node-exporter on its mgmt address with the
//   textfile collector; wharf's metrics generator (wharf-metrics.service, a small loop) writes the
//   stack's own state there as `wharf.prom`: replication lag main → sub (main's heartbeat age on
//   sub: the read pool's mechanism), lsyncd up, last backup run / success / duration / snapshots
//   kept (from the state backup.sh records, refusals included), notice spool length and oldest entry,
//   uploads noticed, upload filesystem free bytes; on HAProxy nodes the needs-reconcile mark. Other
//   writers share the folder (keepalived's `wharf_keepalived.prom` on an HAProxy pair).
// - Every HAProxy node answers Prometheus on its mgmt address with HAProxy's own exporter.
// - The monitor node runs Prometheus (scrape configs from the topology + inventory, the rules below)
//   and Alertmanager, which delivers to the stack's notice channels (Slack-compatible webhook, mail).
import { stringify } from 'yaml';
import type { Topology, TopologyNode } from '../topology/model.ts';
import { durationMs, nodesOfKind, sftpNode } from '../topology/model.ts';
import type { Inventory } from '../topology/inventory.ts';
import { cronMaxGapSeconds } from '../topology/cron.ts';
import type { CheckCommand, RenderedFile } from './types.ts';
import { CHECKS, file, header, lines, shq, unitCheck } from './util.ts';
import { heartbeatStamp } from './readpool.ts';
import { NOTIFY_SPOOL, notifierNode } from './notify.ts';
import { RECONCILE_MARK } from './agent.ts';
import { SYNC_HOME } from './sshd.ts';
import { notifyTargets } from './notify.ts';

export const TEXTFILE_DIR = '/var/lib/prometheus/node-exporter';
export const NODE_EXPORTER_PORT = 9100;
export const HAPROXY_METRICS_PORT = 8405;
export const PROMETHEUS_PORT = 9090;
export const ALERTMANAGER_PORT = 9093;
export const METRICS_SCRIPT = '/usr/local/lib/wharf/metrics.sh';
export const METRICS_UNIT = 'wharf-metrics.service';
export const NODE_EXPORTER_DEFAULTS = '/etc/default/prometheus-node-exporter';
export const ALERTMANAGER_DEFAULTS = '/etc/default/prometheus-alertmanager';
export const PROMETHEUS_CONFIG = '/etc/prometheus/prometheus.yml';
export const RULES_FILE = '/etc/prometheus/wharf-rules.yml';
export const ALERTMANAGER_CONFIG = '/etc/prometheus/alertmanager.yml';
/** backup.sh records each run here (`last-run`: end duration exit; `last-success`: end duration). */
export const BACKUP_STATE_DIR = '/var/lib/wharf/backup';
/** notify.sh appends one byte per upload queued / notice delivered: the file sizes are counters. */
export const NOTICE_COUNTERS = {
  queued: `${NOTIFY_SPOOL}.counters/queued`,
  delivered: `${NOTIFY_SPOOL}.counters/delivered`,
};
/** The failover runbook's record on the HAProxy node (src/failover/remote.ts FAILOVER_STATE). */
const FAILOVER_RECORD = '/var/lib/wharf/failover.json';
/** Alertmanager's Slack username: the notify sink tells alert notices from upload notices by it. */
export const ALERT_USERNAME = 'wharf-alertmanager';

/** node_exporter collectors wharf turns on (the rest are off: each scrape costs CPU on every node). */
export const NODE_COLLECTORS = ['textfile', 'filesystem', 'cpu', 'loadavg', 'meminfo', 'netdev', 'time'];

export const monitoringOn = (t: Topology): boolean => t.monitoring.enabled;

/** Nodes that export metrics: every SFTP and HAProxy node the inventory knows. */
export const exporterNodes = (t: Topology, inv: Inventory): TopologyNode[] =>
  Object.values(t.nodes).filter((n) => (n.kind === 'sftp' || n.kind === 'haproxy') && inv.hosts[n.name]);

/** Where Prometheus reaches a node: its mgmt address, else the inventory's ssh host. */
export function scrapeAddress(inv: Inventory, node: string): string {
  const h = inv.hosts[node];
  if (!h) throw new Error(`inventory: hosts.${node} is missing`);
  return h.addresses.mgmt ?? h.ssh.host;
}

/** The address an exporter binds: the node's mgmt address when known, else every address. */
const bindAddress = (inv: Inventory, node: string): string => inv.hosts[node]?.addresses.mgmt ?? '';

const seconds = (d: string): number => Math.max(1, Math.round(durationMs(d) / 1000));

// ---------------------------------------------------------------------------------------------
// On every exporter node

export function renderNodeExporterDefaults(t: Topology, inv: Inventory, node: string): RenderedFile {
  const text = lines(
    header(t).trimEnd(),
    "# Debian's prometheus-node-exporter reads ARGS from here: the mgmt address only, the textfile",
    "# collector's folder (wharf's metrics generator, keepalived's state on an HAProxy pair), and only",
    '# the collectors the rules and `wharf status` use (the systemd one alone took 3.5 s per scrape here).',
    `ARGS="--web.listen-address=${bindAddress(inv, node)}:${NODE_EXPORTER_PORT} --collector.disable-defaults ${NODE_COLLECTORS.map((c) => `--collector.${c}`).join(' ')} --collector.textfile.directory=${TEXTFILE_DIR}"`,
  );
  return file(NODE_EXPORTER_DEFAULTS, text, { notify: ['prometheus-node-exporter'] });
}

/** What the generator reports on this node (pure: drives the script's sections). */
export function metricSections(t: Topology, node: string): string[] {
  const n = t.nodes[node]!;
  const out: string[] = [];
  if (n.kind === 'haproxy') out.push('reconcile');
  if (n.kind === 'sftp') {
    out.push('disk');
    if (node === t.replication.lsyncd.from) out.push('lsyncd');
    if (node === t.replication.lsyncd.to) out.push('lag');
    if (node === t.replication.backup.to) out.push('backup');
    if ((t.notifications.webhook.enabled || t.notifications.smtp.enabled) && node === notifierNode(t))
      out.push('notify');
  }
  return out;
}

export function renderMetricsScript(t: Topology, inv: Inventory, node: string): RenderedFile {
  const sections = metricSections(t, node);
  const every = seconds(t.monitoring.scrapeInterval);
  const main = sftpNode(t, 'main').name;
  const mainLan = inv.hosts[main]?.addresses.lan ?? '';
  const body: string[] = [];
  if (sections.includes('reconcile'))
    body.push(
      '  # non-preemptive failover: main held out until failback (agent mark), a failover on record',
      '  gauge wharf_needs_reconcile "1 while main is held out until failback (needs-reconcile mark)" "$([ -e "$MARK" ] && echo 1 || echo 0)"',
      '  gauge wharf_failover_recorded "1 while a failover is on record on this HAProxy node" "$([ -e "$FAILOVER" ] && echo 1 || echo 0)"',
    );
  if (sections.includes('disk'))
    body.push(
      "  # the upload filesystem (the lab's nodes: their overlay root, or the size-limited upload disk)",
      '  if df_out=$(df -B1 --output=avail,size "$CHROOT_BASE" 2>/dev/null | tail -n 1); then',
      '    read -r avail size <<<"$df_out"',
      '    gauge wharf_upload_fs_avail_bytes "free bytes of the upload filesystem" "$avail"',
      '    gauge wharf_upload_fs_size_bytes "size of the upload filesystem" "$size"',
      '  fi',
    );
  if (sections.includes('lsyncd'))
    body.push(
      '  gauge wharf_lsyncd_up "1 while lsyncd (replication main to sub) is active" "$(systemctl is-active --quiet lsyncd && echo 1 || echo 0)"',
    );
  if (sections.includes('lag'))
    body.push(
      "  # main's heartbeat as replicated here (readLag's mechanism): its age is the replication lag",
      '  hb=$(cat "$STAMP" 2>/dev/null || true)',
      '  case "$hb" in',
      '    "" | *[!0-9]*) gauge wharf_replication_heartbeat_present "1 when main\'s heartbeat exists here" 0 ;;',
      '    *)',
      '      gauge wharf_replication_heartbeat_present "1 when main\'s heartbeat exists here" 1',
      '      gauge wharf_replication_lag_seconds "age of main\'s replicated heartbeat (replication lag main to sub)" "$(( now - hb ))" ;;',
      '  esac',
      '  # failed over: main fenced out of the replication account, nothing is fresher than this node',
      '  gauge wharf_replication_fenced "1 while main is fenced out (failed over to this node)" "$(grep -qF "from=\\"!$MAIN_LAN," "$SYNC_KEYS" 2>/dev/null && echo 1 || echo 0)"',
    );
  if (sections.includes('backup'))
    body.push(
      '  # backup.sh records every run that got past its lock, refusals (exit 3) included',
      '  if read -r end dur rc <"$BACKUP_STATE/last-run" 2>/dev/null; then',
      '    gauge wharf_backup_last_run_timestamp_seconds "end of the last backup run" "$end"',
      '    gauge wharf_backup_last_run_duration_seconds "duration of the last backup run" "$dur"',
      '    gauge wharf_backup_last_exit_code "exit code of the last backup run (3: empty-source guard refused)" "$rc"',
      '  fi',
      '  # never succeeded: the age counts from the first time this generator ran',
      '  [ -e "$BACKUP_STATE/since" ] || { mkdir -p "$BACKUP_STATE" && echo "$now" >"$BACKUP_STATE/since"; }',
      '  if read -r end dur <"$BACKUP_STATE/last-success" 2>/dev/null; then',
      '    gauge wharf_backup_last_success_timestamp_seconds "end of the last successful backup (else: monitoring start)" "$end"',
      '    gauge wharf_backup_last_success_duration_seconds "duration of the last successful backup" "$dur"',
      '  else',
      '    gauge wharf_backup_last_success_timestamp_seconds "end of the last successful backup (else: monitoring start)" "$(cat "$BACKUP_STATE/since")"',
      '  fi',
      '  gauge wharf_backup_snapshots "dated snapshots kept" "$(find "$SNAP_DIR" -mindepth 1 -maxdepth 1 -type d -name \'2*Z\' 2>/dev/null | wc -l)"',
    );
  if (sections.includes('notify'))
    body.push(
      '  # the notice spool: names start with the queueing time in ns',
      '  oldest=""; count=0',
      '  for f in "$SPOOL"/*.notice; do',
      '    [ -e "$f" ] || continue',
      '    count=$(( count + 1 ))',
      '    b=${f##*/}; b=${b%%.*}',
      '    [ -z "$oldest" ] || [ "$b" -lt "$oldest" ] && oldest=$b',
      '  done',
      '  gauge wharf_notify_spool_length "upload notices waiting for delivery" "$count"',
      '  gauge wharf_notify_spool_oldest_age_seconds "age of the oldest waiting notice (0: none)" "$([ -n "$oldest" ] && echo $(( now - oldest / 1000000000 )) || echo 0)"',
      '  counter wharf_uploads_noticed_total "complete uploads queued for a notice" "$(stat -c %s "$QUEUED" 2>/dev/null || echo 0)"',
      '  counter wharf_notices_delivered_total "notices delivered on every channel" "$(stat -c %s "$DELIVERED" 2>/dev/null || echo 0)"',
      '  gauge wharf_notify_up "1 while the notifier service is active" "$(systemctl is-active --quiet wharf-notify && echo 1 || echo 0)"',
    );
  const text = lines(
    '#!/bin/bash',
    header(t).trimEnd(),
    `# wharf's own metrics for node_exporter's textfile collector, every ${every}s: ${sections.join(', ') || 'liveness only'}.`,
    'set -u',
    `OUT=${shq(`${TEXTFILE_DIR}/wharf.prom`)}`,
    `CHROOT_BASE=${shq(t.sftp.chrootBase)}`,
    `STAMP=${shq(heartbeatStamp(t))}`,
    `MAIN_LAN=${shq(mainLan)}`,
    `SYNC_KEYS=${shq(`${SYNC_HOME}/.ssh/authorized_keys`)}`,
    `BACKUP_STATE=${shq(BACKUP_STATE_DIR)}`,
    `SNAP_DIR=${shq(t.replication.backup.snapshotDir)}`,
    `SPOOL=${shq(NOTIFY_SPOOL)}`,
    `QUEUED=${shq(NOTICE_COUNTERS.queued)}`,
    `DELIVERED=${shq(NOTICE_COUNTERS.delivered)}`,
    `MARK=${shq(RECONCILE_MARK)}`,
    `FAILOVER=${shq(FAILOVER_RECORD)}`,
    '',
    'metric() { printf \'# HELP %s %s\\n# TYPE %s %s\\n%s %s\\n\' "$2" "$3" "$2" "$1" "$2" "$4"; }',
    'gauge() { metric gauge "$@"; }',
    'counter() { metric counter "$@"; }',
    '',
    'collect() {',
    '  now=$(date +%s)',
    '  gauge wharf_metrics_generated_timestamp_seconds "when wharf\'s metrics generator last ran" "$now"',
    ...body,
    '}',
    '',
    'mkdir -p "$(dirname "$OUT")" || exit 1',
    'while :; do',
    '  collect >"$OUT.tmp" && mv -f "$OUT.tmp" "$OUT"',
    `  sleep ${every}`,
    'done',
  );
  return file(METRICS_SCRIPT, text, { mode: 0o755, check: CHECKS.bash, notify: [METRICS_UNIT] });
}

export function renderMetricsUnit(t: Topology): RenderedFile {
  const text = lines(
    header(t).trimEnd(),
    '[Unit]',
    `Description=wharf metrics for node_exporter's textfile collector (${TEXTFILE_DIR}/wharf.prom)`,
    '',
    '[Service]',
    'Type=simple',
    `ExecStart=${METRICS_SCRIPT}`,
    'Restart=always',
    'RestartSec=2',
    'Nice=5',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
  );
  return file(`/etc/systemd/system/${METRICS_UNIT}`, text, {
    check: unitCheck(METRICS_UNIT),
    notify: [METRICS_UNIT],
  });
}

/** haproxy.cfg lines: HAProxy's own Prometheus exporter on the node's mgmt address. */
export function haproxyMetricsSection(inv: Inventory, node: string): string[] {
  const mgmt = inv.hosts[node]?.addresses.mgmt;
  return [
    '',
    "# HAProxy's built-in Prometheus exporter, on the management network only (wharf monitoring).",
    'frontend prometheus',
    '    mode http',
    '    # scrapes every few seconds: not worth a log line each',
    '    http-request set-log-level silent',
    `    bind ${mgmt ?? '127.0.0.1'}:${HAPROXY_METRICS_PORT}`,
    '    http-request use-service prometheus-exporter if { path /metrics }',
    '    http-request return status 404 if !{ path /metrics }',
  ];
}

// ---------------------------------------------------------------------------------------------
// The monitor node: Prometheus and Alertmanager

export const PROMTOOL_CONFIG: CheckCommand = {
  name: 'promtool check config',
  // the rules file is its own candidate (promtool check rules): the config is checked on its own
  argv: ['promtool', 'check', 'config', '--syntax-only', '{}'],
};
export const PROMTOOL_RULES: CheckCommand = {
  name: 'promtool check rules',
  argv: ['promtool', 'check', 'rules', '{}'],
};
export const AMTOOL_CONFIG: CheckCommand = {
  name: 'amtool check-config',
  argv: ['amtool', 'check-config', '{}'],
};

export function renderPrometheusConfig(t: Topology, inv: Inventory): RenderedFile {
  const m = t.monitoring;
  const target = (n: TopologyNode, port: number) => ({
    targets: [`${scrapeAddress(inv, n.name)}:${port}`],
    labels: { node: n.name, kind: n.kind, ...(n.role ? { role: n.role } : {}) },
  });
  const exporters = exporterNodes(t, inv);
  const haproxies = exporters.filter((n) => n.kind === 'haproxy');
  const doc = {
    global: {
      scrape_interval: m.scrapeInterval,
      scrape_timeout: m.scrapeInterval,
      evaluation_interval: m.evaluationInterval,
      external_labels: { stack: t.name },
    },
    rule_files: [RULES_FILE],
    alerting: { alertmanagers: [{ static_configs: [{ targets: [`127.0.0.1:${ALERTMANAGER_PORT}`] }] }] },
    scrape_configs: [
      { job_name: 'node', static_configs: exporters.map((n) => target(n, NODE_EXPORTER_PORT)) },
      ...(haproxies.length
        ? [{ job_name: 'haproxy', static_configs: haproxies.map((n) => target(n, HAPROXY_METRICS_PORT)) }]
        : []),
      { job_name: 'prometheus', static_configs: [{ targets: [`127.0.0.1:${PROMETHEUS_PORT}`] }] },
      { job_name: 'alertmanager', static_configs: [{ targets: [`127.0.0.1:${ALERTMANAGER_PORT}`] }] },
    ],
  };
  const text =
    header(t) +
    '# Scrape targets from the topology and inventory; rules in ' +
    RULES_FILE +
    '.\n' +
    stringify(doc, { lineWidth: 0 });
  return file(PROMETHEUS_CONFIG, text, { check: PROMTOOL_CONFIG, notify: ['prometheus'] });
}

export interface AlertRule {
  alert: string;
  expr: string;
  for: string;
  labels: { severity: 'critical' | 'warning' };
  annotations: { summary: string };
}

/** The write backends: every backend that is not a read pool. */
const writeBackends = (t: Topology): string[] =>
  Object.entries(t.haproxy.backends)
    .filter(([, b]) => !b.readOnly)
    .map(([name]) => name);

/** The alert rules (pure data; the rules file and the README's list are made from it). */
export function alertRules(t: Topology): AlertRule[] {
  const m = t.monitoring;
  const f = m.for;
  const re = (xs: string[]) => xs.map((x) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');
  const writes = re(writeBackends(t));
  const lagMax = seconds(m.lagMax ?? t.replication.readLag.max);
  const period = cronMaxGapSeconds(t.replication.backup.schedule);
  const stale = 3 * seconds(m.scrapeInterval) + 30;
  const rule = (
    alert: string,
    expr: string,
    severity: 'critical' | 'warning',
    summary: string,
  ): AlertRule => ({ alert, expr, for: f, labels: { severity }, annotations: { summary } });
  const rules: AlertRule[] = [
    rule(
      'WharfBackendDown',
      // without the state label: a server going DOWN → MAINT (the agent holding main out until
      // failback) stays one alert instead of resolving one and firing another
      'max without (state) (haproxy_server_status{state=~"DOWN|MAINT|NOLB|DRAIN"}) == 1',
      'critical',
      'HAProxy {{ $labels.node }}: server {{ $labels.server }} of backend {{ $labels.proxy }} is not UP (DOWN, MAINT, NOLB or DRAIN)',
    ),
    rule(
      'WharfAllWriteBackendsDown',
      `haproxy_backend_active_servers{proxy=~"${writes}"} + haproxy_backend_backup_servers{proxy=~"${writes}"} == 0`,
      'critical',
      'HAProxy {{ $labels.node }}: backend {{ $labels.proxy }} has no server up: uploads fail',
    ),
    rule(
      'WharfFailoverInEffect',
      `(haproxy_backend_active_servers{proxy=~"${writes}"} == 0 and haproxy_backend_backup_servers{proxy=~"${writes}"} > 0) or wharf_needs_reconcile == 1`,
      'warning',
      'HAProxy {{ $labels.node }}: writes are on the backup server (failed over) or main is held out until failback',
    ),
    rule(
      'WharfReplicationLag',
      `(wharf_replication_lag_seconds > ${lagMax} unless wharf_replication_fenced == 1) or wharf_replication_heartbeat_present == 0`,
      'warning',
      `{{ $labels.node }} is {{ $value }}s behind main (max ${lagMax}s) or has no heartbeat from it`,
    ),
    rule(
      'WharfLsyncdDown',
      'wharf_lsyncd_up == 0',
      'critical',
      'lsyncd is not running on {{ $labels.node }}: replication to sub stopped',
    ),
    rule(
      'WharfBackupFailed',
      'wharf_backup_last_exit_code != 0',
      'critical',
      'the last backup run on {{ $labels.node }} failed (exit {{ $value }}; 3: the empty-source guard refused it)',
    ),
    rule(
      'WharfBackupTooOld',
      `time() - wharf_backup_last_success_timestamp_seconds > ${2 * period}`,
      'critical',
      `no successful backup on {{ $labels.node }} for more than two schedule periods (${2 * period}s)`,
    ),
    rule(
      'WharfNoticeSpoolGrowing',
      `wharf_notify_spool_oldest_age_seconds > ${seconds(m.spoolMaxAge)}`,
      'warning',
      `upload notices wait on {{ $labels.node }}: the oldest for {{ $value }}s (more than ${m.spoolMaxAge})`,
    ),
    rule(
      'WharfNotifierDown',
      'wharf_notify_up == 0',
      'warning',
      'the upload notifier is not running on {{ $labels.node }}',
    ),
    rule(
      'WharfDiskAlmostFull',
      `wharf_upload_fs_avail_bytes / wharf_upload_fs_size_bytes * 100 < ${m.diskFreeMin}`,
      'critical',
      `the upload filesystem of {{ $labels.node }} has less than ${m.diskFreeMin}% free`,
    ),
    rule(
      'WharfTargetDown',
      'up == 0',
      'critical',
      'Prometheus cannot scrape {{ $labels.job }} on {{ $labels.node }} ({{ $labels.instance }})',
    ),
    rule(
      'WharfMetricsStale',
      `time() - wharf_metrics_generated_timestamp_seconds > ${stale}`,
      'warning',
      "wharf's metrics generator on {{ $labels.node }} stopped writing",
    ),
  ];
  // keepalived (an HAProxy pair): each node's keepalived writes wharf_keepalived_master 0/1
  if (nodesOfKind(t, 'haproxy').length >= 2)
    rules.push(
      rule(
        'WharfKeepalivedNoMaster',
        '(sum(wharf_keepalived_master) or vector(0)) == 0',
        'critical',
        'no HAProxy node holds the floating address (keepalived has no MASTER)',
      ),
      rule(
        'WharfKeepalivedTwoMasters',
        'sum(wharf_keepalived_master) > 1',
        'critical',
        '{{ $value }} HAProxy nodes claim the floating address (keepalived split brain)',
      ),
    );
  return rules;
}

export function renderRules(t: Topology): RenderedFile {
  const doc = { groups: [{ name: 'wharf', rules: alertRules(t) }] };
  return file(RULES_FILE, header(t) + stringify(doc, { lineWidth: 0 }), {
    check: PROMTOOL_RULES,
    notify: ['prometheus'],
  });
}

/**
 * The notice channels as the monitor node reaches them: notifyTargets, except that a channel given
 * as a node of the topology is addressed on a network the monitor shares with it (lan, else mgmt:
 * the monitor sits on mgmt alone by default, the sink and the SFTP nodes on lan as well).
 */
export function alertTargets(t: Topology, inv: Inventory): ReturnType<typeof notifyTargets> {
  const targets = notifyTargets(t, inv);
  const monitor = nodesOfKind(t, 'monitor')[0];
  if (!monitor || monitor.networks.includes('lan')) return targets;
  const n = t.notifications;
  const mgmtOf = (node: string | undefined) => (node ? inv.hosts[node]?.addresses.mgmt : undefined);
  const lanOf = (node: string | undefined) => (node ? inv.hosts[node]?.addresses.lan : undefined);
  const swap = (url: string | undefined, node: string | undefined, fromInventory: boolean) => {
    const lan = lanOf(node);
    const mgmt = mgmtOf(node);
    return url && !fromInventory && lan && mgmt ? url.replace(`//${lan}:`, `//${mgmt}:`) : url;
  };
  const webhookFromElsewhere = Boolean(inv.notifications?.webhookUrl || n.webhook.url);
  const smtpFromElsewhere = Boolean(inv.notifications?.smtp || n.smtp.host);
  const webhookUrl = swap(targets.webhookUrl, n.webhook.node, webhookFromElsewhere);
  const smtpUrl = swap(targets.smtpUrl, n.smtp.node, smtpFromElsewhere);
  return {
    webhookSecret: targets.webhookSecret,
    ...(webhookUrl ? { webhookUrl } : {}),
    ...(smtpUrl ? { smtpUrl } : {}),
  };
}

export function renderAlertmanagerConfig(t: Topology, inv: Inventory): RenderedFile {
  const m = t.monitoring;
  const targets = alertTargets(t, inv);
  const n = t.notifications;
  const smarthost = targets.smtpUrl?.replace(/^smtp:\/\//, '');
  const title = `wharf ${t.name} [{{ .Status | toUpper }}] {{ .CommonLabels.alertname }}`;
  const text =
    '{{ range .Alerts }}{{ .Status }}: {{ .Annotations.summary }} ({{ .Labels.alertname }}, since {{ .StartsAt }})\n{{ end }}';
  const doc = {
    global: {
      resolve_timeout: '5m',
      ...(smarthost
        ? {
            smtp_smarthost: smarthost,
            smtp_from: n.smtp.from,
            smtp_require_tls: false,
            smtp_hello: 'wharf-alertmanager',
          }
        : {}),
    },
    route: {
      receiver: 'wharf',
      group_by: ['alertname'],
      group_wait: m.groupWait,
      group_interval: m.groupInterval,
      repeat_interval: m.repeatInterval,
    },
    receivers: [
      {
        name: 'wharf',
        ...(targets.webhookUrl
          ? {
              slack_configs: [
                {
                  api_url: targets.webhookUrl,
                  send_resolved: true,
                  username: ALERT_USERNAME,
                  channel: '#wharf',
                  title,
                  text,
                },
              ],
            }
          : {}),
        ...(smarthost
          ? {
              email_configs: [
                {
                  to: n.smtp.to.join(', '),
                  send_resolved: true,
                  headers: {
                    Subject: title,
                    'X-Wharf-Alert': '{{ .Status }}',
                    'X-Wharf-Alertname': '{{ .CommonLabels.alertname }}',
                  },
                  html: '',
                  text,
                },
              ],
            }
          : {}),
      },
    ],
  };
  return file(ALERTMANAGER_CONFIG, header(t) + stringify(doc, { lineWidth: 0 }), {
    mode: 0o640,
    group: 'prometheus',
    ...(targets.webhookSecret ? { secret: true } : {}),
    check: AMTOOL_CONFIG,
    notify: ['prometheus-alertmanager'],
  });
}

export function renderAlertmanagerDefaults(t: Topology): RenderedFile {
  const text = lines(
    header(t).trimEnd(),
    '# One Alertmanager: no cluster gossip (it would wait for peers before notifying).',
    'ARGS="--cluster.listen-address="',
  );
  return file(ALERTMANAGER_DEFAULTS, text, { notify: ['prometheus-alertmanager'] });
}

/** Rendered rules and scrape targets for an operator's own Prometheus (README; `wharf render`). */
export const monitorPackages = ['prometheus', 'prometheus-alertmanager', 'curl'];
