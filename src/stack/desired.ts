// Desired state of the stack's hosts, per runbook. Pure: Topology + Inventory (+ secrets) → resources.
import { renderNode } from '../render/index.ts';
import { SYNC_HOME } from '../render/sshd.ts';
import {
  resourcesFromRender,
  type ConfirmSpec,
  type DesiredState,
  type Resource,
} from '../runbook/resources.ts';
import { NFT_CONFIRM } from '../render/nftables.ts';
import { addressOf, type Inventory } from '../topology/inventory.ts';
import { sftpNode, type Topology, type TopologyNode } from '../topology/model.ts';
import { HOST_KEY_TYPES, sftpKnownHosts, type StackSecrets } from './secrets.ts';

/** The nodes wharf manages over ssh: every topology node in the inventory that is not lab-only (nor an OPNsense box). */
export function managedNodes(t: Topology, inv: Inventory, only?: string[]): TopologyNode[] {
  // an OPNsense firewall is driven over its REST API (src/opnsense), never over ssh
  const nodes = Object.values(t.nodes).filter(
    (n) => !n.labOnly && inv.hosts[n.name] && !(n.kind === 'firewall' && t.firewall.kind === 'opnsense'),
  );
  if (!only) return nodes;
  return nodes.filter((n) => only.includes(n.name));
}

/** Extra packages the runbooks themselves use on a node (beyond what its config files need). */
export function runbookPackages(n: TopologyNode, pair = false): string[] {
  switch (n.kind) {
    case 'haproxy':
      // socat: HAProxy's runtime API (stats socket) for verify/failover; keepalived: the pair
      return ['haproxy', 'socat', ...(pair ? ['keepalived'] : [])];
    case 'sftp':
      return ['openssh-server', 'rsync', 'lsyncd', 'inotify-tools', 'curl', 'coreutils'];
    case 'router':
    case 'firewall':
      return ['nftables', 'iproute2']; // iproute2: nft-load finds each interface's device with `ip`
    default:
      return [];
  }
}

export function installDesired(t: Topology, inv: Inventory, only?: string[]): DesiredState {
  const out: DesiredState = {};
  for (const n of managedNodes(t, inv, only)) {
    const pkgs = new Set([
      ...(renderNode(t, inv, n.name).packages ?? []),
      ...runbookPackages(n, t.haproxy.pair.enabled),
    ]);
    out[n.name] = [...pkgs].sort().map((name): Resource => ({ kind: 'package', name }));
  }
  return out;
}

export { SYNC_HOME };
export const SFTP_GID = 2000;
export const uidOf = (t: Topology, name: string): number => {
  const i = t.sftp.users.findIndex((u) => u.name === name);
  return t.sftp.users[i]?.uid ?? 2001 + i;
};

const dir = (path: string, mode = 0o755, owner = 'root', group = 'root'): Resource => ({
  kind: 'directory',
  path,
  mode,
  owner,
  group,
});

const file = (path: string, content: string, mode = 0o644, extra: Partial<Resource> = {}): Resource =>
  ({ kind: 'file', path, content, mode, owner: 'root', group: 'root', ...extra }) as Resource;

