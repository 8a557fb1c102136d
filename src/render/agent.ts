// Non-preemptive failover (pitfall 19): an HAProxy agent on the HAProxy node that keeps sftp-main
// out of rotation once sftp-sub has served writes because main was down, until failback has
// reconciled both sides. Pure renderers.
//
// Why an agent-check and a mark file (measured in the lab, see README "Non-preemptive failover"):
// - HAProxy puts a `backup`-protected primary back as soon as its checks pass; nothing in its
//   config alone says "sub took writes". A stick table on a constant key survives a reload only
//   with a local peer, and never a restart. A file survives both, and a node reboot.
// - The agent (a systemd socket unit, Accept=yes: one short-lived script per check, no daemon to
//   supervise) answers HAProxy's agent-check on main's server lines:
//     the mark exists → `maint` (the same admin flag as `set server … state maint`);
//     otherwise       → `100%` (a weight: it never takes a server OUT of maint, so a runbook's or
//                       an operator's maint is left alone; only failback/an operator makes main ready).
//   When it sets the mark it also puts every server line of main in maint at once through the
//   runtime API (each line asks the agent on its own 1 s timer: a line that healed meanwhile was
//   seen UP for part of that second, CI).
//   It sets the mark itself when `show stat` shows main DOWN (its health checks failed: crash,
//   reboot, network cut) while sub is UP and has had sessions in a backend where it backs main up,
//   or when sub's session count as a backup grew since the previous check (same HAProxy worker):
//   a short outage that ended between two checks (a fast reboot) still left writes on sub only.
//   MAINT alone is not DOWN: main in maint with sub taking no session sets no mark.
// - A reload or restart starts a new HAProxy process whose servers start UP until their first
//   check. So the agent also keeps HAProxy's server-state file current (`show servers state`, every
//   check), and haproxy.cfg loads it (`load-server-state-from-file global`): the new process starts
//   with main still in MAINT. Agent checks run while a server is DOWN or in MAINT. Measured in the
//   lab: without the file, main was UP for ~0.5 s after every reload/restart; with it, never.
import type { Topology } from '../topology/model.ts';
import { sftpNode } from '../topology/model.ts';
import type { RenderedFile } from './types.ts';
import { CHECKS, file, header, lines, shq, unitCheck } from './util.ts';

/** "Needs reconcile": while it exists, main is held in maint. Set by the agent or failover. */
export const RECONCILE_MARK = '/var/lib/wharf/needs-reconcile';
/** HAProxy's server-state file (admin states across reload/restart), written by the agent. */
export const SERVER_STATE_FILE = '/var/lib/wharf/haproxy-server-state';
/** The agent's baseline: HAProxy worker pid and sub's session count as backup at the last check. */
export const AGENT_BASELINE = '/var/lib/wharf/haproxy-agent.sub-sessions';
export const AGENT_SCRIPT = '/usr/local/lib/wharf/haproxy-agent';
export const AGENT_SOCKET_UNIT = 'wharf-haproxy-agent.socket';
export const AGENT_SERVICE_UNIT = 'wharf-haproxy-agent@.service';
/**
 * HAProxy stick table (key 1, gpt0) that carries an outage the agent noticed to the other HAProxy
 * of a pair (peers): its agent sets its own mark from it, so main stays out whichever node holds
 * the floating address, and haproxy.cfg routes new connections to sub while it is set
 * (`use-server`, before the agent's maint reaches main's lines). Failback sets it back to 0 on every
 * HAProxy before removing the marks.
 */
export const RECONCILE_TABLE = 'wharf_reconcile';

/** Loopback port HAProxy's agent-check connects to. */
export const AGENT_PORT = 9707;
/** How often HAProxy asks the agent (also bounds how stale the server-state file can be). */
export const AGENT_INTER = '1s';

/** Backends where sub is a `backup` server next to main: sub's sessions there are writes main lacks. */
export function backupBackends(t: Topology): string[] {
  const main = sftpNode(t, 'main').name;
  const sub = t.replication.lsyncd.to;
  return Object.entries(t.haproxy.backends)
    .filter(
      ([, b]) =>
        b.servers.some((s) => s.node === main && !s.backup) &&
        b.servers.some((s) => s.node === sub && s.backup),
    )
    .map(([name]) => name);
}

/** Every backend with main among its servers (each of these lines asks the agent). */
export function mainBackends(t: Topology): string[] {
  const main = sftpNode(t, 'main').name;
  return Object.entries(t.haproxy.backends)
    .filter(([, b]) => b.servers.some((s) => s.node === main))
    .map(([name]) => name);
}

/** The `server` line options that ask the agent (main's lines only). */
export const agentServerOptions = (): string =>
  `agent-check agent-addr 127.0.0.1 agent-port ${AGENT_PORT} agent-inter ${AGENT_INTER}`;

