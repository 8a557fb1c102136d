// Engine recovery with the real dockerd. What broke a CI run once: dockerd stopped answering in
// the middle of a `lab down`, its pid still alive; the docker CLI call waited forever and every
// later test waited on the engine. Now a management docker call that hangs throws
// DockerTimeoutError; `lab up`/`lab down` then let ensureEngine judge the engine — a dockerd that
// wharf started (/run/wharf-dockerd.pid) and that runs but does not answer is stopped and started
// anew, somebody else's is never touched (test/unit/engine.test.ts) — and try once more.
// Lab files run one at a time and each brings its own lab, so the restart disturbs none of them.
import { existsSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { DockerTimeoutError, docker, dockerNothrow } from '../../src/lab/docker.ts';
import { WHARF_DOCKERD_PID, engineStartedByWharf } from '../../src/lab/engine.ts';
import { onceMoreIfHung } from '../../src/lab/lab.ts';

const pidOf = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8').trim() : '');
const ours = engineStartedByWharf();

afterEach(() => {
  delete process.env.WHARF_DOCKER_TIMEOUT_MS;
});

describe('engine recovery', () => {
  it.runIf(ours || process.env.CI)(
    'a docker call on a hung dockerd that wharf started: DockerTimeoutError, engine restarted, call retried',
    async () => {
      expect(ours, `.ci/run starts dockerd and records it in ${WHARF_DOCKERD_PID}`).toBe(true);
      const old = Number(pidOf('/var/run/docker.pid'));
      process.env.WHARF_DOCKER_TIMEOUT_MS = '3000';
      process.kill(old, 'SIGSTOP'); // alive but not answering: a hung daemon, seen from outside
      const log: string[] = [];
      let tries = 0;
      try {
        const out = await onceMoreIfHung(
          async () => {
            tries++;
            return docker(['ps', '-q', '--filter', 'label=wharf.engine-test']);
          },
          (l) => log.push(l),
        );
        expect(out).toBe('');
      } finally {
        try {
          process.kill(old, 'SIGCONT');
        } catch {
          /* gone, as it should be */
        }
      }
      const text = log.join('\n');
      expect(tries).toBe(2);
      expect(text).toContain('docker ps -q --filter label=wharf.engine-test did not return within 3 s');
      expect(text).toContain(`dockerd (pid ${old}) does not answer \`docker info\` within 20 s: stopping it`);
      expect(existsSync(`/proc/${old}`)).toBe(false);
      const now = pidOf('/var/run/docker.pid');
      expect(now).not.toBe(String(old));
      expect(pidOf(WHARF_DOCKERD_PID)).toBe(now);
      expect(await docker(['info', '--format', '{{.ServerVersion}}'])).not.toBe('');
    },
    180_000,
  );

  it.runIf(ours || process.env.CI)(
    'a call that hangs while the engine still answers `docker info`: restarted all the same, call retried',
    async () => {
      const old = Number(pidOf('/var/run/docker.pid'));
      expect(pidOf(WHARF_DOCKERD_PID)).toBe(String(old));
      process.env.WHARF_DOCKER_TIMEOUT_MS = '1500';
      const log: string[] = [];
      let tries = 0;
      // `docker events` never returns by itself: the first try hangs, the second is an ordinary call
      const out = await onceMoreIfHung(
        () =>
          docker(
            tries++ === 0
              ? ['events', '--filter', 'label=wharf.engine-test']
              : ['ps', '-q', '--filter', 'label=wharf.engine-test'],
          ),
        (l) => log.push(l),
      );
      expect(out).toBe('');
      expect(tries).toBe(2);
      expect(log.join('\n')).toContain(
        `dockerd (pid ${old}) answers \`docker info\` but a call hung: stopping it`,
      );
      expect(existsSync(`/proc/${old}`)).toBe(false);
      expect(pidOf(WHARF_DOCKERD_PID)).toBe(pidOf('/var/run/docker.pid'));
    },
    120_000,
  );

  it('a docker call given no timeout of its own that hangs throws DockerTimeoutError, even with nothrow', async () => {
    // `docker events` never returns by itself: the hang, without stopping the engine
    process.env.WHARF_DOCKER_TIMEOUT_MS = '1500';
    const t0 = Date.now();
    const err = await dockerNothrow(['events', '--filter', 'label=wharf.engine-test']).catch((e: Error) => e);
    expect(err).toBeInstanceOf(DockerTimeoutError);
    expect((err as Error).message).toBe(
      'docker events --filter label=wharf.engine-test did not return within 1.5 s: the Docker engine looks hung',
    );
    expect(Date.now() - t0).toBeLessThan(10_000);
  });
});
