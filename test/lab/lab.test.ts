// The lab with real containers: every node reachable over ssh like production; fresh nodes are as
// bare as new hosts (no wharf nftables table, no data-path routes: the lab pre-seeds only the
// management path, LAB_PRESEED); after provisioning (install → configure → verify, as on real
// hosts) the chain routes WAN traffic router → firewall → HAProxy with the client's address intact,
// and segmentation holds (the wan client reaches the router's WAN side and nothing else; lan nodes
// cannot reach wan; management sshd answers only on mgmt).
// GIVEN one lab (stack "labtest", 10.89.x, helpers.ts FABRIC_LAB), bare first, then provisioned;
// left up for runbooks.test.ts, which runs next (vitest.config.ts LAB_ORDER) and takes it down.
import { createServer, connect, type Server } from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { $ } from '../../src/exec/index.ts';
import { ensureEngine } from '../../src/lab/engine.ts';
import { labStatus, labUp, waitReady, type LabStatus } from '../../src/lab/lab.ts';
import { DockerApiError } from '../../src/lab/docker.ts';
import { labNode, labNodes } from '../../src/lab/node.ts';
import { provisionLab } from '../../src/lab/provision.ts';
import { loadInventory } from '../../src/topology/load.ts';
import type { Topology } from '../../src/topology/model.ts';
import { runCli } from '../../src/cli/program.ts';
import { FABRIC_LAB, labelled, onNode, singleHaproxyTopology, tcpProbe } from './helpers.ts';

const STACK = FABRIC_LAB.stack;
const OCTET = FABRIC_LAB.octet;
let t: Topology;
let file: string;
let s: LabStatus;
let cfg: string;
const a = (node: string, net: string) => s.nodes[node]!.addresses[net]!;

/** The first bytes a TCP server sends to a client connecting from this host. */
function bannerFrom(host: string, port: number, ms = 4000): Promise<string> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    let got = '';
    const done = (v: string) => {
      sock.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(got || 'timeout'), ms);
    sock.on('data', (d) => {
      got += d.toString();
      if (got.length >= 8) {
        clearTimeout(timer);
        done(got);
      }
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      done(`error: ${e.message}`);
    });
  });
}

beforeAll(async () => {
  await ensureEngine();
  ({ file, t } = singleHaproxyTopology(STACK, OCTET));
  await labUp(t, { topologyFile: file, log: (l) => process.stderr.write(`[lab up] ${l}\n`) });
  s = await labStatus(t);
  cfg = s.sshConfig;
});

/** The nodes configure manages (not lab-only). */
const MANAGED = ['router', 'firewall', 'haproxy', 'sftp-main', 'sftp-sub', 'sftp-backup'];

