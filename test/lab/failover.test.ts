// failover and failback runbooks against the lab's real daemons, on the shared scenario lab
// (scenarios/lab.ts: WHARF_SCENARIO_STACK, else stack "scen", 10.96.x; provisioned once by the first
// lab file that needs it, reset to the known state before each test here):
// GIVEN a provisioned lab with uploads flowing through the entry point
// WHEN the runbooks run (planned), and WHEN `wharf run failover|failback` is killed with -9 halfway
// THEN they converge on the next run, and every acknowledged upload is on main and sub (checker).
// And the unattended outage (issue 9): main killed, nobody runs a runbook, main started again is
// held in maint by HAProxy's agent (also across a reload and a restart) until failback, which finds
// the divergence with no failover record.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ensureEngine } from '../../src/lab/engine.ts';
import { runRunbookByName } from '../../src/stack/runbooks.ts';
import { failureLines } from '../../src/cli/commands/run.ts';
import type { JournalEntry } from '../../src/runbook/journal.ts';
import type { Reporter } from '../../src/runbook/progress.ts';
import type { StepSummary } from '../../src/runbook/steps.ts';
import { haproxyNodes, type Topology } from '../../src/topology/model.ts';
import {
  FAILOVER_STATE,
  fenced,
  readFailoverState,
  runtimeApi,
  serverStateCommands,
  showStat,
  socatLine,
  statusOf,
} from '../../src/failover/index.ts';
import { addressOf } from '../../src/topology/inventory.ts';
import {
  ensureScenarioLab,
  resetScenarioLab,
  scenarioTopology,
  startNode,
  type ScenarioLab,
} from '../../scenarios/lab.ts';
import {
  checkEverywhere,
  killMain,
  startWorkload,
  until,
  type RunningWorkload,
} from '../../scenarios/outage.ts';
import { labNode } from '../../src/lab/node.ts';
import { observeUploads, userRoot } from '../../src/workload/remote.ts';
import { RECONCILE_MARK, haproxyGroup, readReconcileMark } from '../../src/failover/index.ts';
import { REPO } from './helpers.ts';

let t: Topology;
let file: string;
let lab: ScenarioLab;
const log: string[] = [];
const rb = (name: string, options: Record<string, unknown> = {}, reporter?: Reporter) =>
  runRunbookByName(name, {
    topology: t,
    inventory: lab.inventory,
    transports: lab.transports,
    log: (l) => log.push(l),
    options,
    ...(reporter ? { reporter } : {}),
  });

// every HAProxy (both of a pair): what the runbooks act on, read as one (src/failover/pair.ts)
const hap = () => haproxyGroup(t, (n) => lab.transports.get(n));
const HAPS = () => haproxyNodes(t);
/** A command on every HAProxy node; their outputs, in node order. */
const onHaps = async (cmd: string) => Promise.all(HAPS().map((n) => lab.sh(n, cmd)));
const absentEverywhere = async (path: string) =>
  (await onHaps(`test -e ${path}; echo $?`)).map((r) => r.stdout.trim());
const mainStatus = async () => statusOf(await showStat(hap(), t), t, 'sftp-main');
const mainAddr = () => addressOf(lab.inventory, 'sftp-main', 'lan');

/**
 * main's status sampled every 100 ms for ms: samples, statuses other than MAINT, failed reads, and
 * `detail`: each non-MAINT status with its time and node (the pair's nodes read one by one).
 */