/** Users, chroots, shared host keys and replication access on an SFTP node. */
export function sftpResources(t: Topology, inv: Inventory, s: StackSecrets, node: TopologyNode): Resource[] {
  const base = t.sftp.chrootBase;
  const group = t.sftp.group;
  const syncUser = t.replication.lsyncd.user;
  const lan = (n: string) => addressOf(inv, n, 'lan');
  const out: Resource[] = [
    { kind: 'group', name: group, gid: SFTP_GID },
    { kind: 'group', name: syncUser, system: true },
    { kind: 'user', name: syncUser, group: syncUser, home: SYNC_HOME, shell: '/bin/sh', system: true },
    dir(SYNC_HOME, 0o755, 'root', 'root'),
    dir(`${SYNC_HOME}/.ssh`, 0o755),
    // the replication key may only be used from the lan, with no pty or forwarding
    file(
      `${SYNC_HOME}/.ssh/authorized_keys`,
      `restrict,from="${inv.networks?.lan ?? t.networks.lan.subnet}" ${s.replication.public}\n`,
    ),
    dir(t.sftp.hostKeyDir, 0o755),
  ];
  for (const type of HOST_KEY_TYPES) {
    const path = `${t.sftp.hostKeyDir}/ssh_host_${type}_key`;
    out.push(
      file(path, s.hostKeys[type].private, 0o600, { secret: true, notify: ['ssh'] } as Partial<Resource>),
    );
    out.push(file(`${path}.pub`, s.hostKeys[type].public + '\n', 0o644));
  }
  // chroot: every component root-owned and not group/other-writable (pitfall 14)
  out.push(dir(base, 0o755));
  out.push(dir(`${base}/${t.replication.lsyncd.tempDir}`, 0o700));
  out.push(
    file(`${base}/${t.replication.backup.guardFile}`, `wharf: replicated SFTP tree of stack ${t.name}\n`),
  );
  for (const u of t.sftp.users) {
    const creds = inv.users?.[u.name];
    const keys = [...u.authorizedKeys, ...(creds?.authorizedKeys ?? [])];
    out.push({
      kind: 'user',
      name: u.name,
      uid: uidOf(t, u.name),
      group,
      home: `${base}/${u.name}`,
      shell: '/usr/sbin/nologin',
      ...((creds?.passwordHash ?? u.passwordHash)
        ? { passwordHash: creds?.passwordHash ?? u.passwordHash }
        : {}),
    } as Resource);
    out.push(dir(`${base}/${u.name}`, 0o755));
    out.push(dir(`${base}/${u.name}/${t.sftp.uploadDir}`, 0o750, u.name, group));
    out.push(dir(`${base}/${u.name}/.ssh`, 0o755));
    out.push(
      file(`${base}/${u.name}/.ssh/authorized_keys`, keys.map((k) => k.trim() + '\n').join(''), 0o644),
    );
  }
  // lsyncd source (main): key and the target's (shared) host key
  if (node.name === t.replication.lsyncd.from) {
    const to = t.replication.lsyncd.to;
    out.push(dir('/etc/lsyncd', 0o755), dir('/var/log/lsyncd', 0o755));
    out.push(file('/etc/lsyncd/id_ed25519', s.replication.private, 0o600, { secret: true }));
    out.push(file('/etc/lsyncd/known_hosts', sftpKnownHosts(s, [lan(to)])));
  }
  // backup target: key to pull from the backup source, snapshots folder
  if (node.name === t.replication.backup.to) {
    const from = t.replication.backup.from;
    out.push(dir('/etc/wharf', 0o755), dir('/etc/wharf/backup', 0o700));
    out.push(file('/etc/wharf/backup/id_ed25519', s.replication.private, 0o600, { secret: true }));
    // the backup source, and main: the restore runbook pushes a snapshot's files to main from here
    const pinned = [...new Set([lan(from), lan(t.replication.lsyncd.from)])];
    out.push(file('/etc/wharf/backup/known_hosts', sftpKnownHosts(s, pinned)));
    const snap = t.replication.backup.snapshotDir;
    const parent = snap.replace(/\/[^/]+$/, '');
    if (parent && parent !== '/') out.push(dir(parent, 0o755));
    out.push(dir(snap, 0o750));
  }
  return out;
}

/** Everything `configure` manages: rendered files and units plus users, chroots, keys. */
export function configureDesired(
  t: Topology,
  inv: Inventory,
  s: StackSecrets,
  only?: string[],
  o: { confirmTimeoutMs?: number } = {},
): DesiredState {
  const out: DesiredState = {};
  for (const n of managedNodes(t, inv, only)) {
    const render = renderNode(t, inv, n.name);
    const rs: Resource[] = [];
    // parent folders of rendered files that Debian does not create
    const parents = new Set<string>();
    for (const f of render.files) {
      const p = f.path.replace(/\/[^/]+$/, '');
      if (['/etc/wharf', '/usr/local/lib/wharf', '/etc/lsyncd', '/etc/ssh/sshd_config.d'].includes(p))
        parents.add(p);
    }
    if (n.kind === 'sftp') rs.push(...sftpResources(t, inv, s, n));
    for (const p of parents) if (!rs.some((r) => r.kind === 'directory' && r.path === p)) rs.push(dir(p));
    if (render.files.some((f) => f.path.startsWith('/etc/wharf/notify') || f.path.includes('wharf-notify'))) {
      rs.push(dir('/var/spool/wharf-notify', 0o700));
    }
    rs.push(...resourcesFromRender(render));
    // router and firewall: ruleset changes are commit-confirmed (the box reverts them unless confirmed)
    if (o.confirmTimeoutMs !== undefined && (n.kind === 'router' || n.kind === 'firewall'))
      for (const r of rs)
        if (r.kind === 'unit' && r.name === 'nftables') r.confirm = nftConfirmSpec(o.confirmTimeoutMs);
    out[n.name] = rs;
  }
  return out;
}

export { sftpNode };

/** The commit-confirmed commands of the nftables unit (the box's nft-confirm script). Pure. */
export function nftConfirmSpec(timeoutMs: number): ConfirmSpec {
  return {
    timeoutMs,
    apply: [NFT_CONFIRM, 'apply', String(Math.ceil(timeoutMs / 1000))],
    confirm: [NFT_CONFIRM, 'confirm'],
    status: [NFT_CONFIRM, 'status'],
    restore: [NFT_CONFIRM, 'restore'],
  };
}
