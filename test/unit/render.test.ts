// Renderers: golden files for every output of the default stack, plus targeted assertions.
// Update the goldens after an intended change: UPDATE_GOLDEN=1 npx vitest run test/unit/render.test.ts
import { describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { parse } from 'yaml';
import { loadInventory, loadTopology, topologyFromObject } from '../../src/topology/load.ts';
import { labInventory, type Inventory } from '../../src/topology/inventory.ts';
import type { Topology } from '../../src/topology/model.ts';
import { renderNode, renderStack } from '../../src/render/index.ts';
import type { NodeRender, RenderedFile } from '../../src/render/types.ts';
import { checkArgv } from '../../src/render/check.ts';
import { sshdConnectionLimits } from '../../src/render/sshd.ts';
import { InputError } from '../../src/core/errors.ts';

const GOLDEN = join(import.meta.dirname, '..', 'golden');
const UPDATE = process.env.UPDATE_GOLDEN === '1';

const stackYaml = () => parse(readFileSync('configs/stack.yaml', 'utf8')) as Record<string, unknown>;
/** The default stack with a change applied to its parsed YAML. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- free-form edits of parsed YAML
function variant(change: (d: Record<string, any>) => void): Topology {
  const d = stackYaml();
  change(d);
  return topologyFromObject(d, 'variant.yaml');
}
const fileOf = (r: NodeRender, path: string): RenderedFile => {
  const f = r.files.find((x) => x.path === path);
  if (!f) throw new Error(`${r.node} has no ${path} (has ${r.files.map((x) => x.path).join(', ')})`);
  return f;
};
/** The lines of a section (`frontend x`, `backend y`) of haproxy.cfg, trimmed. */
function section(cfg: string, name: string): string[] {
  const start = cfg.split('\n').findIndex((l) => l === name);
  expect(start, `section ${name}`).toBeGreaterThanOrEqual(0);
  const out: string[] = [];
  for (const l of cfg.split('\n').slice(start + 1)) {
    if (!l.startsWith('    ')) break;
    out.push(l.trim());
  }
  return out;
}

const t = loadTopology('configs/stack.yaml');
const inv = labInventory(t);
const stack = renderStack(t, inv);

describe('golden files (configs/stack.yaml + lab inventory)', () => {
  const expected = new Set<string>();
  for (const [node, r] of Object.entries(stack)) {
    const meta = {
      units: r.units,
      routes: r.routes,
      sysctls: r.sysctls,
      packages: r.packages,
      files: r.files.map((f) => ({
        path: f.path,
        mode: f.mode.toString(8),
        owner: `${f.owner}:${f.group}`,
        check: f.check?.name ?? null,
        notify: f.notify ?? [],
        secret: f.secret ?? false,
      })),
    };
    const outputs: Array<[string, string]> = [
      ...r.files.map((f): [string, string] => [join(node, f.path), f.content]),
      [join(node, '_render.json'), JSON.stringify(meta, null, 2) + '\n'],
    ];
    for (const [rel, content] of outputs) {
      expected.add(rel);
      it(rel, () => {
        const p = join(GOLDEN, rel);
        if (UPDATE) {
          mkdirSync(dirname(p), { recursive: true });
          writeFileSync(p, content);
        }
        expect(existsSync(p), `golden ${rel} missing: run with UPDATE_GOLDEN=1`).toBe(true);
        expect(content).toBe(readFileSync(p, 'utf8'));
      });
    }
  }
  it('has no stale golden files', () => {
    const walk = (d: string): string[] =>
      readdirSync(d, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? walk(join(d, e.name)) : [relative(GOLDEN, join(d, e.name))],
      );
    expect(walk(GOLDEN).filter((f) => !expected.has(f))).toEqual([]);
  });
});

describe('haproxy.cfg', () => {
  const cfg = fileOf(stack['haproxy-1']!, '/etc/haproxy/haproxy.cfg').content;

  it('binds every frontend on the dmz address only (never on mgmt where sshd listens)', () => {
    for (const [name, f] of Object.entries(t.haproxy.frontends)) {
      expect(section(cfg, `frontend ${name}`)).toContain(
        `bind ${inv.hosts['haproxy-1']!.addresses.dmz}:${f.port}`,
      );
    }
    // on mgmt only HAProxy's Prometheus exporter (monitoring)
    const mgmt = inv.hosts['haproxy-1']!.addresses.mgmt!;
    expect(cfg.split('\n').filter((l) => l.includes(mgmt))).toEqual([`    bind ${mgmt}:8405`]);
    expect(section(cfg, 'frontend prometheus')).toContain(
      'http-request use-service prometheus-exporter if { path /metrics }',
    );
  });

  it('sftp and write: main first, sub only as backup; read: main + sub read-only, balanced and sticky', () => {
    for (const b of ['sftp', 'write']) {
      const s = section(cfg, `backend ${b}`);
      expect(s).toContain(
        'server sftp-main 10.88.3.11:22 check agent-check agent-addr 127.0.0.1 agent-port 9707 agent-inter 1s',
      );
      expect(s).toContain('server sftp-sub 10.88.3.12:22 check backup');
      expect(s).not.toContain('stick on src');
    }
    const read = section(cfg, 'backend read');
    expect(read).toEqual(
      expect.arrayContaining([
        'balance roundrobin',
        'stick-table type ip size 100k expire 30m peers wharf_pair',
        'stick on src',
        // sshd's read-only listener; main keeps the non-preemptive agent, sub asks its lag agent
        'server sftp-main 10.88.3.11:2221 check agent-check agent-addr 127.0.0.1 agent-port 9707 agent-inter 1s',
        'server sftp-sub 10.88.3.12:2221 check agent-check agent-port 9708 agent-inter 1s',
      ]),
    );
    expect(read.join('\n')).not.toContain('sftp-backup');
  });

  it('non-preemptive failover: main asks the wharf agent, admin states survive a reload (server-state file)', () => {
    expect(section(cfg, 'global')).toContain('server-state-file /var/lib/wharf/haproxy-server-state');
    expect(section(cfg, 'defaults')).toContain('load-server-state-from-file global');
    // main's lines ask the wharf agent (sftp, write, read); sub asks its read-lag agent in read only
    expect(cfg.match(/agent-check agent-addr 127\.0\.0\.1 agent-port 9707/g)).toHaveLength(3);
    expect(cfg.match(/agent-check/g)).toHaveLength(4);
    // the shared outage flag routes to sub in each of main's backends, before the server lines
    for (const b of ['sftp', 'write', 'read']) {
      const lines = section(cfg, `backend ${b}`);
      const rule = lines.indexOf('use-server sftp-sub if { int(1),table_gpt0(wharf_reconcile) gt 0 }');
      expect(rule, b).toBeGreaterThanOrEqual(0);
      expect(rule, b).toBeLessThan(lines.findIndex((l) => l.startsWith('server sftp-main ')));
    }
    const files = stack['haproxy-1']!.files.map((f) => f.path);
    expect(files).toEqual(
      expect.arrayContaining([
        '/usr/local/lib/wharf/haproxy-agent',
        '/etc/systemd/system/wharf-haproxy-agent@.service',
        '/etc/systemd/system/wharf-haproxy-agent.socket',
      ]),
    );
    // the service before the socket (the socket's systemd-analyze verify needs it)
    expect(files.indexOf('/etc/systemd/system/wharf-haproxy-agent@.service')).toBeLessThan(
      files.indexOf('/etc/systemd/system/wharf-haproxy-agent.socket'),
    );
    const sock = fileOf(stack['haproxy-1']!, '/etc/systemd/system/wharf-haproxy-agent.socket').content;
    expect(sock).toMatch(/^ListenStream=127\.0\.0\.1:9707$/m);
    expect(sock).toMatch(/^Accept=yes$/m);
    const agent = fileOf(stack['haproxy-1']!, '/usr/local/lib/wharf/haproxy-agent').content;
    expect(agent).toContain('UNIX-CONNECT:$SOCK');
    expect(agent).toContain("BACKENDS=' sftp write '");
    expect(stack['haproxy-1']!.units).toEqual(
      expect.arrayContaining([{ name: 'wharf-haproxy-agent.socket', enable: true, apply: 'restart' }]),
    );
  });

  it('health checks read the SSH banner with the configured timing and cut sessions to dead nodes', () => {
    for (const b of Object.keys(t.haproxy.backends)) {
      expect(section(cfg, `backend ${b}`)).toEqual(
        expect.arrayContaining([
          'option tcp-check',
          'tcp-check expect string SSH-2.0-',
          'default-server inter 500ms fall 2 rise 2 on-marked-down shutdown-sessions observe layer4 error-limit 2 on-error mark-down',
        ]),
      );
    }
    expect(section(cfg, 'defaults')).toEqual(
      expect.arrayContaining([
        'mode tcp',
        'option redispatch',
        'timeout connect 500ms',
        'timeout client 1h',
        'timeout server 1h',
        'timeout check 1s',
      ]),
    );
  });

  it('passive health (observe layer4) follows check.errorLimit; 0 turns it off', () => {
    const cfgOf = (t2: Topology) =>
      fileOf(renderNode(t2, labInventory(t2), 'haproxy-1'), '/etc/haproxy/haproxy.cfg').content;
    const five = cfgOf(variant((d) => (d.haproxy.check.errorLimit = 5)));
    expect(section(five, 'backend write')).toContain(
      'default-server inter 500ms fall 2 rise 2 on-marked-down shutdown-sessions observe layer4 error-limit 5 on-error mark-down',
    );
    const off = cfgOf(variant((d) => (d.haproxy.check.errorLimit = 0)));
    expect(section(off, 'backend write')).toContain(
      'default-server inter 500ms fall 2 rise 2 on-marked-down shutdown-sessions',
    );
    expect(off).not.toContain('observe');
  });

  it('limits each source: connections open at once, and accepted connections per period', () => {
    // sess_rate counts accepted connections only (conn_rate would count the rejected retries too)
    expect(section(cfg, 'backend wharf_src_rate')).toEqual([
      'stick-table type ip size 100k expire 10s store conn_cur,sess_rate(10s) peers wharf_pair',
    ]);
    for (const name of Object.keys(t.haproxy.frontends)) {
      const rules = section(cfg, `frontend ${name}`).filter((l) => l.startsWith('tcp-request'));
      expect(rules).toEqual([
        'tcp-request connection track-sc0 src table wharf_src_rate',
        'tcp-request connection reject if { sc0_conn_cur(wharf_src_rate) gt 50 }',
        'tcp-request connection reject if { sc0_sess_rate(wharf_src_rate) ge 20 }',
      ]);
    }
    expect(cfg).not.toContain('conn_rate');
  });

  it('trusted ranges: no rate limit, their own higher cap of open connections', () => {
    const t2 = variant(
      (d) =>
        (d.haproxy.limits = {
          concurrent: 8,
          trusted: ['203.0.113.0/24', '198.51.100.7'],
          trustedConcurrent: 300,
        }),
    );
    const cfg2 = fileOf(renderNode(t2, labInventory(t2), 'haproxy-1'), '/etc/haproxy/haproxy.cfg').content;
    for (const name of Object.keys(t2.haproxy.frontends)) {
      const rules = section(cfg2, `frontend ${name}`).filter((l) => /^(acl|tcp-request)/.test(l));
      expect(rules).toEqual([
        'acl wharf_trusted src 203.0.113.0/24 198.51.100.7',
        'tcp-request connection track-sc0 src table wharf_src_rate',
        'tcp-request connection reject if wharf_trusted { sc0_conn_cur(wharf_src_rate) gt 300 }',
        'tcp-request connection reject if !wharf_trusted { sc0_conn_cur(wharf_src_rate) gt 8 }',
        'tcp-request connection reject if !wharf_trusted { sc0_sess_rate(wharf_src_rate) ge 20 }',
      ]);
    }
  });

  it('refuses a trusted range with host bits, a bad range and a trusted cap below the normal one', () => {
    const bad = (limits: unknown) => () => variant((d) => (d.haproxy.limits = limits));
    expect(bad({ trusted: ['203.0.113.9/24'] })).toThrow(
      /haproxy\.limits\.trusted\.0: 203\.0\.113\.9\/24 has host bits set/,
    );
    expect(bad({ trusted: ['203.0.113.0/33'] })).toThrow(
      /haproxy\.limits\.trusted\.0: expected an IPv4 address or CIDR/,
    );
    expect(bad({ concurrent: 100, trustedConcurrent: 50 })).toThrow(
      /haproxy\.limits\.trustedConcurrent: expected at least limits\.concurrent \(100\)/,
    );
  });

  it('adds a stats listener on mgmt only when a port is set', () => {
    expect(cfg).not.toContain('listen stats');
    const t2 = variant((d) => (d.haproxy.stats = { port: 8404 }));
    const cfg2 = fileOf(renderNode(t2, labInventory(t2), 'haproxy-1'), '/etc/haproxy/haproxy.cfg').content;
    expect(section(cfg2, 'listen stats')).toContain('bind 10.88.9.4:8404');
  });

  it("a maxconn change changes haproxy.cfg and the served SFTP nodes' sshd MaxStartups, nothing else", () => {
    const t2 = variant((d) => (d.haproxy.maxconn = 3000));
    const other = renderStack(t2, labInventory(t2));
    const changed: string[] = [];
    for (const [node, r] of Object.entries(other))
      for (const f of r.files)
        if (f.content !== fileOf(stack[node]!, f.path).content) changed.push(`${node}:${f.path}`);
    expect(changed.sort()).toEqual([
      'haproxy-1:/etc/haproxy/haproxy.cfg',
      'haproxy-2:/etc/haproxy/haproxy.cfg',
      'sftp-main:/etc/ssh/sshd_config',
      'sftp-sub:/etc/ssh/sshd_config',
    ]);
  });
});

describe('sshd_config', () => {
  const cfg = fileOf(stack['sftp-main']!, '/etc/ssh/sshd_config').content;

  it('sizes MaxStartups from HAProxy maxconn and the SFTP nodes it serves; backup keeps the default', () => {
    // seed: maxconn 2000, main and sub behind HAProxy → start 1000 (its share), full 2000 + 10
    expect(sshdConnectionLimits(t, 'sftp-main')).toEqual({
      start: 1000,
      rate: 30,
      full: 2010,
      maxSessions: 10,
      reach: 2000,
      nodes: 2,
    });
    expect(cfg).toContain('\nMaxStartups 1000:30:2010\nMaxSessions 10\n');
    expect(sshdConnectionLimits(t, 'sftp-backup')).toBeUndefined();
    const backup = fileOf(stack['sftp-backup']!, '/etc/ssh/sshd_config').content;
    expect(backup).not.toContain('MaxStartups');
    // frontends' own maxconn bound what reaches a node: sub only behind `read` (and as a backup)
    const t2 = variant((d) => {
      d.haproxy.maxconn = 300;
      d.haproxy.frontends = {
        sftp: { port: 22, backend: 'sftp', maxconn: 40 },
        read: { port: 2221, backend: 'read', maxconn: 20 },
      };
    });
    expect(sshdConnectionLimits(t2, 'sftp-main')).toMatchObject({ reach: 60, start: 30, full: 70 });
    expect(sshdConnectionLimits(t2, 'sftp-sub')).toMatchObject({ reach: 60, start: 30, full: 70 });
    const t3 = variant((d) => (d.sftp.maxSessions = 4));
    expect(sshdConnectionLimits(t3, 'sftp-sub')).toMatchObject({ maxSessions: 4 });
  });

  it('has the hardened Match Group block', () => {
    const block = cfg
      .split('Match Group sftp_users\n')[1]!
      .trim()
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => !l.startsWith('#'));
    expect(block).toEqual([
      'ChrootDirectory /srv/sftp/%u',
      'ForceCommand internal-sftp -l INFO',
      'PasswordAuthentication yes',
      'DisableForwarding yes',
      'AllowTcpForwarding no',
      'AllowAgentForwarding no',
      'X11Forwarding no',
      'PermitTunnel no',
      'PermitTTY no',
    ]);
  });

  it('listens on lan (mgmt comes from the drop-in), one shared host key set, password auth off globally', () => {
    expect(cfg).toMatch(/^ListenAddress 10\.88\.3\.11$/m);
    expect(cfg).toMatch(/^Include \/etc\/ssh\/sshd_config\.d\/\*\.conf$/m);
    expect(cfg.search(/^Include /m)).toBeLessThan(cfg.search(/^ListenAddress /m));
    expect(cfg).toMatch(/^PasswordAuthentication no$/m);
    const keysOf = (n: string) =>
      fileOf(stack[n]!, '/etc/ssh/sshd_config')
        .content.split('\n')
        .filter((l) => l.startsWith('HostKey '));
    expect(keysOf('sftp-main')).toEqual([
      'HostKey /etc/ssh/wharf/ssh_host_ed25519_key',
      'HostKey /etc/ssh/wharf/ssh_host_rsa_key',
      'HostKey /etc/ssh/wharf/ssh_host_ecdsa_key',
    ]);
    expect(keysOf('sftp-sub')).toEqual(keysOf('sftp-main'));
    expect(keysOf('sftp-backup')).toEqual(keysOf('sftp-main'));
  });

  it('ClientAliveInterval follows the topology; password auth can be turned off', () => {
    const t2 = variant(
      (d) => (d.sftp = { ...d.sftp, clientAliveInterval: 30, passwordAuthentication: false }),
    );
    const c2 = fileOf(renderNode(t2, labInventory(t2), 'sftp-sub'), '/etc/ssh/sshd_config').content;
    expect(c2).toMatch(/^ClientAliveInterval 30$/m);
    expect(c2.split('Match Group')[1]).toContain('PasswordAuthentication no');
  });

  it('every node with a mgmt address gets the mgmt ListenAddress drop-in', () => {
    for (const [node, r] of Object.entries(stack)) {
      const mgmt = inv.hosts[node]!.addresses.mgmt;
      const f = r.files.find((x) => x.path === '/etc/ssh/sshd_config.d/00-wharf-mgmt.conf');
      if (mgmt)
        expect(f?.content, node).toMatch(new RegExp(`^ListenAddress ${mgmt.replace(/\./g, '\\.')}$`, 'm'));
      else expect(f, node).toBeUndefined();
    }
  });

  it("per-user lockout: pam_faillock around pam_unix in sshd's PAM stack, limits from sftp.lockout", () => {
    const pam = fileOf(stack['sftp-main']!, '/etc/pam.d/sshd');
    expect(pam.check?.name).toBe('pam modules exist');
    const auth = pam.content.split('\n').filter((l) => /^auth\s/.test(l));
    expect(auth.map((l) => l.replace(/\s+/g, ' '))).toEqual([
      'auth required pam_faillock.so preauth',
      'auth [success=1 default=bad] pam_unix.so nullok',
      'auth [default=die] pam_faillock.so authfail',
      'auth sufficient pam_faillock.so authsucc',
      'auth required pam_deny.so',
    ]);
    expect(pam.content).not.toContain('@include common-auth');
    expect(pam.content).toContain('@include common-account');
    expect(fileOf(stack['sftp-main']!, '/etc/security/faillock.conf').content).toMatch(
      /^deny = 5\nfail_interval = 900\nunlock_time = 600$/m,
    );
    const t2 = variant(
      (d) => (d.sftp = { ...d.sftp, lockout: { attempts: 3, unlockAfter: '90s', window: '1m' } }),
    );
    expect(
      fileOf(renderNode(t2, labInventory(t2), 'sftp-sub'), '/etc/security/faillock.conf').content,
    ).toMatch(/^deny = 3\nfail_interval = 60\nunlock_time = 90$/m);
    // off: Debian's common-auth again, no faillock.conf
    const t3 = variant((d) => (d.sftp = { ...d.sftp, lockout: { attempts: 0 } }));
    const r3 = renderNode(t3, labInventory(t3), 'sftp-main');
    expect(fileOf(r3, '/etc/pam.d/sshd').content).toContain('@include common-auth');
    expect(fileOf(r3, '/etc/pam.d/sshd').content).not.toContain('pam_faillock');
    expect(r3.files.some((f) => f.path === '/etc/security/faillock.conf')).toBe(false);
    // only the sftp nodes get it
    expect(stack['haproxy-1']!.files.some((f) => f.path === '/etc/pam.d/sshd')).toBe(false);
  });

  it("internal-sftp's log socket in every chroot: a bind-mount unit on every sftp node, never replicated", () => {
    for (const n of ['sftp-main', 'sftp-sub', 'sftp-backup']) {
      const sc = fileOf(stack[n]!, '/usr/local/lib/wharf/sftp-log.sh').content;
      expect(sc).toContain('mount --bind "$src" "$d/log"');
      expect(sc).toContain('src=/run/systemd/journal/dev-log');
      expect(stack[n]!.units.map((u) => u.name)).toContain('wharf-sftp-log.service');
    }
    expect(fileOf(stack['sftp-main']!, '/etc/lsyncd/lsyncd.conf.lua').content).toContain(
      '"/*/dev", "/*/dev/**"',
    );
    expect(fileOf(stack['sftp-backup']!, '/usr/local/lib/wharf/backup.sh').content).toContain(
      "--exclude='/*/dev/'",
    );
  });

  it('sudoers lets the replication user run rsync only, mode 0440', () => {
    const f = fileOf(stack['sftp-sub']!, '/etc/sudoers.d/wharf-sync');
    expect(f.mode).toBe(0o440);
    expect(f.content).toMatch(/^wharfsync ALL=\(root\) NOPASSWD: \/usr\/bin\/rsync$/m);
    expect(f.content.match(/NOPASSWD/g)).toHaveLength(1);
  });
});

