// sshd_config for the SFTP nodes (chroot, sftp-only, shared host keys: pitfalls 11, 14), the
// management ListenAddress drop-in for every node, the replication sudoers rule and inotify sysctls.
import { readPoolNodes, type Topology } from '../topology/model.ts';
import { addressOf, type Inventory } from '../topology/inventory.ts';
import type { CheckCommand, RenderedFile } from './types.ts';
import { parseDuration } from '../core/duration.ts';
import { CHECKS, file, header, lines, shq, unitCheck } from './util.ts';

/** One shared set of host keys on every SFTP node (the runbook distributes them). */
export const HOST_KEY_TYPES = ['ed25519', 'rsa', 'ecdsa'] as const;
export const hostKeyPaths = (t: Topology): string[] =>
  HOST_KEY_TYPES.map((k) => `${t.sftp.hostKeyDir}/ssh_host_${k}_key`);

/** Unauthenticated connections sshd keeps free for what does not come through HAProxy (mgmt, replication). */
export const SSHD_DIRECT_HEADROOM = 10;

/**
 * sshd's connection limits on an SFTP node behind HAProxy (pure).
 *
 * sshd sees every client as HAProxy's address, so `MaxStartups` (unauthenticated connections at once;
 * default 10:30:100: past 10 it drops 30 % of new ones, rising to all at 100) applies to all clients
 * together: 48 clients arriving at once through the chain lost 28 handshakes to it (issue 13). The
 * per-source limits live in HAProxy; sshd only has to take what HAProxy lets through:
 * - `reach`: the connections HAProxy can send this node at once = min(global maxconn, the sum of the
 *   maxconn of every frontend whose backend lists the node);
 * - start = ceil(reach / number of SFTP nodes HAProxy serves): up to its share of HAProxy's
 *   connections, nothing is dropped;
 * - full = reach + SSHD_DIRECT_HEADROOM: beyond its share (failover, `balance first`: every write on
 *   main) sshd drops at random, rising to all only past what HAProxy can send, with room left for
 *   management and replication logins that do not come through HAProxy.
 * `MaxSessions` is per connection (channels multiplexed on one SSH connection), not per client: it
 * does not grow with maxconn. It stays the topology's `sftp.maxSessions` (an SFTP client opens one);
 * HAProxy's per-source caps count connections, so a source holds at most
 * limits.concurrent × MaxSessions sessions.
 * A node no HAProxy backend lists (backup) keeps sshd's defaults: `undefined`.
 */
export function sshdConnectionLimits(
  t: Topology,
  node: string,
):
  | { start: number; rate: number; full: number; maxSessions: number; reach: number; nodes: number }
  | undefined {
  const h = t.haproxy;
  const served = new Set(Object.values(h.backends).flatMap((b) => b.servers.map((s) => s.node)));
  if (!served.has(node)) return undefined;
  const frontends = Object.values(h.frontends).filter((f) =>
    h.backends[f.backend]?.servers.some((s) => s.node === node),
  );
  const reach = Math.min(
    h.maxconn,
    frontends.reduce((n, f) => n + (f.maxconn ?? h.maxconn), 0),
  );
  const nodes = served.size;
  return {
    start: Math.max(1, Math.ceil(reach / nodes)),
    rate: 30,
    full: reach + SSHD_DIRECT_HEADROOM,
    maxSessions: t.sftp.maxSessions,
    reach,
    nodes,
  };
}

