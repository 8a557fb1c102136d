import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

// Five projects: fast pure tests; tests that run the real daemons' checkers on the host; the engine
// recovery test (it restarts dockerd); `fabric`, the lab files that build their own single-HAProxy
// lab (lab, runbooks, lifecycle, plan); `lab`, the files on the shared scenario lab. Lab files run
// one at a time within a project. `npm test` = scripts/test.sh (how they are arranged side by side).
// testcontainers (throwaway sshd containers in tools tests, lab tests): no registry here, so no
// ryuk reaper (fixtures remove their own containers) and no alpine pull for host-IP detection.
const testcontainersEnv = { TESTCONTAINERS_RYUK_DISABLED: 'true', TESTCONTAINERS_HOST_OVERRIDE: 'localhost' };
// Every project registers the runbooks first (test/setup-runbooks.ts), as bin/wharf.mjs does.
const setupFiles = ['test/setup-runbooks.ts'];

const FABRIC = ['lab', 'runbooks', 'lifecycle', 'plan'].map((f) => `test/lab/${f}.test.ts`);
/** The scenario lab's files in order: scenarios last (npm test runs it alone, after the others). */
const LAB_ORDER = [
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

const labProject = (name: string, include: string[], exclude: string[], globalSetup: string) => ({
  test: {
    name,
    include,
    exclude,
    testTimeout: 900_000,
    hookTimeout: 900_000,
    fileParallelism: false,
    setupFiles,
    // each project's lab comes down once, after its files (unless WHARF_KEEP_LAB=1)
    globalSetup: [globalSetup],
    env: testcontainersEnv,
  },
});

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
      labProject('fabric', FABRIC, [], 'test/lab/global-setup-fabric.ts'),
      labProject(
        'lab',
        ['test/lab/**/*.test.ts'],
        ['test/lab/engine.test.ts', ...FABRIC],
        'test/lab/global-setup.ts',
      ),
    ],
  },
});