describe('lsyncd', () => {
  const conf = fileOf(stack['sftp-main']!, '/etc/lsyncd/lsyncd.conf.lua').content;

  it('only on the replication source, towards the target lan address', () => {
    expect(stack['sftp-sub']!.files.some((f) => f.path.includes('lsyncd'))).toBe(false);
    expect(conf).toContain('host = "wharfsync@10.88.3.12",');
    expect(conf).toContain('default.rsyncssh,');
  });

  it('never deletes on the target by default, insists, short delay, temp dir excluded', () => {
    expect(conf).toContain('   delete = false,');
    expect(conf).toContain('   insist = true,');
    expect(conf).toContain('   delay = 1,');
    expect(conf).toContain('temp_dir = "/srv/sftp/.wharf-partial"');
    expect(conf).toContain(
      'exclude = { "*.part", "*.tmp", ".~*", ".wharf-partial", ".wharf-partial/**", "/*/dev", "/*/dev/**" },',
    );
    expect(conf).toContain('rsync_path = "sudo /usr/bin/rsync"');
    expect(conf).toContain('StrictHostKeyChecking = "yes"');
  });

  it('shares one ssh connection for its runs, in a root-only socket, ended when its peer is gone', () => {
    expect(conf).toContain(
      'ControlMaster = "auto", ControlPath = "/run/wharf-lsyncd-%C", ControlPersist = "60",',
    );
    expect(conf).toContain('ServerAliveInterval = "5", ServerAliveCountMax = "3" },');
  });

  it('renders the other delete policies as lsyncd spells them', () => {
    const c = (del: unknown) => {
      const t2 = variant((d) => (d.replication.lsyncd.delete = del));
      return fileOf(renderNode(t2, labInventory(t2), 'sftp-main'), '/etc/lsyncd/lsyncd.conf.lua').content;
    };
    expect(c('startup')).toContain('delete = "startup",');
    expect(c(true)).toContain('delete = true,');
  });

  it('is supervised by a native unit that restarts it', () => {
    const u = fileOf(stack['sftp-main']!, '/etc/systemd/system/lsyncd.service').content;
    expect(u).toContain('ExecStart=/usr/bin/lsyncd -nodaemon /etc/lsyncd/lsyncd.conf.lua');
    expect(u).toContain('Restart=always');
    expect(stack['sftp-main']!.units).toContainEqual({ name: 'lsyncd', enable: true, apply: 'restart' });
  });
});

