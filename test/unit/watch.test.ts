// wharf watch without any host: the pure state machine (nextWatch), the poll's parser, the alert
// payloads, and the CLI's flag errors.
import { describe, expect, it } from 'vitest';
import {
  initialWatchState,
  mainStateOf,
  nextWatch,
  type Decision,
  type Observation,
  type WatchConfig,
  type WatchInput,
  type WatchState,
} from '../../src/watch/machine.ts';
import { parsePoll, pollCommand } from '../../src/watch/run.ts';
import { mailMessage, webhookBody, alertChannels } from '../../src/watch/alert.ts';
import { runCli } from '../../src/cli/program.ts';
import { loadTopology } from '../../src/topology/load.ts';
import { labInventory } from '../../src/topology/inventory.ts';

const cfg: WatchConfig = {
  downForMs: 10_000,
  autoFailback: false,
  settleMs: 30_000,
  main: 'sftp-main',
  sub: 'sftp-sub',
};

const UP = { sftp: 'UP', write: 'UP' };
const DOWN = { sftp: 'DOWN', write: 'DOWN' };
const MAINT = { sftp: 'MAINT', write: 'MAINT' };
const SUB_UP = { sftp: 'UP', write: 'UP' };
const obs = (o: Partial<Observation> = {}): Observation => ({
  kind: 'observation',
  haproxy: true,
  main: UP,
  sub: SUB_UP,
  mainAnswers: true,
  failedOver: false,
  ...o,
});
const down = obs({ main: DOWN, mainAnswers: false });
const failedOverDead = obs({ main: MAINT, mainAnswers: false, failedOver: true });
const failedOverBack = obs({ main: MAINT, mainAnswers: true, failedOver: true });

/** Feed inputs at times (ms); collect every decision with its time. */
function play(steps: [number, WatchInput][], c: WatchConfig = cfg, s0: WatchState = initialWatchState()) {
  let s = s0;
  const out: { at: number; d: Decision }[] = [];
  for (const [at, input] of steps) {
    const r = nextWatch(s, input, at, c);
    s = r.state;
    out.push(...r.decisions.map((d) => ({ at, d })));
  }
  return {
    state: s,
    decisions: out,
    alerts: out.flatMap((x) => (x.d.kind === 'alert' ? [x.d.alert] : [])),
    runs: out.flatMap((x) => (x.d.kind === 'run' ? [x.d] : [])),
  };
}
const every = (from: number, to: number, step: number, input: WatchInput): [number, WatchInput][] => {
  const r: [number, WatchInput][] = [];
  for (let t = from; t <= to; t += step) r.push([t, input]);
  return r;
};

