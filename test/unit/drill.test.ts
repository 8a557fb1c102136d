import { describe, expect, it } from 'vitest';
import {
  FAULT_KINDS,
  candidates,
  checkSet,
  drillChecks,
  drillFileSize,
  drillVerdict,
  generateSchedule,
  lagAfterHeal,
  parseSchedule,
  rng,
  rtoByKind,
  rtoOf,
  timeline,
  type Attempt,
  type DrillLabShape,
  type FaultRecord,
} from '../../src/drill/index.ts';
import { delayNat, delayProxyConfig, ifaceByMac, linkRules } from '../../src/drill/faults.ts';

const shape: DrillLabShape = {
  main: 'sftp-main',
  sub: 'sftp-sub',
  backup: 'sftp-backup',
  haproxy: 'haproxy',
  notifier: 'sftp-main',
  networks: {
    router: ['wan', 'transit'],
    firewall: ['transit', 'dmz'],
    haproxy: ['dmz', 'lan'],
    'sftp-main': ['lan'],
    'sftp-sub': ['lan'],
    'sftp-backup': ['lan'],
    'notify-sink': ['lan'],
  },
  sizedUploads: [],
};
const targets = Object.keys(shape.networks);
const spec = (o: Partial<Parameters<typeof generateSchedule>[1]> = {}) => ({
  seed: 42,
  durationMs: 120_000,
  faults: ['kill', 'partition', 'loss'] as (typeof FAULT_KINDS)[number][],
  targets,
  ...o,
});

describe('drill schedule (pure, seeded)', () => {
  it('the same seed gives the same schedule; another seed another one', () => {
    const a = generateSchedule('s', spec(), shape);
    expect(generateSchedule('s', spec(), shape)).toEqual(a);
    expect(generateSchedule('s', spec({ seed: 43 }), shape)).not.toEqual(a);
    expect(rng(1)()).toBe(rng(1)());
  });

  it('faults never overlap, fit in the duration, and each kind appears in every round', () => {
    const s = generateSchedule(
      's',
      spec({
        durationMs: 600_000,
        faults: [...FAULT_KINDS].filter((k) => k !== 'disk-full' && k !== 'haproxy-active'),
      }),
      shape,
    );
    for (let i = 1; i < s.faults.length; i++) {
      const p = s.faults[i - 1]!;
      expect(s.faults[i]!.at).toBeGreaterThanOrEqual(p.at + p.holdMs);
    }
    const lastF = s.faults.at(-1)!;
    expect(lastF.at + lastF.holdMs).toBeLessThanOrEqual(600_000);
    const firstRound = new Set(s.faults.slice(0, 8).map((f) => f.kind));
    expect(firstRound.size).toBe(8);
  });

  it('partition and loss only between nodes that share a data network; delay from HAProxy to an SFTP node', () => {
    for (const c of candidates('partition', shape, targets)) {
      const [a, b] = c.targets as [string, string];
      expect(shape.networks[a]!.some((n) => shape.networks[b]!.includes(n))).toBe(true);
    }
    expect(candidates('partition', shape, targets).map((c) => c.targets.join('|'))).not.toContain(
      'router|sftp-main',
    );
    expect(candidates('delay', shape, targets).map((c) => c.targets)).toEqual([
      ['haproxy', 'sftp-main'],
      ['haproxy', 'sftp-sub'],
    ]);
    expect(candidates('kill', shape, ['sftp-main']).map((c) => c.targets)).toEqual([['sftp-main']]);
  });

  it('haproxy-active: both nodes of the pair as targets (the holder is read at injection), none without a pair', () => {
    const pair: DrillLabShape = {
      ...shape,
      haproxy: 'haproxy-1',
      haproxies: ['haproxy-1', 'haproxy-2'],
      networks: { ...shape.networks, 'haproxy-1': ['dmz', 'lan'], 'haproxy-2': ['dmz', 'lan'] },
    };
    expect(candidates('haproxy-active', pair, Object.keys(pair.networks))).toEqual([
      { targets: ['haproxy-1', 'haproxy-2'], params: {} },
    ]);
    expect(candidates('haproxy-active', pair, ['haproxy-1'])).toEqual([]);
    expect(candidates('haproxy-active', shape, targets)).toEqual([]);
    const s = generateSchedule(
      's',
      spec({ faults: ['haproxy-active'], targets: Object.keys(pair.networks) }),
      pair,
    );
    expect(s.faults.every((f) => f.kind === 'haproxy-active')).toBe(true);
    expect(() => generateSchedule('s', spec({ faults: ['haproxy-active'] }), shape)).toThrow(
      /--faults haproxy-active: nothing to act on.*HAProxy pair/,
    );
  });

  it('refuses a kind with nothing to act on, naming it; and a duration too short for one fault', () => {
    expect(() => generateSchedule('s', spec({ faults: ['disk-full'] }), shape)).toThrow(
      /--faults disk-full: nothing to act on.*size-limited/,
    );
    expect(() => generateSchedule('s', spec({ faults: ['delay'], targets: ['sftp-main'] }), shape)).toThrow(
      /--faults delay/,
    );
    expect(() => generateSchedule('s', spec({ durationMs: 8_000 }), shape)).toThrow(/too short/);
  });

  it('a saved schedule reads back equal; a broken one names the field', () => {
    const s = generateSchedule('s', spec(), shape);
    expect(parseSchedule(JSON.stringify(s), 'f.json')).toEqual(s);
    const bad = JSON.parse(JSON.stringify(s));
    bad.faults[0].kind = 'meteor';
    expect(() => parseSchedule(JSON.stringify(bad), 'f.json')).toThrow(/f\.json: faults\.0\.kind/);
    expect(() => parseSchedule('{', 'f.json')).toThrow(/f\.json: not JSON/);
  });

  it('file sizes are seeded and mixed (mostly small, some large)', () => {
    const xs = Array.from({ length: 400 }, (_, i) => drillFileSize(7, i % 4, i));
    expect(xs).toEqual(Array.from({ length: 400 }, (_, i) => drillFileSize(7, i % 4, i)));
    expect(xs.filter((x) => x <= 64 * 1024).length).toBeGreaterThan(200);
    expect(xs.some((x) => x > 1024 * 1024)).toBe(true);
  });
});

