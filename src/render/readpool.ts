// The read pool's freshness (pitfall 20, seed §4): a replica serves reads only while it is at most
// `replication.readLag.max` behind main. Pure renderers.
//
// - Main writes its clock (epoch seconds) into `<chrootBase>/.wharf-heartbeat/stamp` every
//   `readLag.heartbeat` (wharf-heartbeat.service). The folder is outside every user's chroot and
//   is replicated by lsyncd like an upload, so on a replica the stamp is as old as its copy of
//   main's tree (heartbeat period + lsyncd delay when replication works).
// - On each replica in a read-only backend an HAProxy agent (a systemd socket unit on its lan
//   address, Accept=yes: one short script per check, the same pattern as agent.ts) answers
//   `up` while now − stamp ≤ max and `down` (with the lag as the description HAProxy shows) beyond
//   it: HAProxy takes the replica out of the read pool, and back once it caught up. Clocks are
//   compared across hosts: they must be synchronised (NTP), as for any TLS or log correlation.
// - While the stack is failed over to the replica (main fenced out of its replication account by
//   `failover`), nothing is fresher than the replica: the agent answers `up` whatever the stamp.
// - An agent that cannot be reached leaves the server as its health checks say (HAProxy ignores
//   agent connection errors): the lag check fails open, the read-only listener does not.
import type { Topology } from '../topology/model.ts';
import { durationMs, replicaReaders, sftpNode } from '../topology/model.ts';
import { addressOf, type Inventory } from '../topology/inventory.ts';
import type { RenderedFile } from './types.ts';
import { CHECKS, file, header, lines, shq, unitCheck } from './util.ts';
import { SYNC_HOME } from './sshd.ts';

/** Top-level folder under chrootBase (outside every chroot) that carries main's heartbeat. */
export const HEARTBEAT_DIR = '.wharf-heartbeat';
export const heartbeatStamp = (t: Topology): string => `${t.sftp.chrootBase}/${HEARTBEAT_DIR}/stamp`;
export const HEARTBEAT_SCRIPT = '/usr/local/lib/wharf/heartbeat';
export const HEARTBEAT_UNIT = 'wharf-heartbeat.service';

export const LAG_AGENT_SCRIPT = '/usr/local/lib/wharf/read-lag-agent';
export const LAG_AGENT_SOCKET_UNIT = 'wharf-read-lag-agent.socket';
export const LAG_AGENT_SERVICE_UNIT = 'wharf-read-lag-agent@.service';
/** Port of the lag agent on each replica's lan address (HAProxy's agent-check connects to it). */
export const LAG_AGENT_PORT = 9708;
export const LAG_AGENT_INTER = '1s';

/** Main writes a heartbeat when some read-only backend has a replica whose lag must be known. */
export const needsHeartbeat = (t: Topology): boolean => replicaReaders(t).length > 0 || t.monitoring.enabled; // monitoring: its age is the replication lag

/** The `server` line options that ask a replica's lag agent (agent-addr: the server's own address). */
export const lagAgentServerOptions = (): string =>
  `agent-check agent-port ${LAG_AGENT_PORT} agent-inter ${LAG_AGENT_INTER}`;

const seconds = (d: string): number => durationMs(d) / 1000;

export function renderHeartbeatScript(t: Topology): RenderedFile {
  const every = seconds(t.replication.readLag.heartbeat);
  const text = lines(
    '#!/bin/sh',
    header(t).trimEnd(),
    `# Main's clock into the replicated tree every ${every}s: the read-lag agent on each replica`,
    `# compares it with its own (a replica more than ${t.replication.readLag.max} behind leaves the read pool).`,
    'set -u',
    `STAMP=${shq(heartbeatStamp(t))}`,
    'mkdir -p "$(dirname "$STAMP")" || exit 1',
    'while :; do',
    '  date +%s > "$STAMP" || exit 1',
    `  sleep ${every}`,
    'done',
  );
  return file(HEARTBEAT_SCRIPT, text, { mode: 0o755, check: CHECKS.bash, notify: [HEARTBEAT_UNIT] });
}

