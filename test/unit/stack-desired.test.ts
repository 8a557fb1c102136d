import { describe, expect, it } from 'vitest';
import { loadTopology } from '../../src/topology/load.ts';
import { labInventory } from '../../src/topology/inventory.ts';
import { configureDesired, installDesired, managedNodes } from '../../src/stack/desired.ts';
import type { StackSecrets } from '../../src/stack/secrets.ts';
import type { Resource } from '../../src/runbook/resources.ts';

const t = loadTopology('configs/stack.yaml');
const inv = labInventory(t);
const kp = (n: string) => ({ private: `-----PRIVATE ${n}-----\n`, public: `ssh-ed25519 AAAA${n}` });
const secrets: StackSecrets = {
  dir: '/nonexistent',
  hostKeys: { ed25519: kp('ed'), rsa: kp('rsa'), ecdsa: kp('ec') },
  replication: kp('repl'),
};
const find = (rs: Resource[], pred: (r: Resource) => boolean) => rs.filter(pred);

describe('desired state', () => {
  it('manages only the stack nodes, never the lab-only ones', () => {
    expect(managedNodes(t, inv).map((n) => n.name)).toEqual([
      'router',
      'firewall',
      'haproxy-1',
      'haproxy-2',
      'sftp-main',
      'sftp-sub',
      'sftp-backup',
      'monitor',
    ]);
    expect(Object.keys(installDesired(t, inv, ['haproxy-2']))).toEqual(['haproxy-2']);
  });

  it('installs the packages of each role', () => {
    const d = installDesired(t, inv);
    const names = (n: string) => d[n]!.map((r) => (r.kind === 'package' ? r.name : ''));
    for (const n of ['haproxy-1', 'haproxy-2'])
      expect(names(n)).toEqual(expect.arrayContaining(['haproxy', 'socat', 'keepalived']));
    expect(names('sftp-main')).toEqual(
      expect.arrayContaining(['lsyncd', 'rsync', 'inotify-tools', 'openssh-server']),
    );
    expect(names('router')).toContain('nftables');
  });

  it('gives every SFTP node the same host keys, secret, and a root-owned chroot', () => {
    const d = configureDesired(t, inv, secrets);
    for (const n of ['sftp-main', 'sftp-sub', 'sftp-backup']) {
      const keys = find(d[n]!, (r) => r.kind === 'file' && r.path === '/etc/ssh/wharf/ssh_host_ed25519_key');
      expect(keys).toHaveLength(1);
      expect(keys[0]).toMatchObject({ content: secrets.hostKeys.ed25519.private, mode: 0o600, secret: true });
      expect(find(d[n]!, (r) => r.kind === 'directory' && r.path === '/srv/sftp/demo')[0]).toMatchObject({
        owner: 'root',
        mode: 0o755,
      });
      expect(
        find(d[n]!, (r) => r.kind === 'directory' && r.path === '/srv/sftp/demo/upload')[0],
      ).toMatchObject({
        owner: 'demo',
        group: 'sftp_users',
      });
    }
    // only the lsyncd source holds the lsyncd key, only the backup target the backup key
    expect(
      find(d['sftp-main']!, (r) => r.kind === 'file' && r.path === '/etc/lsyncd/id_ed25519'),
    ).toHaveLength(1);
    expect(
      find(d['sftp-sub']!, (r) => r.kind === 'file' && r.path === '/etc/lsyncd/id_ed25519'),
    ).toHaveLength(0);
    expect(
      find(d['sftp-backup']!, (r) => r.kind === 'file' && r.path === '/etc/wharf/backup/id_ed25519'),
    ).toHaveLength(1);
    const kh = find(d['sftp-main']!, (r) => r.kind === 'file' && r.path === '/etc/lsyncd/known_hosts')[0];
    expect(kh && kh.kind === 'file' && kh.content).toContain('10.88.3.12 ssh-ed25519 AAAAed');
  });

  it('restricts the replication key to the lan', () => {
    const d = configureDesired(t, inv, secrets);
    const ak = find(
      d['sftp-sub']!,
      (r) => r.kind === 'file' && r.path === '/var/lib/wharfsync/.ssh/authorized_keys',
    )[0];
    expect(ak && ak.kind === 'file' && ak.content).toBe(
      'restrict,from="10.88.3.0/24" ssh-ed25519 AAAArepl\n',
    );
  });

  it('takes user credentials from the inventory', () => {
    const hash = '$6$salt$' + 'x'.repeat(86);
    const d = configureDesired(
      t,
      { ...inv, users: { demo: { passwordHash: hash, authorizedKeys: ['ssh-ed25519 AAAAdemo demo'] } } },
      secrets,
    );
    const u = find(d['sftp-main']!, (r) => r.kind === 'user' && r.name === 'demo')[0];
    expect(u).toMatchObject({
      passwordHash: hash,
      shell: '/usr/sbin/nologin',
      home: '/srv/sftp/demo',
      uid: 2001,
    });
    const ak = find(
      d['sftp-main']!,
      (r) => r.kind === 'file' && r.path === '/srv/sftp/demo/.ssh/authorized_keys',
    )[0];
    expect(ak && ak.kind === 'file' && ak.content).toBe('ssh-ed25519 AAAAdemo demo\n');
  });
});