async function watchMaint(
  ms: number,
): Promise<{ n: number; seen: string[]; failed: number; detail: string[] }> {
  const t0 = Date.now();
  const end = t0 + ms;
  const seen: string[] = [];
  const detail: string[] = [];
  let n = 0;
  let failed = 0;
  while (Date.now() < end) {
    try {
      const st = await mainStatus();
      n++;
      for (const [b, v] of Object.entries(st))
        if (v !== 'MAINT') {
          seen.push(v);
          const per = await Promise.all(
            HAPS().map(
              async (h) => `${h} ${statusOf(await showStat(lab.transports.get(h)!, t), t, 'sftp-main')[b]}`,
            ),
          ).catch((e: Error) => [e.message]);
          detail.push(`+${Date.now() - t0} ms ${b}: ${per.join(', ')}`);
        }
    } catch {
      failed++; // the stats socket between two HAProxy processes
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { n, seen, failed, detail };
}

/** What each HAProxy node's agent logged lately and its copy of the peer-shared reconcile flag. */
async function agentEvidence(): Promise<string> {
  const out = await onHaps(
    `journalctl -t wharf-haproxy-agent --since -90s --no-pager -o short-precise 2>&1 | tail -n 5; ` +
      `ls -l --time-style=+%T.%N /var/lib/wharf/needs-reconcile 2>&1; ` +
      socatLine(t.haproxy.stats.socket, ['show table wharf_reconcile']),
  );
  return out
    .map((r, i) => `--- ${HAPS()[i]} (${new Date().toISOString()})\n${r.stdout}${r.stderr}`)
    .join('\n');
}

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

// the shared lab: up and provisioned once (by whichever lab file comes first), reset to the known
// state (every node running, no failover or reconcile mark, main ready, lsyncd as rendered, upload
// folders, notice spool and backup snapshots empty); it comes down after every lab file
// (test/lab/global-setup.ts), never here
let fresh = false;
beforeAll(async () => {
  await ensureEngine();
  ({ file } = scenarioTopology());
  lab = await ensureScenarioLab((l) => process.stderr.write(`[scenario lab] ${l}\n`));
  t = lab.t;
  fresh = true;
});
// each test starts from the known state, whatever the one before left (uploads, a failover, maint)
beforeEach(async () => {
  if (!fresh) await resetScenarioLab(lab);
  fresh = false;
  log.length = 0;
});

afterAll(async () => {
  if (lab) await lab.close();
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
      expect(await mainStatus()).toEqual({ sftp: 'MAINT', write: 'MAINT', read: 'MAINT' });
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
      expect(await absentEverywhere(FAILOVER_STATE)).toEqual(HAPS().map(() => '1'));
      // not failed over any more: failback has nothing to do
      const again = await rb('failback');
      expect(again.ok).toBe(true);
      expect(
        (again.details as { nothingToDo?: boolean }).nothingToDo,
        `failback again: ${JSON.stringify((again.details as { reasons?: string[] }).reasons)}`,
      ).toBe(true);
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
      const out1 = await killHalfway('failover', /ok {3}haproxy[^:]*: sftp-main → maint/);
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
      expect(await mainStatus()).toEqual({ sftp: 'MAINT', write: 'MAINT', read: 'MAINT' }); // main stays out
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
      expect(fb.steps.find((x) => x.id === 'catch-up:keep-conflicts')).toMatchObject({
        result: 'skipped',
        detail: 'no conflict',
      });
      const sha = async (node: string) => (await lab.sh(node, `sha256sum ${path}`)).stdout.split(' ')[0];
      await until(20_000, async () => (await sha('sftp-main')) === (await sha('sftp-sub')));
      expect(await sha('sftp-main')).toBe(await sha('sftp-sub'));
      expect(await size('sftp-main')).toBeLessThan(16 << 20); // cut by the pause, never acknowledged
    } finally {
      slow.kill('SIGKILL');
      await ended;
    }
  });
  it('an aborted planned failover whose undo cannot reach the HAProxy runtime socket: the failed undo step, its host, exit 1', async () => {
    // GIVEN the final sync fails (an rsync on main's PATH that waits 6 s and exits 23; lsyncd uses
    // /usr/bin/rsync and is stopped by then) and, while it runs, HAProxy's runtime socket is moved away
    const sock = t.haproxy.stats.socket;
    const wrapper = '/usr/local/bin/rsync';
    await lab.sh(
      'sftp-main',
      `printf '#!/bin/sh\\nsleep 6\\nexit 23\\n' > ${wrapper} && chmod 755 ${wrapper}`,
    );
    let moved: Promise<unknown> | undefined;
    const lines: string[] = [];
    const reporter: Reporter = {
      step: (host, text) => {
        if (host === 'sftp-main' && text.startsWith('final sync'))
          // the runtime API gone on every HAProxy of the pair (one left would take the undo)
          moved = Promise.all(HAPS().map((h) => lab.sh(h, `mv ${sock} ${sock}.away`)));
      },
      done: () => {},
      line: (l) => void lines.push(l),
      close: () => {},
    };
    try {
      expect(Object.values(await mainStatus()).every((x) => x.startsWith('UP'))).toBe(true);
      const fo = await rb('failover', {}, reporter);
      expect(moved, 'the final sync started').toBeDefined();
      await moved;
      // THEN the run fails with exit 1, the final sync failed, and the undo of "main → maint" is a
      // failed step on haproxy with the runtime API commands it ran and the error
      expect(fo.ok).toBe(false);
      expect(fo.exitCode).toBe(1);
      const by = Object.fromEntries(fo.steps.map((x) => [x.id, x])) as Record<string, StepSummary>;
      expect(by['final-sync']!.result).toBe('failed');
      expect(by['fence']!.result).toBe('not-run');
      const undo = by['undo:main-maint']!;
      expect(undo).toMatchObject({ host: hap().host, result: 'failed', undoes: 'main-maint' });
      expect(undo.undo!.commands).toEqual(expect.arrayContaining(['set server write/sftp-main state ready']));
      expect(undo.error).toMatch(/No such file|socat|exit/i);
      expect(by['main-maint']!.result).toBe('ok'); // not claimed undone
      expect(by['undo:stop-lsyncd']!.result).toBe('ok');
      expect(by['undo:record-state']!.result).toBe('ok');
      const plain = failureLines(fo).join('\n');
      expect(plain).toMatch(/failed step final-sync on sftp-main: /);
      expect(plain).toContain(`failed undo undo:main-maint on ${hap().host}: ran set server `);
      expect(lines.join('\n')).toContain(`FAIL ${hap().host}: undo: sftp-main and sftp-sub → ready`);
      // nothing claims main is back in rotation
      expect(lines.join('\n')).not.toContain(`undo ${hap().host}: sftp-main and sftp-sub → ready`);
      expect(lines.join('\n')).toMatch(/undo sftp-main: enable and start lsyncd again/);
      // the journal says the same (host, commands, error)
      const journal = readFileSync(fo.journal!, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as JournalEntry);
      const j = journal.find((e) => e.id === 'undo:main-maint')!;
      expect(j).toMatchObject({ host: hap().host, step: 'undo', result: 'failed' });
      expect(j.error).toBe(undo.error);
      expect((j.detail as { commands: string[] }).commands).toEqual(undo.undo!.commands);
      expect(journal.at(-1)).toMatchObject({ step: 'summary', result: 'failed' });
      // and the stack is where the result says: main still in maint (the undo did not happen)
      for (const h of HAPS()) await lab.sh(h, `mv ${sock}.away ${sock}`);
      moved = undefined;
      expect(await mainStatus()).toEqual({ sftp: 'MAINT', write: 'MAINT', read: 'MAINT' });
      expect((await lab.sh('sftp-main', 'systemctl is-active lsyncd')).stdout.trim()).toBe('active');
      expect(await absentEverywhere(FAILOVER_STATE)).toEqual(HAPS().map(() => '1'));
    } finally {
      // repair for the rest of the file: socket back, rsync back, main and sub ready, lsyncd on
      await moved?.catch(() => undefined);
      for (const h of HAPS()) await lab.sh(h, `if [ -e ${sock}.away ]; then mv ${sock}.away ${sock}; fi`);
      await lab.sh('sftp-main', `rm -f ${wrapper}; systemctl enable --now lsyncd`);
      await runtimeApi(hap(), t, [
        ...serverStateCommands(t, 'sftp-main', 'ready'),
        ...serverStateCommands(t, 'sftp-sub', 'ready'),
      ]);
      await until(20_000, async () => Object.values(await mainStatus()).every((x) => x.startsWith('UP')));
    }
    expect(Object.values(await mainStatus()).every((x) => x.startsWith('UP'))).toBe(true);
  });

  it('failover and failback --check --json print their steps; applying them runs the same step ids (journal)', async () => {
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, [join(REPO, 'bin/wharf.mjs'), 'run', ...args, '-c', file], {
        cwd: REPO,
        encoding: 'utf8',
        timeout: 600_000,
      });
    interface Planned {
      runbook: string;
      steps: StepSummary[];
      changes: number;
      details?: { observed?: { toMain: number; toSub: number } };
    }
    const ran = (journalPath: string) => {
      const entries = readFileSync(join(REPO, journalPath), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as JournalEntry);
      const runId = entries.at(-1)!.runId;
      return entries
        .filter((e) => e.runId === runId && e.id && e.step !== 'plan' && e.step !== 'undo')
        .map((e) => [e.id, e.result]);
    };
    // failover
    const c1 = cli('failover', '--check', '--json');
    expect(c1.status, c1.stderr).toBe(0);
    const p1 = JSON.parse(c1.stdout) as Planned;
    expect(p1.runbook).toBe('failover');
    const ids1 = p1.steps.map((x) => x.id);
    expect(ids1).toEqual([
      'preflight',
      'record-state',
      'stop-lsyncd',
      'main-maint',
      'mark',
      'drain',
      'cut-sessions',
      'final-sync',
      'fence',
      'sub-serves',
      'probe',
      'complete',
    ]);
    for (const x of p1.steps)
      expect(Object.keys(x)).toEqual(expect.arrayContaining(['id', 'host', 'action', 'why']));
    expect(p1.steps.find((x) => x.id === 'main-maint')!.undo!.host).toBe(hap().host);
    expect(c1.stderr).toContain(' 1. preflight [*]');
    expect(Object.values(await mainStatus()).every((x) => x.startsWith('UP'))).toBe(true); // --check changed nothing
    const a1 = cli('failover', '--json');
    expect(a1.status, a1.stderr).toBe(0);
    const r1 = JSON.parse(a1.stdout) as { journal: string; ok: boolean };
    expect(r1.ok).toBe(true);
    const j1 = ran(r1.journal);
    expect(j1.map(([id]) => id)).toEqual(ids1);
    expect(j1.every(([, res]) => res === 'ok' || res === 'skipped')).toBe(true);

    // failback: what it would copy and why (as observed), then the same ids applied
    const c2 = cli('failback', '--check', '--json');
    expect(c2.status, c2.stderr).toBe(0);
    const p2 = JSON.parse(c2.stdout) as Planned;
    expect(p2.runbook).toBe('failback');
    const ids2 = p2.steps.map((x) => x.id);
    expect(ids2).toEqual([
      'main-maint',
      'stop-lsyncd',
      'lift-fence',
      'sync:list',
      'sync:keep-conflicts',
      'sync:to-main',
      'sync:to-sub',
      'sync:verify',
      'record-plan',
      'pause-writes',
      'catch-up:list',
      'catch-up:keep-conflicts',
      'catch-up:to-main',
      'catch-up:verify',
      'start-lsyncd',
      'main-ready',
      'replicated',
      'probe',
      'close-record',
    ]);
    expect(p2.steps.find((x) => x.id === 'sync:list')!.why).toMatch(
      /\d+ file\(s\) sftp-sub → sftp-main, \d+ sftp-main → sftp-sub, \d+ conflict\(s\) as observed/,
    );
    expect(p2.details?.observed).toMatchObject({ toMain: expect.any(Number), toSub: expect.any(Number) });
    expect(c2.stderr).toMatch(/copy plan as observed now/);
    expect(p2.steps.find((x) => x.id === 'pause-writes')!.undo!.commands).toEqual(
      expect.arrayContaining(['set server write/sftp-sub state ready']),
    );
    expect(await mainStatus()).toEqual({ sftp: 'MAINT', write: 'MAINT', read: 'MAINT' }); // --check changed nothing
    const a2 = cli('failback', '--json');
    expect(a2.status, a2.stderr).toBe(0);
    const r2 = JSON.parse(a2.stdout) as { journal: string; ok: boolean };
    const j2 = ran(r2.journal);
    expect(j2.map(([id]) => id)).toEqual(ids2);
    expect(j2.every(([, res]) => res === 'ok' || res === 'skipped')).toBe(true);
    expect(Object.values(await mainStatus()).every((x) => x.startsWith('UP'))).toBe(true);
  });

  it('the unattended outage: main killed, nobody runs a runbook, main started again stays out (also across an HAProxy reload and restart) until failback copies the outage uploads; every acknowledged upload on main and sub', async () => {
    // GIVEN uploads flowing through the WAN entry and no failover on record
    expect(await readFailoverState(hap())).toBe(null);
    expect(await readReconcileMark(hap())).toBe(null);
    const w = startWorkload(lab, { prefix: `ua-${Date.now().toString(36)}`, clients: 2, retryDelayMs: 500 });
    const root = userRoot(t, lab.status.demoUser.name, 'sftp');
    const onMain = async () =>
      new Set(
        (await observeUploads(lab.status, 'sftp-main', root, t.sftp.uploadDir, w.prefix)).map((f) => f.path),
      );
    let backAt = 0;
    let outageAcks = 0;
    try {
      await until(30_000, () => w.acks.length >= 10);
      // WHEN main is killed and nobody runs a runbook
      const k = await killMain(lab);
      expect(await until(30_000, () => w.acks.some((a) => (a.startedAt ?? 0) >= k.diedAt))).toBe(true);
      // THEN the agent marks main "needs reconcile" by itself (main DOWN while sub served writes)
      expect(await until(15_000, async () => (await readReconcileMark(hap())) !== null)).toBe(true);
      const markedMs = Date.now() - k.diedAt;
      expect(await readReconcileMark(hap())).toMatchObject({ by: 'haproxy-agent' });
      const n0 = w.acks.length;
      await until(20_000, () => w.acks.length >= n0 + 10);
      // main is started again: its checks pass, but the agent holds it in maint
      await startNode(lab, 'sftp-main');
      backAt = Date.now();
      outageAcks = w.acks.filter((a) => a.ackAt > k.diedAt).length;
      const tw = (t.haproxy.check.rise + 2) * 500 + 2000; // past rise × inter: it would be UP by now
      const steady = await watchMaint(tw);
      expect(steady.n).toBeGreaterThan(5);
      expect(steady.seen, 'main left MAINT while unreconciled').toEqual([]);
      expect(await readFailoverState(hap())).toBe(null); // nobody failed over
      // an HAProxy reload, then a restart: the new process starts with main in MAINT (server-state file)
      await onHaps('systemctl reload haproxy');
      const reload = await watchMaint(4000);
      await onHaps('systemctl restart haproxy');
      const restart = await watchMaint(4000);
      process.stderr.write(
        `[measure] unattended outage: mark set ${markedMs} ms after the kill; main back and held in MAINT: ${steady.n} samples; ` +
          `after reload ${reload.n} samples (${reload.failed} unreadable), not MAINT: ${reload.seen.length}; ` +
          `after restart ${restart.n} samples (${restart.failed} unreadable), not MAINT: ${restart.seen.length}\n`,
      );
      expect(reload.n).toBeGreaterThan(10);
      expect(reload.seen, 'main left MAINT after an HAProxy reload').toEqual([]);
      expect(restart.n).toBeGreaterThan(10);
      expect(restart.seen, 'main left MAINT after an HAProxy restart').toEqual([]);
      // uploads go on, to sub only: none started after main came back is on main
      const n1 = w.acks.length;
      await until(20_000, () => w.acks.length >= n1 + 5);
      const later = w.acks.filter((a) => (a.startedAt ?? a.ackAt) >= backAt);
      expect(later.length).toBeGreaterThan(0);
      const main1 = await onMain();
      expect(later.filter((a) => main1.has(a.path)).map((a) => a.path)).toEqual([]);

      // failback with no failover record: it finds the divergence itself
      w.setRetryDelay(3000); // the write pause: clients must not lock themselves out (rate limit)
      log.length = 0;
      const fb = await rb('failback');
      expect(fb.error ?? '', log.join('\n')).toBe('');
      expect(fb.ok).toBe(true);
      const d = fb.details as { failedOverAt?: string; reasons: string[]; plan: { toMain: number } };
      expect(d.failedOverAt).toBeUndefined();
      expect(d.reasons.join('; ')).toMatch(/needs reconcile/);
      expect(d.plan.toMain).toBeGreaterThanOrEqual(outageAcks);
      expect(Object.values(await mainStatus()).every((x) => x.startsWith('UP'))).toBe(true);
      expect(await absentEverywhere(RECONCILE_MARK)).toEqual(HAPS().map(() => '1'));
      const k2 = w.acks.length;
      await until(30_000, () => w.acks.length >= k2 + 5);
    } finally {
      await w.stop();
    }
    // every acknowledged upload on main and on sub, same sha256
    const c = await checkEverywhere(lab, w.acks, w.prefix);
    process.stderr.write(
      `[measure] unattended outage: ${c.verdict.acknowledged} acks (${outageAcks} during the outage), ${c.verdict.nodes.map((v) => `${v.node} lost ${v.lost.length} corrupt ${v.corrupt.length}`).join(', ')}\n`,
    );
    for (const nv of c.verdict.nodes) expect([nv.node, nv.lost, nv.corrupt]).toEqual([nv.node, [], []]);
    // and failback has nothing left to do
    const again = await rb('failback');
    expect(again.ok).toBe(true);
    expect((again.details as { nothingToDo?: boolean }).nothingToDo).toBe(true);
  });

  it('a reboot (docker stop, start) and a network cut of main under load: each leaves main out of rotation until failback; no acknowledged upload lost', async () => {
    const w = startWorkload(lab, { prefix: `rc-${Date.now().toString(36)}`, clients: 2, retryDelayMs: 500 });
    // the cut is made on the HAProxy nodes (the SFTP nodes have no CAP_NET_ADMIN): main's lan
    // address unroutable from there, so checks and sessions to main time out; mgmt ssh is untouched
    const cut = async (on: boolean) => {
      for (const r of await onHaps(`ip route ${on ? 'add' : 'del'} blackhole ${mainAddr()}/32`))
        expect(r.code, r.stderr).toBe(0);
    };
    const faults: Array<[string, () => Promise<unknown>, () => Promise<unknown>]> = [
      // a reboot as a power cycle: down until sub has served writes, then up (a `docker restart`
      // can be over before any upload reaches sub, and then main rejoining loses nothing)
      ['reboot', () => labNode(t.name, 'sftp-main').stop(0), () => startNode(lab, 'sftp-main')],
      ['network cut', () => cut(true), () => cut(false)],
    ];
    const measured: string[] = [];
    try {
      for (const [name, fault, heal] of faults) {
        await until(30_000, () => w.acks.length >= 10);
        w.setRetryDelay(500);
        expect(await readReconcileMark(hap())).toBe(null);
        const at = Date.now();
        await fault();
        // sub serves, the agent marks main
        expect(await until(30_000, () => w.acks.some((a) => (a.startedAt ?? 0) >= at)), name).toBe(true);
        // healed once every HAProxy has the mark: the node that noticed the outage marks first and
        // holds main at once; the other learns it through peers at its next agent check (≤ 1 s,
        // agent-inter; README "Non-preemptive failover"), and a heal before that can show main UP
        // there for that long (no client traffic reaches it: it does not hold the address)
        expect(
          await until(15_000, async () => (await absentEverywhere(RECONCILE_MARK)).every((x) => x === '0')),
          name,
        ).toBe(true);
        const markedMs = Date.now() - at;
        await heal();
        const healedAt = Date.now();
        // main answers its health checks again: it stays in maint
        expect(
          await until(
            30_000,
            async () =>
              (
                await lab.sh(
                  HAPS()[0]!,
                  `timeout 2 bash -c 'exec 3<>/dev/tcp/${mainAddr()}/${t.sftp.port}' 2>/dev/null; echo $?`,
                )
              ).stdout.trim() === '0',
          ),
          `${name}: main reachable from haproxy again`,
        ).toBe(true);
        // never back in rotation (DOWN on its way up is out of it too: the agent's maint answer may
        // still be on its way, ≤ agent-inter after the mark), and in MAINT once the checks pass
        const held = await watchMaint((t.haproxy.check.rise + 2) * 500 + 2000);
        expect(held.n).toBeGreaterThan(5);
        // statuses joined by '/' (statusOf), each maybe with its own "1/2" (`MAINT/DOWN 1/2`)
        const back = held.seen.filter((x) =>
          x.split(/\/(?=[A-Za-z])/).some((p) => p !== 'MAINT' && !p.startsWith('DOWN')),
        );
        expect(
          // a pair reports one status per node when they differ (`MAINT/DOWN`): out of rotation on both
          back,
          `${name}: main back in rotation before failback (healed ${Date.now() - healedAt} ms ago)\n${held.detail.join('\n')}\n${back.length ? await agentEvidence() : ''}`,
        ).toEqual([]);
        expect(await mainStatus()).toEqual({ sftp: 'MAINT', write: 'MAINT', read: 'MAINT' });
        w.setRetryDelay(3000);
        log.length = 0;
        const fb = await rb('failback');
        expect(fb.error ?? '', log.join('\n')).toBe('');
        expect(fb.ok).toBe(true);
        expect(Object.values(await mainStatus()).every((x) => x.startsWith('UP'))).toBe(true);
        expect(await readReconcileMark(hap())).toBe(null);
        measured.push(`${name}: mark ${markedMs} ms after the fault, held ${held.n} samples`);
        w.setRetryDelay(500);
      }
      const k = w.acks.length;
      await until(30_000, () => w.acks.length >= k + 5);
    } finally {
      await onHaps(`ip route del blackhole ${mainAddr()}/32 2>/dev/null; true`).catch(() => undefined);
      await w.stop();
    }
    const c = await checkEverywhere(lab, w.acks, w.prefix);
    process.stderr.write(
      `[measure] reboot and network cut: ${measured.join('; ')}; ${c.verdict.acknowledged} acks, ${c.verdict.nodes.map((v) => `${v.node} lost ${v.lost.length} corrupt ${v.corrupt.length}`).join(', ')}\n`,
    );
    for (const nv of c.verdict.nodes) expect([nv.node, nv.lost, nv.corrupt]).toEqual([nv.node, [], []]);
  });
});