export function renderSshdConfig(t: Topology, inv: Inventory, node: string): RenderedFile {
  const s = t.sftp;
  const lan = addressOf(inv, node, 'lan');
  const reader = readPoolNodes(t).includes(node);
  const limits = sshdConnectionLimits(t, node);
  const sftpUser = (extra: string[]) => [
    `    ChrootDirectory ${s.chrootBase}/%u`,
    ...extra,
    `    PasswordAuthentication ${s.passwordAuthentication ? 'yes' : 'no'}`,
    '    DisableForwarding yes',
    '    AllowTcpForwarding no',
    '    AllowAgentForwarding no',
    '    X11Forwarding no',
    '    PermitTunnel no',
    '    PermitTTY no',
  ];
  // sshd applies the first value each keyword gets from the Match blocks a connection satisfies:
  // the read-only blocks come first and set everything the general block would
  const readOnly = reader
    ? [
        '',
        `# Read-only SFTP on port ${s.readOnlyPort} (HAProxy's read pool): the same chroot, every write`,
        '# (put, mkdir, rename, remove, setstat) refused with "Permission denied".',
        `Match LocalPort ${s.readOnlyPort} Group ${s.group}`,
        ...sftpUser(['    ForceCommand internal-sftp -R', '    PubkeyAuthentication yes']),
        '',
        `# Nobody else logs in on the read port (root, the replication account): no method is left.`,
        `Match LocalPort ${s.readOnlyPort}`,
        '    PubkeyAuthentication no',
        '    PasswordAuthentication no',
        '    KbdInteractiveAuthentication no',
        '    HostbasedAuthentication no',
        '    ForceCommand /bin/false',
        '    DisableForwarding yes',
        '    PermitTTY no',
      ]
    : [];
  const text = lines(
    header(t).trimEnd(),
    '# Drop-ins first: sshd keeps the first value it reads (the mgmt ListenAddress lives there).',
    'Include /etc/ssh/sshd_config.d/*.conf',
    '',
    `Port ${s.port}`,
    `ListenAddress ${lan}`,
    ...(reader ? [`ListenAddress ${lan}:${s.readOnlyPort}`] : []),
    '',
    '# The same host keys on every SFTP node behind the one address (no warning after a failover).',
    ...hostKeyPaths(t).map((p) => `HostKey ${p}`),
    '',
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM yes',
    `MaxAuthTries ${s.maxAuthTries}`,
    ...(limits
      ? [
          `# Behind HAProxy every client has HAProxy's address: take what it lets through (maxconn ${t.haproxy.maxconn},`,
          `# up to ${limits.reach} here) without dropping handshakes up to this node's share (1/${limits.nodes}); per-source`,
          "# limits are HAProxy's (haproxy.rateLimit, haproxy.limits).",
          `MaxStartups ${limits.start}:${limits.rate}:${limits.full}`,
        ]
      : []),
    `MaxSessions ${limits?.maxSessions ?? s.maxSessions}`,
    '# Below HAProxy timeout client/server, so idle SFTP sessions are kept alive, not cut.',
    `ClientAliveInterval ${s.clientAliveInterval}`,
    `ClientAliveCountMax ${s.clientAliveCountMax}`,
    'LogLevel VERBOSE',
    'PrintMotd no',
    'AcceptEnv LANG LC_*',
    'Subsystem sftp internal-sftp',
    ...readOnly,
    '',
    `# SFTP users: jailed in ${s.chrootBase}/<user> (root-owned), writable ${s.uploadDir}/ inside, nothing else.`,
    `Match Group ${s.group}`,
    ...sftpUser([
      '    # -l INFO: the server logs each file it closes ("close" by the client, "forced close" when the',
      '    # session ended first: a cut upload); the notifier reads it. The log reaches journald through',
      `    # ${CHROOT_LOG_SOCKET} inside each chroot (wharf-sftp-log.service bind-mounts it there).`,
      '    ForceCommand internal-sftp -l INFO',
    ]),
  );
  return file('/etc/ssh/sshd_config', text, { check: CHECKS.sshd, notify: ['ssh'] });
}

export const MGMT_DROPIN = '/etc/ssh/sshd_config.d/00-wharf-mgmt.conf';

/** sshd also (or, on router/firewall/haproxy, only) answers on the management address. */
export function renderMgmtDropin(t: Topology, mgmtAddress: string): RenderedFile {
  return file(
    MGMT_DROPIN,
    lines(
      header(t).trimEnd(),
      '# Management ssh: the runbooks reach this node here.',
      `ListenAddress ${mgmtAddress}`,
    ),
    { notify: ['ssh'] },
  );
}

/** The replication account's home: `.ssh/authorized_keys` there carries the failover fence. */
export const SYNC_HOME = '/var/lib/wharfsync';

export const SUDOERS_SYNC = '/etc/sudoers.d/wharf-sync';

/** The replication user may run rsync as root (to keep owners and modes), and nothing else. */
export function renderSudoers(t: Topology): RenderedFile {
  const u = t.replication.lsyncd.user;
  return file(
    SUDOERS_SYNC,
    lines(
      header(t).trimEnd(),
      `# ${u} replicates uploads (lsyncd main → sub, backup pulls): rsync only.`,
      `Defaults:${u} !requiretty`,
      `${u} ALL=(root) NOPASSWD: /usr/bin/rsync`,
    ),
    { mode: 0o440, check: CHECKS.visudo },
  );
}

export const SYSCTL_FILE = '/etc/sysctl.d/60-wharf.conf';

export function renderSysctl(t: Topology, sysctls: Record<string, string>): RenderedFile {
  return file(
    SYSCTL_FILE,
    lines(header(t).trimEnd(), ...Object.entries(sysctls).map(([k, v]) => `${k} = ${v}`)),
  );
}

/** inotify limits for lsyncd and the notifier: one watch per directory (pitfall 5). */
export const INOTIFY_SYSCTLS: Record<string, string> = {
  'fs.inotify.max_user_watches': '524288',
  'fs.inotify.max_queued_events': '65536',
};

export const SSHD_PAM = '/etc/pam.d/sshd';
export const FAILLOCK_CONF = '/etc/security/faillock.conf';

