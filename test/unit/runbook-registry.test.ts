// Runbooks in the registry with typed options (zod): flags from the schema, bad options named,
// and failover's plan as data (ids, why, undo commands) built without running anything.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/core/errors.ts';
import { parseDuration } from '../../src/core/duration.ts';
import { optionFlags } from '../../src/runbook/options.ts';
import { getRunbook, parseRunbookOptions, runbookNames } from '../../src/runbook/registry.ts';
import { runRunbookByName } from '../../src/stack/runbooks.ts';
import { LocalTransport } from '../../src/transport/local.ts';
import type { Transport } from '../../src/transport/types.ts';
import { labInventory } from '../../src/topology/inventory.ts';
import { loadTopology } from '../../src/topology/load.ts';
import { durationMs } from '../../src/topology/model.ts';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('runbook registry and options', () => {
  it('holds the runbooks of scripts/ (registered by scripts/index.ts)', () => {
    expect(runbookNames()).toEqual(['install', 'configure', 'verify', 'failover', 'failback', 'restore']);
    expect(() => getRunbook('banana')).toThrow(InputError);
    expect(() => getRunbook('banana')).toThrow(/unknown runbook "banana" \(runbooks: install, configure/);
  });

  it('flags come from the schema', () => {
    expect(optionFlags(getRunbook('failover').options)).toEqual([
      expect.objectContaining({ key: 'unplanned', flag: '--unplanned' }),
      expect.objectContaining({
        key: 'drainTimeout',
        flag: '--drain-timeout',
        metavar: 'DURATION',
        default: '30s',
      }),
    ]);
    expect(optionFlags(getRunbook('failback').options).map((f) => f.flag)).toEqual(['--force']);
    expect(optionFlags(getRunbook('configure').options).map((f) => f.flag)).toEqual(['--confirm-timeout']);
  });

  it('parses options: defaults, durations in ms; unknown or malformed ones named', () => {
    const fo = getRunbook('failover');
    expect(parseRunbookOptions(fo, {})).toEqual({ unplanned: false, drainTimeout: 30_000 });
    expect(parseRunbookOptions(fo, { drainTimeout: '2m', unplanned: true })).toEqual({
      unplanned: true,
      drainTimeout: 120_000,
    });
    expect(() => parseRunbookOptions(fo, { drainTimeout: 'banana' })).toThrow(
      /--drain-timeout: expected a duration like 500ms, 30s, 2m, 1h, got "banana"/,
    );
    expect(() => parseRunbookOptions(getRunbook('failback'), { unplanned: true })).toThrow(
      /--unplanned: not an option of runbook failback/,
    );
    expect(() => parseRunbookOptions(getRunbook('failback'), { force: 'yes' })).toThrow(/--force:/);
  });

  it('one duration parser: flags need a unit (ms, s, m, h), topology fields take bare ms, us and d', () => {
    expect(parseDuration('1.5s')).toBe(1500);
    expect(() => parseDuration('30', '--drain-timeout')).toThrow(/--drain-timeout: expected a duration/);
    expect(() => parseDuration('1d')).toThrow(InputError);
    expect(durationMs('2000')).toBe(2000);
    expect(durationMs('1s')).toBe(1000);
    expect(durationMs('500us')).toBe(0.5);
    expect(durationMs('1d')).toBe(86_400_000);
    expect(() => durationMs('fast')).toThrow(/duration: expected a duration/);
  });
});

describe('failover --check: the plan as data', () => {
  // Every node is this machine (LocalTransport): enough to observe (no failover record here) and
  // plan; --check runs no step.
  const t = loadTopology('configs/stack.yaml');
  const inventory = labInventory(t);
  const transports = new Map<string, Transport>(Object.keys(t.nodes).map((n) => [n, new LocalTransport(n)]));
  const plan = async (options: Record<string, unknown>) => {
    const runsDir = mkdtempSync(join(tmpdir(), 'wharf-foplan-'));
    dirs.push(runsDir);
    return runRunbookByName('failover', {
      topology: t,
      inventory,
      transports,
      check: true,
      runsDir,
      options,
      log: () => {},
    });
  };

  it('planned: ordered steps, waits as steps, undos as runtime API / shell commands, sub serving as the point of no return', async () => {
    const r = await plan({ drainTimeout: '5s' });
    expect(r.ok).toBe(true);
    expect(r.steps.map((s) => s.id)).toEqual([
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
    const by = Object.fromEntries(r.steps.map((s) => [s.id, s]));
    expect(by['drain']!.action).toBe("wait for sftp-main's sessions to end (≤ 5 s)");
    expect(by['drain']!.guard).toMatch(/sftp-main still in maint/);
    expect(by['final-sync']!.guard).toMatch(/sftp-main still in maint/);
    expect(by['stop-lsyncd']!.undo).toEqual({
      host: 'sftp-main',
      action: 'enable and start lsyncd again',
      commands: ['systemctl enable --now lsyncd'],
    });
    // both HAProxies of the pair: their runtime state goes together
    expect(by['main-maint']!.undo!.host).toBe('haproxy-1+haproxy-2');
    expect(by['main-maint']!.undo!.commands).toEqual(
      expect.arrayContaining([
        'set server write/sftp-main state ready',
        'set server write/sftp-sub state ready',
      ]),
    );
    expect(by['fence']!.undo!.host).toBe('sftp-sub');
    expect(by['record-state']!.undo!.commands[0]).toMatch(/mv -f \/var\/lib\/wharf\/failover.json/);
    expect(by['sub-serves']!.commits).toMatch(/split the data/);
    expect(by['mark']).toMatchObject({
      host: 'haproxy-1+haproxy-2',
      undo: { commands: ['rm -f /var/lib/wharf/needs-reconcile'] },
    });
    expect(r.steps.every((s) => s.result === undefined)).toBe(true);
  });

  it('unplanned: no drain, no final sync, the RPO window instead; nothing to undo but the mark', async () => {
    const r = await plan({ unplanned: true });
    expect(r.steps.map((s) => s.id)).toEqual([
      'preflight',
      'record-state',
      'main-maint',
      'mark',
      'cut-sessions',
      'rpo',
      'fence',
      'sub-serves',
      'probe',
      'complete',
    ]);
    // the only undo: the needs-reconcile mark this run set (main stays out until failback)
    expect(r.steps.filter((s) => s.undo).map((s) => [s.id, s.undo!.commands])).toEqual([
      ['mark', ['rm -f /var/lib/wharf/needs-reconcile']],
    ]);
  });
});
