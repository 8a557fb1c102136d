// wharf watch's poll line run by a real bash (as on the HAProxy node): the `show stat` answer is
// given by a stand-in for socat on PATH (the stats socket itself is proven by test/lab/watch.test.ts);
// main's banner probe goes to a real TCP listener on loopback. Shows when the probe runs.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTopology } from '../../src/topology/load.ts';
import type { Topology } from '../../src/topology/model.ts';
import { parsePoll, pollCommand } from '../../src/watch/run.ts';

let dir: string;
let server: Server;
let t: Topology;

const row = (proxy: string, server: string, status: string) =>
  `${proxy},${server},0,0,0,0,,0,0,0,,0,,0,0,0,0,${status},1,1,0,0,0,7,`;
const stat = (main: string) =>
  [
    '# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,',
    row('write', 'sftp-main', main),
    row('write', 'sftp-sub', 'UP'),
    row('sftp', 'sftp-main', main),
    row('sftp', 'sftp-sub', 'UP'),
    row('read', 'sftp-main', main),
    row('read', 'sftp-sub', 'UP'),
  ].join('\n');

// async: the banner server lives in this process and must keep answering while bash runs
const run = promisify(execFile);
async function poll(mainStatus: string, topo: Topology = t) {
  writeFileSync(join(dir, 'stat.csv'), stat(mainStatus) + '\n');
  const r = await run('bash', ['-c', pollCommand(topo, 'sftp-main', '127.0.0.1')], {
    env: { ...process.env, PATH: `${dir}:${process.env.PATH}` },
    encoding: 'utf8',
    timeout: 10_000,
  });
  return { out: r.stdout, obs: parsePoll(topo, r.stdout, 'sftp-main', 'sftp-sub') };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wharf-watch-poll-'));
  // the stand-in answers `show stat` only when addressed the way HAProxy's socket must be
  writeFileSync(
    join(dir, 'socat'),
    `#!/bin/bash\ncase "$*" in *UNIX-CONNECT:*) read -r cmd; [ "$cmd" = "show stat" ] && cat ${join(dir, 'stat.csv')} ;; *) exit 1 ;; esac\n`,
  );
  chmodSync(join(dir, 'socat'), 0o755);
  // like sshd: the banner first; the probe hangs up after 16 bytes (a reset here is expected)
  server = createServer((s) => {
    s.on('error', () => undefined);
    s.end('SSH-2.0-OpenSSH_9.2p1 Debian\r\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = loadTopology('configs/stack.yaml');
  const port = (server.address() as { port: number }).port;
  t = { ...base, sftp: { ...base.sftp, port } };
});
afterAll(async () => {
  await new Promise((r) => server?.close(r));
  rmSync(dir, { recursive: true, force: true });
});

describe('the poll line in bash', () => {
  it('main UP: statuses parsed, no probe (nothing to decide with it)', async () => {
    const { out, obs } = await poll('UP');
    expect(out).not.toContain('@@probe=');
    expect(obs).toMatchObject({ haproxy: true, main: { write: 'UP', sftp: 'UP' }, failedOver: false });
    expect(obs.mainAnswers).toBeUndefined();
  });

  it('main DOWN without a failover on record: no probe, the outage age from lastchg', async () => {
    const { out, obs } = await poll('DOWN');
    expect(out).not.toContain('@@probe=');
    expect(obs).toMatchObject({ main: { write: 'DOWN' }, mainOutForMs: 7000 });
  });

  it("main in MAINT: main's SSH banner probed (an operator's maintenance of a live main)", async () => {
    const { obs } = await poll('MAINT');
    expect(obs).toMatchObject({ main: { write: 'MAINT' }, mainAnswers: true });
  });

  it('main in DRAIN (administrative too): probed', async () => {
    const { obs } = await poll('DRAIN');
    expect(obs).toMatchObject({ main: { write: 'DRAIN' }, mainAnswers: true });
  });

  it('a dead main in MAINT does not answer', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as { port: number }).port;
    await new Promise((r) => closed.close(r));
    const { obs } = await poll('MAINT', { ...t, sftp: { ...t.sftp, port } });
    expect(obs).toMatchObject({ main: { write: 'MAINT' }, mainAnswers: false });
  });
});
