import { describe, expect, it } from 'vitest';
import { parseObservation, type Observation } from '../../src/runbook/observe.ts';
import { formatPlan, plan, planChangeCount, planHost } from '../../src/runbook/plan.ts';
import { resourcesFromRender, type FileResource, type Resource } from '../../src/runbook/resources.ts';
import { MASK } from '../../src/transport/mask.ts';

const st = (mode: number, owner = 'root', group = 'root', type: 'file' | 'directory' = 'file') => ({
  mode,
  owner,
  group,
  size: 0,
  type,
});

const cfg: FileResource = {
  kind: 'file',
  path: '/etc/haproxy/haproxy.cfg',
  content: 'global\n  maxconn 200\n',
  mode: 0o644,
  owner: 'root',
  group: 'root',
  check: { argv: ['haproxy', '-c', '-f', '{}'], name: 'haproxy -c' },
  notify: ['haproxy'],
};
const unit: Resource = { kind: 'unit', name: 'haproxy', enabled: true, active: true, apply: 'reload' };
const fileObs = (content: string | null, mode = 0o644, owner = 'root'): Observation => ({
  kind: 'file',
  stat: content === null ? null : st(mode, owner),
  content: content === null ? null : Buffer.from(content),
});
const unitUp: Observation = {
  kind: 'unit',
  enabled: true,
  active: true,
  enabledState: 'enabled',
  activeState: 'active',
};

describe('plan', () => {
  it('GIVEN the observed state equals the desired state THEN 0 changes', () => {
    const p = plan({ haproxy: [cfg, unit] }, { haproxy: [fileObs(cfg.content), unitUp] });
    expect(planChangeCount(p)).toBe(0);
    expect(formatPlan(p)).toBe('haproxy: no changes\ntotal: 0 changes');
  });

  it('GIVEN one changed config line THEN update with a diff and a reload of the notified unit', () => {
    const old = 'global\n  maxconn 100\n';
    const changes = planHost('haproxy', [cfg, unit], [fileObs(old), unitUp]);
    expect(changes.map((c) => `${c.kind} ${c.id}: ${c.why}`)).toEqual([
      'update file /etc/haproxy/haproxy.cfg: content differs (+1 −1 lines)',
      'reload unit haproxy: notified by /etc/haproxy/haproxy.cfg',
    ]);
    expect(changes[0]!.diff).toContain('-  maxconn 100\n+  maxconn 200');
    expect(changes[0]!.before).toEqual(fileObs(old)); // kept for rollback
  });

  it('GIVEN only the mode differs THEN a metadata-only update that notifies nobody', () => {
    const changes = planHost('h', [cfg, unit], [fileObs(cfg.content, 0o600, 'haproxy'), unitUp]);
    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatchObject({
      kind: 'update',
      metadataOnly: true,
      why: 'owner haproxy → root, mode 0600 → 0644',
    });
  });

  it('GIVEN a missing file and a stopped, disabled unit THEN create, enable, start (restart) in that order', () => {
    const changes = planHost(
      'h',
      [unit, cfg],
      [
        { kind: 'unit', enabled: false, active: false, enabledState: 'disabled', activeState: 'inactive' },
        fileObs(null),
      ],
    );
    expect(changes.map((c) => `${c.kind} ${c.id}`)).toEqual([
      'create file /etc/haproxy/haproxy.cfg',
      'update unit haproxy',
      'restart unit haproxy',
    ]);
    expect(changes[2]!.why).toBe('inactive → active (and notified by /etc/haproxy/haproxy.cfg)');
    expect(changes[0]!.diff).toContain('@@ -0,0 +1,2 @@');
  });

  it('orders phases: packages, groups, users, directories (parents first), files, sysctls, routes, units', () => {
    const desired: Resource[] = [
      { kind: 'route', to: '10.88.0.0/24', via: '10.88.2.3' },
      { kind: 'sysctl', key: 'net.ipv4.ip_forward', value: '1' },
      { ...cfg, notify: [] },
      { kind: 'directory', path: '/srv/sftp/demo/upload', mode: 0o755, owner: 'demo', group: 'sftp' },
      { kind: 'directory', path: '/srv/sftp', mode: 0o755, owner: 'root', group: 'root' },
      { kind: 'user', name: 'demo', group: 'sftp', home: '/upload', shell: '/usr/sbin/nologin' },
      { kind: 'group', name: 'sftp' },
      { kind: 'package', name: 'haproxy' },
    ];
    const observed: Observation[] = [
      { kind: 'route', via: null },
      { kind: 'sysctl', value: '0' },
      fileObs(null),
      { kind: 'directory', stat: null },
      { kind: 'directory', stat: st(0o775, 'root', 'root', 'directory') },
      {
        kind: 'user',
        exists: true,
        uid: 1001,
        group: 'users',
        groups: ['users'],
        home: '/home/demo',
        shell: '/bin/bash',
      },
      { kind: 'group', exists: false },
      { kind: 'package', installed: false },
    ];
    const changes = planHost('sftp-main', desired, observed);
    expect(changes.map((c) => `${c.kind} ${c.id}: ${c.why}`)).toEqual([
      'create package haproxy: not installed',
      'create group sftp: absent',
      'update user demo: group users → sftp, home /home/demo → /upload, shell /bin/bash → /usr/sbin/nologin',
      'update directory /srv/sftp: mode 0775 → 0755',
      'create directory /srv/sftp/demo/upload: absent',
      'create file /etc/haproxy/haproxy.cfg: absent (new, 2 lines)',
      'update sysctl net.ipv4.ip_forward: 0 → 1',
      'create route 10.88.0.0/24: absent (via 10.88.2.3)',
    ]);
  });

  it('names the host and the reason for a non-idempotent resource', () => {
    const p = plan(
      { a: [cfg], b: [cfg] },
      { a: [fileObs(cfg.content)], b: [fileObs(cfg.content + '# edited by hand\n')] },
    );
    expect(formatPlan(p)).toBe(
      [
        'a: no changes',
        'b: 2 changes',
        '  ~ update file /etc/haproxy/haproxy.cfg: content differs (+0 −1 lines)',
        '  ↻ reload unit haproxy: notified by /etc/haproxy/haproxy.cfg',
        'total: 2 changes',
      ].join('\n'),
    );
  });

  it('never shows a secret file content, and masks secrets inside other diffs', () => {
    const key: FileResource = {
      kind: 'file',
      path: '/etc/ssh/k',
      content: 'PRIVATE-KEY-MATERIAL\n',
      mode: 0o600,
      owner: 'root',
      group: 'root',
      secret: true,
    };
    const conf: FileResource = {
      kind: 'file',
      path: '/etc/n.conf',
      content: 'password = hunter2hunter2\n',
      mode: 0o600,
      owner: 'root',
      group: 'root',
    };
    const p = plan({ h: [key, conf] }, { h: [fileObs('OLD-KEY-MATERIAL\n', 0o600), fileObs(null)] }, [
      'hunter2hunter2',
    ]);
    const text = formatPlan(p, { diff: true, secrets: ['hunter2hunter2'] });
    expect(text).not.toContain('KEY-MATERIAL');
    expect(text).not.toContain('hunter2hunter2');
    expect(text).toContain('(secret content not shown)');
    expect(text).toContain(`+password = ${MASK}`);
  });

  it('rejects a resource declared twice on a host', () => {
    expect(() => planHost('h', [cfg, cfg], [fileObs(null), fileObs(null)])).toThrow(/declared twice/);
  });

  it('a deleted file and an absent package are planned as deletes', () => {
    const changes = planHost(
      'h',
      [
        { ...cfg, state: 'absent', notify: [] },
        { kind: 'package', name: 'apache2', state: 'absent' },
      ],
      [fileObs('x'), { kind: 'package', installed: true, version: '2.4' }],
    );
    expect(changes.map((c) => `${c.kind} ${c.id}`)).toEqual([
      'delete package apache2',
      'delete file /etc/haproxy/haproxy.cfg',
    ]);
  });
});

