// wharf load's flag parsing, and `wharf scenario list|run`: names, exit codes, flat TAP and the
// JUnit XML that tap-junit really makes (one testcase per check, measured numbers in the names).
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import {
  formatSize,
  parseCount,
  parseDuration,
  parseSize,
  parseTarget,
} from '../../src/cli/commands/load.ts';
import { registerScenario } from '../../src/cli/commands/scenario.ts';
import { reportOf } from '../../src/cli/exit.ts';
import { runCli } from '../../src/cli/program.ts';
import { InputError } from '../../src/core/errors.ts';
import type { Scenario } from '../../src/scenario/types.ts';
import { SCENARIOS } from '../../scenarios/index.ts';
import { largeFileSize } from '../../scenarios/large-file.ts';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'wharf-scen-'));
  dirs.push(d);
  return d;
};

describe('size, duration, count and target flags', () => {
  it.each([
    ['4096', 4096],
    ['1MiB', 1024 ** 2],
    ['1M', 1024 ** 2],
    ['512KiB', 512 * 1024],
    ['512kib', 512 * 1024],
    ['10MB', 10e6],
    ['1.5GiB', 1.5 * 1024 ** 3],
    ['1 GiB', 1024 ** 3],
    ['2k', 2048],
  ])('size %s = %d bytes', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  it.each(['', '0', '-1MiB', '1XB', 'MiB', '1MiB2', '65GiB', '1e3'])(
    'size %j is refused (exit 2)',
    (text) => {
      expect(() => parseSize(text)).toThrow(InputError);
      expect(() => parseSize(text)).toThrow(/--size: expected a size/);
    },
  );

  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['2m', 120_000],
    ['1.5h', 5_400_000],
  ])('duration %s = %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['30', 's', '0s', '-5s', '3 days', '1d'])('duration %j is refused', (text) => {
    expect(() => parseDuration(text)).toThrow(/--duration: expected a duration like/);
  });

  it('counts and targets', () => {
    expect(parseCount('8', '--clients')).toBe(8);
    for (const bad of ['0', '-2', '1.5', 'x', '300']) {
      expect(() => parseCount(bad, '--clients', 256)).toThrow(
        /--clients: expected a whole number from 1 to 256/,
      );
    }
    expect(parseTarget('direct')).toBe('direct');
    expect(() => parseTarget('router')).toThrow(/--target: expected one of entry, direct, main/);
    expect(formatSize(1024 ** 2)).toBe('1 MiB');
    expect(formatSize(1000)).toBe('1000 B');
  });

  it('large-file size: option, then WHARF_LARGE_FILE_SIZE, then 1 GiB', () => {
    const before = process.env.WHARF_LARGE_FILE_SIZE;
    try {
      delete process.env.WHARF_LARGE_FILE_SIZE;
      expect(largeFileSize()).toBe(1024 ** 3);
      process.env.WHARF_LARGE_FILE_SIZE = '256MiB';
      expect(largeFileSize()).toBe(256 * 1024 ** 2);
      expect(largeFileSize('8MiB')).toBe(8 * 1024 ** 2);
      process.env.WHARF_LARGE_FILE_SIZE = 'big';
      expect(() => largeFileSize()).toThrow(/WHARF_LARGE_FILE_SIZE: expected a size/);
    } finally {
      if (before === undefined) delete process.env.WHARF_LARGE_FILE_SIZE;
      else process.env.WHARF_LARGE_FILE_SIZE = before;
    }
  });
});

async function wharf(...argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, { out: (s) => void (stdout += s), err: (s) => void (stderr += s) });
  return { code, stdout, stderr };
}

