// The HAProxy pair: keepalived (VRRP, unicast peers) moves the floating address on the dmz to the
// node whose HAProxy is alive and answers on its stats socket. Pure renderers.
//
// - Both nodes start as BACKUP with `nopreempt`: the first to win keeps the address; a node that
//   comes back (reboot, restarted HAProxy) stays BACKUP instead of taking the address back.
// - `vrrp_script` checks HAProxy's master process (pid file) AND a `show info` over the stats socket
//   (a hung HAProxy still has its process): failing twice puts the instance in FAULT, which gives
//   the address up at once (an advert with priority 0) and the peer takes it.
// - systemd restarts a crashed HAProxy after 5 s (drop-in), not at once: the peer takes the address
//   first, and the crashed node returns as BACKUP (measured by the haproxy-loss scenario).
// - Interface names inside containers (and on some hosts) are not stable: keepalived's ExecStartPre
//   finds the interface holding the node's dmz address and writes it as `$WHARF_DMZ_IF`, which
//   keepalived.conf includes.
// - `notify` writes node-exporter's textfile `wharf_keepalived.prom`:
//   wharf_keepalived_master{vip="<addr>"} 1 on the MASTER, 0 otherwise (the alert rules read it).
import type { Topology } from '../topology/model.ts';
import { vipAddress } from '../topology/model.ts';
import { addressOf, subnetOf, type Inventory } from '../topology/inventory.ts';
import type { CheckCommand, RenderedFile } from './types.ts';
import { CHECKS, file, header, lines, shq } from './util.ts';

export const KEEPALIVED_CONF = '/etc/keepalived/keepalived.conf';
export const KEEPALIVED_CHECK_SCRIPT = '/usr/local/lib/wharf/keepalived-check';
export const KEEPALIVED_NOTIFY_SCRIPT = '/usr/local/lib/wharf/keepalived-notify';
export const KEEPALIVED_IFACE_SCRIPT = '/usr/local/lib/wharf/keepalived-iface';
export const KEEPALIVED_IFACE_FILE = '/run/keepalived-wharf/dmz.conf';
export const KEEPALIVED_DROPIN = '/etc/systemd/system/keepalived.service.d/wharf.conf';
export const HAPROXY_PAIR_DROPIN = '/etc/systemd/system/haproxy.service.d/wharf-pair.conf';
/** Debian's haproxy.service starts the master with `-p` this file. */
export const HAPROXY_PIDFILE = '/run/haproxy.pid';
export const TEXTFILE_DIR = '/var/lib/prometheus/node-exporter';
export const KEEPALIVED_PROM = `${TEXTFILE_DIR}/wharf_keepalived.prom`;
export const KEEPALIVED_METRIC = 'wharf_keepalived_master';
/** The VRRP instance's name (keepalived.conf, logs). */
export const VRRP_INSTANCE = 'wharf_dmz';
/** Seconds systemd waits before restarting a crashed HAProxy of a pair (the peer takes over first). */
export const HAPROXY_RESTART_SEC = 5;

/**
 * `keepalived --config-test` on the candidate. The include that names the dmz interface is made at
 * keepalived's start: the check puts the first non-loopback interface in its place; the scripts the
 * file names are checked by keepalived (present, executable, root-owned) where they exist (on the
 * node: configure writes them first); elsewhere (a checker-only machine) /bin/true stands in.
 */
export const KEEPALIVED_CHECK: CheckCommand = {
  name: 'keepalived --config-test',
  argv: [
    'sh',
    '-c',
    [
      'd=$(mktemp -d) || exit 1',
      `i=$(ip -o link show | awk -F': ' '$2 != "lo" { sub(/@.*/, "", $2); print $2; exit }')`,
      `sed -e "s#^include ${KEEPALIVED_IFACE_FILE}\\$#\\$WHARF_DMZ_IF=$i#" "$1" > "$d/keepalived.conf"`,
      `for s in ${KEEPALIVED_CHECK_SCRIPT} ${KEEPALIVED_NOTIFY_SCRIPT}; do [ -x "$s" ] || sed -i "s#$s#/bin/true#" "$d/keepalived.conf"; done`,
      'keepalived --config-test -f "$d/keepalived.conf"',
      'r=$?',
      'rm -rf "$d"',
      'exit $r',
    ].join('; '),
    'sh',
    '{}',
  ],
};

/** Prefix length of the dmz subnet (the floating address gets it). */
const prefixOf = (cidr: string): string => cidr.split('/')[1]!;

export function renderKeepalivedConf(t: Topology, inv: Inventory, node: string): RenderedFile {
  const p = t.haproxy.pair;
  const own = addressOf(inv, node, 'dmz');
  const peers = p.nodes.filter((n) => n !== node).map((n) => addressOf(inv, n, 'dmz'));
  const vip = vipAddress(t, inv);
  // the first node of the pair is preferred when both start together; nopreempt keeps whoever won
  const priority = 150 - 50 * Math.max(0, p.nodes.indexOf(node));
  const text = lines(
    header(t).trimEnd(),
    `# HAProxy pair ${p.nodes.join(' + ')}: floating address ${vip} on the dmz (VRRP id ${p.vrid}).`,
    'global_defs {',
    `    router_id ${node}`,
    '    enable_script_security',
    '    script_user root',
    '}',
    '',
    "# $WHARF_DMZ_IF: the interface holding this node's dmz address (written at keepalived's start)",
    `include ${KEEPALIVED_IFACE_FILE}`,
    '',
    '# HAProxy alive: its process and an answer on the stats socket (a hung HAProxy fails this too)',
    'vrrp_script chk_haproxy {',
    `    script "${KEEPALIVED_CHECK_SCRIPT}"`,
    '    interval 1',
    '    timeout 3',
    '    fall 2',
    '    rise 2',
    '}',
    '',
    `vrrp_instance ${VRRP_INSTANCE} {`,
    '    state BACKUP',
    '    nopreempt',
    '    interface $WHARF_DMZ_IF',
    `    virtual_router_id ${p.vrid}`,
    `    priority ${priority}`,
    `    advert_int ${p.advertInt}`,
    `    unicast_src_ip ${own}`,
    '    unicast_peer {',
    ...peers.map((a) => `        ${a}`),
    '    }',
    '    authentication {',
    '        auth_type PASS',
    `        auth_pass ${p.auth}`,
    '    }',
    '    virtual_ipaddress {',
    `        ${vip}/${prefixOf(subnetOf(t, inv, 'dmz'))} dev $WHARF_DMZ_IF`,
    '    }',
    '    track_script {',
    '        chk_haproxy',
    '    }',
    `    notify "${KEEPALIVED_NOTIFY_SCRIPT}"`,
    '}',
  );
  return file(KEEPALIVED_CONF, text, { check: KEEPALIVED_CHECK, notify: ['keepalived'] });
}

