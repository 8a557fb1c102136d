// Find a Docker engine, or start one where wharf may (Debian, root): `lab up`, the README demo and
// the lab tests all start here. The engine is asked over its API (dockerode: DOCKER_HOST or the
// default socket). Never pulls: there is no registry.
import { openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { $ } from '../exec/index.ts';
import { RunError } from '../core/errors.ts';
import { dockerCall } from './docker.ts';

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
  (await $({ nothrow: true, quiet: true })`command -v ${prog}`).exitCode === 0;

/**
 * How long the engine has to answer `GET /version` before it counts as not answering (20 s;
 * WHARF_ENGINE_ANSWER_MS overrides it, for the engine test's hung dockerd).
 */
export const answerTimeoutMs = (): number => Number(process.env.WHARF_ENGINE_ANSWER_MS) || 20_000;
/** How long a stopped dockerd has after SIGTERM before SIGKILL (15 s; WHARF_ENGINE_TERM_GRACE_MS). */
const termGraceMs = (): number => Number(process.env.WHARF_ENGINE_TERM_GRACE_MS) || 15_000;

/** The engine's version when it answers the API in time, else null. */
async function answers(): Promise<string | null> {
  try {
    const v = await dockerCall(
      'version',
      (d, abortSignal) => {
        // @types/dockerode lacks the options argument dockerode 5 takes here
        const version = d.version as unknown as (o: {
          abortSignal: AbortSignal;
        }) => Promise<{ Version: string }>;
        return version.call(d, { abortSignal });
      },
      { timeoutMs: answerTimeoutMs() },
    );
    return v.Version || null;
  } catch {
    return null;
  }
}

/**
 * `broken`: what just went wrong with an engine that may still answer the API (a call that
 * hung; a network endpoint only a restart clears). It is then restarted all the same when wharf
 * started it; anyone else's is named.
 */
export async function ensureEngine(
  log: (line: string) => void = () => {},
  opts: { broken?: string } = {},
): Promise<EngineInfo> {
  const v = await answers();
  if (v && !opts.broken) return { serverVersion: v, how: 'running' };
  const why = v
    ? `answers the Engine API but ${opts.broken}`
    : `does not answer the Engine API within ${answerTimeoutMs() / 1000} s`;

  if (process.env.DOCKER_HOST) {
    throw new RunError(
      v
        ? `the engine at DOCKER_HOST=${process.env.DOCKER_HOST} ${why}; restart it`
        : `no Docker engine answers at DOCKER_HOST=${process.env.DOCKER_HOST} (GET /version failed); ` +
            'start that engine or unset DOCKER_HOST to use the local one',
    );
  }
  if (!isRoot() || !isDebian()) {
    throw new RunError(
      v
        ? `the Docker engine ${why}; restart it`
        : 'no Docker engine answers on /var/run/docker.sock. Install and start Docker ' +
            '(Debian/Ubuntu: `apt-get install docker.io` then start dockerd; elsewhere: Docker Engine or ' +
            'Docker Desktop), or set DOCKER_HOST to a running engine',
    );
  }
  let how: EngineInfo['how'] = 'started';
  if (!(await onPath('dockerd'))) {
    log('docker engine: installing docker.io (apt-get)');
    how = 'installed';
    const apt = $({ quiet: true, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    await apt({ timeout: 300_000 })`apt-get update -q`;
    await apt({ timeout: 600_000 })`apt-get install -y -q docker.io`;
  }
  const stopped = await clearPidFiles(why, log);
  if (v && !stopped)
    throw new RunError(`the Docker engine ${why} and no dockerd pid file names it; restart it`);
  log(`docker engine: starting dockerd (log: ${DOCKERD_LOG})`);
  const out = openSync(DOCKERD_LOG, 'a');
  // A daemon that outlives this process, not a command: the one spawn outside the exec layer.
  // Under `tini -s` (a docker.io dependency) containerd's shims stay children of this tree instead
  // of being re-parented to PID 1: the lab's containers live and die with the engine wharf started.
  const [cmd, args] = (await onPath('tini')) ? ['tini', ['-s', '--', 'dockerd']] : ['dockerd', []];
  const child = spawn(cmd as string, args as string[], { detached: true, stdio: ['ignore', out, out] });
  child.unref();
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const ok = await answers();
    if (ok) {
      rememberStarted();
      return { serverVersion: ok, how };
    }
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

/** Where wharf (engine.ts, scripts/setup-host.sh, .ci/run) records the pid of a dockerd it started. */
export const WHARF_DOCKERD_PID = '/run/wharf-dockerd.pid';
const PID_FILES = [
  { file: '/var/run/docker.pid', comm: 'dockerd' },
  { file: '/var/run/docker/containerd/containerd.pid', comm: 'containerd' },
];

/**
 * What to do about a daemon's pid file when the engine does not answer (pure). `comm` is what
 * /proc/<pid>/comm says, or null when no such process lives.
 * - `stale`: nobody, or another program that got the pid again (pids wrap around quickly on a
 *   busy test host), holds it: remove the file, or dockerd refuses to start.
 * - `restart`: the daemon itself runs but does not answer, and wharf started it: stop it, start anew.
 * - `refuse`: the same, but somebody else's daemon: name it and stop; wharf does not kill it.
 */
export function pidFileVerdict(
  expected: string,
  comm: string | null,
  startedByWharf: boolean,
): 'stale' | 'restart' | 'refuse' {
  if (comm === null || comm !== expected) return 'stale';
  return startedByWharf ? 'restart' : 'refuse';
}

const readText = (f: string): string | null => {
  try {
    return readFileSync(f, 'utf8').trim();
  } catch {
    return null;
  }
};

/** Returns whether it stopped a running dockerd. */
async function clearPidFiles(why: string, log: (line: string) => void): Promise<boolean> {
  const ours = readText(WHARF_DOCKERD_PID);
  let stopped = false;
  for (const { file, comm: expected } of PID_FILES) {
    const pid = Number(readText(file));
    if (!Number.isInteger(pid) || pid <= 0) continue;
    const comm = readText(`/proc/${pid}/comm`);
    const verdict = pidFileVerdict(expected, comm, expected === 'containerd' || String(pid) === ours);
    if (verdict === 'refuse') {
      throw new RunError(
        `dockerd (pid ${pid}) ${why}; wharf did not start it and leaves it alone: restart it ` +
          '(e.g. `systemctl restart docker`) and try again',
      );
    }
    if (verdict === 'restart') {
      log(`docker engine: ${expected} (pid ${pid}) ${why}: stopping it`);
      await stopPid(pid);
      stopped ||= expected === 'dockerd';
    }
    rmSync(file, { force: true });
  }
  return stopped;
}

/** SIGTERM, then SIGKILL after 15 s (termGraceMs): a hung daemon may ignore the first. */
async function stopPid(pid: number): Promise<void> {
  const gone = () => readText(`/proc/${pid}/comm`) === null;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < termGraceMs() / 100 && !gone(); i++) await new Promise((r) => setTimeout(r, 100));
  if (!gone()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    for (let i = 0; i < 50 && !gone(); i++) await new Promise((r) => setTimeout(r, 100));
  }
}

/** Whether the dockerd running now is one wharf started. */
export function engineStartedByWharf(): boolean {
  const pid = readText('/var/run/docker.pid');
  return !!pid && pid === readText(WHARF_DOCKERD_PID) && readText(`/proc/${pid}/comm`) === 'dockerd';
}

function rememberStarted(): void {
  const pid = readText('/var/run/docker.pid');
  if (pid) writeFileSync(WHARF_DOCKERD_PID, `${pid}\n`);
}