describe('backup job', () => {
  const r = stack['sftp-backup']!;

  it('timer fires on the cron schedule as OnCalendar, persistent', () => {
    const timer = fileOf(r, '/etc/systemd/system/wharf-backup.timer').content;
    expect(timer).toMatch(/^OnCalendar=\*-\*-\* \*:00,15,30,45:00$/m);
    expect(timer).toMatch(/^Persistent=true$/m);
    expect(r.units).toContainEqual({ name: 'wharf-backup.timer', enable: true, apply: 'restart' });
  });

  it('pulls from the sub with link-dest snapshots, a guard, flock and retention', () => {
    const s = fileOf(r, '/usr/local/lib/wharf/backup.sh');
    expect(s.mode).toBe(0o755);
    expect(s.content).toMatch(/^SRC_HOST=\$\{WHARF_SRC_HOST:-wharfsync@10\.88\.3\.12\}$/m);
    expect(s.content).toContain('GUARD=/srv/sftp/.wharf-source');
    expect(s.content).toContain('--link-dest=');
    expect(s.content).toContain('flock -n 9');
    expect(s.content).toMatch(/^RETENTION=96$/m);
    expect(s.content).toMatch(/^NOTIFY=0$/m);
  });

  it('queues notices per snapshot and moves the notifier to the backup node when on: backup', () => {
    const t2 = variant((d) => (d.notifications.on = 'backup'));
    const s2 = renderStack(t2, labInventory(t2));
    expect(fileOf(s2['sftp-backup']!, '/usr/local/lib/wharf/backup.sh').content).toMatch(/^NOTIFY=1$/m);
    expect(fileOf(s2['sftp-backup']!, '/etc/wharf/notify.env').content).toContain('WATCH_DIR=""');
    expect(s2['sftp-main']!.files.some((f) => f.path.includes('notify'))).toBe(false);
  });
});

