import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

// Four projects: fast pure tests, tests that run the real daemons' checkers on the host, the
// engine recovery test (it restarts dockerd) and lab tests that start containers (slow, one file
// at a time). `npm test` = scripts/test.sh: engine then lab, beside unit then tools.
// testcontainers (throwaway sshd containers in tools tests, lab tests): no registry here, so no
// ryuk reaper (fixtures remove their own containers) and no alpine pull for host-IP detection.
const testcontainersEnv = { TESTCONTAINERS_RYUK_DISABLED: 'true', TESTCONTAINERS_HOST_OVERRIDE: 'localhost' };
// Every project registers the runbooks first (test/setup-runbooks.ts), as bin/wharf.mjs does.
const setupFiles = ['test/setup-runbooks.ts'];

/**
 * The lab files' order. The first ones build bare nodes and provision (little CPU-timing in their
 * checks) while unit + tools run beside them (scripts/test.sh); the scenario lab's files whose
 * checks measure timing (failover, watch, scenarios) come once those are done. Files not listed
 * run after these, by name.
 */
const LAB_ORDER = [
  'lab.test.ts',
  'runbooks.test.ts',
  'lifecycle.test.ts',
  'plan.test.ts',
  'scale-users.test.ts',
  'load.test.ts',
  'failover.test.ts',
  'watch.test.ts',
  'scenarios.test.ts',
];
class LabOrder extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (f: TestSpecification) => {
      if (f.project.name !== 'lab') return -1;
      const i = LAB_ORDER.indexOf(f.moduleId.split('/').pop()!);
      return i < 0 ? LAB_ORDER.length : i;
    };
    return [...sorted].sort(
      (a, b) =>
        rank(a) - rank(b) || (rank(a) === LAB_ORDER.length ? a.moduleId.localeCompare(b.moduleId) : 0),
    );
  }
}

export default defineConfig({
  test: {
    sequence: { sequencer: LabOrder },
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
        // test/lab/engine.test.ts stops and restarts dockerd: its own project, run by scripts/test.sh
        // before the lab files and before tools, so no lab or throwaway container is up meanwhile
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