describe('drill fault rules (pure)', () => {
  it('finds the interface by MAC in `ip -o link`', () => {
    const out = [
      '1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00',
      '2: eth0@if41: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default \\    link/ether 02:42:0a:60:03:05 brd ff:ff:ff:ff:ff:ff link-netnsid 0',
      '3: eth1@if43: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP \\    link/ether 02:42:0A:60:09:05 brd ff:ff:ff:ff:ff:ff link-netnsid 0',
    ].join('\n');
    expect(ifaceByMac(out, '02:42:0a:60:03:05')).toBe('eth0');
    expect(ifaceByMac(out, '02:42:0a:60:09:05')).toBe('eth1');
    expect(ifaceByMac(out, '02:42:0a:60:09:99')).toBeUndefined();
  });

  it('partition drops both directions by MAC; loss the seeded share', () => {
    const p = linkRules('wharf_drill_f01', [{ iface: 'eth0', peerMac: '02:42:0a:60:03:06' }]);
    expect(p).toContain('type filter hook ingress device "eth0"');
    expect(p).toContain('type filter hook egress device "eth0"');
    expect(p).toContain('ether saddr 02:42:0a:60:03:06 drop');
    expect(p).toContain('ether daddr 02:42:0a:60:03:06 drop');
    expect(linkRules('t', [{ iface: 'eth1', peerMac: 'aa:bb:cc:dd:ee:ff' }], 25)).toContain(
      'ether saddr aa:bb:cc:dd:ee:ff numgen random mod 100 < 25 drop',
    );
  });

  it('the delaying proxy waits, and its own connections are not redirected again', () => {
    const c = delayProxyConfig('10.1.3.2', '10.1.3.5', 22, 300);
    expect(c).toMatch(/tcp-request inspect-delay 300ms\n\s+tcp-request content accept if WAIT_END/);
    expect(c).toContain('server s 10.1.3.5:22');
    expect(c).toContain('user nobody');
    expect(delayNat('t', '10.1.3.2', '10.1.3.5', 22)).toContain(
      'meta skuid != 65534 ip daddr 10.1.3.5 tcp dport 22 dnat to 10.1.3.2:17022',
    );
  });
});

const att = (
  path: string,
  sha: string,
  invokedAt: number,
  ok: boolean | undefined,
  endedAt?: number,
): Attempt => ({
  path,
  sha256: sha,
  client: 0,
  invokedAt,
  ...(ok !== undefined ? { ok, endedAt: endedAt ?? invokedAt + 10 } : {}),
});

