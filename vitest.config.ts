import { defineConfig } from 'vitest/config';

// Three projects: fast pure tests, tests that run the real daemons' checkers on the host,
// and lab tests that start containers (slow, run one file at a time).
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
        test: {
          name: 'lab',
          include: ['test/lab/**/*.test.ts'],
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