/** Whole seconds of a topology duration (HAProxy style: a bare number is ms), rounded up. */
const seconds = (d: string, label: string): number =>
  Math.ceil(parseDuration(d, { bareMs: true, label }) / 1000);

/**
 * Checks a PAM service file: every module it names exists in the PAM module folder and every
 * `@include` exists. PAM has no checker of its own, and a wrong line here locks out every ssh login
 * (the management path too): the runbook must refuse it before it replaces the old file.
 */
export const PAM_CHECK: CheckCommand = {
  name: 'pam modules exist',
  argv: [
    'sh',
    '-c',
    [
      'set -e',
      'dir=""; for d in /lib/*-linux-gnu/security /usr/lib/*-linux-gnu/security /lib/security /usr/lib/security; do [ -e "$d/pam_unix.so" ] && { dir=$d; break; }; done',
      '[ -n "$dir" ] || { echo "no PAM module folder (pam_unix.so) found"; exit 1; }',
      'bad=0',
      'for m in $(grep -v "^[[:space:]]*#" "$1" | grep -oE "pam_[a-z0-9_]+\\.so"); do [ -e "$dir/$m" ] || { echo "$1: $m: no such module in $dir"; bad=1; }; done',
      'for i in $(sed -n "s/^@include[[:space:]]\\+//p" "$1"); do [ -e "/etc/pam.d/$i" ] || { echo "$1: @include $i: no /etc/pam.d/$i"; bad=1; }; done',
      'grep -qE "^[[:space:]]*auth[[:space:]]" "$1" || grep -q "^@include common-auth" "$1" || { echo "$1: no auth stack"; bad=1; }',
      'exit $bad',
    ].join('\n'),
    'sh',
    '{}',
  ],
};

/**
 * /etc/pam.d/sshd on the SFTP nodes: Debian's own file, with the auth stack spelled out around
 * pam_faillock (preauth → pam_unix → authfail/authsucc, as pam_faillock(8) shows; Debian's
 * common-auth ends in `requisite pam_deny`, which would skip authfail). Account and session stacks
 * are Debian's. Without a lockout (`sftp.lockout.attempts: 0`) the auth stack is common-auth again.
 */
export function renderSshdPam(t: Topology): RenderedFile {
  const lock = t.sftp.lockout;
  const auth =
    lock.attempts > 0
      ? [
          `# Per-user lockout (${FAILLOCK_CONF}): ${lock.attempts} wrong passwords within ${lock.window} lock the`,
          `# user's password logins for ${lock.unlockAfter}, the right password included. sshd only sees`,
          '# HAProxy as the source, so a per-source limit would lock out every client at once.',
          '# Key logins do not use this stack. Unlock by hand: faillock --user NAME --reset',
          'auth       required                    pam_faillock.so preauth',
          'auth       [success=1 default=bad]     pam_unix.so nullok',
          'auth       [default=die]               pam_faillock.so authfail',
          'auth       sufficient                  pam_faillock.so authsucc',
          'auth       required                    pam_deny.so',
        ]
      : ['# Standard Un*x authentication.', '@include common-auth'];
  return file(
    SSHD_PAM,
    lines(
      header(t).trimEnd(),
      '# PAM configuration for the Secure Shell service (Debian 12 default, auth stack by wharf)',
      '',
      ...auth,
      '',
      '# Disallow non-root logins when /etc/nologin exists.',
      'account    required     pam_nologin.so',
      '',
      '# Standard Un*x authorization.',
      '@include common-account',
      '',
      '# SELinux needs to be the first session rule.',
      'session [success=ok ignore=ignore module_unknown=ignore default=bad]        pam_selinux.so close',
      '',
      '# Set the loginuid process attribute.',
      'session    required     pam_loginuid.so',
      '',
      '# Create a new session keyring.',
      'session    optional     pam_keyinit.so force revoke',
      '',
      '# Standard Un*x session setup and teardown.',
      '@include common-session',
      '',
      '# Print the message of the day upon successful login.',
      'session    optional     pam_motd.so  motd=/run/motd.dynamic',
      'session    optional     pam_motd.so noupdate',
      '',
      "# Print the status of the user's mailbox upon successful login.",
      'session    optional     pam_mail.so standard noenv # [1]',
      '',
      '# Set up user limits from /etc/security/limits.conf.',
      'session    required     pam_limits.so',
      '',
      '# Read environment variables from /etc/environment and /etc/security/pam_env.conf.',
      'session    required     pam_env.so # [1]',
      'session    required     pam_env.so user_readenv=1 envfile=/etc/default/locale',
      '',
      '# SELinux needs to be the last session rule.',
      'session [success=ok ignore=ignore module_unknown=ignore default=bad]        pam_selinux.so open',
      '',
      '# Standard Un*x password updating.',
      '@include common-password',
    ),
    { check: PAM_CHECK },
  );
}

