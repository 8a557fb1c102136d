// The scenarios as CI runs them: `wharf scenario run … --junit … --json … --report …` (the real
// binary) on the shared scenario lab (WHARF_SCENARIO_STACK, else stack "scen", 10.96.x; brought up
// and provisioned on first use, by this file or another lab file, and reset before each scenario).
// large-file runs at 128 MiB here: 6 uploads (3 clients × chain/direct) instead of 2 × 256 MiB, same CI time (WHARF_LARGE_FILE_SIZE overrides it). CI keeps its evidence:
// TAP, JUnit, the JSON results and the HTML report are written to the repository's out/
// (git-ignored; nothing removes them after the run). The lab comes down once after every lab file
// (test/lab/global-setup.ts), not here: later files reuse it.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SCENARIOS } from '../../scenarios/index.ts';
import { REPO } from './helpers.ts';

const dir = join(REPO, 'out');
mkdirSync(dir, { recursive: true });

// Every registered scenario runs here (CI's proof of each): a scenario added to the catalogue is
// run without editing this file, and one dropped from it fails the check below.
const NAMES = Object.keys(SCENARIOS);
const REQUIRED = [
  'smoke',
  'node-loss',
  'host-keys',
  'large-file',
  'failback-naive',
  'read-write-split',
  'partition',
  'security',
  'notification',
  'backup-restore',
  'replication-lag',
  'many-files',
  'many-clients',
  'firewall-change',
  'alerts',
  'drill',
];

describe('wharf scenario run on the scenario lab', () => {
  it('the catalogue still holds every scenario CI proved before', () => {
    expect(NAMES).toEqual(expect.arrayContaining(REQUIRED));
  });

  it(`${NAMES.join(' ')}: every check passes; JUnit has one testcase per check with the numbers`, () => {
    const junit = join(dir, 'scenarios-junit.xml');
    const tap = join(dir, 'scenarios.tap');
    const json = join(dir, 'scenarios.json');
    const report = join(dir, 'scenarios-report.html');
    const r = spawnSync(
      process.execPath,
      [
        join(REPO, 'bin/wharf.mjs'),
        'scenario',
        'run',
        ...NAMES,
        '--tap',
        tap,
        '--junit',
        junit,
        '--json',
        json,
        '--report',
        report,
      ],
      {
        encoding: 'utf8',
        timeout: 1_800_000,
        env: { ...process.env, WHARF_LARGE_FILE_SIZE: process.env.WHARF_LARGE_FILE_SIZE ?? '128MiB' },
      },
    );
    // the run's progress (stderr) is evidence too: a failed check's surroundings
    writeFileSync(join(dir, 'scenarios-stderr.log'), r.stderr ?? '');
    const tapText = readFileSync(tap, 'utf8');
    const points = tapText.split('\n').filter((l) => /^(ok|not ok) \d+ - /.test(l));
    expect(r.status, `${tapText}\n${r.stderr.slice(-3000)}`).toBe(0);
    expect(points.length).toBeGreaterThan(0);
    expect(points.filter((l) => l.startsWith('not ok'))).toEqual([]);
    const xml = readFileSync(junit, 'utf8');
    const cases = [...xml.matchAll(/<testcase name="([^"]+)"/g)].map((m) => m[1]!);
    expect(cases).toHaveLength(points.length);
    expect(xml).toMatch(/failures="0"/);
    for (const n of NAMES)
      expect(
        cases.some((c) => c.startsWith(`${n}: `)),
        n,
      ).toBe(true);
    {
      // measured numbers in the testcase names
      expect(cases).toContainEqual(
        expect.stringMatching(/^large-file: chain upload acknowledged\b.*\([\d.]+ MB\/s, [\d.]+ s\)$/),
      );
      expect(cases).toContainEqual(
        expect.stringMatching(/^large-file: direct upload acknowledged\b.*\([\d.]+ MB\/s, [\d.]+ s\)$/),
      );
      // chain/direct measured with both clients, side by side
      expect(tapText).toMatch(/^# metric large-file chain\/direct ratio, ssh2-sftp-client=[\d.]+/m);
      expect(tapText).toMatch(/^# metric large-file chain\/direct ratio, OpenSSH sftp aes128-gcm=[\d.]+/m);
      expect(tapText).toMatch(
        /^# metric large-file chain\/direct ratio, OpenSSH sftp default cipher=[\d.]+/m,
      );
    }
    // the JSON results: every check; node-loss's throughput, timeline and lag samples for the report
    const doc = JSON.parse(readFileSync(json, 'utf8')) as {
      kind: string;
      ok: boolean;
      results: unknown[];
      series: Record<string, { points: unknown[] }[]>;
      events: Record<string, { name: string }[]>;
      samples: Record<string, { values: unknown[] }[]>;
    };
    expect(doc).toMatchObject({ kind: 'scenarios', ok: true });
    expect(doc.results).toHaveLength(points.length);
    expect(doc.series['node-loss']![0]!.points.length).toBeGreaterThan(5);
    expect(doc.events['node-loss']!.map((e) => e.name)).toContain('HAProxy marks sftp-main down');
    expect(doc.samples['node-loss']![0]!.values.length).toBeGreaterThan(0);
    // the HTML report: the summary table with one row per check, the charts, the topology
    const html = readFileSync(report, 'utf8');
    const summary = /<table id="summary"[\s\S]*?<\/table>/.exec(html)?.[0] ?? '';
    expect(summary.match(/<tr data-verdict="pass">/g)).toHaveLength(points.length);
    expect(html).toContain('id="overall">PASS');
    for (const kind of ['throughput', 'timeline', 'lag-cdf', 'topology'])
      expect(html).toContain(`data-chart="${kind}"`);
  });
});
