// wharf watch against the lab's real daemons, on the shared scenario lab (scenarios/lab.ts:
// WHARF_SCENARIO_STACK, else stack "scen", 10.96.x; provisioned once by the first lab file that
// needs it, reset to the known state in beforeAll; it comes down after every lab file, never here):
// GIVEN a provisioned lab and `wharf watch --down-for 3s` running as a child process (the real CLI)
// WHEN sftp-main is killed (docker kill) and nobody runs a runbook
// THEN watch runs `failover --unplanned` by itself (its journal, /var/lib/wharf/failover.json on
//      haproxy), and the notify sink received its alerts by webhook and by SMTP
// WHEN sftp-main is started again
// THEN watch alerts "waiting for failback" and does NOT fail back: main stays out of the write
//      backend; SIGTERM ends watch cleanly with a journal line.
// THEN a watch with --auto-failback --settle 3s runs failback by itself and alerts main back in
//      rotation. (The second test goes on from the state the first one leaves: failed over, main
//      running but held out; no reset between them.)
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureEngine } from '../../src/lab/engine.ts';
import { readNotices, SINK_MESSAGES_PATH, type Notice } from '../../src/lab/sink/index.ts';
import type { JournalEntry } from '../../src/runbook/journal.ts';
import { haproxyNodes, type Topology } from '../../src/topology/model.ts';
import { readFailoverState, showStat, statusOf } from '../../src/failover/index.ts';
import type { WatchEvent } from '../../src/watch/run.ts';
import { ensureScenarioLab, scenarioTopology, startNode, type ScenarioLab } from '../../scenarios/lab.ts';
import { killMain, sleep, until } from '../../scenarios/outage.ts';
import { onNode, REPO } from './helpers.ts';

let t: Topology;
let file: string;
let lab: ScenarioLab;
let child: ChildProcess | undefined;

// watch acts on both HAProxies of a pair: the first one's runtime state stands for both
const hap = () => lab.transports.get(haproxyNodes(t)[0]!)!;
const mainStatus = async () => statusOf(await showStat(hap(), t), t, 'sftp-main');

/** `wharf watch --json` as a child process (the real CLI), its events parsed as they come. */
function startWatch(args: string[]) {
  const events: WatchEvent[] = [];
  let stderr = '';
  const c = spawn(
    process.execPath,
    [
      join(REPO, 'bin/wharf.mjs'),
      'watch',
      '-c',
      file,
      '--interval',
      '500ms',
      '--max-duration',
      '150s',
      '--json',
      ...args,
    ],
    { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child = c;
  const exited = new Promise<number | null>((r) => c.once('exit', (code) => r(code)));
  let buf = '';
  c.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    const lines = buf.split('\n');
    buf = lines.pop()!;
    for (const l of lines) if (l.trim()) events.push(JSON.parse(l) as WatchEvent);
  });
  c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const seen = (pred: (e: WatchEvent) => boolean) => events.some(pred);
  const why = () => `${stderr}\n${events.map((e) => JSON.stringify(e)).join('\n')}`;
  const waitFor = async (ms: number, what: string, pred: (e: WatchEvent) => boolean) =>
    expect(await until(ms, () => seen(pred), 100), `${what}\n${why()}`).toBe(true);
  return { child: c, events, exited, seen, why, waitFor };
}
const alerted = (a: string) => (e: WatchEvent) => e.event === 'alert' && e.alert === a;

beforeAll(async () => {
  await ensureEngine();
  ({ file } = scenarioTopology());
  // the known state, whatever an earlier file or run left: every node running, failed back when a
  // failover or reconcile mark is on record, main ready, lsyncd as rendered, spools empty
  lab = await ensureScenarioLab((l) => process.stderr.write(`[scenario lab] ${l}\n`));
  t = lab.t;
  await until(30_000, async () => Object.values(await mainStatus()).every((s) => s.startsWith('UP')), 500);
});

afterAll(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  if (lab) await lab.close();
});

