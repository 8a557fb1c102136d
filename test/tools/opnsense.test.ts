// The OPNsense driver against the lab's emulation running for real: a throwaway container of the
// lab's `opnsense` node image (nftables, Node 18, openssl), the emulation installed by the same
// steps the lab uses (installEmulation: bundle, settings, config.xml, a self-signed certificate made
// in the container), served over HTTPS on a loopback-published port, its rulesets loaded with the
// container's own nft. The driver trusts only that certificate (caFile) and authenticates with a
// key/secret read from files.
//
// Contract sources (opnsense/core paths and commits) are listed in test/unit/opnsense.test.ts,
// which holds the emulation to OPNsense's request/response shapes call by call; here the same
// shapes cross a real TLS connection, and rules become packets dropped or passed.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureImages } from '../../src/lab/images.ts';
import {
  configXml,
  installEmulation,
  newCredentials,
  OPN_BUNDLE_PATH,
  OPN_STATE,
  parseConfig,
} from '../../src/lab/opnsense/index.ts';
import { OpnClient, loadCredentials } from '../../src/opnsense/client.ts';
import { applyOpnsense, observeOpnsense } from '../../src/opnsense/driver.ts';
import { planOpnsense } from '../../src/opnsense/plan.ts';
import type { OpnDesired, OpnFilterRule } from '../../src/opnsense/types.ts';
import { FIXTURE_LABEL } from '../helpers/sshd-container.ts';

const ROLLBACK_S = 5;

let container: StartedTestContainer;
let dir: string;
let addr: string;
let port: number;
let caFile: string;
let creds: { key: string; secret: string };

const sh = async (line: string) => {
  const r = await container.exec(['/bin/sh', '-c', line]);
  return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr };
};

const client = (o: { secret?: string; style?: 'camel' | 'snake'; timeoutMs?: number } = {}) => {
  writeFileSync(join(dir, 'key'), `key=${creds.key}\n`);
  writeFileSync(join(dir, 'secret'), `secret=${o.secret ?? creds.secret}\n`);
  return new OpnClient(
    loadCredentials(
      {
        url: `https://127.0.0.1:${port}`,
        keyFile: join(dir, 'key'),
        secretFile: join(dir, 'secret'),
        caFile,
        commands: o.style ?? 'camel',
      },
      'hosts.firewall.api',
    ),
    o.timeoutMs ?? 10_000,
  );
};

const rule = (over: Partial<OpnFilterRule>): OpnFilterRule => ({
  enabled: '1',
  action: 'pass',
  quick: '1',
  interface: 'wan',
  direction: 'in',
  ipprotocol: 'inet',
  protocol: 'TCP',
  source_net: 'any',
  source_not: '0',
  source_port: '',
  destination_net: 'wanip',
  destination_not: '0',
  destination_port: '443',
  log: '0',
  sequence: '10',
  description: 'wharf: the API',
  ...over,
});

/** The API rule keeps the API reachable: without it (no anti-lockout here) the box cuts itself off. */
const BASE: OpnDesired = {
  aliases: [
    {
      enabled: '1',
      name: 'wharf_sftp',
      type: 'port',
      content: '2221-2222\n22',
      description: 'wharf: sftp ports',
    },
  ],
  rules: [
    rule({}),
    rule({ description: 'wharf: sftp', destination_port: 'wharf_sftp', sequence: '20', log: '1' }),
  ],
  nat: [
    {
      disabled: '0',
      interface: 'wan',
      ipprotocol: 'inet',
      protocol: 'tcp',
      source: { network: 'any', port: '', not: '0' },
      destination: { network: 'wanip', port: 'wharf_sftp', not: '0' },
      target: '127.0.0.1',
      'local-port': '',
      log: '0',
      sequence: '1',
      pass: 'pass',
      descr: 'wharf: sftp forward',
    },
  ],
};

