// Renderers: Topology + Inventory → per node the files, units, routes and sysctls it needs. Pure.
import type { Topology } from '../topology/model.ts';
import type { Inventory } from '../topology/inventory.ts';
import { InputError } from '../core/errors.ts';
import type { NodeRender, RenderedFile, UnitState } from './types.ts';
import { renderHaproxyCfg } from './haproxy.ts';
import {
  renderHaproxyPairDropin,
  renderKeepalivedCheckScript,
  renderKeepalivedConf,
  renderKeepalivedDropin,
  renderKeepalivedIfaceScript,
  renderKeepalivedNotifyScript,
} from './keepalived.ts';
import { AGENT_SOCKET_UNIT, renderAgentScript, renderAgentService, renderAgentSocket } from './agent.ts';
import {
  INOTIFY_SYSCTLS,
  renderFaillockConf,
  renderMgmtDropin,
  renderSshdConfig,
  renderSftpLogScript,
  renderSftpLogUnit,
  renderSshdPam,
  SFTP_LOG_UNIT,
  renderSudoers,
  renderSysctl,
} from './sshd.ts';
import { renderLsyncdConf, renderLsyncdUnit } from './lsyncd.ts';
import { renderBackupScript, renderBackupService, renderBackupTimer } from './backup.ts';
import { alertsEnabled, renderAlertEnv, renderAlertScript } from './alert.ts';
import { notifierNode, renderNotifyEnv, renderNotifyScript, renderNotifyUnit } from './notify.ts';
import {
  renderFirewallNft,
  renderNftConfirm,
  renderNftDropin,
  renderNftLoader,
  renderRouterNft,
  resolvedFirewall,
} from './nftables.ts';
import { renderRoutes, routesOf } from './routes.ts';
import {
  HEARTBEAT_UNIT,
  LAG_AGENT_SOCKET_UNIT,
  needsHeartbeat,
  renderHeartbeatScript,
  renderHeartbeatUnit,
  renderLagAgentScript,
  renderLagAgentService,
  renderLagAgentSocket,
} from './readpool.ts';
import { replicaReaders } from '../topology/model.ts';
import {
  METRICS_UNIT,
  monitorPackages,
  monitoringOn,
  renderAlertmanagerConfig,
  renderAlertmanagerDefaults,
  renderMetricsScript,
  renderMetricsUnit,
  renderNodeExporterDefaults,
  renderPrometheusConfig,
  renderRules,
} from './monitoring.ts';

export type { NodeRender, RenderedFile, UnitState, CheckCommand, Route } from './types.ts';

class NodeBuilder {
  readonly files: RenderedFile[] = [];
  readonly units = new Map<string, UnitState>();
  readonly packages = new Set<string>();
  sysctls: Record<string, string> = {};

  add(...files: RenderedFile[]): this {
    this.files.push(...files);
    return this;
  }
  unit(name: string, apply: UnitState['apply'], enable = true): this {
    this.units.set(name, { name, enable, apply });
    return this;
  }
  pkg(...names: string[]): this {
    for (const n of names) this.packages.add(n);
    return this;
  }
}