describe('parseObservation', () => {
  it('parses the snippets’ output', () => {
    expect(parseObservation({ kind: 'package', name: 'rsync' }, 'installed 3.2.7-1\n')).toEqual({
      kind: 'package',
      installed: true,
      version: '3.2.7-1',
    });
    expect(parseObservation({ kind: 'package', name: 'x' }, 'not-installed \n')).toEqual({
      kind: 'package',
      installed: false,
    });
    expect(parseObservation({ kind: 'group', name: 'sftp' }, 'sftp:x:1001:\n')).toEqual({
      kind: 'group',
      exists: true,
      gid: 1001,
    });
    expect(
      parseObservation(
        { kind: 'user', name: 'demo' },
        'demo:x:1001:1002::/upload:/usr/sbin/nologin\nsftp\nsftp users\n',
      ),
    ).toEqual({
      kind: 'user',
      exists: true,
      uid: 1001,
      group: 'sftp',
      groups: ['sftp', 'users'],
      home: '/upload',
      shell: '/usr/sbin/nologin',
    });
    expect(
      parseObservation(cfg, `644|root|root|0|regular file\n${Buffer.from('hi\n').toString('base64')}\n`),
    ).toEqual(fileObs('hi\n'));
    expect(parseObservation(cfg, '@@missing\n')).toEqual(fileObs(null));
    expect(parseObservation(unit, 'enabled=disabled\nactive=failed\n')).toEqual({
      kind: 'unit',
      enabled: false,
      active: false,
      enabledState: 'disabled',
      activeState: 'failed',
    });
    expect(
      parseObservation(
        { kind: 'route', to: '10.88.0.0/24', via: '10.88.1.2' },
        '10.88.0.0/24 via 10.88.1.2 dev eth1\n',
      ),
    ).toEqual({ kind: 'route', via: '10.88.1.2' });
    expect(parseObservation({ kind: 'sysctl', key: 'a', value: '1' }, '32768\t60999\n')).toEqual({
      kind: 'sysctl',
      value: '32768\t60999',
    });
  });
});