export function renderAgentScript(t: Topology): RenderedFile {
  const main = sftpNode(t, 'main').name;
  const sub = t.replication.lsyncd.to;
  const backends = backupBackends(t);
  const text = lines(
    '#!/bin/sh',
    header(t).trimEnd(),
    `# HAProxy agent for ${main} (non-preemptive failover): answers "maint" while ${RECONCILE_MARK}`,
    `# exists, "100%" otherwise. Sets the mark when ${main} is DOWN while ${sub} is UP and has taken`,
    `# sessions in ${backends.join(', ') || '(no backend)'}, or when ${sub} took sessions there (as a`,
    `# backup: ${main} was out) since the last check. Keeps ${SERVER_STATE_FILE} current.`,
    'set -u',
    `MARK=${shq(RECONCILE_MARK)}`,
    `STATE=${shq(SERVER_STATE_FILE)}`,
    `BASE=${shq(AGENT_BASELINE)}`,
    `SOCK=${shq(t.haproxy.stats.socket)}`,
    `MAIN=${shq(main)}`,
    `SUB=${shq(sub)}`,
    `BACKENDS=${shq(` ${backends.join(' ')} `)}`,
    'dir=$(dirname "$MARK")',
    '[ -d "$dir" ] || mkdir -p "$dir"',
    '# UNIX-CONNECT: a bare path would make socat create a plain file when the socket is missing',
    'api() { echo "$1" | socat -t 2 stdio "UNIX-CONNECT:$SOCK" 2>/dev/null; }',
    `TABLE=${shq(RECONCILE_TABLE)}`,
    '# every server line of main, in maint at once: each line asks this agent on its own timer',
    '# (agent-inter), so a line that healed meanwhile could be UP for up to that long before its answer',
    `HOLD=${shq(
      mainBackends(t)
        .map((b) => `set server ${b}/${main} state maint`)
        .join('; '),
    )}`,
    'mark() {',
    '  printf \'{"at":"%s","by":"haproxy-agent","why":"%s"}\\n\' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1" > "$MARK.tmp.$$" &&',
    '    mv -f "$MARK.tmp.$$" "$MARK"',
    '  api "$HOLD" > /dev/null',
    '  logger -t wharf-haproxy-agent "$1: $MARK set, $MAIN held in maint until failback" 2>/dev/null',
    '}',
    '# the other HAProxy of a pair noticed the outage (its flag reached this table through peers)',
    'if [ ! -e "$MARK" ] && api "show table $TABLE key 1" | grep -q "gpt0=1"; then',
    '  mark "the peer HAProxy noticed $SUB served writes while $MAIN was out ($TABLE)"',
    'fi',
    'if [ ! -e "$MARK" ] && out=$(api "show info; show stat") && [ -n "$out" ]; then',
    '  base=$(cat "$BASE" 2>/dev/null || true)',
    '  res=$(printf "%s\\n" "$out" | awk -F, -v m="$MAIN" -v s="$SUB" -v bs="$BACKENDS" -v base="$base" \'',
    '    /^Pid: / { pid = substr($0, 6); next }',
    '    /^# pxname,/ { for (i = 1; i <= NF; i++) { h = $i; gsub(/^# /, "", h); col[h] = i }; hdr = 1; next }',
    '    !hdr || index(bs, " " $1 " ") == 0 { next }',
    '    $2 == m { ms[$1] = $(col["status"]) }',
    '    $2 == s { ss[$1] = $(col["status"]); st[$1] = $(col["stot"]) + $(col["scur"]); tot += $(col["stot"]) }',
    '    END {',
    '      n = split(base, b, " "); hit = 0',
    '      for (x in ms) if (ms[x] ~ /^DOWN/ && ss[x] ~ /^UP/ && st[x] > 0) hit = 1',
    '      if (n == 2 && b[1] == pid && tot + 0 > b[2] + 0) hit = 2',
    '      print pid + 0, tot + 0, hit',
    "    }')",
    '  set -- $res',
    '  if [ "${3:-0}" != 0 ]; then',
    '    case "$3" in 1) why="$MAIN DOWN while $SUB served writes" ;; *) why="$SUB served writes as backup since the last check" ;; esac',
    '    mark "$why"',
    '    api "set table $TABLE key 1 data.gpt0 1" > /dev/null',
    '  fi',
    "  # baseline: HAProxy worker pid and sub's sessions as backup (a reload starts counting at 0)",
    '  if [ "${1:-0}" != 0 ]; then echo "$1 $2" > "$BASE.tmp.$$" && mv -f "$BASE.tmp.$$" "$BASE"; fi',
    'fi',
    'if [ -e "$MARK" ]; then echo maint; else echo 100%; fi',
    '# after answering: a reload/restart loads the admin states from here (haproxy.cfg)',
    'if api "show servers state" > "$STATE.tmp.$$" && [ -s "$STATE.tmp.$$" ]; then',
    '  mv -f "$STATE.tmp.$$" "$STATE"',
    'else',
    '  rm -f "$STATE.tmp.$$"',
    'fi',
  );
  return file(AGENT_SCRIPT, text, { mode: 0o755, check: CHECKS.bash });
}

export function renderAgentService(t: Topology): RenderedFile {
  const text = lines(
    header(t).trimEnd(),
    '[Unit]',
    `Description=wharf HAProxy agent: holds ${sftpNode(t, 'main').name} in maint until failback (one check)`,
    '',
    '[Service]',
    'Type=oneshot',
    `ExecStart=${AGENT_SCRIPT}`,
    'StandardInput=socket',
    'StandardOutput=socket',
    'StandardError=journal',
    'TimeoutStartSec=10',
    // one instance per check, every second: keep the journal quiet
    'LogLevelMax=notice',
  );
  return file(`/etc/systemd/system/${AGENT_SERVICE_UNIT}`, text, { check: unitCheck(AGENT_SERVICE_UNIT) });
}

export function renderAgentSocket(t: Topology): RenderedFile {
  const text = lines(
    header(t).trimEnd(),
    '[Unit]',
    "Description=wharf HAProxy agent socket (HAProxy's agent-check, loopback only)",
    '',
    '[Socket]',
    `ListenStream=127.0.0.1:${AGENT_PORT}`,
    'Accept=yes',
    'MaxConnections=32',
    '',
    '[Install]',
    'WantedBy=sockets.target',
  );
  return file(`/etc/systemd/system/${AGENT_SOCKET_UNIT}`, text, {
    check: unitCheck(AGENT_SOCKET_UNIT),
    notify: [AGENT_SOCKET_UNIT],
  });
}
