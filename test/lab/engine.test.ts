// Engine recovery with the real dockerd. What broke a CI run once: the lab's dockerd stopped
// answering mid-run with its pid still alive, and every later test waited on it. A dockerd that
// wharf started (/run/wharf-dockerd.pid) and that runs but does not answer is stopped and started
// anew; somebody else's is never touched (test/unit/engine.test.ts). A small file: with no timing
// cache vitest runs it after the bigger lab files, so the restart disturbs none of their labs.
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { run } from '../../src/lab/docker.ts';
import { WHARF_DOCKERD_PID, ensureEngine } from '../../src/lab/engine.ts';

const pidOf = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8').trim() : '');
const ours = pidOf('/var/run/docker.pid') !== '' && pidOf('/var/run/docker.pid') === pidOf(WHARF_DOCKERD_PID);

describe('engine recovery', () => {
  it.runIf(ours || process.env.CI)(
    'a hung dockerd that wharf started is stopped and started anew',
    async () => {
      expect(ours, `.ci/run starts dockerd and records it in ${WHARF_DOCKERD_PID}`).toBe(true);
      const old = Number(pidOf('/var/run/docker.pid'));
      process.kill(old, 'SIGSTOP'); // alive but not answering: a hung daemon, seen from outside
      const log: string[] = [];
      try {
        expect((await ensureEngine((l) => log.push(l))).how).toBe('started');
      } finally {
        try {
          process.kill(old, 'SIGCONT');
        } catch {
          /* gone, as it should be */
        }
      }
      expect(log.join('\n')).toContain(`dockerd (pid ${old}) runs but does not answer: stopping it`);
      expect(existsSync(`/proc/${old}`)).toBe(false);
      const now = pidOf('/var/run/docker.pid');
      expect(now).not.toBe(String(old));
      expect(pidOf(WHARF_DOCKERD_PID)).toBe(now);
      expect((await run('docker', ['info', '--format', '{{.ServerVersion}}'])).stdout.trim()).not.toBe('');
    },
    180_000,
  );
});