describe('notifier', () => {
  const r = stack['sftp-main']!;
  it('targets the sink on lan by default; not secret', () => {
    const env = fileOf(r, '/etc/wharf/notify.env');
    expect(env.content).toContain('WEBHOOK_URL="http://10.88.3.20:8080/hooks/upload"');
    expect(env.content).toContain('SMTP_URL="smtp://10.88.3.20:2525"');
    expect(env.content).toContain('WATCH_DIR="/srv/sftp"');
    expect(env.secret).toBeFalsy();
    expect(env.mode).toBe(0o600);
  });
  it('the inventory webhook URL is a secret', () => {
    const prodT = t;
    const prod = loadInventory('configs/production.example.inventory.yaml', prodT);
    const env = fileOf(renderNode(prodT, prod, 'sftp-main'), '/etc/wharf/notify.env');
    expect(env.secret).toBe(true);
    expect(env.content).toContain('WEBHOOK_URL="https://hooks.slack.com/services/T000/B000/XXXXXXXX"');
    expect(env.content).toContain('SMTP_URL="smtp://smtp.example.net:25"');
  });
  it('ignores temp names and the lsyncd temp dir, and restarts with systemd', () => {
    const s = fileOf(r, '/usr/local/lib/wharf/notify.sh').content;
    expect(s).toContain('-e close_write,moved_to');
    expect(s).toContain('.* | *.part | *.filepart | *.tmp) continue');
    // a closed file is complete only if the SFTP client closed it (internal-sftp's log)
    expect(s).toContain('if ($1 == "forced") v = "forced"');
    expect(fileOf(r, '/etc/ssh/sshd_config').content).toMatch(/^ {4}ForceCommand internal-sftp -l INFO$/m);
    expect(fileOf(r, '/etc/systemd/system/wharf-notify.service').content).toContain('Restart=always');
  });
});