export function renderKeepalivedCheckScript(t: Topology): RenderedFile {
  const text = lines(
    '#!/bin/sh',
    header(t).trimEnd(),
    "# keepalived's vrrp_script: exit 0 while HAProxy's master process (its pid file, as systemd",
    '# started it) runs and HAProxy answers `show info` on its stats socket within 2 s (a hung HAProxy',
    '# keeps its process: the socket tells). Cheap on purpose: it runs every second.',
    'set -u',
    `pid=$(cat ${HAPROXY_PIDFILE} 2>/dev/null) || exit 1`,
    '[ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = haproxy ] || exit 1',
    `out=$(echo "show info" | timeout 2 socat -t 2 stdio UNIX-CONNECT:${shq(t.haproxy.stats.socket)} 2>/dev/null) || exit 1`,
    'case "$out" in *"Pid: "*) exit 0 ;; esac',
    'exit 1',
  );
  return file(KEEPALIVED_CHECK_SCRIPT, text, { mode: 0o755, check: CHECKS.bash });
}

export function renderKeepalivedNotifyScript(t: Topology, inv: Inventory): RenderedFile {
  const vip = vipAddress(t, inv);
  const text = lines(
    '#!/bin/sh',
    header(t).trimEnd(),
    '# keepalived notify: $1 INSTANCE|GROUP, $2 its name, $3 MASTER|BACKUP|FAULT|STOP, $4 priority.',
    `# Writes node-exporter's textfile: ${KEEPALIVED_METRIC} 1 while this node holds ${vip}, else 0.`,
    'set -u',
    `DIR=${shq(TEXTFILE_DIR)}`,
    `FILE=${shq(KEEPALIVED_PROM)}`,
    `VIP=${shq(vip)}`,
    'case "${3:-}" in MASTER) v=1 ;; *) v=0 ;; esac',
    '[ -d "$DIR" ] || mkdir -p "$DIR"',
    'tmp="$FILE.tmp.$$"',
    '{',
    `  echo '# HELP ${KEEPALIVED_METRIC} 1 while this node holds the floating address (keepalived MASTER), else 0.'`,
    `  echo '# TYPE ${KEEPALIVED_METRIC} gauge'`,
    `  echo "${KEEPALIVED_METRIC}{vip=\\"$VIP\\"} $v"`,
    '} > "$tmp" && chmod 644 "$tmp" && mv -f "$tmp" "$FILE"',
    'logger -t wharf-keepalived "${2:-?} ${3:-?}: $VIP" 2>/dev/null || true',
    'exit 0',
  );
  return file(KEEPALIVED_NOTIFY_SCRIPT, text, { mode: 0o755, check: CHECKS.bash });
}

export function renderKeepalivedIfaceScript(t: Topology, inv: Inventory, node: string): RenderedFile {
  const own = addressOf(inv, node, 'dmz');
  const text = lines(
    '#!/bin/sh',
    header(t).trimEnd(),
    `# keepalived ExecStartPre: the interface that holds ${own} (this node's dmz address) → $WHARF_DMZ_IF.`,
    'set -eu',
    `ADDR=${shq(own)}`,
    `OUT=${shq(KEEPALIVED_IFACE_FILE)}`,
    'dev=$(ip -o -4 addr show | awk -v a="$ADDR" \'{ split($4, p, "/"); if (p[1] == a) { print $2; exit } }\')',
    '[ -n "$dev" ] || { echo "no interface holds $ADDR" >&2; exit 1; }',
    'mkdir -p "$(dirname "$OUT")"',
    'printf \'$WHARF_DMZ_IF=%s\\n\' "$dev" > "$OUT"',
  );
  return file(KEEPALIVED_IFACE_SCRIPT, text, { mode: 0o755, check: CHECKS.bash });
}

export function renderKeepalivedDropin(t: Topology): RenderedFile {
  const text = lines(
    header(t).trimEnd(),
    '[Service]',
    `ExecStartPre=${KEEPALIVED_IFACE_SCRIPT}`,
    'Restart=on-failure',
    'RestartSec=2s',
  );
  return file(KEEPALIVED_DROPIN, text, { notify: ['keepalived'] });
}

/** A crashed HAProxy of a pair comes back after the peer took the address over (as BACKUP). */
export function renderHaproxyPairDropin(t: Topology): RenderedFile {
  const text = lines(header(t).trimEnd(), '[Service]', `RestartSec=${HAPROXY_RESTART_SEC}s`);
  return file(HAPROXY_PAIR_DROPIN, text, { notify: ['haproxy'] });
}