describe('wharf load: bad flags exit 2 before anything runs', () => {
  it.each([
    [['--size', '1XB'], '--size: expected a size'],
    [['--duration', '30'], '--duration: expected a duration'],
    [['--clients', '0'], '--clients: expected a whole number'],
    [['--target', 'router'], '--target: expected one of entry, direct, main'],
    [['--retry-delay', 'soon'], '--retry-delay: expected a duration'],
    [
      ['--retry-delay', '2s', '--retry-max-delay', '1s'],
      '--retry-max-delay: expected at least --retry-delay (2s)',
    ],
  ])('load %j', async (args, message) => {
    // A stack that is certainly not up: the flags are checked before the lab is looked at.
    const r = await wharf('load', ...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
  });
});

describe('wharf scenario (the real registry)', () => {
  it('list names every registered scenario with its description', async () => {
    const r = await wharf('scenario', 'list');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(Object.keys(SCENARIOS).length);
    for (const s of Object.values(SCENARIOS)) {
      expect(lines.find((l) => l.startsWith(`${s.name} `))?.replace(/ +/, ' ')).toBe(
        `${s.name} ${s.description}`,
      );
    }
    expect(r.stdout).toContain('large-file');
    const j = await wharf('scenario', 'list', '--json');
    expect(JSON.parse(j.stdout)).toContainEqual(expect.objectContaining({ name: 'large-file' }));
  });

  it('an unknown scenario name exits 2 and lists the known ones (nothing runs)', async () => {
    const r = await wharf('scenario', 'run', 'large-file', 'no-such-thing', 'nope2');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown scenarios: no-such-thing, nope2 (scenarios: ');
    expect(r.stderr).toContain('large-file');
    expect(r.stderr).not.toContain('# scenario');
    const none = await wharf('scenario', 'run');
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("missing required argument 'names'");
  });
});

/** Scenarios that do real (local) work: hash random data, time it, check the result. */
function hashing(name: string, failOne: boolean): Scenario {
  return {
    name,
    description: `hash 4 MiB of random data${failOne ? ' (one check fails on purpose)' : ''}`,
    async run(ctx) {
      const data = randomBytes(4 * 1024 * 1024);
      const t0 = process.hrtime.bigint();
      const a = createHash('sha256').update(data).digest('hex');
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      const b = createHash('sha256').update(data).digest('hex');
      ctx.metric('hash time', Math.round(ms * 10) / 10, 'ms');
      ctx.check(
        'same digest twice',
        a === b,
        `digest ${a.slice(0, 12)}, ${(4 / (ms / 1000)).toFixed(0)} MiB/s`,
      );
      ctx.check('digest is 64 hex chars', /^[0-9a-f]{64}$/.test(a), `length ${a.length}`);
      if (failOne)
        ctx.check(
          'digest of the data equals the digest of nothing',
          a === createHash('sha256').digest('hex'),
          `got ${a.slice(0, 12)}`,
        );
    },
  };
}

async function runWith(registry: Record<string, Scenario>, argv: string[]) {
  let stdout = '';
  let stderr = '';
  const io = { out: (s: string) => void (stdout += s), err: (s: string) => void (stderr += s) };
  const program = new Command('wharf').exitOverride().configureOutput({ writeOut: io.out, writeErr: io.err });
  registerScenario(program, io, registry);
  program.commands.forEach((c) => c.exitOverride().commands.forEach((cc) => cc.exitOverride()));
  let code = 0;
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    const r = reportOf(e);
    code = r.exitCode;
    r.problems.forEach((p) => io.err(p + '\n'));
  }
  return { code, stdout, stderr };
}

describe('the scenario catalogue is registered, not imported by src/', () => {
  it('an entry point that registered nothing gets a clear failure (exit 1), not an empty list', async () => {
    for (const argv of [
      ['scenario', 'list'],
      ['scenario', 'run', 'all'],
    ]) {
      const r = await runWith({}, argv);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('no scenarios are registered: the entry point must load scenarios/index.ts');
    }
  });
});

describe('wharf scenario run: flat TAP and JUnit through tap-junit', () => {
  const registry = { good: hashing('good', false), bad: hashing('bad', true) };

  it('all checks pass: exit 0, TAP on stdout, one JUnit testcase per check with the numbers', async () => {
    const dir = tmp();
    const junit = join(dir, 'out.xml');
    const r = await runWith(registry, ['scenario', 'run', 'good', '--junit', junit]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^TAP version 13\n1\.\.2\n/);
    expect(r.stdout).toMatch(/^ok 1 - good: same digest twice \(digest [0-9a-f]{12}, \d+ MiB\/s\)$/m);
    expect(r.stdout).toMatch(/^# metric good hash time=[\d.]+ ms$/m);
    const xml = readFileSync(junit, 'utf8');
    const cases = [...xml.matchAll(/<testcase name="([^"]+)"/g)].map((m) => m[1]!);
    expect(cases).toHaveLength(2);
    expect(cases[0]).toMatch(/^good: same digest twice \(digest [0-9a-f]{12}, \d+ MiB\/s\)$/);
    expect(cases[1]).toBe('good: digest is 64 hex chars (length 64)');
    expect(xml).toMatch(/failures="0"/);
    expect(r.stderr).toContain('good: 2/2 checks ok');
  });

  it('a failed check: exit 1, TAP "not ok" with its message, a JUnit failure; --tap and --json', async () => {
    const dir = tmp();
    const tap = join(dir, 'out.tap');
    const junit = join(dir, 'out.xml');
    const r = await runWith(registry, [
      'scenario',
      'run',
      'good',
      'bad',
      '--tap',
      tap,
      '--junit',
      junit,
      '--json',
    ]);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout) as {
      ok: boolean;
      results: { ok: boolean }[];
      metrics: Record<string, unknown[]>;
    };
    expect(doc.ok).toBe(false);
    expect(doc.results).toHaveLength(5);
    expect(doc.results.filter((x) => !x.ok)).toHaveLength(1);
    expect(Object.keys(doc.metrics)).toEqual(['good', 'bad']);
    const tapText = readFileSync(tap, 'utf8');
    expect(tapText).toMatch(
      /^not ok 5 - bad: digest of the data equals the digest of nothing \(got [0-9a-f]{12}\)$/m,
    );
    const xml = readFileSync(junit, 'utf8');
    expect([...xml.matchAll(/<testcase /g)]).toHaveLength(5);
    expect(xml).toMatch(/failures="1"/);
    expect(xml).toMatch(/<failure[^>]*>/);
  });

  it('"all" runs every scenario of the registry in order', async () => {
    const r = await runWith({ good: registry.good }, ['scenario', 'run', 'all', '--json']);
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as { results: unknown[] }).results).toHaveLength(2);
  });
});
