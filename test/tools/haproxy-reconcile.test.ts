// The non-preemptive failover flag in HAProxy's data path, with the real haproxy binary on loopback:
// while wharf_reconcile's key 1 has gpt0 > 0 (set by the agent that noticed the outage, shared with
// the other HAProxy of a pair through peers), the rendered `use-server` rule sends every new
// connection to sub, even while main's server line is still UP (the peer's agent has not answered
// "maint" yet); a sub that is down is skipped; clearing the flag (failback's first step) ends it.
// Two loopback TCP servers answer with their name; the flag is set through the stats socket.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/core/net.ts';
import { $, sleep, type ProcessPromise } from '../../src/exec/process.ts';
import { RECONCILE_TABLE } from '../../src/render/agent.ts';
import { reconcileRouting } from '../../src/render/haproxy.ts';

let dir: string;
let front: number;
let haproxy: ProcessPromise;
const servers: Server[] = [];

/** A TCP server that writes its name and closes. */
async function named(name: string): Promise<number> {
  const port = await freePort();
  const s = createServer((c) => c.end(name));
  await new Promise<void>((r) => s.listen(port, '127.0.0.1', r));
  servers.push(s);
  return port;
}

/** Which server a new connection through HAProxy reaches ('' when none). */
function through(): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const c = connect(front, '127.0.0.1');
    c.setTimeout(3000, () => c.destroy(new Error('no answer within 3 s')));
    c.on('data', (d) => (got += d.toString()));
    c.on('close', () => resolve(got));
    c.on('error', reject);
  });
}

/** One command on the runtime API; its answer. */
function api(cmd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const c = connect(join(dir, 'admin.sock'));
    c.on('connect', () => c.write(cmd + '\n'));
    c.on('data', (d) => (got += d.toString()));
    c.on('close', () => resolve(got));
    c.on('error', reject);
  });
}

/** Until HAProxy's view of `server` matches `status` (checks every 100 ms). */
async function until(server: string, status: RegExp): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const stat = await api('show stat');
    const line = stat.split('\n').find((l) => l.startsWith(`b,${server},`)) ?? '';
    if (status.test(line.split(',')[17] ?? '')) return;
    if (Date.now() > deadline) throw new Error(`${server}: still ${line.split(',')[17]} after 10 s`);
    await sleep(100);
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wharf-haproxy-'));
  const main = await named('main');
  const sub = await named('sub');
  front = await freePort();
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(
    cfg,
    [
      'global',
      `    stats socket ${join(dir, 'admin.sock')} mode 600 level admin`,
      'defaults',
      '    mode tcp',
      '    timeout connect 2s',
      '    timeout client 10s',
      '    timeout server 10s',
      `backend ${RECONCILE_TABLE}`,
      '    stick-table type integer size 1 store gpt0',
      'frontend f',
      `    bind 127.0.0.1:${front}`,
      '    default_backend b',
      'backend b',
      '    default-server inter 100ms fall 1 rise 1',
      reconcileRouting('sub'),
      `    server main 127.0.0.1:${main} check`,
      `    server sub 127.0.0.1:${sub} check backup`,
      '',
    ].join('\n'),
  );
  haproxy = $({ nothrow: true, quiet: true })`exec haproxy -db -f ${cfg}`;
  const deadline = Date.now() + 10_000;
  while (!(await api('show info').catch(() => ''))) {
    if (haproxy.stage !== 'running' || Date.now() > deadline)
      throw new Error(`haproxy did not start: ${haproxy.stage === 'running' ? '' : (await haproxy).stderr}`);
    await sleep(50);
  }
  await until('main', /^UP/);
  await until('sub', /^UP/);
});

afterAll(async () => {
  await haproxy?.kill('SIGTERM');
  await haproxy;
  for (const s of servers) s.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the failover flag in the data path (real haproxy)', () => {
  it('no flag: main, sub is only the backup', async () => {
    expect(await through()).toBe('main');
  });

  it('flag set: every new connection goes to sub while main is still UP', async () => {
    await api(`set table ${RECONCILE_TABLE} key 1 data.gpt0 1`);
    for (let i = 0; i < 5; i++) expect(await through()).toBe('sub');
    expect(await api('show stat')).toMatch(/^b,main,(?:[^,]*,){15}UP,/m);
  });

  it('flag set and sub down: the rule is skipped, main serves rather than nobody', async () => {
    await api('set server b/sub state maint');
    expect(await through()).toBe('main');
    await api('set server b/sub state ready');
    await until('sub', /^UP/);
    expect(await through()).toBe('sub');
  });

  it('flag cleared (failback): main again', async () => {
    await api(`set table ${RECONCILE_TABLE} key 1 data.gpt0 0`);
    expect(await through()).toBe('main');
  });
});
