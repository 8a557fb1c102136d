// The step model's executor (src/runbook/steps.ts), with plain in-process effects:
// GIVEN a plan of steps with undos WHEN a step fails THEN the completed steps are undone newest
// first, a failing undo is a failed step (host, commands, error) in the result and the journal,
// and the run fails; --check runs nothing and prints the same ids the journal later shows.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { JournalEntry } from '../../src/runbook/journal.ts';
import { acquireLock } from '../../src/runbook/lock.ts';
import { failureLines } from '../../src/cli/commands/run.ts';
import { executeSteps, formatSteps, stepsJson, type Step, type StepPlan } from '../../src/runbook/steps.ts';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'wharf-steps-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const journalOf = (path: string): JournalEntry[] =>
  readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as JournalEntry);

/** A plan over an in-memory "stack": each step records what it did, undos record theirs. */
function world(o: { failAt?: string; undoFails?: string; commitAt?: string; guardFails?: string } = {}) {
  const did: string[] = [];
  const mk = (id: string, host: string, undo = true): Step => ({
    id,
    host,
    action: `do ${id}`,
    why: `because ${id}`,
    ...(o.guardFails === id ? { guard: { what: `${id} may run`, check: async () => 'it may not' } } : {}),
    ...(o.commitAt === id ? { commits: 'no way back after this' } : {}),
    ...(undo
      ? {
          undo: {
            host,
            action: `undo ${id}`,
            commands: [`revert ${id}`],
            run: async () => {
              if (o.undoFails === id) throw new Error(`cannot reach ${host}`);
              did.push(`undo ${id}`);
            },
          },
        }
      : {}),
    run: async () => {
      if (o.failAt === id) throw new Error(`${id} broke`);
      did.push(id);
      return `${id} done`;
    },
  });
  const plan: StepPlan = {
    runbook: 'demo',
    steps: [mk('a', 'h1'), mk('b', 'h2', false), mk('c', 'h3'), mk('d', 'h1'), mk('e', 'h2')],
  };
  return { did, plan };
}

async function exec(p: StepPlan, check = false) {
  const runsDir = tmp();
  const log: string[] = [];
  const r = await executeSteps(
    'demo',
    { stack: 's', runsDir, check, log: (l) => log.push(l) },
    async () => p,
  );
  return { r, log, journal: journalOf(r.journal), runsDir };
}