export function renderHeartbeatUnit(t: Topology): RenderedFile {
  const text = lines(
    header(t).trimEnd(),
    '[Unit]',
    `Description=wharf heartbeat: main's clock into ${heartbeatStamp(t)} (replicated; read-pool lag)`,
    `ConditionPathIsDirectory=${t.sftp.chrootBase}`,
    '',
    '[Service]',
    'Type=simple',
    `ExecStart=${HEARTBEAT_SCRIPT}`,
    'Restart=always',
    'RestartSec=2',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
  );
  return file(`/etc/systemd/system/${HEARTBEAT_UNIT}`, text, {
    check: unitCheck(HEARTBEAT_UNIT),
    notify: [HEARTBEAT_UNIT],
  });
}

export function renderLagAgentScript(t: Topology, inv: Inventory, node: string): RenderedFile {
  const main = sftpNode(t, 'main').name;
  const mainAddr = addressOf(inv, main, 'lan');
  const max = Math.floor(seconds(t.replication.readLag.max));
  const text = lines(
    '#!/bin/sh',
    header(t).trimEnd(),
    `# HAProxy agent for ${node} in the read pool: "up" while ${main}'s heartbeat here is at most ${max}s`,
    `# old, "down" beyond it (the description says by how much). "up" as well while the stack is failed`,
    `# over to ${node} (${main} fenced out of the replication account): nothing is fresher then.`,
    'set -u',
    `STAMP=${shq(heartbeatStamp(t))}`,
    `MAX=${max}`,
    `KEYS=${shq(`${SYNC_HOME}/.ssh/authorized_keys`)}`,
    `FENCE=${shq(`!${mainAddr}`)}`,
    'if grep -qF "from=\\"$FENCE," "$KEYS" 2>/dev/null; then',
    `  echo "up #failed over to ${node}: ${main} fenced out, nothing is fresher"`,
    '  exit 0',
    'fi',
    'hb=$(cat "$STAMP" 2>/dev/null || true)',
    'case "$hb" in',
    `  '' | *[!0-9]*) echo "down #no heartbeat from ${main} in $STAMP"; exit 0 ;;`,
    'esac',
    'lag=$(( $(date +%s) - hb ))',
    'if [ "$lag" -gt "$MAX" ]; then',
    `  echo "down #behind ${main} by \${lag}s (max \${MAX}s)"`,
    'else',
    `  echo "up #behind ${main} by \${lag}s"`,
    'fi',
  );
  return file(LAG_AGENT_SCRIPT, text, { mode: 0o755, check: CHECKS.bash });
}

export function renderLagAgentService(t: Topology): RenderedFile {
  const text = lines(
    header(t).trimEnd(),
    '[Unit]',
    `Description=wharf read-lag agent: this replica in the read pool only within ${t.replication.readLag.max} of main (one check)`,
    '',
    '[Service]',
    'Type=oneshot',
    `ExecStart=${LAG_AGENT_SCRIPT}`,
    'StandardInput=socket',
    'StandardOutput=socket',
    'StandardError=journal',
    'TimeoutStartSec=10',
    // one instance per check, every second: keep the journal quiet
    'LogLevelMax=notice',
  );
  return file(`/etc/systemd/system/${LAG_AGENT_SERVICE_UNIT}`, text, {
    check: unitCheck(LAG_AGENT_SERVICE_UNIT),
  });
}

export function renderLagAgentSocket(t: Topology, inv: Inventory, node: string): RenderedFile {
  const text = lines(
    header(t).trimEnd(),
    '[Unit]',
    "Description=wharf read-lag agent socket (HAProxy's agent-check, lan address)",
    '',
    '[Socket]',
    `ListenStream=${addressOf(inv, node, 'lan')}:${LAG_AGENT_PORT}`,
    'FreeBind=yes',
    'Accept=yes',
    'MaxConnections=32',
    '',
    '[Install]',
    'WantedBy=sockets.target',
  );
  return file(`/etc/systemd/system/${LAG_AGENT_SOCKET_UNIT}`, text, {
    check: unitCheck(LAG_AGENT_SOCKET_UNIT),
    notify: [LAG_AGENT_SOCKET_UNIT],
  });
}
