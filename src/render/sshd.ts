// sshd_config for the SFTP nodes (chroot, sftp-only, shared host keys: pitfalls 11, 14), the
// management ListenAddress drop-in for every node, the replication sudoers rule and inotify sysctls.
import { readPoolNodes, type Topology } from '../topology/model.ts';
import { addressOf, type Inventory } from '../topology/inventory.ts';
import type { RenderedFile } from './types.ts';
import { CHECKS, file, header, lines } from './util.ts';

/** One shared set of host keys on every SFTP node (the runbook distributes them). */
export const HOST_KEY_TYPES = ['ed25519', 'rsa', 'ecdsa'] as const;
export const hostKeyPaths = (t: Topology): string[] =>
  HOST_KEY_TYPES.map((k) => `${t.sftp.hostKeyDir}/ssh_host_${k}_key`);

export function renderSshdConfig(t: Topology, inv: Inventory, node: string): RenderedFile {
  const s = t.sftp;
  const lan = addressOf(inv, node, 'lan');
  const reader = readPoolNodes(t).includes(node);
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
    `MaxSessions ${s.maxSessions}`,
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
    ...sftpUser(['    ForceCommand internal-sftp']),
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
