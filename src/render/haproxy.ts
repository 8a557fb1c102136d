// /etc/haproxy/haproxy.cfg: TCP frontends per SFTP entry port, SSH-banner health checks, a shared
// per-source limits table (concurrent cap, accepted-connection rate, trusted ranges), sticky read
// backend (pitfalls 9, 10, 12, 13).
import type { Topology } from '../topology/model.ts';
import { addressOf, type Inventory } from '../topology/inventory.ts';
import type { RenderedFile } from './types.ts';
import { file, header, lines } from './util.ts';
import { replicaReaders, sftpNode, vipAddress } from '../topology/model.ts';
import { RECONCILE_TABLE, SERVER_STATE_FILE, agentServerOptions } from './agent.ts';
import { LAG_AGENT_PORT, lagAgentServerOptions } from './readpool.ts';
import { haproxyMetricsSection, monitoringOn } from './monitoring.ts';
import type { CheckCommand } from './types.ts';

/**
 * `haproxy -dW -c` on the candidate, always with an empty server-state file (version line only) in
 * place of the live one. The state file is runtime data, not configuration: HAProxy warns (and -dW
 * fails) when it does not exist yet, and when it names a server or address the candidate changes
 * (a server DOWN in the saved state of a renamed backend, a new server list) — which refused every
 * configuration change after a failover. At reload HAProxy applies what still matches.
 */
export const HAPROXY_CHECK: CheckCommand = {
  name: 'haproxy -c',
  argv: [
    'sh',
    '-c',
    [
      'd=$(mktemp -d) || exit 1',
      'echo 1 > "$d/state"',
      `sed "s#^\\( *server-state-file \\).*#\\1$d/state#" "$1" > "$d/cfg"`,
      'haproxy -dW -c -f "$d/cfg"',
      'r=$?',
      'rm -rf "$d"',
      'exit $r',
    ].join('; '),
    'sh',
    '{}',
  ],
};

/** The table every frontend tracks sources in, so a client cannot multiply its rate by port. */
export const RATE_TABLE = 'wharf_src_rate';
/** The peers section of an HAProxy pair: stick tables are pushed to the other node. */
export const PEERS_SECTION = 'wharf_pair';

/** The ACL of the trusted source ranges (`haproxy.limits.trusted`) in every frontend. */
export const TRUSTED_ACL = 'wharf_trusted';

/**
 * The per-source table every frontend tracks sources in (one table, so a client cannot multiply its
 * limits by port). Which counter counts what (HAProxy 2.6 configuration manual, "stick-table"):
 * - conn_rate/conn_cnt count connections *received* ("it does not mean the connections were
 *   accepted"): a reject rule on them also counts the rejected attempts, so a fleet that keeps
 *   retrying never gets under the limit (issue 13: 48 clients behind one address, 7 256 retries in
 *   10 minutes, never done);
 * - sess_rate counts sessions, "a connection that got past the tcp-request connection rules": only
 *   accepted connections; a rejected retry does not extend the penalty;
 * - conn_cur counts the tracked connections open now (incremented when tracking begins, decremented
 *   when the connection leaves; a rejected one leaves at once).
 */
export function limitsTable(t: Topology, peers = ''): string[] {
  const { rateLimit: r, limits: l } = t.haproxy;
  return [
    `# Per-source limits, shared by all frontends: at most ${l.concurrent} connections open at once, and at`,
    `# most ${r.connections} new accepted connections within ${r.period} (rejected attempts are not counted).`,
    ...(l.trusted.length
      ? [
          `# Trusted ranges (haproxy.limits.trusted): no rate limit, at most ${l.trustedConcurrent} open at once`,
          '# per address.',
        ]
      : []),
    `backend ${RATE_TABLE}`,
    `    stick-table type ip size 100k expire ${r.period} store conn_cur,sess_rate(${r.period})${peers}`,
  ];
}