describe('wharf watch on the lab', () => {
  it('kill main: watch fails over by itself and alerts by webhook + SMTP; main back: alerts, does not fail back', async () => {
    const t0 = Date.now();
    const w = startWatch(['--down-for', '3s']);
    const { events, why, waitFor, exited } = w;

    // watching: main UP in every backend
    await waitFor(
      60_000,
      'watch sees main UP',
      (e) =>
        e.event === 'observation' &&
        e.observation.haproxy &&
        Object.values(e.observation.main ?? {}).every((s) => s.startsWith('UP')),
    );
    const start = events.find((e) => e.event === 'start');
    expect(start, why()).toBeDefined();
    const journalPath = resolve(REPO, (start as { journal: string }).journal);

    // kill main; nobody runs a runbook
    const { diedAt } = await killMain(lab);
    await waitFor(60_000, 'watch ran failover', (e) => e.event === 'runbook' && e.runbook === 'failover');
    const fo = events.find((e) => e.event === 'runbook' && e.runbook === 'failover');
    expect(fo, why()).toMatchObject({ ok: true });
    const decision = events.find((e) => e.event === 'decision');
    expect(decision, why()).toMatchObject({ runbook: 'failover', options: { unplanned: true } });
    const decidedAfterMs = Date.parse(decision!.at) - diedAt;
    process.stderr.write(`[watch] failover decided ${decidedAfterMs} ms after main died\n`);
    expect(decidedAfterMs).toBeGreaterThanOrEqual(3000);
    const record = await readFailoverState(hap());
    expect(record).toMatchObject({ mode: 'unplanned', phase: 'done', main: 'sftp-main', sub: 'sftp-sub' });
    expect(Object.values(await mainStatus()).every((s) => s === 'MAINT')).toBe(true);
    await waitFor(30_000, 'failover-done alert sent', alerted('failover-done'));

    // main comes back: "waiting for failback", and no failback
    await startNode(lab, 'sftp-main');
    await waitFor(60_000, 'main-back-waiting alert sent', alerted('main-back-waiting'));
    await sleep(3000);
    const st = await mainStatus();
    expect(st.write, JSON.stringify(st)).not.toMatch(/^UP/);
    expect(await readFailoverState(hap())).toMatchObject({ mode: 'unplanned', phase: 'done' });
    expect(
      events.filter((e) => e.event === 'decision').map((e) => (e as { runbook: string }).runbook),
    ).toEqual(['failover']);

    // SIGTERM: a clean stop with a journal line
    w.child.kill('SIGTERM');
    const code = await exited;
    expect(code, why()).toBe(0);
    expect(events.at(-1)).toMatchObject({ event: 'stop', reason: 'stopped by SIGTERM' });

    // every alert delivered on both channels, in order, once each
    const alerts = events.filter((e) => e.event === 'alert') as Extract<WatchEvent, { event: 'alert' }>[];
    expect(alerts.map((a) => a.alert)).toEqual(['main-down', 'failover-done', 'main-back-waiting']);
    for (const a of alerts)
      expect(a.channels.map((c) => [c.channel, c.ok])).toEqual([
        ['webhook', true],
        ['smtp', true],
      ]);

    // the journal: observations, decision, the runbook with its own journal, alerts, the stop
    const journal = readFileSync(journalPath, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as JournalEntry);
    expect(journal[0]).toMatchObject({ runbook: 'watch', step: 'run', result: 'started' });
    expect(journal.find((j) => j.step === 'decision')).toMatchObject({ id: 'decision:failover' });
    const rbEntry = journal.find((j) => j.step === 'runbook');
    expect(rbEntry).toMatchObject({ id: 'runbook:failover', result: 'ok' });
    const foJournal = (rbEntry!.detail as { journal: string }).journal;
    expect(readFileSync(resolve(REPO, foJournal), 'utf8')).toContain('"runbook":"failover"');
    expect(journal.filter((j) => j.step === 'alert' && j.result === 'ok')).toHaveLength(6);
    expect(journal.filter((j) => j.step === 'observe').length).toBeGreaterThanOrEqual(3);
    expect(journal.at(-1)).toMatchObject({ step: 'summary', detail: { reason: 'stopped by SIGTERM' } });

    // what the notify sink received: the same three alerts by webhook and by mail
    const r = await onNode(lab.sshConfig, 'notify-sink', `cat ${SINK_MESSAGES_PATH}`);
    const mine = readNotices(r.stdout).filter((n: Notice) => Date.parse(n.receivedAt) >= t0 - 1000);
    const hooks = mine
      .filter((n) => n.kind === 'webhook')
      .map((n) => (n.body as { wharf?: { event?: string; source?: string } }).wharf)
      .filter((w) => w?.source === 'watch')
      .map((w) => w!.event);
    expect(hooks).toEqual(['main-down', 'failover-done', 'main-back-waiting']);
    const mails = mine.filter((n) => n.kind === 'smtp' && n.headers['x-wharf-event']);
    expect(mails.map((m) => (m.kind === 'smtp' ? m.headers['x-wharf-event'] : ''))).toEqual([
      'main-down',
      'failover-done',
      'main-back-waiting',
    ]);
    expect(mails[2]).toMatchObject({ subject: expect.stringContaining('waiting for failback') });
    process.stderr.write(
      `[watch] whole test ${((Date.now() - t0) / 1000).toFixed(1)} s after the lab was up\n`,
    );
  });

  it('--auto-failback: after --settle of main answering, watch fails back by itself and alerts main back in rotation', async () => {
    // left by the test above: failed over, main running but held out
    expect(await readFailoverState(hap())).toMatchObject({ phase: 'done' });
    const w = startWatch(['--down-for', '3s', '--auto-failback', '--settle', '3s']);
    const { events, why, waitFor, exited } = w;
    await waitFor(30_000, 'main-back-waiting alert sent', alerted('main-back-waiting'));
    await waitFor(120_000, 'watch ran failback', (e) => e.event === 'runbook' && e.runbook === 'failback');
    expect(
      events.find((e) => e.event === 'runbook' && e.runbook === 'failback'),
      why(),
    ).toMatchObject({ ok: true });
    const decision = events.find((e) => e.event === 'decision');
    expect(decision, why()).toMatchObject({ runbook: 'failback' });
    await waitFor(30_000, 'main-in-rotation alert sent', alerted('main-in-rotation'));
    expect(Object.values(await mainStatus()).every((s) => s.startsWith('UP'))).toBe(true);
    expect(await readFailoverState(hap())).toBe(null);
    w.child.kill('SIGTERM');
    expect(await exited, why()).toBe(0);
    const alerts = events.filter((e) => e.event === 'alert') as Extract<WatchEvent, { event: 'alert' }>[];
    expect(alerts.map((a) => [a.alert, a.ok])).toEqual([
      ['main-back-waiting', true],
      ['failback-done', true],
      ['main-in-rotation', true],
    ]);
    expect(events.filter((e) => e.event === 'decision')).toHaveLength(1);
  });
});