describe('fresh nodes are as bare as new hosts (before provisioning)', () => {
  it('no wharf nftables table, no data-path routes, none of the files configure lays down', async () => {
    const mgmtGw = `10.${OCTET}.9.1`;
    for (const n of MANAGED) {
      const tables = await onNode(
        cfg,
        n,
        'if command -v nft >/dev/null; then nft list tables; else echo no-nft; fi',
      );
      expect(tables.code, `${n}: ${tables.stderr}`).toBe(0);
      expect(tables.stdout, n).not.toMatch(/wharf/);
      if (n === 'router' || n === 'firewall') expect(tables.stdout, n).not.toContain('no-nft');
      // only connected routes and the default route via the mgmt gateway (apt, management)
      const routes = await onNode(cfg, n, 'ip -4 route show');
      expect(routes.code, routes.stderr).toBe(0);
      for (const line of routes.stdout.trim().split('\n')) {
        expect(
          line.startsWith(`default via ${mgmtGw} `) || / proto kernel scope link /.test(line),
          `${n}: unexpected route "${line}"`,
        ).toBe(true);
      }
      const files = await onNode(
        cfg,
        n,
        'ls -d /etc/wharf /etc/nftables.conf.d /etc/ssh/sshd_config.d/00-wharf-mgmt.conf ' +
          '/etc/systemd/system/wharf-routes.service /etc/systemd/system/nftables.service.d /etc/sysctl.d/60-wharf.conf 2>/dev/null; true',
      );
      expect(files.stdout.trim(), n).toBe('');
    }
    // the container settings that cannot come from inside (LAB_CONTAINER_SETTINGS) are there
    const fwd = await labNode(STACK, 'router').exec(['cat', '/proc/sys/net/ipv4/ip_forward']);
    expect(fwd.stdout.trim()).toBe('1');
  });

  it('node handles: labNodes lists the lab; exec returns output and exit codes, with stdin', async () => {
    const nodes = await labNodes(STACK);
    expect(nodes.map((n) => n.name)).toEqual(Object.keys(s.nodes).sort());
    const main = labNode(STACK, 'sftp-main');
    const i = await main.inspect();
    expect(i).toMatchObject({ running: true, paused: false });
    expect(i.addresses).toMatchObject({ lan: a('sftp-main', 'lan'), mgmt: a('sftp-main', 'mgmt') });
    const r = await main.exec(['sh', '-c', 'cat; echo err >&2; exit 3'], { input: 'from stdin\n' });
    expect(r).toEqual({ code: 3, stdout: 'from stdin\n', stderr: 'err\n' });
    await main.putFiles([{ path: '/tmp/wharf-handle/x.txt', content: 'put\n', mode: 0o640 }]);
    expect((await main.exec(['stat', '-c', '%a %U %n', '/tmp/wharf-handle/x.txt'])).stdout).toBe(
      '640 root /tmp/wharf-handle/x.txt\n',
    );
    // the upload left /tmp as it was (apt needs it world-writable)
    expect((await main.exec(['stat', '-c', '%a', '/tmp'])).stdout).toBe('1777\n');
  });

  it('node handles: pause makes exec fail with 409 naming the node; kill gives exit 137; start brings it back', async () => {
    const backup = labNode(STACK, 'sftp-backup');
    await backup.pause();
    try {
      expect(await backup.inspect()).toMatchObject({ running: true, paused: true });
      const err = await backup.exec(['true']).catch((e: Error) => e);
      expect(err).toBeInstanceOf(DockerApiError);
      expect((err as DockerApiError).statusCode).toBe(409);
      expect((err as Error).message).toMatch(/^lab node sftp-backup: .*HTTP 409.*is paused/);
    } finally {
      await backup.unpause();
    }
    expect((await backup.exec(['true'])).code).toBe(0);

    const sink = labNode(STACK, 'notify-sink');
    const before = Date.now();
    await sink.kill();
    const dead = await sink.inspect();
    expect(dead).toMatchObject({ running: false, exitCode: 137 });
    expect(Date.parse(dead.finishedAt)).toBeGreaterThanOrEqual(before - 2000);
    await sink.start();
    expect((await sink.inspect()).running).toBe(true);
    expect(await waitReady(cfg, 'notify-sink', Date.now() + 90_000)).toMatch(/^(running|degraded)$/);
  });
});

