import { defineConfig } from 'vitest/config';

// Four projects: fast pure tests, tests that run the real daemons' checkers on the host, the engine
// recovery test (it restarts dockerd) and
// lab tests that start containers (slow, one file at a time). `npm test` = scripts/test.sh.
// testcontainers (throwaway sshd containers in tools tests, lab tests): no registry here, so no
// ryuk reaper (fixtures remove their own containers) and no alpine pull for host-IP detection.
const testcontainersEnv = { TESTCONTAINERS_RYUK_DISABLED: 'true', TESTCONTAINERS_HOST_OVERRIDE: 'localhost' };
// Every project registers the runbooks first (test/setup-runbooks.ts), as bin/wharf.mjs does.
const setupFiles = ['test/setup-runbooks.ts'];

export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 10_000, setupFiles } },
      {
        test: {
          name: 'tools',
          include: ['test/tools/**/*.test.ts'],
          testTimeout: 60_000,
          setupFiles,
          env: testcontainersEnv,
        },
      },
      {
        // test/lab/engine.test.ts stops and restarts dockerd: its own project, run alone before the
        // others by scripts/test.sh (npm test), so no lab or throwaway container is up meanwhile
        test: {
          name: 'engine',
          include: ['test/lab/engine.test.ts'],
          testTimeout: 900_000,
          hookTimeout: 900_000,
          fileParallelism: false,
          setupFiles,
          env: testcontainersEnv,
        },
      },
      {
        test: {
          name: 'lab',
          include: ['test/lab/**/*.test.ts'],
          exclude: ['test/lab/engine.test.ts'],
          testTimeout: 900_000,
          hookTimeout: 900_000,
          fileParallelism: false,
          setupFiles,
          // the shared scenario lab comes down once, after every lab file (unless WHARF_KEEP_LAB=1)
          globalSetup: ['test/lab/global-setup.ts'],
          env: testcontainersEnv,
        },
      },
    ],
  },
});