describe('executeSteps', () => {
  it('runs every step in order and journals each by its id', async () => {
    const w = world();
    const { r, journal } = await exec(w.plan);
    expect(r.ok).toBe(true);
    expect(r.exitCode).toBe(0);
    expect(w.did).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(r.changes).toBe(5);
    const ran = journal.filter((e) => e.result === 'ok' && e.id).map((e) => e.id);
    expect(ran).toEqual(['a', 'b', 'c', 'd', 'e']);
    const planned = journal.filter((e) => e.result === 'planned').map((e) => e.id);
    expect(planned).toEqual(ran);
  });

  it('--check runs nothing and prints the plan with the same ids, why and undo as data', async () => {
    const w = world();
    const { r, log } = await exec(w.plan, true);
    expect(w.did).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.steps.map((s) => s.id)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(r.steps.every((s) => s.result === undefined)).toBe(true);
    const text = log.join('\n');
    expect(text).toContain(' 1. a [h1] do a');
    expect(text).toContain('why: because a');
    expect(text).toContain('undo [h1]: undo a: revert a');
    expect(stepsJson(w.plan)).toEqual({
      runbook: 'demo',
      changes: 5,
      steps: expect.arrayContaining([
        { id: 'b', host: 'h2', action: 'do b', why: 'because b' },
        {
          id: 'c',
          host: 'h3',
          action: 'do c',
          why: 'because c',
          undo: { host: 'h3', action: 'undo c', commands: ['revert c'] },
        },
      ]),
    });
    expect(formatSteps(w.plan)).toBe(text);
  });

  it('a failed step stops the run; the completed steps are undone newest first', async () => {
    const w = world({ failAt: 'd' });
    const { r, journal } = await exec(w.plan);
    expect(w.did).toEqual(['a', 'b', 'c', 'undo c', 'undo a']);
    expect(r.ok).toBe(false);
    expect(r.exitCode).toBe(1);
    const res = Object.fromEntries(r.steps.map((s) => [s.id, s.result]));
    expect(res).toEqual({
      a: 'rolled-back',
      b: 'ok',
      c: 'rolled-back',
      d: 'failed',
      e: 'not-run',
      'undo:c': 'ok',
      'undo:a': 'ok',
    });
    expect(r.error).toBe('step d on h1 failed: d broke');
    expect(journal.filter((e) => e.step === 'undo').map((e) => [e.id, e.result])).toEqual([
      ['undo:c', 'ok'],
      ['undo:a', 'ok'],
    ]);
  });

  it('an undo that fails is a failed step (host, commands, error) in the result and the journal; the others still run', async () => {
    const w = world({ failAt: 'd', undoFails: 'c' });
    const { r, journal, log } = await exec(w.plan);
    expect(w.did).toEqual(['a', 'b', 'c', 'undo a']);
    expect(r.ok).toBe(false);
    expect(r.exitCode).toBe(1);
    const u = r.steps.find((s) => s.id === 'undo:c')!;
    expect(u).toMatchObject({ host: 'h3', result: 'failed', error: 'cannot reach h3', undoes: 'c' });
    expect(u.undo?.commands).toEqual(['revert c']);
    expect(r.steps.find((s) => s.id === 'c')!.result).toBe('ok'); // not claimed undone
    expect(r.error).toContain('undo c on h3 failed (ran: revert c): cannot reach h3');
    expect(r.hosts.h3!.failed).toBe('undo:c: cannot reach h3');
    const j = journal.find((e) => e.id === 'undo:c')!;
    expect(j).toMatchObject({ host: 'h3', step: 'undo', result: 'failed', error: 'cannot reach h3' });
    expect(j.detail).toMatchObject({ commands: ['revert c'], undoes: 'c' });
    expect(log.join('\n')).toMatch(/FAIL h3: undo: undo c — ran: revert c — cannot reach h3/);
    expect(journal.at(-1)).toMatchObject({ step: 'summary', result: 'failed' });
    // what `wharf run` prints for the failed run: the failed step and the failed undo, host and error
    expect(failureLines({ ...r, steps: r.steps })).toEqual([
      'failed step d on h1: d broke',
      'failed undo undo:c on h3: ran revert c: cannot reach h3',
    ]);
  });

  it('after the point of no return a failure undoes nothing (the run is left to resume)', async () => {
    const w = world({ failAt: 'e', commitAt: 'c' });
    const { r } = await exec(w.plan);
    expect(w.did).toEqual(['a', 'b', 'c', 'd', 'undo d']);
    expect(r.ok).toBe(false);
  });

  it('a guard not met fails its step before it runs', async () => {
    const w = world({ guardFails: 'c' });
    const { r } = await exec(w.plan);
    expect(w.did).toEqual(['a', 'b', 'undo a']);
    expect(r.steps.find((s) => s.id === 'c')).toMatchObject({
      result: 'failed',
      error: 'guard not met: c may run (it may not)',
    });
  });

  it('checks (expect) that fail are recorded, the other checks run, and the run fails', async () => {
    const seen: string[] = [];
    const chk = (id: string, ok: boolean): Step => ({
      id,
      host: 'h',
      action: id,
      why: 'w',
      expect: `${id} holds`,
      readOnly: true,
      run: async () => {
        seen.push(id);
        if (!ok) throw new Error(`${id} does not hold`);
      },
    });
    const { r } = await exec({ runbook: 'demo', steps: [chk('x', true), chk('y', false), chk('z', true)] });
    expect(seen).toEqual(['x', 'y', 'z']);
    expect(r.ok).toBe(false);
    expect(r.changes).toBe(0);
    expect(r.error).toBe('step y on h failed: y does not hold');
  });

  it('takes the stack lock: a run while another holds it fails without running a step', async () => {
    const w = world();
    const runsDir = tmp();
    const held = acquireLock(runsDir, 's', 'other');
    try {
      await expect(
        executeSteps('demo', { stack: 's', runsDir, check: false, log: () => {} }, async () => w.plan),
      ).rejects.toThrow(/stack s is locked by other/);
      expect(w.did).toEqual([]);
    } finally {
      held.release();
    }
  });
  it('Ctrl-C mid-step: the journal says so and the lock is freed', async () => {
    const runsDir = tmp();
    const script = join(runsDir, 'run.mts'); // ESM (top-level await) outside the package
    writeFileSync(
      script,
      `import { executeSteps } from ${JSON.stringify(resolve('src/runbook/steps.ts'))};
await executeSteps('demo', { stack: 's', runsDir: ${JSON.stringify(runsDir)}, check: false, log: (l) => console.error(l) }, async () => ({
  runbook: 'demo',
  steps: [{ id: 'slow', host: 'h', action: 'slow', why: 'w', run: async () => { console.error('STARTED'); await new Promise((r) => setTimeout(r, 30000)); } }],
}));
`,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const t0 = Date.now();
    while (!err.includes('STARTED') && child.exitCode === null && Date.now() - t0 < 8_000)
      await new Promise((r) => setTimeout(r, 20));
    expect(err).toContain('STARTED');
    expect(child.exitCode).toBe(null);
    const code = new Promise((r) => child.once('exit', (c) => r(c)));
    child.kill('SIGINT');
    expect(await code).toBe(130);
    expect(existsSync(join(runsDir, 's.lock'))).toBe(false);
    const file = readdirSync(join(runsDir, 's')).find((f) => f.endsWith('-demo.jsonl'))!;
    expect(journalOf(join(runsDir, 's', file)).at(-1)).toMatchObject({
      step: 'run',
      result: 'failed',
      error: 'interrupted by SIGINT',
    });
  });
});