describe('management access', () => {
  it('every node answers `ssh -F <sshConfig> -o StrictHostKeyChecking=yes NODE true`', async () => {
    const names = Object.keys(s.nodes);
    expect(names.sort()).toEqual(
      [
        'bastion',
        'firewall',
        'haproxy',
        'monitor',
        'notify-sink',
        'router',
        'sftp-backup',
        'sftp-main',
        'sftp-sub',
        'wan-client',
      ].sort(),
    );
    for (const n of names) {
      const r = await onNode(cfg, n, 'hostname');
      expect(r.code, `${n}: ${r.stderr}`).toBe(0);
      expect(r.stdout.trim()).toBe(n);
    }
  });

  it('a wrong host key is refused (known_hosts is really checked)', async () => {
    const kh = readFileSync(s.knownHosts, 'utf8');
    const mainKey = kh.split('\n').find((l) => l.startsWith(`${a('sftp-main', 'mgmt')} `))!;
    const routerLine = kh.split('\n').find((l) => l.startsWith(`${a('router', 'mgmt')} `))!;
    expect(mainKey).toBeTruthy();
    // Pretend the router presents sftp-main's key: strict checking must stop the connection.
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(`${tmpdir()}/wharf-kh-`);
    const bad = kh.replace(routerLine, `${a('router', 'mgmt')} ${mainKey.split(' ').slice(1).join(' ')}`);
    writeFileSync(`${dir}/known_hosts`, bad);
    const r = await $({
      nothrow: true,
      quiet: true,
      timeout: 20_000,
    })`ssh -F ${cfg} -o ${`UserKnownHostsFile=${dir}/known_hosts`} -o ControlMaster=no -o ControlPath=none router true`;
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
  });

  it('the inventory loads with loadInventory and points at the generated ssh_config', async () => {
    const inv = loadInventory(s.inventory, t);
    expect(inv.sshConfig).toBe(cfg);
    expect(inv.knownHosts).toBe(s.knownHosts);
    expect(inv.hosts['sftp-main']!.ssh.host).toBe('sftp-main');
    expect(inv.entrypoint).toEqual({ host: '127.0.0.1', port: s.entrypoint.port });
    expect(inv.users?.demo).toMatchObject({
      password: s.demoUser.password,
      privateKey: s.demoUser.privateKey,
    });
    expect(inv.users?.demo?.passwordHash).toMatch(/^\$6\$/);
    expect(inv.users?.demo?.authorizedKeys?.[0]).toBe(
      readFileSync(`${s.demoUser.privateKey}.pub`, 'utf8').trim(),
    );
    // The SFTP nodes present the stack's shared host key (secretsDir) from the first boot on.
    const shared = readFileSync(`${inv.secretsDir}/ssh_host_ed25519_key.pub`, 'utf8').split(' ')[1];
    for (const n of ['sftp-main', 'sftp-sub', 'sftp-backup']) {
      const r = await onNode(cfg, n, 'cat /etc/ssh/ssh_host_ed25519_key.pub');
      expect(r.stdout.split(' ')[1]).toBe(shared);
    }
    expect(inv.hosts['haproxy']!.addresses).toEqual({
      dmz: `10.${OCTET}.2.4`,
      lan: `10.${OCTET}.3.4`,
      mgmt: `10.${OCTET}.9.4`,
    });
  });

  it('`wharf lab status --json` prints the documented shape', async () => {
    let out = '';
    const code = await runCli(['lab', 'status', '--json', '-c', file], {
      out: (x) => (out += x),
      err: () => {},
    });
    expect(code).toBe(0);
    const j = JSON.parse(out);
    expect(j.entrypoint).toEqual({ host: '127.0.0.1', port: expect.any(Number) });
    expect(j.ports).toEqual({ sftp: j.entrypoint.port, write: expect.any(Number), read: expect.any(Number) });
    expect(j.nodes['sftp-main']).toMatchObject({
      role: 'main',
      container: 'wharf-labtest-sftp-main',
      ssh: { port: 22 },
    });
    expect(j.nodes['sftp-sub'].role).toBe('sub');
    expect(j.nodes.router.role).toBe('router');
    for (const k of ['sshConfig', 'inventory', 'knownHosts']) expect(existsSync(j[k])).toBe(true);
    expect(j.demoUser.name).toBe('demo');
    expect(j.demoUser.password.length).toBeGreaterThanOrEqual(12);
    expect(existsSync(j.demoUser.privateKey)).toBe(true);
  });
});

