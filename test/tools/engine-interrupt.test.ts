// A run interrupted mid-apply (Ctrl-C to the process group, and kill -9): the next run takes the
// lock, sees the reload the interrupted run still owed, applies it and converges.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryReporter } from '../../src/runbook/progress.ts';
import type { Resource } from '../../src/runbook/resources.ts';
import { runRunbook } from '../../src/runbook/run.ts';
import { SshTransport } from '../../src/transport/ssh.ts';
import { startHostSshd, type HostSshd } from '../helpers/host-sshd.ts';

let sshd: HostSshd;
beforeAll(async () => {
  sshd = await startHostSshd();
});
afterAll(async () => {
  await sshd?.close();
});

const desired = (root: string, reload: string[]): Resource[] => [
  {
    kind: 'file',
    path: join(root, 'app.conf'),
    content: 'setting = 2\n',
    mode: 0o644,
    owner: 'root',
    group: 'root',
    notify: ['app'],
  },
  { kind: 'unit', name: 'app', systemd: false, reloadCommand: reload },
];

/** Child process: runs the engine with a reload that hangs, so it can be interrupted there. */
const CHILD = `
import { runRunbook } from '${process.cwd()}/src/runbook/run.ts';
import { MemoryReporter } from '${process.cwd()}/src/runbook/progress.ts';
import { SshTransport } from '${process.cwd()}/src/transport/ssh.ts';
const c = JSON.parse(process.env.WHARF_CHILD);
const t = new SshTransport('alpha', c.target, c.options);
await runRunbook({ stack: 'int', runbook: 'configure', runsDir: c.runsDir, stateDir: c.stateDir, preflight: false,
  transports: new Map([['alpha', t]]), desired: { alpha: c.desired }, reporter: new MemoryReporter() });
`;

async function interruptedRun(signal: 'SIGINT' | 'SIGKILL') {
  const root = mkdtempSync('/tmp/wharf-int-');
  const runsDir = join(root, 'runs');
  const stateDir = join(root, 'state');
  writeFileSync(join(root, 'app.conf'), 'setting = 1\n');
  writeFileSync(join(root, 'child.mts'), CHILD);
  const env = {
    ...process.env,
    WHARF_CHILD: JSON.stringify({
      target: sshd.target,
      options: sshd.options,
      runsDir,
      stateDir,
      desired: desired(root, ['sleep', '7.31']),
    }),
  };
  const child = spawn('node', ['--import', 'tsx', join(root, 'child.mts')], {
    env,
    detached: true,
    stdio: 'ignore',
  });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  // Wait until the file was replaced and the (hanging) reload runs, then interrupt the group.
  const deadline = Date.now() + 30_000;
  while (
    !readFileSync(join(root, 'app.conf'), 'utf8').includes('2') ||
    !existsSync(join(stateDir, 'pending/app'))
  ) {
    if (Date.now() > deadline) throw new Error('child never reached the reload');
    await new Promise((r) => setTimeout(r, 50));
  }
  await new Promise((r) => setTimeout(r, 300));
  process.kill(-child.pid!, signal);
  const code = await exited;
  return { root, runsDir, stateDir, code };
}

async function rerun(root: string, runsDir: string, stateDir: string) {
  const t = new SshTransport('alpha', sshd.target, sshd.options);
  const reporter = new MemoryReporter();
  const reload = ['sh', '-c', `echo reloaded >> ${join(root, 'reload.log')}`];
  const run = () =>
    runRunbook({
      stack: 'int',
      runbook: 'configure',
      runsDir,
      stateDir,
      preflight: false,
      transports: new Map([['alpha', t]]),
      desired: { alpha: desired(root, reload) },
      reporter,
    });
  const next = await run();
  const after = await run();
  return { next, after, reporter };
}

describe('interrupted runs converge (real sshd)', () => {
  it('Ctrl-C (SIGINT to the process group): lock freed, journal says so, next run applies the owed reload', async () => {
    const { root, runsDir, stateDir, code } = await interruptedRun('SIGINT');
    expect(code).toBe(130);
    expect(existsSync(join(runsDir, 'int.lock'))).toBe(false);
    const j = readFileSync(join(runsDir, 'int', onlyFile(join(runsDir, 'int'))), 'utf8');
    expect(j).toContain('"error":"interrupted by SIGINT"');
    const { next, after, reporter } = await rerun(root, runsDir, stateDir);
    expect(next).toMatchObject({ ok: true, changes: 1 });
    expect(reporter.events.join('\n')).toContain('↻ reload unit app: owed by an interrupted run');
    expect(readFileSync(join(root, 'reload.log'), 'utf8')).toBe('reloaded\n');
    expect(existsSync(join(stateDir, 'pending/app'))).toBe(false);
    expect(after).toMatchObject({ ok: true, changes: 0 });
    rmSync(root, { recursive: true, force: true });
  });

  it('kill -9: the stale lock is taken over with a warning, and the run converges', async () => {
    const { root, runsDir, stateDir, code } = await interruptedRun('SIGKILL');
    expect(code).toBe(null);
    expect(existsSync(join(runsDir, 'int.lock'))).toBe(true);
    const { next, after, reporter } = await rerun(root, runsDir, stateDir);
    expect(reporter.events.join('\n')).toMatch(/warning: took over a stale lock of configure \(pid \d+/);
    expect(next).toMatchObject({ ok: true, changes: 1 });
    expect(readFileSync(join(root, 'reload.log'), 'utf8')).toBe('reloaded\n');
    expect(after).toMatchObject({ ok: true, changes: 0 });
    rmSync(root, { recursive: true, force: true });
  });
});

function onlyFile(dir: string): string {
  const f = readdirSync(dir);
  if (f.length !== 1) throw new Error(`expected one journal in ${dir}, got ${f.join(', ')}`);
  return f[0]!;
}