describe('nftables', () => {
  const router = fileOf(stack['router']!, '/etc/nftables.conf').content;
  const fw = fileOf(stack['firewall']!, '/etc/nftables.conf').content;

  it('never flushes the ruleset; replaces only its own tables', () => {
    for (const r of Object.values(stack))
      for (const f of r.files) expect(f.content, f.path).not.toMatch(/flush\s+ruleset/);
    for (const c of [router, fw]) {
      expect(c).toContain('table inet wharf {}\ndelete table inet wharf\n');
      expect(c).toContain('table ip wharf_nat {}\ndelete table ip wharf_nat\n');
    }
    expect(
      fileOf(stack['router']!, '/etc/systemd/system/nftables.service.d/10-wharf.conf').content,
    ).toContain('ExecStop=\n');
  });

  it('router matches addresses; the firewall names no device (interfaces resolved at load time)', () => {
    expect(router.replace('iif "lo"', '')).not.toMatch(/\b(iif|oif|iifname|oifname)\b/);
    const names = [...fw.matchAll(/\b(?:iifname|oifname) (\{[^}]*\}|\S+)/g)].map((m) => m[1]!);
    expect(names.length).toBeGreaterThan(0);
    for (const n of names) expect(n).toMatch(/^(\$if_[a-z0-9_]+|\{ \$if_[a-z0-9_]+(, \$if_[a-z0-9_]+)* \})$/);
    expect(fw).not.toMatch(/\biif\b(?! "lo")/);
  });

  it('router: DNAT of every frontend port from its wan address to the firewall, forwards nothing else', () => {
    for (const p of [22, 2222, 2221])
      expect(router).toMatch(
        new RegExp(`ip daddr 10\\.88\\.0\\.2 tcp dport ${p} dnat to 10\\.88\\.1\\.3:${p}`),
      );
    expect(router).toContain('type filter hook forward priority filter; policy drop;');
    expect(router).toContain('ct status dnat accept');
    expect(router).not.toContain('masquerade');
  });

  it('firewall: port forward from the WAN address to the HAProxy pair floating address, its associated rule, default deny, mgmt never forwarded', () => {
    expect(fw).toContain(
      'iifname $if_wan ip daddr 10.88.1.3 tcp dport { 22, 2221-2222 } dnat to 10.88.2.254 comment "SFTP to HAProxy"',
    );
    const fwd = fw.slice(fw.indexOf('chain forward'));
    expect(fwd).toContain(
      'iifname $if_wan ip daddr 10.88.2.254 tcp dport { 22, 2221-2222 } accept comment "10 NAT SFTP to HAProxy"',
    );
    expect(fwd.indexOf('ip daddr 10.88.9.0/24 drop')).toBeLessThan(fwd.indexOf('ct state established'));
    expect(fw).toContain('type filter hook forward priority filter; policy drop;');
    expect(fw).toContain('ip saddr 10.88.9.0/24 ip daddr 10.88.9.3 tcp dport 22 accept');
  });

  it('renders block/reject/icmp/any rules with OPNsense semantics', () => {
    const t2 = variant(
      (d) =>
        (d.firewall = {
          rules: [
            {
              interface: 'transit',
              action: 'block',
              protocol: 'tcp',
              source: '198.51.100.0/24',
              port: 22,
              description: 'bad net',
            },
            {
              interface: 'transit',
              action: 'reject',
              protocol: 'any',
              destination: 'haproxy',
              description: 'no reads "now"',
            },
            { interface: 'dmz', action: 'pass', protocol: 'icmp', description: 'ping out' },
            {
              interface: 'transit',
              action: 'pass',
              protocol: 'tcp',
              destination: 'haproxy',
              port: 22,
              description: 'sftp',
            },
          ],
        }),
    );
    const c = fileOf(renderNode(t2, labInventory(t2), 'firewall'), '/etc/nftables.conf').content;
    const rules = c
      .split('\n')
      .filter((l) => l.includes('comment') && !l.includes('management ssh') && !l.includes('dnat'));
    // the old shape (interface: transit = the wan interface) keeps its policy: rules to the box
    // itself (destination any) land in input as well, routed ones in forward, in order
    expect(rules.map((l) => l.trim())).toEqual([
      'iifname $if_wan ip saddr 198.51.100.0/24 tcp dport 22 drop comment "10 bad net"',
      'iifname $if_dmz meta l4proto icmp accept comment "30 ping out"',
      'ip saddr 10.88.9.0/24 drop comment "the management network is never a path"',
      'ip daddr 10.88.9.0/24 drop comment "the management network is never a path"',
      'iifname $if_wan ip saddr 198.51.100.0/24 tcp dport 22 drop comment "10 bad net"',
      'iifname $if_wan ip daddr 10.88.2.254 meta l4proto tcp reject with tcp reset comment "20 no reads \'now\'"',
      'iifname $if_wan ip daddr 10.88.2.254 reject with icmpx type admin-prohibited comment "20 no reads \'now\'"',
      'iifname $if_dmz meta l4proto icmp accept comment "30 ping out"',
      'iifname $if_wan ip daddr 10.88.2.254 tcp dport 22 accept comment "40 sftp"',
    ]);
  });
});

