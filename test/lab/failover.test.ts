// failover and failback runbooks against the lab's real daemons (stack "fotest", 10.95.x):
// GIVEN a provisioned lab with uploads flowing through the entry point
// WHEN the runbooks run (planned), and WHEN `wharf run failover|failback` is killed with -9 halfway
// THEN they converge on the next run, and every acknowledged upload is on main and sub (checker).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureEngine } from '../../src/lab/engine.ts';
import { labDown, labStatus, labUp } from '../../src/lab/lab.ts';
import { provisionLab } from '../../src/lab/provision.ts';
import { runRunbookByName } from '../../src/stack/runbooks.ts';
import type { Topology } from '../../src/topology/model.ts';
import { FAILOVER_STATE, fenced, readFailoverState, showStat, statusOf } from '../../src/failover/index.ts';
import { addressOf } from '../../src/topology/inventory.ts';
import { labHandle, type ScenarioLab } from '../../scenarios/lab.ts';
import { raiseInotifyInstances } from '../../src/lab/lab.ts';
import { checkEverywhere, startWorkload, until, type RunningWorkload } from '../../scenarios/outage.ts';
import { onNode, testTopology, REPO } from './helpers.ts';

const STACK = 'fotest';
let t: Topology;
let file: string;
let lab: ScenarioLab;
const log: string[] = [];
const rb = (name: string, options: Record<string, boolean> = {}) =>
  runRunbookByName(name, {
    topology: t,
    inventory: lab.inventory,
    transports: lab.transports,
    log: (l) => log.push(l),
    options,
  });

const hap = () => lab.transports.get('haproxy')!;
const mainStatus = async () => statusOf(await showStat(hap(), t), t, 'sftp-main');
const mainAddr = () => addressOf(lab.inventory, 'sftp-main', 'lan');

/** `wharf run NAME` as a child process, killed with -9 (its process group) once `when` shows in its output. */
async function killHalfway(name: string, when: RegExp, args: string[] = []): Promise<string> {
  const errFile = join(mkdtempSync(join(tmpdir(), 'wharf-fo-kill-')), 'stderr');
  const child = spawn(process.execPath, [join(REPO, 'bin/wharf.mjs'), 'run', name, '-c', file, ...args], {
    cwd: REPO,
    stdio: ['ignore', 'ignore', openSync(errFile, 'w')],
    detached: true,
  });
  const exited = new Promise((r) => child.once('exit', r));
  const t0 = Date.now();
  while (Date.now() - t0 < 120_000 && child.exitCode === null && !when.test(readFileSync(errFile, 'utf8')))
    await new Promise((r) => setTimeout(r, 20));
  const out = readFileSync(errFile, 'utf8');
  expect(child.exitCode, out).toBe(null);
  process.kill(-child.pid!, 'SIGKILL');
  await exited;
  return out;
}

beforeAll(async () => {
  await ensureEngine();
  ({ file, t } = testTopology(STACK, 95));
  raiseInotifyInstances((l) => process.stderr.write(`${l}\n`));
  await labUp(t, { topologyFile: file, log: (l) => process.stderr.write(`[lab up] ${l}\n`) });
  // a reused lab (WHARF_KEEP_LAB): notices queued for an earlier run's failback copies would make
  // verify wait for the notifier's backlog; they are not this run's
  const s0 = await labStatus(t);
  await onNode(
    s0.sshConfig,
    'sftp-main',
    'find /var/spool/wharf-notify -mindepth 1 -maxdepth 1 -type f -delete 2>/dev/null; systemctl restart wharf-notify 2>/dev/null; true',
  );
  await provisionLab(t, (l) => process.stderr.write(`[provision] ${l}\n`));
  lab = labHandle(t, await labStatus(t), (l) => log.push(l));
});

afterAll(async () => {
  if (lab) await lab.close();
  if (t && !process.env.WHARF_KEEP_LAB) await labDown(t.name);
});