describe('resourcesFromRender', () => {
  it('turns a NodeRender into files, a persistent sysctl file + runtime sysctls, routes and units', () => {
    const rs = resourcesFromRender({
      node: 'firewall',
      files: [
        {
          path: '/etc/nftables.conf',
          content: 'x',
          mode: 0o644,
          owner: 'root',
          group: 'root',
          notify: ['nftables'],
        },
      ],
      units: [],
      routes: [{ to: '10.88.0.0/24', via: '10.88.1.2' }],
      sysctls: { 'net.ipv4.ip_forward': '1' },
    });
    expect(rs.map((r) => r.kind)).toEqual(['file', 'file', 'sysctl', 'route', 'unit']);
    expect(rs[1]).toMatchObject({
      path: '/etc/sysctl.d/60-wharf.conf',
      content: '# Managed by wharf: do not edit.\nnet.ipv4.ip_forward = 1\n',
    });
    expect(rs[4]).toEqual({ kind: 'unit', name: 'nftables', apply: 'reload' });
  });
});

describe('user password hashes', () => {
  it('reads the shadow hash and plans an update (never showing it) when it differs', () => {
    const hash = '$6$salt$abc';
    const o = parseObservation(
      { kind: 'user', name: 'demo' },
      'demo:x:2001:2000::/srv/sftp/demo:/usr/sbin/nologin\nsftp_users\nsftp_users\n$6$old$zzz\n',
    );
    expect(o).toMatchObject({ kind: 'user', exists: true });
    expect(JSON.stringify(o)).not.toContain('zzz');
    const p = plan({ h: [{ kind: 'user', name: 'demo', passwordHash: hash }] }, { h: [o] });
    expect(p.hosts.h).toHaveLength(1);
    expect(p.hosts.h![0]!.why).toBe('password hash differs');
    expect(JSON.stringify(p)).not.toContain('zzz');
    const same = parseObservation({ kind: 'user', name: 'demo' }, `demo:x:1:1::/:/bin/sh\ng\ng\n${hash}\n`);
    expect(plan({ h: [{ kind: 'user', name: 'demo', passwordHash: hash }] }, { h: [same] }).hosts.h).toEqual(
      [],
    );
  });
});

describe('a unit whose unit file this run writes', () => {
  it('is enabled even when the old (SysV-generated) unit looked enabled', () => {
    const unitFile = {
      kind: 'file' as const,
      path: '/etc/systemd/system/lsyncd.service',
      content: '[Service]\nExecStart=/usr/bin/lsyncd\n[Install]\nWantedBy=multi-user.target\n',
      mode: 0o644,
      owner: 'root',
      group: 'root',
      notify: ['lsyncd'],
    };
    const p = planHost(
      'h',
      [unitFile, { kind: 'unit', name: 'lsyncd', enabled: true, active: true, apply: 'restart' }],
      [
        { kind: 'file', stat: null, content: null },
        { kind: 'unit', enabled: true, enabledState: 'generated', active: true, activeState: 'active' },
      ],
    );
    expect(p.map((c) => `${c.kind} ${c.id}: ${c.why}`)).toEqual([
      'create file /etc/systemd/system/lsyncd.service: absent (new, 4 lines)',
      'update unit lsyncd: unit file written by this run (was generated) → enabled',
      'restart unit lsyncd: notified by /etc/systemd/system/lsyncd.service',
    ]);
  });
});

describe('install/configure as steps: one step per change, its undo as data', () => {
  it('GIVEN a changed file, a new file and the reload they notify THEN each step says what its rollback runs', async () => {
    const { resourceSteps } = await import('../../src/runbook/resource-runbook.ts');
    const extra: FileResource = { ...cfg, path: '/etc/haproxy/extra.cfg', check: undefined, notify: [] };
    const old = 'global\n  maxconn 100\n';
    const p = plan({ haproxy: [cfg, extra, unit] }, { haproxy: [fileObs(old), fileObs(null), unitUp] });
    expect(resourceSteps(p).map((s) => ({ id: s.id, undo: s.undo?.commands }))).toEqual([
      {
        id: 'haproxy:file /etc/haproxy/haproxy.cfg',
        undo: [
          'write the observed 0-byte content back to /etc/haproxy/haproxy.cfg (temp file, then rename; root:root 0644)',
        ],
      },
      { id: 'haproxy:file /etc/haproxy/extra.cfg', undo: ['rm -f -- /etc/haproxy/extra.cfg'] },
      { id: 'haproxy:unit haproxy', undo: ['systemctl reload haproxy'] },
    ]);
  });
});