describe('HAProxy pair (keepalived, peers)', () => {
  const ka = (n: string) => fileOf(stack[n]!, '/etc/keepalived/keepalived.conf').content;
  it('VRRP with unicast peers: each node sends from its own dmz address to the other one', () => {
    expect(ka('haproxy-1')).toContain(
      'unicast_src_ip 10.88.2.4\n    unicast_peer {\n        10.88.2.5\n    }',
    );
    expect(ka('haproxy-2')).toContain(
      'unicast_src_ip 10.88.2.5\n    unicast_peer {\n        10.88.2.4\n    }',
    );
    for (const n of ['haproxy-1', 'haproxy-2']) {
      expect(ka(n)).toContain('virtual_router_id 51');
      expect(ka(n)).toContain('auth_type PASS\n        auth_pass wharfvip');
      expect(ka(n)).toContain('10.88.2.254/24 dev $WHARF_DMZ_IF');
      expect(ka(n)).toMatch(/state BACKUP\n {4}nopreempt/);
      expect(ka(n)).toContain('track_script {\n        chk_haproxy\n    }');
      expect(ka(n)).toContain('notify "/usr/local/lib/wharf/keepalived-notify"');
      expect(stack[n]!.sysctls).toEqual({ 'net.ipv4.ip_nonlocal_bind': '1' });
      expect(stack[n]!.units).toEqual(
        expect.arrayContaining([{ name: 'keepalived', enable: true, apply: 'reload' }]),
      );
    }
    expect(ka('haproxy-1')).toContain('priority 150');
    expect(ka('haproxy-2')).toContain('priority 100');
  });
  it('the scripts come before keepalived.conf (its --config-test checks them)', () => {
    const files = stack['haproxy-1']!.files.map((f) => f.path);
    const conf = files.indexOf('/etc/keepalived/keepalived.conf');
    for (const f of ['keepalived-check', 'keepalived-notify', 'keepalived-iface'])
      expect(files.indexOf(`/usr/local/lib/wharf/${f}`)).toBeLessThan(conf);
    const check = fileOf(stack['haproxy-1']!, '/usr/local/lib/wharf/keepalived-check').content;
    expect(check).toContain('pid=$(cat /run/haproxy.pid 2>/dev/null) || exit 1');
    expect(check).toContain('UNIX-CONNECT:/run/haproxy/admin.sock');
    const notify = fileOf(stack['haproxy-1']!, '/usr/local/lib/wharf/keepalived-notify').content;
    expect(notify).toContain('FILE=/var/lib/prometheus/node-exporter/wharf_keepalived.prom');
    expect(notify).toContain('wharf_keepalived_master{vip=\\"$VIP\\"} $v');
    expect(notify).toContain('[ -d "$DIR" ] || mkdir -p "$DIR"');
  });
  it('haproxy.cfg: the floating address bound next to the own one, every stick table shared with the peer', () => {
    const cfg = fileOf(stack['haproxy-2']!, '/etc/haproxy/haproxy.cfg').content;
    expect(section(cfg, 'global')).toContain('localpeer haproxy-2');
    expect(section(cfg, 'peers wharf_pair')).toEqual([
      'peer haproxy-1 10.88.2.4:10000',
      'peer haproxy-2 10.88.2.5:10000',
    ]);
    expect(section(cfg, 'frontend write')).toEqual(
      expect.arrayContaining(['bind 10.88.2.5:2222', 'bind 10.88.2.254:2222']),
    );
    const tables = cfg.split('\n').filter((l) => l.includes('stick-table'));
    expect(tables).toHaveLength(3); // rate limit, the failover flag, stick on src (read)
    for (const l of tables) expect(l).toMatch(/ peers wharf_pair$/);
    expect(section(cfg, 'backend wharf_reconcile')).toEqual([
      'stick-table type integer size 1 store gpt0 peers wharf_pair',
    ]);
    const agent = fileOf(stack['haproxy-2']!, '/usr/local/lib/wharf/haproxy-agent').content;
    expect(agent).toContain('api "set table $TABLE key 1 data.gpt0 1"');
    expect(agent).toContain('api "show table $TABLE key 1" | grep -q "gpt0=1"');
  });
  it('pair off: one haproxy node, no keepalived, NAT to its own address', () => {
    const t1 = variant((d) => (d.haproxy.pair = { enabled: false }));
    expect(Object.keys(t1.nodes)).toContain('haproxy');
    expect(Object.keys(t1.nodes)).not.toContain('haproxy-1');
    const s1 = renderStack(t1, labInventory(t1));
    expect(s1['haproxy']!.files.some((f) => f.path.includes('keepalived'))).toBe(false);
    expect(s1['haproxy']!.packages).not.toContain('keepalived');
    const cfg = fileOf(s1['haproxy']!, '/etc/haproxy/haproxy.cfg').content;
    expect(cfg).not.toContain('peers');
    expect(cfg).not.toContain('10.88.2.254');
    expect(fileOf(s1['firewall']!, '/etc/nftables.conf').content).toContain('dnat to 10.88.2.4 ');
  });
  it('an explicit floating address is used as given', () => {
    const t2 = variant((d) => (d.haproxy.pair = { vip: '10.88.2.99', vrid: 7 }));
    const s2 = renderStack(t2, labInventory(t2));
    expect(fileOf(s2['haproxy-1']!, '/etc/keepalived/keepalived.conf').content).toContain(
      '10.88.2.99/24 dev',
    );
    expect(fileOf(s2['haproxy-1']!, '/etc/keepalived/keepalived.conf').content).toContain(
      'virtual_router_id 7',
    );
    expect(fileOf(s2['firewall']!, '/etc/nftables.conf').content).toContain('dnat to 10.88.2.99 ');
  });
});