/** pam_faillock's settings (read on every authentication: no reload). */
export function renderFaillockConf(t: Topology): RenderedFile {
  const lock = t.sftp.lockout;
  return file(
    FAILLOCK_CONF,
    lines(
      header(t).trimEnd(),
      '# Per-user lockout of SFTP password logins (sftp.lockout in the topology).',
      '# Failure records: /var/run/faillock (tmpfs: a reboot clears them). Root is never locked.',
      `deny = ${lock.attempts}`,
      `fail_interval = ${seconds(lock.window, 'sftp.lockout.window')}`,
      `unlock_time = ${seconds(lock.unlockAfter, 'sftp.lockout.unlockAfter')}`,
    ),
  );
}

/** The chroot-relative log socket and folder (excluded from replication and snapshots). */
export const CHROOT_LOG_DIR = 'dev';
export const CHROOT_LOG_SOCKET = `/${CHROOT_LOG_DIR}/log`;
export const SFTP_LOG_SCRIPT = '/usr/local/lib/wharf/sftp-log.sh';
export const SFTP_LOG_UNIT = 'wharf-sftp-log.service';
/** journald's syslog socket (/dev/log links to it). */
export const JOURNAL_DEV_LOG = '/run/systemd/journal/dev-log';

/**
 * internal-sftp runs inside the user's chroot, where there is no /dev/log: without one its log
 * lines are lost. This script bind-mounts journald's syslog socket to <chroot>/dev/log for every
 * SFTP user (`up`), or removes those mounts (`down`). Idempotent.
 */
export function renderSftpLogScript(t: Topology): RenderedFile {
  const base = t.sftp.chrootBase;
  const text = lines(
    '#!/bin/bash',
    header(t).trimEnd(),
    `# internal-sftp's log socket inside each SFTP user's chroot (${base}/<user>${CHROOT_LOG_SOCKET}).`,
    'set -euo pipefail',
    `users=(${t.sftp.users.map((u) => shq(u.name)).join(' ')})`,
    `src=${shq(JOURNAL_DEV_LOG)}`,
    `base=${shq(base)}`,
    '# what is mounted now, read once (not one `mountpoint` per user: hundreds of users)',
    'declare -A mounted=()',
    'while read -r _ mp _; do mounted[$mp]=1; done </proc/self/mounts',
    'is_mounted() { local k=${1// /\\\\040}; [[ -n ${mounted[$k]:-} ]]; }',
    'case "${1:-up}" in',
    '  up)',
    '    # the chroots as configure makes them (root-owned, 0755), then their dev/ folders: one install',
    '    dirs=()',
    `    for u in "\${users[@]}"; do dirs+=("$base/$u" "$base/$u/${CHROOT_LOG_DIR}"); done`,
    '    (( ${#dirs[@]} )) && install -d -o root -g root -m 0755 "${dirs[@]}"',
    '    for u in "${users[@]}"; do',
    `      d="$base/$u/${CHROOT_LOG_DIR}"`,
    '      is_mounted "$d/log" && continue',
    '      [[ -e "$d/log" ]] || : >"$d/log"',
    '      mount --bind "$src" "$d/log"',
    '    done',
    '    ;;',
    '  down)',
    '    for u in "${users[@]}"; do',
    `      d="$base/$u/${CHROOT_LOG_DIR}"`,
    '      if is_mounted "$d/log"; then umount "$d/log"; fi',
    '    done',
    '    ;;',
    '  *) echo "usage: $0 up|down" >&2; exit 2 ;;',
    'esac',
  );
  return file(SFTP_LOG_SCRIPT, text, { mode: 0o755, check: CHECKS.bash, notify: [SFTP_LOG_UNIT] });
}

export function renderSftpLogUnit(t: Topology): RenderedFile {
  const text = lines(
    header(t).trimEnd(),
    '[Unit]',
    "Description=wharf: journald's syslog socket inside each SFTP chroot (internal-sftp's log)",
    'After=systemd-journald-dev-log.socket local-fs.target',
    'Requires=systemd-journald-dev-log.socket',
    'Before=ssh.service',
    '',
    '[Service]',
    'Type=oneshot',
    'RemainAfterExit=yes',
    `ExecStart=${SFTP_LOG_SCRIPT} up`,
    // a changed user list: mount the new users' sockets only (a restart unmounted and mounted all)
    `ExecReload=${SFTP_LOG_SCRIPT} up`,
    `ExecStop=${SFTP_LOG_SCRIPT} down`,
    '',
    '[Install]',
    'WantedBy=multi-user.target',
  );
  return file(`/etc/systemd/system/${SFTP_LOG_UNIT}`, text, {
    check: unitCheck(SFTP_LOG_UNIT),
    notify: [SFTP_LOG_UNIT],
  });
}