const nftText = async () =>
  (await sh('nft list table inet wharf_opn; nft list table ip wharf_opn_nat')).stdout;

beforeAll(async () => {
  const image = (await ensureImages([], (l) => process.stderr.write(`${l}\n`), ['opnsense'])).opnsense;
  dir = mkdtempSync('/tmp/wharf-opn-');
  const c = new GenericContainer(image)
    .withCommand(['sleep', 'infinity'])
    .withAddedCapabilities('NET_ADMIN')
    .withExposedPorts(443)
    // nothing listens yet: the emulation is installed and started below
    .withWaitStrategy(Wait.forSuccessfulCommand('true'))
    .withLabels({ [FIXTURE_LABEL]: 'opnsense' });
  // published on loopback only
  (c as unknown as { hostConfig: { PortBindings: unknown } }).hostConfig.PortBindings = {
    '443/tcp': [{ HostIp: '127.0.0.1', HostPort: '0' }],
  };
  container = await c.start();
  port = container.getMappedPort(443);
  const ips = JSON.parse((await sh('ip -j -4 addr show eth0')).stdout) as {
    addr_info: { local: string; prefixlen: number }[];
  }[];
  addr = ips[0]!.addr_info[0]!.local;
  creds = newCredentials();
  let n = 0;
  const cert = await installEmulation(
    async (cmd, input) => {
      if (input === undefined) return sh(cmd[2]!);
      const f = `/tmp/.in-${n++}`;
      await container.copyContentToContainer([{ content: input, target: f }]);
      return sh(`(${cmd[2]!}) < ${f}; rc=$?; rm -f ${f}; exit $rc`);
    },
    {
      settings: {
        version: '26.1.4',
        port: 443,
        bind: '0.0.0.0',
        rollbackSeconds: ROLLBACK_S,
        noForward: [],
        antiLockout: {},
      },
      credentials: creds,
      interfaces: [
        { name: 'wan', descr: 'WAN', if: '', ipaddr: addr, subnet: ips[0]!.addr_info[0]!.prefixlen },
      ],
      addresses: ['127.0.0.1', addr],
      systemd: false,
    },
  );
  caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, cert);
  // The box as found: no anti-lockout here, so its one rule (wharf's, from an earlier run) is what
  // keeps the API reachable once the box loads its config at start.
  await container.copyContentToContainer([
    {
      content: configXml({
        ...parseConfig((await sh(`cat ${OPN_STATE}/config.xml`)).stdout),
        rules: [{ uuid: '5f0c2d8e-1111-4a4a-9b9b-000000000001', f: { ...BASE.rules[0]! } }],
      }),
      target: `${OPN_STATE}/config.xml`,
    },
  ]);
  await sh(`nohup /usr/bin/node ${OPN_BUNDLE_PATH} >/var/log/opnsense.log 2>&1 &`);
  for (let i = 0; ; i++) {
    if ((await sh('grep -q listening /var/log/opnsense.log')).code === 0) break;
    if (i > 100)
      throw new Error(`the emulation did not start: ${(await sh('cat /var/log/opnsense.log')).stdout}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}, 900_000);

afterAll(async () => {
  await container?.stop({ remove: true, removeVolumes: true });
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('OPNsense driver ⇄ emulation (HTTPS, real nft)', () => {
  it('refuses a request without the right key/secret (401) and never puts the secret in the error', async () => {
    const raw = await new Promise<number>((resolve, reject) => {
      const req = request(
        `https://127.0.0.1:${port}/api/core/firmware/status`,
        { ca: cert(), timeout: 10_000 },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.on('timeout', () => req.destroy(new Error('no answer')));
      req.end();
    });
    expect(raw).toBe(401);
    const err = await client({ secret: 'wrong-secret-value' })
      .call('GET', '/api/core/firmware/status')
      .catch((e: Error) => e);
    expect(String(err)).toMatch(/HTTP 401: the API key\/secret was refused/);
    expect(String(err)).not.toContain('wrong-secret-value');
  });

  it('plans, applies (nft loaded), is idempotent, with camelCase and snake_case alike', async () => {
    const c = client();
    const first = planOpnsense(BASE, await observeOpnsense(c), { style: 'camel' });
    expect(first.calls.map((x) => x.path)).toEqual([
      '/api/firewall/alias/addItem',
      '/api/firewall/filter/addRule',
      '/api/firewall/d_nat/addRule',
      '/api/firewall/alias/reconfigure',
      '/api/firewall/filter/apply',
    ]);
    const r = await applyOpnsense(c, BASE);
    expect(r.ok).toBe(true);
    const nft = await nftText();
    expect(nft).toMatch(/set alias_wharf_sftp \{[\s\S]*elements = \{ 22, 2221-2222 \}/);
    expect(nft).toMatch(
      new RegExp(
        `iifname "eth0" ip daddr ${addr.replace(/\./g, '\\.')} tcp dport @alias_wharf_sftp log prefix`,
      ),
    );
    expect(nft).toMatch(/table ip wharf_opn_nat \{\s*set alias_wharf_sftp \{/);
    expect(nft).toMatch(/tcp dport @alias_wharf_sftp dnat to 127\.0\.0\.1 comment "wharf: sftp forward"/);
    const snake = client({ style: 'snake' });
    const again = planOpnsense(BASE, await observeOpnsense(snake), { style: 'snake' });
    expect(again.calls).toEqual([]);
  });

  it('leaves the operator’s own rules alone and changes only wharf’s', async () => {
    const c = client({ style: 'snake' });
    const add = await c.call('POST', '/api/firewall/filter/add_rule', {
      rule: {
        interface: 'wan',
        protocol: 'TCP',
        destination_net: 'wanip',
        destination_port: '8080',
        description: 'operator: web',
      },
    });
    expect(add.json).toMatchObject({ result: 'saved' });
    const desired: OpnDesired = { ...BASE, rules: [BASE.rules[0]!] }; // wharf's sftp rule goes
    const p = planOpnsense(desired, await observeOpnsense(c), { style: 'snake' });
    expect(p.changes).toEqual([expect.objectContaining({ kind: 'rule', action: 'del', key: 'wharf: sftp' })]);
    expect((await applyOpnsense(c, desired)).ok).toBe(true);
    const rows = (await observeOpnsense(c)).rules.map((x) => x.description);
    expect(rows).toEqual(expect.arrayContaining(['operator: web', 'wharf: the API']));
    expect(rows).not.toContain('wharf: sftp');
    expect(await nftText()).toContain('"operator: web"');
    await applyOpnsense(c, BASE);
  });

  /** The API as a path check: a NEW connection (the client makes one per call), short timeout. */
  const apiCheck = async () => {
    try {
      await client({ timeoutMs: 2000 }).call('GET', '/api/core/firmware/status');
      return { name: 'management: the API (new connection)', ok: true, detail: 'answers', required: true };
    } catch (e) {
      return {
        name: 'management: the API (new connection)',
        ok: false,
        detail: (e as Error).message,
        required: true,
      };
    }
  };

  it('a change that cuts the API is rolled back by the box itself (its timer), wharf sending nothing', async () => {
    const c = client();
    await applyOpnsense(c, BASE);
    const cut: OpnDesired = { ...BASE, rules: BASE.rules.slice(1) }; // no pass rule for 443: default deny
    const r = await applyOpnsense(c, cut, {
      confirm: { probe: async () => [await apiCheck()], windowMs: 3000, boxWindowMs: ROLLBACK_S * 1000 },
    });
    if (r.reverted !== 'box')
      process.stderr.write(`${r.detail}\n${(await sh('tail -20 /var/log/opnsense.log')).stdout}\n`);
    expect(r).toMatchObject({ ok: false, reverted: 'box' });
    expect(r.detail).toMatch(/management: the API \(new connection\)/);
    expect((await apiCheck()).ok).toBe(true);
    expect((await observeOpnsense(c)).rules.map((x) => x.description)).toContain('wharf: the API');
    // the box's own record: armed by apply/{revision}, reverted by its timer after its window
    const [state, armedAt, timeoutS, doneAt, firedAt] = (await sh(`cat ${OPN_STATE}/rollback.status`)).stdout
      .trim()
      .split(' ');
    expect([state, timeoutS]).toEqual(['reverted', String(ROLLBACK_S)]);
    const took = Number(doneAt) - Number(armedAt);
    expect(took).toBeGreaterThanOrEqual(ROLLBACK_S - 0.5);
    expect(took).toBeLessThan(ROLLBACK_S + 3);
    expect(Number(firedAt) - Number(armedAt)).toBeGreaterThanOrEqual(ROLLBACK_S - 0.5);
    process.stderr.write(
      `box rollback: seen ${r.revertSeconds?.toFixed(1)} s after the bad change was loaded (box window ${ROLLBACK_S} s)\n`,
    );
  }, 90_000);

  it('a confirmed change keeps working: the rollback is cancelled', async () => {
    const c = client();
    const more: OpnDesired = {
      ...BASE,
      rules: [...BASE.rules, rule({ description: 'wharf: extra', destination_port: '9000', sequence: '30' })],
    };
    const r = await applyOpnsense(c, more, {
      confirm: { probe: async () => [await apiCheck()], windowMs: 3000, boxWindowMs: ROLLBACK_S * 1000 },
    });
    expect(r).toMatchObject({ ok: true });
    await new Promise((res) => setTimeout(res, (ROLLBACK_S + 2) * 1000)); // past the box's window
    expect((await observeOpnsense(c)).rules.map((x) => x.description)).toContain('wharf: extra');
    expect(await nftText()).toContain('wharf: extra');
  }, 90_000);

  it('on 26.7 (no savepoint) a change whose check fails is put back by wharf through the API', async () => {
    await restartEmulation('26.7');
    try {
      const c = client();
      const bad: OpnDesired = {
        ...BASE,
        rules: [
          ...BASE.rules,
          rule({ description: 'wharf: other', destination_port: '9001', sequence: '40' }),
        ],
      };
      const sftpBroken = { name: 'sftp banner (test)', ok: false, detail: 'no SSH banner', required: true };
      const r = await applyOpnsense(c, bad, {
        confirm: { probe: async () => [sftpBroken], windowMs: 1000, boxWindowMs: 60_000 },
      });
      expect(r.plan.warnings.join(' ')).toMatch(/PR #10411/);
      expect(r).toMatchObject({ ok: false, reverted: 'wharf' });
      expect((await observeOpnsense(c)).rules.map((x) => x.description)).not.toContain('wharf: other');
      expect(await nftText()).not.toContain('wharf: other');
    } finally {
      await restartEmulation('26.1.4');
    }
  }, 90_000);
});

/** Restart the emulation claiming another release (its config.xml stays). */
async function restartEmulation(version: string): Promise<void> {
  await sh(
    `pkill -f "^/usr/bin/node ${OPN_BUNDLE_PATH}"; sleep 0.5; sed -i 's/"version": "[^"]*"/"version": "${version}"/' /etc/wharf-opnsense/emulation.json; ` +
      `: > /var/log/opnsense.log; nohup /usr/bin/node ${OPN_BUNDLE_PATH} >/var/log/opnsense.log 2>&1 &`,
  );
  for (let i = 0; ; i++) {
    if ((await sh('grep -q listening /var/log/opnsense.log')).code === 0) return;
    if (i > 100)
      throw new Error(`the emulation did not restart: ${(await sh('cat /var/log/opnsense.log')).stdout}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const cert = (): string => readFileSync(caFile, 'utf8');