describe('failover and failback on the lab', () => {
  it('planned failover then failback: main out and back, sub fenced then not, no acknowledged upload lost', async () => {
    const w: RunningWorkload = startWorkload(lab, {
      prefix: `fo-${Date.now().toString(36)}`,
      clients: 2,
      retryDelayMs: 1000,
    });
    try {
      await until(30_000, () => w.acks.length >= 10);
      const fo = await rb('failover');
      expect(fo.error ?? '', log.join('\n')).toBe('');
      expect(fo.ok).toBe(true);
      expect(await mainStatus()).toEqual({ sftp: 'MAINT', write: 'MAINT' });
      expect((await readFailoverState(hap()))?.phase).toBe('done');
      expect(await fenced(lab.transports.get('sftp-sub')!, mainAddr())).toBe(true);
      expect((await lab.sh('sftp-main', 'systemctl is-active lsyncd')).stdout.trim()).not.toBe('active');
      // uploads keep going, to sub
      const n = w.acks.length;
      await until(20_000, () => w.acks.length >= n + 10);
      expect(w.acks.length).toBeGreaterThanOrEqual(n + 10);
      // a second run is harmless
      expect((await rb('failover')).ok).toBe(true);

      const fb = await rb('failback');
      expect(fb.error ?? '', log.join('\n')).toBe('');
      expect(fb.ok).toBe(true);
      expect(Object.values(await mainStatus()).every((s) => s.startsWith('UP'))).toBe(true);
      expect(await fenced(lab.transports.get('sftp-sub')!, mainAddr())).toBe(false);
      expect((await lab.sh('sftp-main', 'systemctl is-active lsyncd')).stdout.trim()).toBe('active');
      expect((await lab.sh('haproxy', `test -e ${FAILOVER_STATE}; echo $?`)).stdout.trim()).toBe('1');
      // not failed over any more: failback has nothing to do
      const again = await rb('failback');
      expect(again.ok).toBe(true);
      expect((again.details as { nothingToDo?: boolean }).nothingToDo).toBe(true);
      const k = w.acks.length;
      await until(20_000, () => w.acks.length >= k + 5);
    } finally {
      await w.stop();
    }
    const c = await checkEverywhere(lab, w.acks, w.prefix);
    for (const nv of c.verdict.nodes) expect([nv.node, nv.lost, nv.corrupt]).toEqual([nv.node, [], []]);
  });

  it('failover and failback killed with -9 halfway converge on the next run, no acknowledged upload lost', async () => {
    const w = startWorkload(lab, { prefix: `fk-${Date.now().toString(36)}`, clients: 2, retryDelayMs: 1000 });
    try {
      await until(30_000, () => w.acks.length >= 10);
      // failover killed right after main went to maint (before the final sync and the fence)
      const out1 = await killHalfway('failover', /ok {3}haproxy: sftp-main → maint/);
      expect(out1).toMatch(/sftp-main → maint/);
      expect(out1).not.toMatch(/failover complete/);
      expect((await readFailoverState(hap()))?.phase).toBe('started');
      const fo = await rb('failover');
      expect(fo.error ?? '', log.join('\n')).toBe('');
      expect(fo.ok).toBe(true);
      expect(log.join('\n')).toMatch(/resuming a failover started at/);
      expect((await readFailoverState(hap()))?.phase).toBe('done');
      expect(await fenced(lab.transports.get('sftp-sub')!, mainAddr())).toBe(true);
      const n = w.acks.length;
      await until(20_000, () => w.acks.length >= n + 20);

      // failback killed after the fence was lifted and both trees were listed (before/while copying)
      const out2 = await killHalfway('failback', /sync: list both trees/);
      expect(out2).not.toMatch(/failover record closed/);
      expect(await mainStatus()).toEqual({ sftp: 'MAINT', write: 'MAINT' }); // main stays out
      const fb = await rb('failback');
      expect(fb.error ?? '', log.join('\n')).toBe('');
      expect(fb.ok).toBe(true);
      expect(Object.values(await mainStatus()).every((s) => s.startsWith('UP'))).toBe(true);
      const k = w.acks.length;
      await until(20_000, () => w.acks.length >= k + 5);
    } finally {
      await w.stop();
    }
    const c = await checkEverywhere(lab, w.acks, w.prefix);
    process.stderr.write(
      `[measure] interrupted failover/failback: ${c.verdict.acknowledged} acks, ${c.verdict.nodes.map((v) => `${v.node} lost ${v.lost.length}`).join(', ')}\n`,
    );
    for (const nv of c.verdict.nodes) expect([nv.node, nv.lost, nv.corrupt]).toEqual([nv.node, [], []]);
  });

  it('an upload still being written to sub while failback copies: left to the catch-up, both sides end equal', async () => {
    // The race CI once hit: failback's first pass lists a file a client is still writing on sub,
    // copies it, and then sees sub's version grown. A slow OpenSSH upload (sftp -l 8000 -B 4096:
    // ~1 MB/s in 4 KiB writes, so sub's copy grows every few ms; 16 MiB, ~16 s) is in flight for
    // the whole first pass; the pause cuts it.
    expect((await rb('failover')).ok).toBe(true);
    const dir = mkdtempSync(join(tmpdir(), 'wharf-fo-slow-'));
    const local = join(dir, 'slow.bin');
    writeFileSync(local, randomBytes(16 << 20));
    const name = `0-slow-${Date.now().toString(36)}.bin`;
    const { host, port } = lab.status.entrypoint;
    const slow = spawn(
      'sftp',
      [
        ...['-b', '-', '-l', '8000', '-B', '4096', '-i', lab.status.demoUser.privateKey, '-P', String(port)],
        ...['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes'],
        `${lab.status.demoUser.name}@${host}`,
      ],
      { stdio: ['pipe', 'ignore', 'ignore'] },
    );
    slow.stdin.end(`put "${local}" "upload/${name}"\n`);
    const ended = new Promise((r) => slow.once('exit', r));
    try {
      const path = `${t.sftp.chrootBase}/${lab.status.demoUser.name}/upload/${name}`;
      const size = async (node: string) =>
        Number((await lab.sh(node, `stat -c %s ${path} 2>/dev/null || echo 0`)).stdout.trim());
      await until(20_000, async () => (await size('sftp-sub')) > 0);
      log.length = 0;
      const fb = await rb('failback');
      expect(fb.error ?? '', log.join('\n')).toBe('');
      expect(fb.ok).toBe(true);
      const text = log.join('\n');
      // the first pass saw it grow and left it to the catch-up, which updated main's copy without
      // filing it as a conflict
      expect(text).toMatch(new RegExp(`sync: \\d+ file\\(s\\) changed on sftp-sub during the pass.*${name}`));
      expect(text).toMatch(/catch-up: .*in-flight update\(s\)/);
      expect(text).not.toMatch(/catch-up: keep \d+ losing version/);
      const sha = async (node: string) => (await lab.sh(node, `sha256sum ${path}`)).stdout.split(' ')[0];
      await until(20_000, async () => (await sha('sftp-main')) === (await sha('sftp-sub')));
      expect(await sha('sftp-main')).toBe(await sha('sftp-sub'));
      expect(await size('sftp-main')).toBeLessThan(16 << 20); // cut by the pause, never acknowledged
    } finally {
      slow.kill('SIGKILL');
      await ended;
    }
  });
});
