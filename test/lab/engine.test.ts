// Engine recovery with the real dockerd. What broke a CI run once: dockerd stopped answering in
// the middle of a `lab down`, its pid still alive; the call waited forever and every later test
// waited on the engine. Now an Engine API call that does not return in time throws
// DockerTimeoutError; `lab up`/`lab down` then let ensureEngine judge the engine — a dockerd that
// wharf started (/run/wharf-dockerd.pid) and that runs but does not answer is stopped and started
// anew, somebody else's is never touched (test/unit/engine.test.ts) — and try once more.
// These tests always run: they need the engine to be wharf's (.ci/run starts it and records it),
// and fail saying so when it is not — they never skip themselves.
// Its own vitest project (`engine`), run by `npm test` (scripts/test.sh) before the lab files and
// the tools tests (only the pure unit tests run meanwhile): the restart stops every container, so no
// lab or throwaway container may be up then. Run by hand
// while the shared scenario lab is up, the next lab file's reset (resetScenarioLab in
// scenarios/lab.ts) starts its nodes again before it waits for any to boot.
import { existsSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { DockerTimeoutError, dockerCall } from '../../src/lab/docker.ts';
import { WHARF_DOCKERD_PID, engineStartedByWharf } from '../../src/lab/engine.ts';
import { onceMoreIfHung } from '../../src/lab/lab.ts';

const pidOf = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8').trim() : '');

/** Fails (never skips) when the engine is somebody else's: these tests stop and restart it. */
function requireWharfEngine(): void {
  expect(
    engineStartedByWharf(),
    `this test restarts dockerd, so it needs a dockerd that wharf started: /var/run/docker.pid ` +
      `(${pidOf('/var/run/docker.pid') || 'absent'}) must equal ${WHARF_DOCKERD_PID} ` +
      `(${pidOf(WHARF_DOCKERD_PID) || 'absent'}). Run it under .ci/run (which starts one), or stop ` +
      'your dockerd and let `wharf lab up` start one',
  ).toBe(true);
}

/** An ordinary call: this test's (absent) containers. */
const listOurs = () =>
  dockerCall('ps -a --filter label=wharf.engine-test', async (d, abortSignal) =>
    (await d.listContainers({ all: true, filters: { label: ['wharf.engine-test'] }, abortSignal })).map(
      (c) => c.Id,
    ),
  );

/** A call that never returns by itself, without stopping the engine: read the event stream to its end. */
const readEventsToEnd = () =>
  dockerCall('events --filter label=wharf.engine-test', async (d, abortSignal) => {
    const events = await d.getEvents({ filters: { label: ['wharf.engine-test'] }, abortSignal });
    for await (const _ of events as AsyncIterable<unknown>) {
      /* none come */
    }
    return [] as string[];
  });

afterEach(() => {
  delete process.env.WHARF_DOCKER_TIMEOUT_MS;
  delete process.env.WHARF_ENGINE_ANSWER_MS;
  delete process.env.WHARF_ENGINE_TERM_GRACE_MS;
});

describe('engine recovery', () => {
  it('a call on a hung dockerd that wharf started: DockerTimeoutError, engine restarted, call retried', async () => {
    requireWharfEngine();
    const old = Number(pidOf('/var/run/docker.pid'));
    process.env.WHARF_DOCKER_TIMEOUT_MS = '3000';
    // shorter than the defaults (20 s to answer, 15 s after SIGTERM): the same path, 27 s less
    process.env.WHARF_ENGINE_ANSWER_MS = '5000';
    process.env.WHARF_ENGINE_TERM_GRACE_MS = '3000';
    process.kill(old, 'SIGSTOP'); // alive but not answering: a hung daemon, seen from outside
    const log: string[] = [];
    let tries = 0;
    try {
      const out = await onceMoreIfHung(
        async () => {
          tries++;
          return listOurs();
        },
        (l) => log.push(l),
      );
      expect(out).toEqual([]);
    } finally {
      try {
        process.kill(old, 'SIGCONT');
      } catch {
        /* gone, as it should be */
      }
    }
    const text = log.join('\n');
    expect(tries).toBe(2);
    expect(text).toContain('docker ps -a --filter label=wharf.engine-test did not return within 3 s');
    expect(text).toContain(`dockerd (pid ${old}) does not answer the Engine API within 5 s: stopping it`);
    expect(existsSync(`/proc/${old}`)).toBe(false);
    const now = pidOf('/var/run/docker.pid');
    expect(now).not.toBe(String(old));
    expect(pidOf(WHARF_DOCKERD_PID)).toBe(now);
    expect(await listOurs()).toEqual([]);
  }, 180_000);

  it('a call that hangs while the engine still answers: restarted all the same, call retried', async () => {
    requireWharfEngine();
    const old = Number(pidOf('/var/run/docker.pid'));
    process.env.WHARF_DOCKER_TIMEOUT_MS = '1500';
    const log: string[] = [];
    let tries = 0;
    // the first try hangs (an event stream never ends), the second is an ordinary call
    const out = await onceMoreIfHung(
      () => (tries++ === 0 ? readEventsToEnd() : listOurs()),
      (l) => log.push(l),
    );
    expect(out).toEqual([]);
    expect(tries).toBe(2);
    expect(log.join('\n')).toContain(
      `dockerd (pid ${old}) answers the Engine API but a call hung: stopping it`,
    );
    expect(existsSync(`/proc/${old}`)).toBe(false);
    expect(pidOf(WHARF_DOCKERD_PID)).toBe(pidOf('/var/run/docker.pid'));
  }, 120_000);

  it('a call given no timeout of its own that hangs throws DockerTimeoutError by the deadline', async () => {
    process.env.WHARF_DOCKER_TIMEOUT_MS = '1500';
    const t0 = Date.now();
    const err = await readEventsToEnd().catch((e: Error) => e);
    expect(err).toBeInstanceOf(DockerTimeoutError);
    expect((err as Error).message).toBe(
      'docker events --filter label=wharf.engine-test did not return within 1.5 s: the Docker engine looks hung',
    );
    expect(Date.now() - t0).toBeLessThan(10_000);
  });
});