/** The tcp-request connection rules of a frontend (pure): track the source, then the caps. */
export function limitRules(t: Topology): string[] {
  const { rateLimit: r, limits: l } = t.haproxy;
  const cur = `sc0_conn_cur(${RATE_TABLE})`;
  // sess_rate does not yet count the connection being checked (it becomes a session only once these
  // rules let it through): "ge N" lets N in per period. conn_cur already counts it: "gt N".
  const rate = `sc0_sess_rate(${RATE_TABLE})`;
  const track = `    tcp-request connection track-sc0 src table ${RATE_TABLE}`;
  if (!l.trusted.length)
    return [
      track,
      `    tcp-request connection reject if { ${cur} gt ${l.concurrent} }`,
      `    tcp-request connection reject if { ${rate} ge ${r.connections} }`,
    ];
  return [
    `    acl ${TRUSTED_ACL} src ${l.trusted.join(' ')}`,
    track,
    `    tcp-request connection reject if ${TRUSTED_ACL} { ${cur} gt ${l.trustedConcurrent} }`,
    `    tcp-request connection reject if !${TRUSTED_ACL} { ${cur} gt ${l.concurrent} }`,
    `    tcp-request connection reject if !${TRUSTED_ACL} { ${rate} ge ${r.connections} }`,
  ];
}

/**
 * While the outage flag (wharf_reconcile key 1, gpt0 > 0) is set, route to the failover target:
 * HAProxy evaluates use-server before stick tables and balancing, and skips a server that is down.
 * Pure.
 */
export function reconcileRouting(sub: string): string {
  return `    use-server ${sub} if { int(1),table_gpt0(${RECONCILE_TABLE}) gt 0 }`;
}

