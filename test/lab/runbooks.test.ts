// Runbooks against the lab's real daemons, from bare nodes: install → configure → verify, then
// idempotence, a one-value change, a config its daemon rejects, an unreachable host, an
// interrupted run, and a real OpenSSH sftp client through the entry point.
// GIVEN the lab lab.test.ts built bare and provisioned (stack "labtest", 10.89.x, helpers.ts
// FABRIC_LAB), reused; run alone, this file brings it up and provisions it from bare nodes itself.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureEngine } from '../../src/lab/engine.ts';
import { raiseHostSysctls } from '../../src/lab/provision.ts';
import { labDown, labStatus, labUp, type LabStatus } from '../../src/lab/lab.ts';
import { loadInventory, topologyFromObject } from '../../src/topology/load.ts';
import type { Topology } from '../../src/topology/model.ts';
import type { Inventory } from '../../src/topology/inventory.ts';
import { runRunbookByName } from '../../src/cli/commands/run.ts';
import { runRunbook, MemoryReporter } from '../../src/runbook/index.ts';
import { configureDesired } from '../../src/stack/desired.ts';
import { ensureStackSecrets } from '../../src/stack/secrets.ts';
import { sshTransports, closeAll } from '../../src/transport/index.ts';
import type { Transport } from '../../src/transport/types.ts';
import { FABRIC_LAB, onNode, singleHaproxyTopology, REPO } from './helpers.ts';
import { freePort } from '../../src/core/net.ts';

const STACK = FABRIC_LAB.stack;
let t: Topology;
let file: string;
let s: LabStatus;
let inv: Inventory;
let transports: Map<string, Transport>;
const log: string[] = [];
const quietLog = (l: string) => log.push(l);

const haproxyCfg = async () => (await onNode(s.sshConfig, 'haproxy', 'cat /etc/haproxy/haproxy.cfg')).stdout;

function withTopology(mut: (doc: Record<string, unknown>) => void): { t: Topology; file: string } {
  const doc = parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  mut(doc);
  const f = join(mkdtempSync(join(tmpdir(), 'wharf-rb-')), 'stack.yaml');
  writeFileSync(f, stringify(doc));
  return { t: topologyFromObject(doc, f), file: f };
}

let reporter = new MemoryReporter();
const run = (name: string, o: { t?: Topology; inv?: Inventory; check?: boolean; diff?: boolean } = {}) =>
  runRunbookByName(name, {
    reporter,
    topology: o.t ?? t,
    inventory: o.inv ?? inv,
    check: Boolean(o.check),
    diff: Boolean(o.diff),
    log: quietLog,
    transports,
  });

/** Upload with the real OpenSSH sftp client as the demo user through the lab's entry point. */
function opensshSftp(batch: string, port: number) {
  const kh = join(mkdtempSync(join(tmpdir(), 'wharf-kh-')), 'known_hosts');
  const pub = readFileSync(join(ensureStackSecrets(t, inv).dir, 'ssh_host_ed25519_key.pub'), 'utf8').trim();
  writeFileSync(kh, `[127.0.0.1]:${port} ${pub}\n`);
  return spawnSync(
    'sftp',
    [
      '-b',
      '-',
      '-i',
      s.demoUser.privateKey,
      '-P',
      String(port),
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      `UserKnownHostsFile=${kh}`,
      '-o',
      'IdentitiesOnly=yes',
      `${s.demoUser.name}@127.0.0.1`,
    ],
    { input: batch, encoding: 'utf8', timeout: 30_000 },
  );
}

beforeAll(async () => {
  await ensureEngine();
  ({ file, t } = singleHaproxyTopology(STACK, FABRIC_LAB.octet));
  await labUp(t, {
    topologyFile: file,
    log: (l) => process.stderr.write(`[lab up] ${l}\n`),
  });
  s = await labStatus(t);
  inv = loadInventory(s.inventory, t);
  raiseHostSysctls(t, inv, (l) => process.stderr.write(`${l}\n`));
  transports = sshTransports(inv) as Map<string, Transport>;
});

afterAll(async () => {
  if (transports) await closeAll(transports.values());
  if (t && !process.env.WHARF_KEEP_LAB) await labDown(t.name);
});

