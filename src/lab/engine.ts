// Find a Docker engine, or start one where wharf may (Debian, root): `lab up`, the README demo and
// the lab tests all start here. Never pulls: there is no registry.
import { existsSync, openSync, readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { RunError } from '../core/errors.ts';
import { run } from './docker.ts';

export const DOCKERD_LOG = '/var/log/wharf-dockerd.log';

export interface EngineInfo {
  serverVersion: string;
  /** How the engine was found: already running, started by us, or installed and started. */
  how: 'running' | 'started' | 'installed';
}

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;
const isDebian = () => {
  try {
    return /^ID=debian$/m.test(readFileSync('/etc/os-release', 'utf8'));
  } catch {
    return false;
  }
};
const onPath = async (prog: string) =>
  (await run('sh', ['-c', `command -v ${prog}`], { nothrow: true })).code === 0;

async function answers(): Promise<string | null> {
  if (!(await onPath('docker'))) return null;
  const r = await run('docker', ['info', '--format', '{{.ServerVersion}}'], {
    nothrow: true,
    timeoutMs: 20_000,
  });
  const v = r.stdout.trim();
  return r.code === 0 && v && !v.includes('<no value>') ? v : null;
}

export async function ensureEngine(log: (line: string) => void = () => {}): Promise<EngineInfo> {
  const v = await answers();
  if (v) return { serverVersion: v, how: 'running' };

  if (process.env.DOCKER_HOST) {
    throw new RunError(
      `no Docker engine answers at DOCKER_HOST=${process.env.DOCKER_HOST} (docker info failed); ` +
        'start that engine or unset DOCKER_HOST to use the local one',
    );
  }
  if (!isRoot() || !isDebian()) {
    throw new RunError(
      'no Docker engine answers on /var/run/docker.sock. Install and start Docker ' +
        '(Debian/Ubuntu: `apt-get install docker.io` then start dockerd; elsewhere: Docker Engine or ' +
        'Docker Desktop), or set DOCKER_HOST to a running engine',
    );
  }
  let how: EngineInfo['how'] = 'started';
  if (!(await onPath('dockerd')) || !(await onPath('docker'))) {
    log('docker engine: installing docker.io (apt-get)');
    how = 'installed';
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    await run('apt-get', ['update', '-q'], { env, timeoutMs: 300_000 });
    await run('apt-get', ['install', '-y', '-q', 'docker.io'], { env, timeoutMs: 600_000 });
  }
  // A stale pid file from a killed daemon stops dockerd from starting.
  for (const pidFile of ['/var/run/docker.pid', '/var/run/docker/containerd/containerd.pid']) {
    if (existsSync(pidFile)) {
      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      let alive = false;
      try {
        process.kill(pid, 0);
        alive = true;
      } catch {
        /* dead */
      }
      if (!alive) await run('rm', ['-f', pidFile]);
    }
  }
  log(`docker engine: starting dockerd (log: ${DOCKERD_LOG})`);
  const out = openSync(DOCKERD_LOG, 'a');
  const child = spawn('dockerd', [], { detached: true, stdio: ['ignore', out, out] });
  child.unref();
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const ok = await answers();
    if (ok) return { serverVersion: ok, how };
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  let tail = '';
  try {
    tail = readFileSync(DOCKERD_LOG, 'utf8').split('\n').slice(-8).join('\n');
  } catch {
    /* no log */
  }
  throw new RunError(`dockerd did not answer within 60 s; last lines of ${DOCKERD_LOG}:\n${tail}`);
}