describe('nextWatch: failover', () => {
  it('main down shorter than --down-for: no failover, no alert', () => {
    const r = play([
      ...every(0, 5_000, 1000, obs()),
      ...every(6_000, 15_000, 1000, down),
      ...every(16_000, 30_000, 1000, obs()),
    ]);
    expect(r.runs).toEqual([]);
    expect(r.alerts).toEqual([]);
  });

  it('main down longer than --down-for while sub is UP: exactly one failover --unplanned, one "main down"', () => {
    const r = play(every(0, 60_000, 1000, down));
    expect(r.runs).toHaveLength(1);
    expect(r.runs[0]).toMatchObject({ runbook: 'failover', options: { unplanned: true } });
    expect(r.decisions.find((x) => x.d.kind === 'run')!.at).toBe(10_000);
    expect(r.alerts).toEqual(['main-down']);
  });

  it('after the failover: "failover done" once, no second failover while the record exists', () => {
    const r = play([
      ...every(0, 10_000, 1000, down),
      [10_500, { kind: 'runbook', runbook: 'failover', ok: true }],
      ...every(11_000, 120_000, 1000, failedOverDead),
    ]);
    expect(r.runs).toHaveLength(1);
    expect(r.alerts).toEqual(['main-down', 'failover-done']);
  });

  it('a failed failover alerts with the error and is not retried while main stays down', () => {
    const r = play([
      ...every(0, 10_000, 1000, down),
      [10_500, { kind: 'runbook', runbook: 'failover', ok: false, error: 'sftp-sub is unreachable' }],
      ...every(11_000, 120_000, 1000, down),
    ]);
    expect(r.runs).toHaveLength(1);
    expect(r.alerts).toEqual(['main-down', 'failover-failed']);
    const failed = r.decisions.find((x) => x.d.kind === 'alert' && x.d.alert === 'failover-failed')!.d;
    expect(failed).toMatchObject({ text: expect.stringContaining('FAILED: sftp-sub is unreachable') });
    // main comes back in rotation: that is a transition too, and a new outage may fail over again
    const after = play(
      [...every(121_000, 125_000, 1000, obs()), ...every(126_000, 140_000, 1000, down)],
      cfg,
      r.state,
    );
    expect(after.alerts).toEqual(['main-in-rotation', 'main-down']);
    expect(after.runs).toHaveLength(1);
  });

  it('flapping (down 4 s, up 1 s, repeatedly): never a failover, never an alert', () => {
    const steps: [number, WatchInput][] = [];
    for (let t = 0; t < 120_000; t += 1000) steps.push([t, t % 5000 === 4000 ? obs() : down]);
    const r = play(steps);
    expect(r.runs).toEqual([]);
    expect(r.alerts).toEqual([]);
  });

  it('sub not UP: "main down" alerted once, no failover; failover once sub comes up', () => {
    const subDown = obs({ main: DOWN, sub: { sftp: 'DOWN', write: 'DOWN' }, mainAnswers: false });
    const r = play([...every(0, 30_000, 1000, subDown), ...every(31_000, 40_000, 1000, down)]);
    expect(r.alerts).toEqual(['main-down']);
    expect(r.decisions.find((x) => x.d.kind === 'alert')!.d).toMatchObject({
      text: expect.stringContaining('no failover'),
    });
    expect(r.runs).toHaveLength(1);
    expect(r.decisions.find((x) => x.d.kind === 'run')!.at).toBe(31_000);
  });

  it("an operator's maintenance (MAINT, main answers, no failover record) is left alone; MAINT of a dead main is an outage", () => {
    expect(play(every(0, 60_000, 1000, obs({ main: MAINT, mainAnswers: true }))).runs).toEqual([]);
    expect(play(every(0, 60_000, 1000, obs({ main: MAINT, mainAnswers: false }))).runs).toHaveLength(1);
  });

  it("the outage is timed from HAProxy's status change (lastchg), not from watch's first look", () => {
    const r = play([[0, { ...down, mainOutForMs: 600_000 }]]);
    expect(r.runs).toHaveLength(1);
    expect(
      play([
        [0, { ...down, mainOutForMs: 4_000 }],
        [5_000, { ...down, mainOutForMs: 9_000 }],
      ]).runs,
    ).toEqual([]);
    expect(
      play([
        [0, { ...down, mainOutForMs: 4_000 }],
        [6_000, { ...down, mainOutForMs: 10_000 }],
      ]).runs,
    ).toHaveLength(1);
  });

  it('an incomplete failover on record (phase started): resumed when main is dead, left alone while main answers', () => {
    const interrupted = obs({
      main: MAINT,
      mainAnswers: false,
      failoverIncomplete: true,
      mainOutForMs: 60_000,
    });
    const r = play(every(0, 30_000, 1000, interrupted));
    expect(r.runs).toHaveLength(1);
    expect(r.runs[0]).toMatchObject({ runbook: 'failover', options: { unplanned: true } });
    expect(r.decisions[0]!.d).toMatchObject({ text: expect.stringContaining('incomplete failover') });
    const planned = obs({ main: MAINT, mainAnswers: true, failoverIncomplete: true, mainOutForMs: 60_000 });
    expect(play(every(0, 60_000, 1000, planned)).decisions).toEqual([]);
  });

  it('no second failover decision while one is running', () => {
    const r = play(every(0, 30_000, 1000, down));
    expect(r.state.failoverRunning).toBe(true);
    expect(r.runs).toHaveLength(1);
  });
});

describe('nextWatch: HAProxy unreachable', () => {
  it('alerts once when it stops answering and once when it answers again; no failover while blind', () => {
    const blind: Observation = { kind: 'observation', haproxy: false, error: 'ssh: connect timed out' };
    const r = play([
      ...every(0, 2_000, 1000, obs()),
      ...every(3_000, 60_000, 1000, blind),
      ...every(61_000, 65_000, 1000, obs()),
    ]);
    expect(r.alerts).toEqual(['haproxy-unreachable', 'haproxy-recovered']);
    expect(r.runs).toEqual([]);
    expect(r.decisions[0]!.d).toMatchObject({ text: expect.stringContaining('ssh: connect timed out') });
  });
});