describe('shared apt pool', () => {
  it('two nodes install at the same time, a third installs from the pool without downloading', async () => {
    const install = (n: string) =>
      onNode(
        cfg,
        n,
        'apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q rsync 2>&1',
        180_000,
      );
    const [m, sub] = await Promise.all([install('sftp-main'), install('sftp-sub')]);
    expect(m.code, m.stdout + m.stderr).toBe(0);
    expect(sub.code, sub.stdout + sub.stderr).toBe(0);
    const pool = await onNode(cfg, 'sftp-backup', 'ls /var/cache/wharf-apt-pool');
    expect(pool.stdout).toMatch(/^rsync_.*\.deb$/m);
    const b = await install('sftp-backup');
    expect(b.code, b.stdout).toBe(0);
    expect(b.stdout).toMatch(/Need to get 0 B\//);
  });
});

describe('provisioned: configure laid down the fabric, the chain works', () => {
  beforeAll(async () => {
    await provisionLab(t, (l) => process.stderr.write(`[provision] ${l}\n`));
  });

  it('router and firewall now have the wharf tables; firewall and haproxy their routes to the WAN', async () => {
    for (const n of ['router', 'firewall']) {
      const r = await onNode(cfg, n, 'nft list tables');
      expect(r.stdout, n).toMatch(/table inet wharf/);
    }
    for (const n of ['firewall', 'haproxy']) {
      const r = await onNode(cfg, n, 'ip -4 route show');
      expect(r.stdout, n).toMatch(new RegExp(`^10\\.${OCTET}\\.0\\.0/24 via `, 'm'));
    }
  });

  it('management sshd on router, firewall and haproxy answers on mgmt only', async () => {
    // Positive control: the bastion (on mgmt) gets an SSH banner from each mgmt address.
    for (const n of ['router', 'firewall', 'haproxy']) {
      const p = await tcpProbe(cfg, 'bastion', a(n, 'mgmt'), 22);
      expect(p.banner, `${n} mgmt: ${p.detail}`).toMatch(/^SSH-2\.0/);
    }
    // From a neighbour on each data network: no SSH banner on port 22.
    const dataPlane: [string, string, string][] = [
      ['firewall', 'router', 'transit'],
      ['router', 'firewall', 'transit'],
      ['haproxy', 'firewall', 'dmz'],
      // (haproxy's dmz :22 is HAProxy's sftp frontend now: sftp-main answers there, see below)
      ['sftp-main', 'haproxy', 'lan'],
      // (the router's wan :22 is DNATed to HAProxy's sftp frontend now: the ss check below covers it)
    ];
    const dp = await Promise.all(dataPlane.map(([from, n, net]) => tcpProbe(cfg, from, a(n, net), 22)));
    dataPlane.forEach(([from, n, net], i) =>
      expect(dp[i]!.banner, `${from} → ${n} ${net} ${a(n, net)}:22 ${dp[i]!.detail}`).not.toMatch(/SSH-2\.0/),
    );
    // On the nodes themselves: sshd listens on the mgmt address alone (configure's drop-in).
    for (const n of ['router', 'firewall', 'haproxy']) {
      const r = await onNode(cfg, n, `ss -Htlnp '( sport = :22 )'`);
      const sshd = r.stdout.split('\n').filter((l) => l.includes('"sshd"'));
      expect(sshd.length, `${n}: ${r.stdout}`).toBeGreaterThan(0);
      for (const l of sshd) expect(l, n).toContain(` ${a(n, 'mgmt')}:22 `);
    }
    // haproxy's dmz :22 is a listener, and not sshd's (HAProxy's sftp frontend)
    const hap = await onNode(cfg, 'haproxy', `ss -Htlnp '( sport = :22 )'`);
    const dmz = hap.stdout.split('\n').filter((l) => l.includes(` ${a('haproxy', 'dmz')}:22 `));
    expect(dmz, hap.stdout).toHaveLength(1);
    expect(dmz[0]).not.toContain('"sshd"');
  });
});

describe('the chain', () => {
  it('the wan client reaches HAProxy through router and firewall, and HAProxy sees its address', async () => {
    const wanClient = a('wan-client', 'wan');
    const hold = onNode(
      cfg,
      'wan-client',
      `timeout 8 bash -c 'exec 3<>/dev/tcp/${s.direct.host}/2222; head -c 8 <&3; sleep 4'`,
    );
    await new Promise((r) => setTimeout(r, 2000));
    const ss = await onNode(cfg, 'haproxy', `ss -Htn state established '( sport = :2222 )'`);
    const r = await hold;
    expect(r.stdout).toMatch(/^SSH-2\.0/);
    // Source addresses are preserved end to end: no masquerade on the chain.
    expect(ss.stdout).toContain(`${wanClient}:`);
  });

  it('the WAN entry published on 127.0.0.1 and the router WAN address (direct) both lead to HAProxy', async () => {
    expect(await bannerFrom('127.0.0.1', s.ports.write!)).toMatch(/^SSH-2\.0/);
    expect(await bannerFrom(s.direct.host, s.direct.ports.write!)).toMatch(/^SSH-2\.0/);
    // A frontend port with no listener (HAProxy stopped for a moment): the connection is refused by
    // the haproxy node itself (the RST travels back through the chain), it does not hang.
    const stop = await onNode(cfg, 'haproxy', 'systemctl stop haproxy');
    expect(stop.code, stop.stderr).toBe(0);
    try {
      const p = await tcpProbe(cfg, 'wan-client', s.direct.host, s.direct.ports.read!);
      expect(p.result, p.detail).toBe('refused');
    } finally {
      await onNode(cfg, 'haproxy', 'systemctl start haproxy');
    }
  });
});

describe('segmentation', () => {
  let hostListener: Server;
  let hostPort = 0;
  beforeAll(async () => {
    // Something "beyond the router's management side": a listener on the host's mgmt gateway.
    hostListener = createServer((c) => {
      c.on('error', () => {});
      c.end('HELLO-FROM-HOST\n');
    });
    await new Promise<void>((r) => hostListener.listen(0, `10.${OCTET}.9.1`, () => r()));
    const addr = hostListener.address();
    hostPort = typeof addr === 'object' && addr ? addr.port : 0;
  });
  afterAll(() => hostListener.close());

  it('wan-client reaches nothing on transit, dmz, lan or mgmt, nor the host behind mgmt', async () => {
    const targets: [string, string, number, string | null][] = [
      // [description, address, known-open port, node that proves the port is open]
      ['firewall transit address (no listener: proves routing only)', a('firewall', 'transit'), 22, null],
      ['haproxy dmz listener', a('haproxy', 'dmz'), 2222, 'firewall'],
      ['notify-sink lan webhook', a('notify-sink', 'lan'), t.notifications.webhook.port, 'haproxy'],
      ['sftp-main mgmt sshd', a('sftp-main', 'mgmt'), 22, 'bastion'],
      ['router mgmt sshd', a('router', 'mgmt'), 22, 'bastion'],
      ['host behind mgmt', `10.${OCTET}.9.1`, hostPort, 'bastion'],
    ];
    // Probes run side by side: each expected timeout costs its full 3 s.
    const probes = await Promise.all(
      targets.map(async ([, addr, port, control]) => ({
        from: await tcpProbe(cfg, 'wan-client', addr, port),
        ok: control ? await tcpProbe(cfg, control, addr, port) : null,
      })),
    );
    targets.forEach(([what, addr, port, control], i) => {
      const { from, ok } = probes[i]!;
      expect(from.result, `wan-client → ${what} ${addr}:${port}: ${from.detail}`).toBe('timeout');
      if (control) expect(ok?.result, `control ${control} → ${what}: ${ok?.detail}`).toBe('open');
    });
    // ICMP: the router's WAN address answers, nothing behind it does.
    const ping = (addr: string) => onNode(cfg, 'wan-client', `ping -c 1 -W 1 ${addr}`);
    expect((await ping(s.direct.host)).code).toBe(0);
    const dark = [
      a('firewall', 'transit'),
      a('haproxy', 'dmz'),
      a('sftp-main', 'lan'),
      a('sftp-main', 'mgmt'),
    ];
    const pings = await Promise.all(dark.map(ping));
    dark.forEach((addr, i) => expect(pings[i]!.code, `ping ${addr}`).not.toBe(0));
  });

  it('the host is no bypass: a route via the wan bridge gateway does not reach mgmt or lan', async () => {
    const gw = `10.${OCTET}.0.1`;
    const add = await onNode(
      cfg,
      'wan-client',
      `ip route replace 10.${OCTET}.9.0/24 via ${gw} && ip route replace 10.${OCTET}.3.0/24 via ${gw}`,
    );
    expect(add.code, add.stderr).toBe(0);
    try {
      const m = await tcpProbe(cfg, 'wan-client', a('sftp-main', 'mgmt'), 22);
      expect(m.result, m.detail).toBe('timeout');
      const l = await tcpProbe(cfg, 'wan-client', a('notify-sink', 'lan'), t.notifications.webhook.port);
      expect(l.result, l.detail).toBe('timeout');
    } finally {
      await onNode(cfg, 'wan-client', `ip route del 10.${OCTET}.9.0/24; ip route del 10.${OCTET}.3.0/24`);
    }
  });

  it('lan nodes cannot reach wan directly', async () => {
    const wc = a('wan-client', 'wan');
    // Control: the wan-client's sshd is open on wan (the router, on wan, gets its banner).
    const ok = await tcpProbe(cfg, 'router', wc, 22);
    expect(ok.banner, ok.detail).toMatch(/^SSH-2\.0/);
    const lan = ['sftp-main', 'sftp-sub', 'sftp-backup', 'notify-sink'];
    const probes = await Promise.all(
      lan.map(
        async (n) => [await tcpProbe(cfg, n, wc, 22), await tcpProbe(cfg, n, s.direct.host, 2222)] as const,
      ),
    );
    lan.forEach((n, i) => {
      const [p, r] = probes[i]!;
      expect(p.result, `${n} → wan-client ${wc}:22: ${p.detail}`).not.toBe('open');
      expect(r.result, `${n} → router wan: ${r.detail}`).not.toBe('open');
    });
  });
});

describe('notify sink', () => {
  it('receives a real webhook POST and a real SMTP mail from a lan node; `lab notices --json` lists them', async () => {
    const sink = a('notify-sink', 'lan');
    const hook = t.notifications.webhook;
    const body = '{"text":"upload demo/a.txt"}';
    const post =
      `exec 3<>/dev/tcp/${sink}/${hook.port}; printf 'POST ${hook.path} HTTP/1.0\\r\\nContent-Type: application/json\\r\\n` +
      `Content-Length: ${body.length}\\r\\n\\r\\n%s' '${body}' >&3; head -1 <&3`;
    const r1 = await onNode(cfg, 'sftp-main', post);
    expect(r1.stdout, r1.stderr).toMatch(/^HTTP\/1\.[01] 2\d\d/);
    // An SMTP dialogue spoken by bash: each command after the server's reply.
    const smtp =
      `exec 3<>/dev/tcp/${sink}/${t.notifications.smtp.port}; r() { IFS= read -r l <&3; echo "$l"; }; r; ` +
      `for c in 'HELO sftp-main' 'MAIL FROM:<wharf@example.org>' 'RCPT TO:<ops@example.org>' 'DATA'; ` +
      `do printf '%s\\r\\n' "$c" >&3; r; done; ` +
      `printf 'Subject: upload demo/a.txt\\r\\n\\r\\nfile a.txt arrived\\r\\n.\\r\\n' >&3; r; printf 'QUIT\\r\\n' >&3; r`;
    const r2 = await onNode(cfg, 'sftp-main', smtp);
    expect(r2.stdout, r2.stderr).toMatch(/^250 /m);
    let out = '';
    const code = await runCli(['lab', 'notices', '--json', '-c', file], {
      out: (x) => (out += x),
      err: () => {},
    });
    expect(code).toBe(0);
    const notices = JSON.parse(out) as { kind: string; subject?: string; body: unknown; path?: string }[];
    // verify's own probe notices are there too: find the ones sent here
    const ours = (n: { body: unknown; subject?: string }) => JSON.stringify(n).includes('upload demo/a.txt');
    expect(notices.find((n) => n.kind === 'webhook' && ours(n))).toMatchObject({
      path: hook.path,
      body: { text: 'upload demo/a.txt' },
    });
    expect(notices.find((n) => n.kind === 'smtp' && ours(n))).toMatchObject({ subject: 'upload demo/a.txt' });
  });
});

describe('idempotence', () => {
  // its speed is the bench's (warm lab up), not a timed test's: printed here
  it('a second `lab up` reuses every container', async () => {
    const r = await labUp(t, { topologyFile: file });
    expect(r.created).toEqual([]);
    console.log(`[measure] warm lab up (nothing created): ${r.durationMs} ms`);
    const after = await labelled(STACK);
    expect(after.containers.length).toBe(10);
  });
});
