// Lab lifecycle with real containers: bad input leaves nothing behind (colliding subnet, port
// already taken, missing engine), `lab up` recovers after a `kill -9` of a previous `lab up`,
// and `lab down` removes everything by label even when the state folder is gone.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { $ } from '../../src/exec/index.ts';
import { dockerCall, dockerCallOr404 } from '../../src/lab/docker.ts';
import { ensureEngine } from '../../src/lab/engine.ts';
import { baseTag, buildNodeImage, ensureImages } from '../../src/lab/images.ts';
import { labDown, labUp, labStatus } from '../../src/lab/lab.ts';
import { stateDir } from '../../src/lab/state.ts';
import { runCli } from '../../src/cli/program.ts';
import { REPO, labelled, onNode, testTopology } from './helpers.ts';

const cli = async (argv: string[], env?: NodeJS.ProcessEnv) => {
  const r = await $({
    nothrow: true,
    quiet: true,
    timeout: 600_000,
    cwd: REPO,
    env: { ...process.env, ...env },
  })`npx tsx src/cli/main.ts ${argv}`;
  return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr };
};

const removeNet = (name: string) =>
  dockerCallOr404(`network rm ${name}`, (d, abortSignal) => d.getNetwork(name).remove({ abortSignal }));

const inProcess = async (argv: string[]) => {
  let out = '';
  let err = '';
  const code = await runCli(argv, { out: (x) => (out += x), err: (x) => (err += x) });
  return { code, out, err };
};

beforeAll(async () => {
  await ensureEngine();
}, 120_000);

describe('bad input leaves nothing half-created', () => {
  const { file, t } = testTopology('labbad', 92);
  const squat = 'wharf-test-squatter';
  let listener: Server;

  beforeAll(async () => {
    await removeNet(squat);
    // Someone else's network on the lab's lan subnet.
    await dockerCall(`network create ${squat}`, (d, abortSignal) =>
      d.createNetwork({ Name: squat, IPAM: { Config: [{ Subnet: '10.92.3.128/25' }] }, abortSignal }),
    );
  });
  afterAll(async () => {
    await removeNet(squat);
    listener?.close();
  });

  it('a subnet colliding with an existing docker network: exit 2, the network and subnet named', async () => {
    const r = await inProcess(['lab', 'up', '-c', file]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(
      'networks.lan.subnet: 10.92.3.0/24 collides with docker network "wharf-test-squatter" (10.92.3.128/25)',
    );
    expect(await labelled(t.name)).toEqual({ containers: [], networks: [], volumes: [] });
  });

  it('a port already taken on 127.0.0.1: exit 2 naming the port, nothing created', async () => {
    await removeNet(squat);
    listener = createServer();
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', () => r()));
    const addr = listener.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    const r = await inProcess(['lab', 'up', '-c', file, '--ssh-port', String(port)]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`127.0.0.1:${port} (bastion ssh (--ssh-port)) is already in use`);
    expect(await labelled(t.name)).toEqual({ containers: [], networks: [], volumes: [] });
  });

  it('no engine answering: exit 1 with a clear message, nothing created', async () => {
    const r = await cli(['lab', 'up', '-c', file], { DOCKER_HOST: 'unix:///tmp/wharf-no-such-docker.sock' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'no Docker engine answers at DOCKER_HOST=unix:///tmp/wharf-no-such-docker.sock',
    );
    expect(await labelled(t.name)).toEqual({ containers: [], networks: [], volumes: [] });
  });

  it('a second lab command while one runs is refused (lock held by a live process), nothing created', async () => {
    mkdirSync(dirname(stateDir(t.name)), { recursive: true });
    // the lock as a `lab down` in another (live) process holds it
    const held = {
      pid: process.ppid,
      hostname: hostname(),
      startedAt: '2026-11-30T03:00:00.000Z',
      runbook: 'lab down',
    };
    writeFileSync(`${stateDir(t.name)}.lock`, JSON.stringify(held) + '\n');
    try {
      const r = await inProcess(['lab', 'up', '-c', file]);
      expect(r.code).toBe(1);
      expect(r.err).toContain(
        `stack labbad is locked by lab down (pid ${process.ppid} on ${hostname()}, since 2026-11-30T03:00:00.000Z)`,
      );
      expect(await labelled(t.name)).toEqual({ containers: [], networks: [], volumes: [] });
    } finally {
      rmSync(`${stateDir(t.name)}.lock`, { force: true });
    }
  });

  it('lab status without a lab: exit 1 saying how to start it', async () => {
    const r = await inProcess(['lab', 'status', '-c', file]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('is not up');
    expect(r.err).toContain('wharf lab up');
  });
});

describe('image builds', () => {
  it("show progress lines and fail with the build's own error text", async () => {
    const base = baseTag();
    await ensureImages(['haproxy']); // the base exists after this
    const seen: string[] = [];
    const tag = 'wharf-node:test-broken';
    const err = await buildNodeImage('broken', ['wharf-no-such-package'], base, tag, (l) =>
      seen.push(l),
    ).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain(`building ${tag} failed`);
    expect((err as Error).message).toContain('Unable to locate package wharf-no-such-package');
    expect(seen.some((l) => /Step \d+\/\d+ : RUN/.test(l))).toBe(true);
    expect(await dockerCallOr404(`image inspect ${tag}`, (d) => d.getImage(tag).inspect())).toBeNull();
  });
});

describe('crash recovery and down', () => {
  const { file, t } = testTopology('labkill', 91);
  afterAll(async () => {
    await labDown(t.name);
  });

  it('`lab up` after `kill -9` of a running `lab up` recovers', async () => {
    await labDown(t.name);
    const child = spawn('npx', ['tsx', 'src/cli/main.ts', 'lab', 'up', '-c', file], {
      cwd: REPO,
      detached: true,
      stdio: 'ignore',
    });
    // Kill it mid-way: once some of its containers exist.
    const deadline = Date.now() + 300_000;
    while (Date.now() < deadline) {
      const l = await labelled(t.name);
      if (l.containers.length >= 3) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    process.kill(-child.pid!, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 500));
    const half = await labelled(t.name);
    expect(half.containers.length).toBeGreaterThan(0);

    const r = await labUp(t, { topologyFile: file });
    expect(r.state.stack).toBe('labkill');
    const s = await labStatus(t);
    expect(s.up).toBe(true);
    for (const n of Object.keys(s.nodes)) {
      const x = await onNode(s.sshConfig, n, 'true');
      expect(x.code, `${n}: ${x.stderr}`).toBe(0);
    }
    expect((await labelled(t.name)).containers.length).toBe(11);
  });

  it('`lab down` removes containers, networks and volumes by label, even without the state folder', async () => {
    const before = await labelled(t.name);
    expect(before.networks.length).toBe(5);
    expect(before.volumes.length).toBe(1);
    rmSync(stateDir(t.name), { recursive: true, force: true });
    const r = await inProcess(['lab', 'down', '-c', file]);
    expect(r.code).toBe(0);
    expect(r.out).toContain('11 container(s), 5 network(s), 1 volume(s)');
    expect(await labelled(t.name)).toEqual({ containers: [], networks: [], volumes: [] });
    expect(existsSync(stateDir(t.name))).toBe(false);
  });
});