describe('nextWatch: main back, failback', () => {
  const outage: [number, WatchInput][] = [
    ...every(0, 10_000, 1000, down),
    [10_500, { kind: 'runbook', runbook: 'failover', ok: true }],
    ...every(11_000, 20_000, 1000, failedOverDead),
  ];

  it('auto-failback off: "waiting for failback" once, never a failback; "back in rotation" after someone runs it', () => {
    const r = play([
      ...outage,
      ...every(21_000, 300_000, 1000, failedOverBack),
      ...every(301_000, 305_000, 1000, obs()),
    ]);
    expect(r.alerts).toEqual(['main-down', 'failover-done', 'main-back-waiting', 'main-in-rotation']);
    expect(r.runs.map((x) => x.runbook)).toEqual(['failover']);
  });

  it('auto-failback on: failback only after --settle of main answering, once; its result alerted', () => {
    const c = { ...cfg, autoFailback: true, settleMs: 30_000 };
    const r = play(
      [
        ...outage,
        ...every(21_000, 40_000, 1000, failedOverBack),
        ...every(41_000, 45_000, 1000, failedOverDead), // main leaves again: settle starts over
        ...every(46_000, 80_000, 1000, failedOverBack),
        [80_500, { kind: 'runbook', runbook: 'failback', ok: true }],
        ...every(81_000, 90_000, 1000, obs()),
      ],
      c,
    );
    const fb = r.decisions.filter((x) => x.d.kind === 'run' && x.d.runbook === 'failback');
    expect(fb.map((x) => x.at)).toEqual([76_000]);
    expect(r.alerts).toEqual([
      'main-down',
      'failover-done',
      'main-back-waiting',
      'main-back-waiting',
      'failback-done',
      'main-in-rotation',
    ]);
  });

  it('auto-failback on: a failed failback is alerted and not retried while main stays', () => {
    const c = { ...cfg, autoFailback: true, settleMs: 5_000 };
    const r = play(
      [
        ...outage,
        ...every(21_000, 26_000, 1000, failedOverBack),
        [26_500, { kind: 'runbook', runbook: 'failback', ok: false, error: 'hash mismatch' }],
        ...every(27_000, 200_000, 1000, failedOverBack),
      ],
      c,
    );
    expect(r.runs.map((x) => x.runbook)).toEqual(['failover', 'failback']);
    expect(r.alerts).toEqual(['main-down', 'failover-done', 'main-back-waiting', 'failback-failed']);
  });
});

describe('mainStateOf', () => {
  it('up only when every backend is UP; any MAINT is maint; else down', () => {
    expect(mainStateOf({ a: 'UP', b: 'UP 1/2' })).toBe('up');
    expect(mainStateOf({ a: 'UP', b: 'MAINT' })).toBe('maint');
    expect(mainStateOf({ a: 'UP', b: 'DOWN' })).toBe('down');
    expect(mainStateOf({ a: 'DRAIN', b: 'DRAIN' })).toBe('maint');
    expect(mainStateOf({})).toBe('down');
  });
});

describe('the poll', () => {
  const t = loadTopology('configs/stack.yaml');
  const csv = [
    '# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,',
    'write,FRONTEND,,,0,0,,,,,,,,,,,,OPEN,,,,,,,',
    'write,sftp-main,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT,1,1,0,0,0,12,',
    'write,sftp-sub,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP,1,0,1,0,0,12,',
    'sftp,sftp-main,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT,1,1,0,0,0,12,',
    'sftp,sftp-sub,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP,1,1,0,0,0,12,',
    'read,sftp-main,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT,1,1,0,0,0,12,',
    'read,sftp-sub,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP,1,1,0,0,0,12,',
  ].join('\n');

  it('parses show stat, the banner probe and the failover record', () => {
    const o = parsePoll(
      t,
      `${csv}\n\n@@stat=0\n@@probe=SSH-2.0-OpenSSH_9.2p1\n@@failover=done\n`,
      'sftp-main',
      'sftp-sub',
    );
    expect(o).toMatchObject({ haproxy: true, mainAnswers: true, failedOver: true });
    expect(Object.values(o.main!).every((s) => s === 'MAINT')).toBe(true);
    expect(Object.values(o.sub!).every((s) => s === 'UP')).toBe(true);
    const dead = parsePoll(t, `${csv}\n@@stat=0\n@@failover=no\n@@probe=\n`, 'sftp-main', 'sftp-sub');
    expect(dead).toMatchObject({ mainAnswers: false, failedOver: false, mainOutForMs: 12_000 });
    // not probed (main UP or DOWN without a failover on record): no claim about it
    const up = parsePoll(
      t,
      `${csv.replace(/MAINT/g, 'UP')}\n@@stat=0\n@@failover=no\n`,
      'sftp-main',
      'sftp-sub',
    );
    expect(up.mainAnswers).toBeUndefined();
    expect(up.mainOutForMs).toBeUndefined();
  });

  it('a socket that does not answer is "haproxy unreachable", with the reason', () => {
    const o = parsePoll(t, '@@stat=1\n@@probe=\n@@failover=no\n', 'sftp-main', 'sftp-sub');
    expect(o.haproxy).toBe(false);
    expect(o.error).toContain('socat exit 1');
  });

  it("the command uses UNIX-CONNECT and the topology's socket and SFTP port", () => {
    const c = pollCommand(t, 'sftp-main', '10.88.3.10');
    expect(c).toContain(`UNIX-CONNECT:`);
    expect(c).toContain(t.haproxy.stats.socket);
    expect(c).toContain(`/dev/tcp/10.88.3.10/${t.sftp.port}`);
    expect(c).toContain('/var/lib/wharf/failover.json');
  });
});