export function renderHaproxyCfg(t: Topology, inv: Inventory, node: string): RenderedFile {
  const h = t.haproxy;
  const dmz = addressOf(inv, node, 'dmz');
  const main = sftpNode(t, 'main').name;
  const sub = t.replication.lsyncd.to;
  const pair = t.haproxy.pair.enabled ? t.haproxy.pair : undefined;
  const vip = pair ? vipAddress(t, inv) : undefined;
  /** `peers …` on every stick table when paired. */
  const peers = pair ? ` peers ${PEERS_SECTION}` : '';
  const out: string[] = [
    header(t).trimEnd(),
    'global',
    ...(pair ? [`    localpeer ${node}`] : []),
    '    log /dev/log local0',
    '    log /dev/log local1 notice',
    '    chroot /var/lib/haproxy',
    '    user haproxy',
    '    group haproxy',
    `    maxconn ${h.maxconn}`,
    `    stats socket ${h.stats.socket} mode 660 level admin expose-fd listeners`,
    '    stats timeout 30s',
    '    # admin states (e.g. main held in maint until failback) survive a reload or restart: the',
    '    # wharf HAProxy agent keeps this file current (show servers state) on every agent check',
    `    server-state-file ${SERVER_STATE_FILE}`,
    '',
    'defaults',
    '    mode tcp',
    '    log global',
    '    option tcplog',
    '    option dontlognull',
    '    load-server-state-from-file global',
    '    # SFTP is bulk TCP: the kernel moves it socket → pipe → socket (splice) instead of copying it',
    '    # through a 16 KiB user-space buffer; measured here: ~+40 % chain throughput, less HAProxy CPU',
    '    option splice-request',
    '    option splice-response',
    '    # a connection sent to a server that died before its checks noticed is retried, then',
    '    # redispatched to another server: at the last retry, or at the next one once the server is',
    '    # marked down; with a short connect timeout this bounds the failover',
    '    option redispatch',
    '    retries 2',
    `    timeout connect ${h.timeouts.connect}`,
    '    # client and server are inactivity timeouts: equal in TCP mode, above sshd ClientAliveInterval',
    `    timeout client ${h.timeouts.client}`,
    `    timeout server ${h.timeouts.server}`,
    `    timeout check ${h.timeouts.check}`,
    '',
    ...limitsTable(t, peers),
    '',
    `# Non-preemptive failover: key 1, gpt0 = 1 while ${main} must stay out until failback (the wharf`,
    `# agent writes it with the "needs reconcile" mark${pair ? ' and sets the mark when the peer wrote it' : ''}).`,
    `backend ${RECONCILE_TABLE}`,
    `    stick-table type integer size 1 store gpt0${peers}`,
  ];
  if (pair)
    out.push(
      '',
      `# HAProxy pair: both push their stick tables (rate limits, stick on src, the failover flag) to the`,
      '# other, so a switch of the floating address keeps them.',
      `peers ${PEERS_SECTION}`,
      ...pair.nodes.map((n) => `    peer ${n} ${addressOf(inv, n, 'dmz')}:${pair.peersPort}`),
    );
  for (const [name, f] of Object.entries(h.frontends)) {
    out.push(
      '',
      `frontend ${name}`,
      ...(f.description ? [`    description ${f.description}`] : []),
      `    bind ${dmz}:${f.port}`,
      ...(vip ? [`    bind ${vip}:${f.port}`] : []),
      `    maxconn ${f.maxconn ?? h.maxconn}`,
      ...limitRules(t),
      `    default_backend ${f.backend}`,
    );
  }
  for (const [name, b] of Object.entries(h.backends)) {
    out.push(
      '',
      `backend ${name}`,
      `    balance ${b.balance}`,
      '    option tcp-check',
      `    tcp-check expect string ${h.check.expect}`,
      ...(h.check.errorLimit > 0
        ? [
            `    # passive health: ${h.check.errorLimit} failed real connection${h.check.errorLimit > 1 ? 's' : ''} in a row mark the server down at once,`,
            '    # before its checks do; a connection still retrying is then redispatched to the next server',
          ]
        : []),
      `    default-server inter ${h.check.inter} fall ${h.check.fall} rise ${h.check.rise} on-marked-down shutdown-sessions${
        h.check.errorLimit > 0 ? ` observe layer4 error-limit ${h.check.errorLimit} on-error mark-down` : ''
      }`,
    );
    if (b.stickOnSource) out.push(`    stick-table type ip size 100k expire 30m${peers}`, '    stick on src');
    const lagged = b.readOnly ? b.servers.filter((s) => replicaReaders(t).includes(s.node)) : [];
    if (b.readOnly)
      out.push(
        `    # read pool: sshd's read-only listener (internal-sftp -R) on :${t.sftp.readOnlyPort}`,
        ...lagged.map(
          (s) =>
            `    # ${s.node} asks its read-lag agent (:${LAG_AGENT_PORT} on its address): "down" while main's heartbeat there is older than ${t.replication.readLag.max}`,
        ),
      );
    const hasMain = b.servers.some((s) => s.node === main);
    if (hasMain)
      out.push(
        `    # ${main} asks the wharf agent (127.0.0.1): "maint" once sub served writes while it was down,`,
        '    # until failback has reconciled both sides (non-preemptive failover)',
      );
    if (hasMain && b.servers.some((s) => s.node === sub))
      out.push(
        `    # the outage flag shared through ${pair ? 'peers' : 'the table'} sends every new connection to ${sub} as soon as it is`,
        `    # set, before ${main}'s line gets the agent's maint (skipped while ${sub} is down or in maint)`,
        reconcileRouting(sub),
      );
    for (const s of b.servers) {
      const addr = addressOf(inv, s.node, 'lan');
      const flags = [
        s.weight !== undefined ? `weight ${s.weight}` : '',
        s.backup ? 'backup' : '',
        s.node === main ? agentServerOptions() : lagged.includes(s) ? lagAgentServerOptions() : '',
      ]
        .filter(Boolean)
        .join(' ');
      const port = b.readOnly ? t.sftp.readOnlyPort : t.sftp.port;
      out.push(`    server ${s.node} ${addr}:${port} check${flags ? ' ' + flags : ''}`);
    }
  }
  if (h.stats.port) {
    const mgmt = inv.hosts[node]?.addresses.mgmt;
    out.push(
      '',
      '# Statistics page, on the management network only.',
      'listen stats',
      '    mode http',
      `    bind ${mgmt ?? dmz}:${h.stats.port}`,
      '    stats enable',
      '    stats uri /',
      '    stats refresh 5s',
    );
  }
  if (monitoringOn(t)) out.push(...haproxyMetricsSection(inv, node));
  return file('/etc/haproxy/haproxy.cfg', lines(...out), { check: HAPROXY_CHECK, notify: ['haproxy'] });
}
