// Every rendered file of every node, for the default stack and variants, goes through the daemon's
// own checker on this host (haproxy -c, sshd -t, nft -c, lua, bash -n, visudo -c, systemd-analyze
// verify); then faults are injected to prove each checker bites. Runs as root (nft -c needs
// CAP_NET_ADMIN). A missing tool fails loudly, naming the Debian package to install.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';
import { readFileSync } from 'node:fs';
import { loadInventory, topologyFromObject } from '../../src/topology/load.ts';
import { labInventory, type Inventory } from '../../src/topology/inventory.ts';
import type { Topology } from '../../src/topology/model.ts';
import { renderStack } from '../../src/render/index.ts';
import type { RenderedFile } from '../../src/render/types.ts';
import { checkFile, type CheckResult } from '../../src/render/check.ts';

/** Tool → Debian package, for the failure message. */
const TOOLS: Record<string, string> = {
  haproxy: 'haproxy',
  keepalived: 'keepalived',
  sshd: 'openssh-server',
  'ssh-keygen': 'openssh-client',
  nft: 'nftables',
  'lua5.4': 'lua5.4',
  bash: 'bash',
  visudo: 'sudo',
  'systemd-analyze': 'systemd',
  unshare: 'util-linux',
  promtool: 'prometheus',
  amtool: 'prometheus-alertmanager',
};
const which = (tool: string): boolean => {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

const root = mkdtempSync(join(tmpdir(), 'wharf-validate-'));
const keys = join(root, 'hostkeys');
afterAll(() => rmSync(root, { recursive: true, force: true }));
beforeAll(() => {
  const missing = Object.keys(TOOLS).filter((t) => !which(t));
  if (missing.length)
    throw new Error(
      `missing checker tools: ${missing.map((t) => `${t} (apt-get install ${TOOLS[t]})`).join(', ')}`,
    );
  mkdirSync(keys, { recursive: true });
  for (const k of ['ed25519', 'rsa', 'ecdsa'])
    execFileSync('ssh-keygen', [
      '-q',
      '-t',
      k,
      '-N',
      '',
      '-C',
      'wharf-test',
      '-f',
      join(keys, `ssh_host_${k}_key`),
    ]);
  // sshd -t insists on its privilege separation directory (the package creates it at boot).
  mkdirSync('/run/sshd', { recursive: true });
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- free-form edits of parsed YAML
function stackWith(change: (d: Record<string, any>) => void = () => {}): Topology {
  const d = parse(readFileSync('configs/stack.yaml', 'utf8')) as Record<string, unknown>;
  change(d);
  const t = topologyFromObject(d, 'variant.yaml');
  t.sftp.hostKeyDir = keys;
  return t;
}

/**
 * Writes a file under the node's fake root and runs its check. Unit files name scripts under
 * /usr/local/lib that exist on a real host before the unit is written (file order); here the
 * node's rendered /usr/local/lib is bind-mounted over the host's, in a private mount namespace.
 */
async function check(nodeRoot: string, f: RenderedFile, content = f.content): Promise<CheckResult> {
  const path = join(nodeRoot, f.path);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content, { mode: f.mode });
  const lib = join(nodeRoot, 'usr/local/lib');
  if (f.check?.name === 'systemd-analyze verify' && existsSync(lib)) {
    const wrapped = {
      ...f,
      check: {
        name: f.check.name,
        argv: [
          'unshare',
          '--mount',
          '--propagation',
          'private',
          'sh',
          '-c',
          'mount --bind "$1" /usr/local/lib && shift && exec "$@"',
          'sh',
          lib,
          ...f.check.argv,
        ],
      },
    };
    return checkFile(wrapped, path);
  }
  return checkFile(f, path);
}

function explain(r: CheckResult): string {
  const tool = r.argv.find((a) => TOOLS[a]) ?? r.argv[0] ?? '';
  const pkg = TOOLS[tool];
  return (
    `${r.argv.slice(0, 3).join(' ')} … failed (exit ${r.code}):\n${r.output}` +
    (/not found/.test(r.output) && pkg ? `\n→ apt-get install ${pkg}` : '')
  );
}

const CASES: Array<[string, () => { t: Topology; inv: Inventory }]> = [
  [
    'default',
    () => {
      const t = stackWith();
      return { t, inv: labInventory(t) };
    },
  ],
  [
    'single HAProxy (haproxy.pair off)',
    () => {
      const t = stackWith((d) => {
        d.haproxy.pair = { enabled: false };
      });
      return { t, inv: labInventory(t) };
    },
  ],
  [
    'production',
    () => {
      const t = stackWith();
      return { t, inv: loadInventory('configs/production.example.inventory.yaml', t) };
    },
  ],
  [
    'variant',
    () => {
      const t = stackWith((d) => {
        d.haproxy.stats = { port: 8404 };
        d.haproxy.backends = {
          sftp: {
            balance: 'leastconn',
            servers: ['sftp-main', { node: 'sftp-sub', backup: true, weight: 10 }],
          },
        };
        d.haproxy.frontends = { sftp: { port: 22, backend: 'sftp', maxconn: 500 } };
        d.sftp.passwordAuthentication = false;
        d.sftp.port = 2022;
        d.replication.lsyncd = {
          ...d.replication.lsyncd,
          delete: 'startup',
          excludes: ['*.swp', 'a "quoted" name'],
        };
        d.replication.backup = { ...d.replication.backup, schedule: '30 2 * * mon-fri' };
        d.notifications.on = 'backup';
        d.notifications.webhook = { url: 'https://hooks.example.org/x?y=1', format: 'json' };
        d.firewall = {
          rules: [
            {
              interface: 'transit',
              action: 'block',
              protocol: 'tcp',
              source: '198.51.100.0/24',
              description: 'blocked net',
            },
            {
              interface: 'transit',
              action: 'reject',
              protocol: 'any',
              destination: 'sftp-main',
              description: 'nothing straight to main',
            },
            { interface: 'dmz', action: 'pass', protocol: 'icmp', description: 'ping' },
            { interface: 'transit', action: 'reject', protocol: 'udp', port: 53, description: 'no dns' },
            {
              interface: 'transit',
              action: 'pass',
              protocol: 'tcp',
              destination: 'haproxy',
              port: 22,
              description: 'sftp',
            },
          ],
        };
      });
      return { t, inv: labInventory(t) };
    },
  ],
];

for (const [name, make] of CASES) {
  describe(`${name}: every rendered file passes its real checker`, () => {
    const { t, inv } = make();
    const stack = renderStack(t, inv);
    // A node whose files have no checker would drop out of this loop silently: only the lab-only
    // kinds may (the internet client has no files, the notify sink's is plain data).
    it('every stack node has files checked by a real tool; only lab-only kinds have none', () => {
      const kindsWhere = (checked: boolean) =>
        new Set(
          Object.entries(stack)
            .filter(([, r]) => r.files.some((f) => f.check) === checked)
            .map(([node]) => t.nodes[node]!.kind),
        );
      expect(kindsWhere(true)).toEqual(new Set(['router', 'firewall', 'haproxy', 'sftp', 'monitor']));
      for (const kind of kindsWhere(false)) expect(['wan-client', 'notify-sink']).toContain(kind);
    });
    for (const [node, r] of Object.entries(stack).filter(([, r]) => r.files.some((f) => f.check))) {
      const checked = r.files.filter((f) => f.check);
      it(`${node}: ${checked.map((f) => f.path).join(', ')}`, async () => {
        const nodeRoot = join(root, name, node);
        // All files first (units reference scripts), then the checks, in render order.
        for (const f of r.files) {
          mkdirSync(dirname(join(nodeRoot, f.path)), { recursive: true });
          writeFileSync(join(nodeRoot, f.path), f.content, { mode: f.mode });
        }
        for (const f of checked) {
          const res = await check(nodeRoot, f);
          expect(res.ok, `${node} ${f.path}: ${explain(res)}`).toBe(true);
        }
      });
    }
  });
}

describe('the checkers bite: a broken file is refused', () => {
  const t = stackWith();
  const stack = renderStack(t, labInventory(t));
  const get = (node: string, path: string): RenderedFile => stack[node]!.files.find((f) => f.path === path)!;
  const bad = join(root, 'bad');

  const cases: Array<[string, string, string, (s: string) => string, RegExp]> = [
    [
      'haproxy: unknown keyword',
      'haproxy-1',
      '/etc/haproxy/haproxy.cfg',
      (s) => s.replace('    balance first', '    balance firstest'),
      /balance|firstest/i,
    ],
    [
      'haproxy: bad timeout',
      'haproxy-1',
      '/etc/haproxy/haproxy.cfg',
      (s) => s.replace('timeout check 1s', 'timeout check soon'),
      /timeout|soon/i,
    ],
    [
      'haproxy: a warning fails too (zero-warning mode)',
      'haproxy-2',
      '/etc/haproxy/haproxy.cfg',
      (s) => s.replace('    timeout client 1h\n', ''),
      /timeout|warning/i,
    ],
    [
      'sshd: unknown option',
      'sftp-main',
      '/etc/ssh/sshd_config',
      (s) => s.replace('PermitTTY no', 'PermitTeletype no'),
      /PermitTeletype|Bad configuration/i,
    ],
    [
      'sshd: bad value in Match',
      'sftp-main',
      '/etc/ssh/sshd_config',
      (s) => s.replace('    PasswordAuthentication yes', '    PasswordAuthentication maybe'),
      /maybe|unsupported option/i,
    ],
    [
      'pam: a module that does not exist (would lock every ssh login out)',
      'sftp-main',
      '/etc/pam.d/sshd',
      (s) => s.replace('pam_faillock.so authfail', 'pam_failock.so authfail'),
      /pam_failock\.so: no such module/,
    ],
    [
      'pam: an @include that does not exist',
      'sftp-main',
      '/etc/pam.d/sshd',
      (s) => s.replace('@include common-account', '@include common-acount'),
      /common-acount/,
    ],
    [
      'nft: typo in a verdict',
      'firewall',
      '/etc/nftables.conf',
      (s) => s.replace('tcp dport { 22, 2221-2222 } accept', 'tcp dport { 22, 2221-2222 } acept'),
      /acept|syntax error/i,
    ],
    [
      'nft: unknown address',
      'router',
      '/etc/nftables.conf',
      (s) => s.replace('dnat to 10.88.1.3:22', 'dnat to 10.88.1.300:22'),
      /error/i,
    ],
    [
      'lua: syntax error',
      'sftp-main',
      '/etc/lsyncd/lsyncd.conf.lua',
      (s) => s.replace('   delay = 1,', '   delay = 1,,'),
      /unexpected symbol|near/i,
    ],
    [
      'lua: unknown rsync option',
      'sftp-main',
      '/etc/lsyncd/lsyncd.conf.lua',
      (s) => s.replace('temp_dir =', 'tempdir ='),
      /unknown option tempdir/,
    ],
    [
      'lua: unknown sync option',
      'sftp-main',
      '/etc/lsyncd/lsyncd.conf.lua',
      (s) => s.replace('   delete = false,', '   delet = false,'),
      /unknown option delet/,
    ],
    [
      'lua: rsyncssh with parallel processes (lsyncd refuses it)',
      'sftp-main',
      '/etc/lsyncd/lsyncd.conf.lua',
      (s) => s.replace('   maxProcesses = 1,', '   maxProcesses = 4,'),
      /maxProcesses set to 1/,
    ],
    [
      'bash: backup script syntax',
      'sftp-backup',
      '/usr/local/lib/wharf/backup.sh',
      (s) => s.replace('fi\n', 'fi fi\n'),
      /syntax error/,
    ],
    [
      'bash: notifier syntax',
      'sftp-main',
      '/usr/local/lib/wharf/notify.sh',
      (s) => s.replace('done\n', 'don\n'),
      /syntax error|unexpected end/,
    ],
    [
      'promtool: a rule with a broken expression',
      'monitor',
      '/etc/prometheus/wharf-rules.yml',
      (s) => s.replace('expr: wharf_lsyncd_up == 0', 'expr: wharf_lsyncd_up == == 0'),
      /parse error|unexpected/i,
    ],
    [
      'promtool: an unknown config field',
      'monitor',
      '/etc/prometheus/prometheus.yml',
      (s) => s.replace('evaluation_interval:', 'evaluation_intervall:'),
      /field evaluation_intervall not found/,
    ],
    [
      'amtool: a route to an unknown receiver',
      'monitor',
      '/etc/prometheus/alertmanager.yml',
      (s) => s.replace('receiver: wharf', 'receiver: nobody'),
      /undefined receiver "nobody"/,
    ],
    [
      'bash: metrics generator syntax',
      'sftp-sub',
      '/usr/local/lib/wharf/metrics.sh',
      (s) => s.replace('  esac\n', '  esa\n'),
      /syntax error|unexpected end/,
    ],
    [
      'visudo: missing colon',
      'sftp-sub',
      '/etc/sudoers.d/wharf-sync',
      (s) => s.replace('NOPASSWD:', 'NOPASSWD'),
      /syntax error|parse error/i,
    ],
    [
      'systemd: unknown key',
      'sftp-main',
      '/etc/systemd/system/lsyncd.service',
      (s) => s.replace('Restart=always', 'Restartt=always'),
      /Unknown key/,
    ],
    [
      'systemd: bad calendar',
      'sftp-backup',
      '/etc/systemd/system/wharf-backup.timer',
      (s) => s.replace(/^OnCalendar=.*$/m, 'OnCalendar=*-*-* 25:00:00'),
      /calendar/i,
    ],
    [
      'keepalived: unknown authentication type',
      'haproxy-1',
      '/etc/keepalived/keepalived.conf',
      (s) => s.replace('auth_type PASS', 'auth_type PASSWORD'),
      /unknown authentication type/,
    ],
    [
      'keepalived: virtual router id out of range',
      'haproxy-2',
      '/etc/keepalived/keepalived.conf',
      (s) => s.replace(/virtual_router_id \d+/, 'virtual_router_id 300'),
      /virtual_router_id|VRID/i,
    ],
    [
      'systemd: relative ExecStart',
      'haproxy-1',
      '/etc/systemd/system/wharf-routes.service',
      (s) => s.replace('ExecStart=/bin/sh', 'ExecStart=bin/sh'),
      /executable|absolute/i,
    ],
  ];
  for (const [title, node, path, breakIt, why] of cases) {
    it(title, async () => {
      const f = get(node, path);
      const broken = breakIt(f.content);
      expect(broken, 'the fault was injected').not.toBe(f.content);
      const nodeRoot = join(bad, title.replace(/\W+/g, '-'));
      for (const other of stack[node]!.files) {
        mkdirSync(dirname(join(nodeRoot, other.path)), { recursive: true });
        writeFileSync(join(nodeRoot, other.path), other.content, { mode: other.mode });
      }
      const good = await check(nodeRoot, f);
      expect(good.ok, explain(good)).toBe(true);
      const res = await check(nodeRoot, f, broken);
      expect(res.ok, `${path} with a fault passed ${f.check?.name}`).toBe(false);
      expect(res.output).toMatch(why);
    });
  }

  it('sshd: host keys must be present', async () => {
    const t2 = stackWith();
    t2.sftp.hostKeyDir = join(root, 'no-such-keys');
    const f = renderStack(t2, labInventory(t2))['sftp-sub']!.files.find(
      (x) => x.path === '/etc/ssh/sshd_config',
    )!;
    const res = await check(join(bad, 'nokeys'), f);
    expect(res.ok).toBe(false);
    expect(res.output).toMatch(/no hostkeys available|Could not load host key/i);
  });
});