describe('routes, sysctls, units', () => {
  it('replies to the WAN go back through firewall and router', () => {
    expect(stack['haproxy-1']!.routes).toEqual([{ to: '10.88.0.0/24', via: '10.88.2.3' }]);
    expect(stack['firewall']!.routes).toEqual([{ to: '10.88.0.0/24', via: '10.88.1.2' }]);
    expect(stack['router']!.routes).toEqual([]);
    expect(fileOf(stack['haproxy-1']!, '/etc/wharf/routes').content).toMatch(
      /^10\.88\.0\.0\/24 10\.88\.2\.3$/m,
    );
  });
  it('router and firewall forward; sftp nodes raise inotify limits', () => {
    expect(stack['router']!.sysctls).toEqual({ 'net.ipv4.ip_forward': '1' });
    expect(stack['firewall']!.sysctls).toEqual({ 'net.ipv4.ip_forward': '1' });
    expect(Number(stack['sftp-sub']!.sysctls['fs.inotify.max_user_watches'])).toBeGreaterThan(8192);
    expect(fileOf(stack['sftp-sub']!, '/etc/sysctl.d/60-wharf.conf').content).toContain(
      'fs.inotify.max_queued_events = 65536',
    );
  });
  it('every checked file has a host-independent check ({} only as a whole argument)', () => {
    for (const r of Object.values(stack))
      for (const f of r.files) {
        if (!f.check) continue;
        expect(
          f.check.argv.filter((a) => a.includes('{}') && a !== '{}'),
          f.path,
        ).toEqual([]);
        expect(checkArgv(f.check, '/x/y')).toContain('/x/y');
      }
  });
});