describe('alert payloads', () => {
  const m = {
    event: 'main-down',
    text: 'sftp-main down for 10 s',
    stack: 'seed',
    at: '2026-11-30T03:00:00.000Z',
  };
  it("webhook: the notifier's Slack-compatible shape (text, username, wharf{}) or plain JSON", () => {
    expect(JSON.parse(webhookBody(m, 'slack'))).toEqual({
      text: 'wharf seed: sftp-main down for 10 s',
      username: 'wharf',
      wharf: { event: 'main-down', stack: 'seed', at: m.at, source: 'watch' },
    });
    expect(JSON.parse(webhookBody(m, 'json'))).toMatchObject({ event: 'main-down', text: m.text });
  });
  it('mail: headers, CRLF, dot-stuffed body', () => {
    const mail = mailMessage({ ...m, text: 'a\n.b' }, 'wharf@example.org', [
      'ops@example.org',
      'b@example.org',
    ]);
    expect(mail).toContain('Subject: wharf seed: a .b\r\n');
    expect(mail).toContain('To: ops@example.org, b@example.org\r\n');
    expect(mail).toContain('\r\n..b\r\n');
    expect(mail).not.toMatch(/[^\r]\n/);
  });
  it("channels from the topology's notifications (the sink node by default)", () => {
    const t = loadTopology('configs/stack.yaml');
    const ch = alertChannels(t, labInventory(t));
    expect(ch.webhook?.url).toMatch(/^http:\/\/[\d.]+:\d+\/hooks\//);
    expect(ch.smtp).toMatchObject({ port: t.notifications.smtp.port, to: ['ops@example.org'] });
  });
});

describe('wharf watch: bad flags exit 2 naming them', () => {
  const run = async (...argv: string[]) => {
    let err = '';
    const code = await runCli(['watch', ...argv], { out: () => undefined, err: (s) => void (err += s) });
    return { code, err };
  };
  it.each([
    ['--interval', 'soon'],
    ['--down-for', '10'],
    ['--settle', '-1s'],
    ['--max-duration', 'forever'],
  ])('%s %s', async (flag, value) => {
    const r = await run(flag, value);
    expect(r.code).toBe(2);
    expect(r.err).toContain(flag);
  });
});

describe('wharf watch: lines for people', () => {
  it('one line per event, failures named', async () => {
    const { formatWatchEvent } = await import('../../src/cli/commands/watch.ts');
    const at = '2026-11-30T03:00:00.000Z';
    expect(
      formatWatchEvent({
        event: 'observation',
        at,
        observation: obs({ main: MAINT, mainAnswers: true, failedOver: true }),
      }),
    ).toBe(`${at} main sftp=MAINT write=MAINT (answers) · sub sftp=UP write=UP · failover on record`);
    expect(
      formatWatchEvent({
        event: 'alert',
        at,
        alert: 'main-down',
        text: 'sftp-main down',
        ok: false,
        channels: [
          { channel: 'webhook', ok: true, attempts: 1 },
          { channel: 'smtp', ok: false, attempts: 4, error: 'connect ECONNREFUSED' },
        ],
      }),
    ).toBe(`${at} alert main-down: sftp-main down — webhook sent, smtp FAILED (connect ECONNREFUSED)`);
    expect(
      formatWatchEvent({
        event: 'runbook',
        at,
        runbook: 'failover',
        ok: false,
        error: 'locked',
        durationMs: 1500,
      }),
    ).toBe(`${at} failover: FAILED: locked in 1.5 s`);
  });
});