export function renderNode(t: Topology, inv: Inventory, node: string): NodeRender {
  const n = t.nodes[node];
  if (!n) throw new InputError(`unknown node ${node} (nodes: ${Object.keys(t.nodes).join(', ')})`);
  const b = new NodeBuilder();
  const mgmt = inv.hosts[node]?.addresses.mgmt;
  if (mgmt) b.add(renderMgmtDropin(t, mgmt)).unit('ssh', 'reload').pkg('openssh-server');

  switch (n.kind) {
    case 'router':
      b.add(renderRouterNft(t, inv, node), renderNftLoader(t, []), renderNftConfirm(t), renderNftDropin(t))
        .unit('nftables', 'reload')
        .pkg('nftables');
      b.sysctls = { 'net.ipv4.ip_forward': '1' };
      break;
    case 'firewall':
      b.add(
        renderFirewallNft(t, inv, node),
        renderNftLoader(t, Object.values(resolvedFirewall(t, inv, node).interfaces)),
        renderNftConfirm(t),
        renderNftDropin(t),
      )
        .unit('nftables', 'reload')
        .pkg('nftables');
      b.sysctls = { 'net.ipv4.ip_forward': '1' };
      break;
    case 'haproxy':
      // the agent first (script, service, socket: the socket's check needs the service), so
      // HAProxy's agent-check finds it when the new haproxy.cfg is loaded
      b.add(renderAgentScript(t), renderAgentService(t), renderAgentSocket(t))
        .unit(AGENT_SOCKET_UNIT, 'restart')
        .pkg('socat');
      if (t.haproxy.pair.enabled) b.add(renderHaproxyPairDropin(t));
      b.add(renderHaproxyCfg(t, inv, node))
        .unit('haproxy', 'reload')
        .pkg('haproxy');
      if (t.haproxy.pair.enabled) {
        // the scripts and the drop-in first: keepalived --config-test checks the scripts it names
        b.add(
          renderKeepalivedCheckScript(t),
          renderKeepalivedNotifyScript(t, inv),
          renderKeepalivedIfaceScript(t, inv, node),
          renderKeepalivedDropin(t),
          renderKeepalivedConf(t, inv, node),
        )
          .unit('keepalived', 'reload')
          .pkg('keepalived', 'socat');
        // HAProxy binds the floating address on the node that does not hold it (yet)
        b.sysctls = { 'net.ipv4.ip_nonlocal_bind': '1' };
      }
      break;
    case 'sftp': {
      // faillock.conf before the PAM file that reads it
      if (t.sftp.lockout.attempts > 0) b.add(renderFaillockConf(t));
      b.add(renderSftpLogScript(t), renderSftpLogUnit(t)).unit(SFTP_LOG_UNIT, 'reload');
      b.add(renderSshdPam(t), renderSshdConfig(t, inv, node), renderSudoers(t)).unit('ssh', 'reload');
      b.pkg('openssh-server', 'openssh-sftp-server', 'rsync', 'sudo');
      b.sysctls = { ...INOTIFY_SYSCTLS };
      const r = t.replication;
      if (node === r.lsyncd.from)
        b.add(renderLsyncdConf(t, inv), renderLsyncdUnit(t))
          .unit('lsyncd', 'restart')
          .pkg('lsyncd', 'lua5.4');
      if (node === r.lsyncd.from && needsHeartbeat(t))
        b.add(renderHeartbeatScript(t), renderHeartbeatUnit(t)).unit(HEARTBEAT_UNIT, 'restart');
      if (replicaReaders(t).includes(node))
        // script, service, socket: the socket's check needs the service
        b.add(
          renderLagAgentScript(t, inv, node),
          renderLagAgentService(t),
          renderLagAgentSocket(t, inv, node),
        ).unit(LAG_AGENT_SOCKET_UNIT, 'restart');
      if (node === r.backup.to) {
        b.add(renderBackupScript(t, inv), renderBackupService(t), renderBackupTimer(t));
        b.unit('wharf-backup.timer', 'restart').pkg('rsync', 'openssh-client', 'util-linux');
        // the empty-source guard raises an alert on the notice channels
        if (alertsEnabled(t)) b.add(renderAlertScript(t), renderAlertEnv(t, inv, node)).pkg('curl');
      }
      const notices = t.notifications.webhook.enabled || t.notifications.smtp.enabled;
      if (notices && node === notifierNode(t)) {
        b.add(renderNotifyScript(t), renderNotifyEnv(t, inv, node), renderNotifyUnit(t));
        b.unit('wharf-notify', 'restart').pkg('inotify-tools', 'curl');
      }
      break;
    }
    case 'monitor':
      // rules before the config that names them; Alertmanager before Prometheus sends to it
      if (monitoringOn(t)) {
        b.add(renderAlertmanagerDefaults(t), renderAlertmanagerConfig(t, inv))
          .unit('prometheus-alertmanager', 'restart')
          .pkg(...monitorPackages);
        b.add(renderRules(t), renderPrometheusConfig(t, inv)).unit('prometheus', 'reload');
      }
      break;
    case 'notify-sink':
    case 'wan-client':
      // Lab-only: the sink program and the client are installed by the lab itself.
      break;
  }

  // metrics: node_exporter with the textfile collector and wharf's generator on SFTP and HAProxy nodes
  if (monitoringOn(t) && (n.kind === 'sftp' || n.kind === 'haproxy')) {
    b.add(renderMetricsScript(t, inv, node), renderMetricsUnit(t)).unit(METRICS_UNIT, 'restart');
    b.add(renderNodeExporterDefaults(t, inv, node))
      .unit('prometheus-node-exporter', 'restart')
      .pkg('prometheus-node-exporter');
  }

  const routes = routesOf(t, inv, node);
  if (routes.length)
    b.add(...renderRoutes(t, routes))
      .unit('wharf-routes', 'restart')
      .pkg('iproute2');
  if (Object.keys(b.sysctls).length) b.add(renderSysctl(t, b.sysctls));

  return {
    node,
    files: b.files,
    units: [...b.units.values()],
    routes,
    sysctls: b.sysctls,
    packages: [...b.packages].sort(),
  };
}

/** Every node the inventory knows (lab-only nodes are absent from production inventories). */
export function renderStack(t: Topology, inv: Inventory): Record<string, NodeRender> {
  const out: Record<string, NodeRender> = {};
  for (const n of Object.values(t.nodes)) {
    if (n.labOnly && !inv.hosts[n.name]) continue;
    out[n.name] = renderNode(t, inv, n.name);
  }
  return out;
}
