// The scenarios as CI runs them: `wharf scenario run … --junit out.xml` (the real binary) on the
// shared scenario lab (WHARF_SCENARIO_STACK, else stack "scen", 10.96.x; brought up and provisioned
// on first use, by this file or another lab file, and reset before each scenario). large-file runs
// at its default 1 GiB (WHARF_LARGE_FILE_SIZE overrides it). The lab comes down once after every lab
// file (test/lab/global-setup.ts), not here: later files reuse it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SCENARIOS } from '../../scenarios/index.ts';
import { REPO } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'wharf-scenarios-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Every registered scenario runs here (CI's proof of each): a scenario added to the catalogue is
// run without editing this file, and one dropped from it fails the check below.
const NAMES = Object.keys(SCENARIOS);
const REQUIRED = ['node-loss', 'host-keys', 'large-file', 'failback-naive'];

describe('wharf scenario run on the scenario lab', () => {
  it('the catalogue still holds every scenario CI proved before', () => {
    expect(NAMES).toEqual(expect.arrayContaining(REQUIRED));
  });

  it(`${NAMES.join(' ')}: every check passes; JUnit has one testcase per check with the numbers`, () => {
    const junit = join(dir, 'out.xml');
    const tap = join(dir, 'out.tap');
    const r = spawnSync(
      process.execPath,
      [join(REPO, 'bin/wharf.mjs'), 'scenario', 'run', ...NAMES, '--tap', tap, '--junit', junit],
      {
        encoding: 'utf8',
        timeout: 1_800_000,
        env: process.env,
      },
    );
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
        expect.stringMatching(/^large-file: chain upload acknowledged .*\([\d.]+ MB\/s, [\d.]+ s\)$/),
      );
      expect(cases).toContainEqual(
        expect.stringMatching(/^large-file: direct upload acknowledged .*\([\d.]+ MB\/s, [\d.]+ s\)$/),
      );
      expect(tapText).toMatch(/^# metric large-file chain\/direct ratio=[\d.]+/m);
    }
  });
});