describe('inventories', () => {
  it('production: real addresses, no lab-only nodes', () => {
    const prod: Inventory = loadInventory('configs/production.example.inventory.yaml', t);
    const s = renderStack(t, prod);
    // monitor: not in this inventory (an existing Prometheus): its files are rendered for the
    // operator (scrape targets, rules) and no runbook manages it
    expect(Object.keys(s).sort()).toEqual([
      'firewall',
      'haproxy-1',
      'haproxy-2',
      'monitor',
      'router',
      'sftp-backup',
      'sftp-main',
      'sftp-sub',
    ]);
    const cfg = fileOf(s['haproxy-1']!, '/etc/haproxy/haproxy.cfg').content;
    expect(cfg).toContain('bind 192.168.102.4:22');
    // the floating address follows the inventory's dmz subnet
    expect(cfg).toContain('bind 192.168.102.254:22');
    expect(cfg).toContain('server sftp-main 192.168.103.11:22 check');
    expect(s['haproxy-1']!.routes).toEqual([{ to: '203.0.113.0/24', via: '192.168.102.3' }]);
  });
  it('an unknown node is an input error naming the nodes', () => {
    expect(() => renderNode(t, inv, 'nope')).toThrow(InputError);
    expect(() => renderNode(t, inv, 'nope')).toThrow(/unknown node nope \(nodes: wan-client, router/);
  });
});