describe('drill verdict (pure, Jepsen set checker)', () => {
  const attempts = [
    att('u/a', 'A', 0, true),
    att('u/b', 'B', 100, false),
    att('u/b', 'B', 300, true),
    att('u/c', 'C', 500, false),
    att('u/d', 'D', 700, undefined),
  ];

  it('ok / lost / corrupt / recovered / unexpected per node', () => {
    const v = checkSet('main', attempts, [
      { path: 'u/a', sha256: 'A' },
      { path: 'u/b', sha256: 'X' },
      { path: 'u/c', sha256: 'C' },
      { path: 'u/d', sha256: 'half' },
      { path: 'u/zz', sha256: 'Z' },
    ]);
    expect(v).toEqual({
      node: 'main',
      ok: 1,
      lost: [],
      corrupt: ['u/b'],
      recovered: ['u/c'],
      unexpected: ['u/d', 'u/zz'],
    });
    const all = drillVerdict(attempts, { main: [{ path: 'u/a', sha256: 'A' }], sub: [] });
    expect(all.acknowledged).toBe(2);
    expect(all.nodes[0]!.lost).toEqual(['u/b']);
    expect(all.nodes[1]!.lost).toEqual(['u/a', 'u/b']);
    expect(all.valid).toBe(false);
    expect(
      drillVerdict(attempts, {
        main: [
          { path: 'u/a', sha256: 'A' },
          { path: 'u/b', sha256: 'B' },
        ],
      }).valid,
    ).toBe(true);
  });

  it('RTO: first ack of an upload invoked after the fault; lag after heal; timeline', () => {
    const f: FaultRecord = {
      fault: { id: 'f01', kind: 'kill', targets: ['m'], at: 0, holdMs: 1, params: {} },
      injectedAt: 50,
      healedAt: 600,
    };
    // u/a was invoked before the fault (its ack is no recovery); u/b's second attempt is
    expect(rtoOf(f, attempts)).toBe(310 - 50);
    expect(rtoOf({ ...f, injectedAt: 1000 }, attempts)).toBeNull();
    const seen = new Map([
      ['u/a', 200],
      ['u/b', 900],
    ]);
    expect(lagAfterHeal(600, attempts, seen)).toBe(300);
    expect(lagAfterHeal(600, attempts, new Map([['u/a', 200]]))).toBeNull();
    expect(timeline(attempts, 2000)).toEqual([
      { t: 0, acks: 2, fails: 2 },
      { t: 1, acks: 0, fails: 0 },
    ]);
    expect(
      rtoByKind([
        {
          id: '1',
          kind: 'kill',
          targets: [],
          at: 0,
          healAt: 1,
          rtoMs: 100,
          lagAfterHealMs: 0,
          injected: '',
          error: null,
        },
        {
          id: '2',
          kind: 'kill',
          targets: [],
          at: 0,
          healAt: 1,
          rtoMs: 300,
          lagAfterHealMs: 0,
          injected: '',
          error: null,
        },
        {
          id: '3',
          kind: 'loss',
          targets: [],
          at: 0,
          healAt: 1,
          rtoMs: null,
          lagAfterHealMs: 0,
          injected: '',
          error: null,
        },
      ]),
    ).toEqual({ kill: { median: 100, max: 300, n: 2 } });
  });

  it('the checks fail on a lost upload, a fault not healed and a steady state not reached', () => {
    const base = {
      kind: 'drill' as const,
      stack: 's',
      seed: 1,
      startedAt: '',
      durationMs: 1,
      runDir: '',
      valid: true,
      ok: true,
      interrupted: false,
      steadyBefore: { ok: true, detail: '' },
      steadyAfter: { ok: true, detail: '' },
      faults: [
        {
          id: 'f01',
          kind: 'kill' as const,
          targets: ['m'],
          at: 0,
          healAt: 5,
          rtoMs: 1,
          lagAfterHealMs: 1,
          injected: 'x',
          error: null,
        },
      ],
      timeline: [],
      verdict: drillVerdict(attempts, {
        main: [
          { path: 'u/a', sha256: 'A' },
          { path: 'u/b', sha256: 'B' },
        ],
      }),
      rto: {},
      replication: { p50Ms: null, p99Ms: null, maxMs: null, unseen: 0 },
      workload: { clients: 1, invoked: 5, acknowledged: 2, failedAttempts: 2, bytes: 1 },
      failback: { ran: false, ok: true, why: '', sabotaged: false },
      notices: { queued: 3, left: 0, drainMs: 10 },
      watch: null,
    };
    expect(drillChecks(base).results.every((c) => c.ok)).toBe(true);
    const lost = { ...base, verdict: drillVerdict(attempts, { main: [] }) };
    expect(
      drillChecks(lost)
        .results.filter((c) => !c.ok)
        .map((c) => c.name),
    ).toEqual(['no acknowledged upload lost or corrupt on main']);
    const unhealed = { ...base, faults: [{ ...base.faults[0]!, healAt: null, error: 'heal failed' }] };
    expect(drillChecks(unhealed).results.some((c) => !c.ok && c.name.startsWith('f01'))).toBe(true);
    const stuck = { ...base, notices: { queued: 30, left: 2, drainMs: 240_000 } };
    expect(
      drillChecks(stuck)
        .results.filter((c) => !c.ok)
        .map((c) => c.name),
    ).toEqual(['upload notices delivered after the drill']);
    const notSteady = { ...base, steadyAfter: { ok: false, detail: 'verify failed' } };
    expect(drillChecks(notSteady).results.some((c) => !c.ok && c.name === 'steady state after')).toBe(true);
  });
});