describe('runbooks on the lab', () => {
  // From bare nodes when this file runs alone; after lab.test.ts (which provisioned these nodes from
  // bare with the same runbooks, provisionLab) a re-run that must pass as well.
  it('install → configure → verify passes (from bare nodes, or again on lab.test’s provisioned nodes)', async () => {
    const bare =
      (await onNode(s.sshConfig, 'haproxy', 'command -v haproxy || echo absent')).stdout.trim() === 'absent';
    const i = await run('install');
    expect(i.error ?? '').toBe('');
    expect(i.ok).toBe(true);
    if (bare) expect(i.changes).toBeGreaterThan(5);
    const c = await run('configure');
    expect(c.error ?? '').toBe('');
    expect(c.ok).toBe(true);
    process.stderr.write(
      `[measure] configure ${bare ? 'first run on bare nodes' : 'on lab.test’s provisioned nodes'}: ${c.durationMs} ms, ${c.changes} changes\n`,
    );
    const v = await run('verify');
    expect(v.error ?? '').toBe('');
    expect(v.ok).toBe(true);
  });

  it('configure a second time reports 0 changes; install too', async () => {
    const c = await run('configure');
    expect(c.error ?? '').toBe('');
    process.stderr.write(`[measure] configure no-op rerun: ${c.durationMs} ms\n`);
    expect(c.changes, JSON.stringify(c.hosts)).toBe(0);
    expect((await run('install')).changes).toBe(0);
  });

  // (not maxconn: sshd's MaxStartups on the SFTP nodes is sized from it)
  it('one value changed (connect timeout): --check --diff shows exactly that on haproxy only; apply changes only that', async () => {
    const changed = withTopology((d) => {
      const h = d.haproxy as { timeouts: Record<string, unknown> };
      h.timeouts = { ...h.timeouts, connect: '750ms' };
    });
    const before = await haproxyCfg();
    reporter = new MemoryReporter();
    const plan = await run('configure', { t: changed.t, check: true, diff: true });
    expect(plan.ok).toBe(true);
    expect(plan.changes).toBeGreaterThan(0);
    for (const [h, x] of Object.entries(plan.hosts))
      expect(x.changes, h).toBe(h === 'haproxy' ? x.changes : 0);
    expect(await haproxyCfg()).toBe(before); // --check changed nothing
    const planText = reporter.events.join('\n');
    expect(planText).not.toMatch(/sftp-main: \d+ change|update file \/etc\/ssh/);
    expect(planText).toMatch(/-\s*timeout connect 500ms/);
    expect(planText).toMatch(/\+\s*timeout connect 750ms/);
    // the plan as steps: one per change, `<host>:<change id>`, all on haproxy
    const ids = plan.steps.map((x) => x.id);
    expect(ids).toContain('haproxy:file /etc/haproxy/haproxy.cfg');
    expect(plan.steps.every((x) => x.host === 'haproxy' && x.id.startsWith('haproxy:'))).toBe(true);
    const applied = await run('configure', { t: changed.t });
    expect(applied.ok).toBe(true);
    // applying ran the same step ids (the journal's apply entries)
    const journal = readFileSync(applied.journal!, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id?: string; step: string; result: string });
    expect(journal.filter((e) => e.step === 'apply').map((e) => [e.id, e.result])).toEqual(
      ids.map((id) => [id, 'ok']),
    );
    expect(applied.steps.map((x) => [x.id, x.result])).toEqual(ids.map((id) => [id, 'ok']));
    expect(
      Object.entries(applied.hosts)
        .filter(([, x]) => x.changes > 0)
        .map(([h]) => h),
    ).toEqual(['haproxy']);
    expect(await haproxyCfg()).toContain('timeout connect 750ms');
    // back to the original
    expect((await run('configure')).ok).toBe(true);
  });

  it('a config its daemon rejects: apply stops, the old config stays, uploads keep working', async () => {
    const before = await haproxyCfg();
    const desired = configureDesired(t, inv, ensureStackSecrets(t, inv), ['haproxy']);
    for (const r of desired.haproxy!) {
      if (r.kind === 'file' && r.path === '/etc/haproxy/haproxy.cfg')
        r.content += '\n    no-such-keyword 42\n';
    }
    const res = await runRunbook({
      stack: t.name,
      runbook: 'configure',
      desired,
      transports,
      reporter: new MemoryReporter(),
    });
    expect(res.ok).toBe(false);
    expect(res.exitCode).toBe(1);
    expect(res.error).toMatch(/haproxy.*haproxy\.cfg/s);
    expect(await haproxyCfg()).toBe(before);
    const up = opensshSftp(
      `put ${join(REPO, 'package.json')} upload/after-bad-config.json\n`,
      s.entrypoint.port,
    );
    expect(up.status, up.stderr).toBe(0);
  });

  it('an unreachable host: preflight fails, naming it, and no host is changed', async () => {
    const bad: Inventory = structuredClone(inv);
    // nothing listens there: connection refused, like a host that is down
    bad.hosts['sftp-backup']!.ssh = {
      ...bad.hosts['sftp-backup']!.ssh,
      host: '127.0.0.1',
      port: await freePort(),
    };
    const badTransports = sshTransports(bad) as Map<string, Transport>;
    const changed = withTopology((d) => {
      (d.haproxy as Record<string, unknown>).maxconn = 2345;
    });
    const before = await haproxyCfg();
    try {
      const res = await runRunbookByName('configure', {
        topology: changed.t,
        inventory: bad,
        log: quietLog,
        transports: badTransports,
      }).catch((e: Error) => ({ ok: false, error: e.message, exitCode: 1 }));
      expect(res.ok).toBe(false);
      expect(res.error).toContain('sftp-backup');
    } finally {
      await closeAll(badTransports.values());
    }
    expect(await haproxyCfg()).toBe(before);
  });

  it('a run killed in the middle (SIGINT, then kill -9) converges on the next run and verify passes', async () => {
    const changed = withTopology((d) => {
      (d.haproxy as Record<string, unknown>).maxconn = 2999;
    });
    for (const signal of ['SIGINT', 'SIGKILL'] as const) {
      const errFile = join(mkdtempSync(join(tmpdir(), 'wharf-kill-')), 'stderr');
      const child = spawn(
        process.execPath,
        [join(REPO, 'bin/wharf.mjs'), 'run', 'configure', '-c', changed.file, '-i', s.inventory],
        { cwd: REPO, stdio: ['ignore', 'ignore', openSync(errFile, 'w')], detached: true },
      );
      const exited = new Promise((r) => child.once('exit', r));
      // kill it once it has started changing hosts (the plan is printed before apply)
      const t0 = Date.now();
      while (
        Date.now() - t0 < 30_000 &&
        child.exitCode === null &&
        !/apply|\[haproxy\]/.test(readFileSync(errFile, 'utf8'))
      ) {
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(child.exitCode, readFileSync(errFile, 'utf8')).toBe(null);
      process.kill(-child.pid!, signal);
      await exited;
      const again = await run('configure', { t: changed.t });
      expect(again.error ?? '', signal).toBe('');
      expect(again.ok).toBe(true);
      expect(await haproxyCfg()).toContain('maxconn 2999');
      expect((await run('configure', { t: changed.t })).changes).toBe(0);
      // and back, for the next round
      expect((await run('configure')).ok).toBe(true);
    }
    const v = await run('verify');
    expect(v.error ?? '').toBe('');
    expect(v.ok).toBe(true);
  });

  it('OpenSSH sftp as the demo user uploads through the entry point; the file reaches main then sub; a shell is refused', async () => {
    const name = `openssh-${Date.now()}.json`;
    const up = opensshSftp(`put ${join(REPO, 'package.json')} upload/${name}\n`, s.entrypoint.port);
    expect(up.status, up.stderr).toBe(0);
    const want = spawnSync('sha256sum', [join(REPO, 'package.json')], { encoding: 'utf8' }).stdout.split(
      ' ',
    )[0];
    const path = `/srv/sftp/${s.demoUser.name}/upload/${name}`;
    const main = await onNode(s.sshConfig, 'sftp-main', `sha256sum ${path}`);
    expect(main.stdout.split(' ')[0]).toBe(want);
    let onSub = '';
    const t0 = Date.now();
    while (Date.now() - t0 < (t.replication.lsyncd.delay + 10) * 1000) {
      onSub =
        (await onNode(s.sshConfig, 'sftp-sub', `sha256sum ${path} 2>/dev/null`)).stdout.split(' ')[0] ?? '';
      if (onSub === want) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(onSub).toBe(want);
    process.stderr.write(`[measure] main → sub lag (OpenSSH upload, polled): ${Date.now() - t0} ms\n`);
    // a shell as that user is refused (ForceCommand internal-sftp, no TTY)
    const kh = join(mkdtempSync(join(tmpdir(), 'wharf-kh-')), 'known_hosts');
    writeFileSync(
      kh,
      `[127.0.0.1]:${s.entrypoint.port} ${readFileSync(join(ensureStackSecrets(t, inv).dir, 'ssh_host_ed25519_key.pub'), 'utf8')}`,
    );
    const shell = spawnSync(
      'ssh',
      [
        '-i',
        s.demoUser.privateKey,
        '-p',
        String(s.entrypoint.port),
        '-o',
        `UserKnownHostsFile=${kh}`,
        '-o',
        'StrictHostKeyChecking=yes',
        '-o',
        'BatchMode=yes',
        `${s.demoUser.name}@127.0.0.1`,
        'id',
      ],
      { encoding: 'utf8', timeout: 20_000 },
    );
    expect(shell.stdout).not.toMatch(/uid=/);
    expect(shell.stderr + shell.stdout).toMatch(/allows sftp connections only/);
  });
});
