// Bad input of any shape: GIVEN the seed topology and the production inventory example, mutated at
// seeded random paths (a value replaced by one of another type, a key removed, a mapping made a
// list…) or replaced whole (empty, comment-only, a scalar, an alias bomb), WHEN `wharf validate`
// and `wharf render` read them THEN the run either succeeds or exits 2 with `file: field: …` lines;
// never exit 1, never a stack trace.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { runCli } from '../../src/cli/program.ts';

const dir = mkdtempSync(join(tmpdir(), 'wharf-shapes-'));
const STACK = readFileSync('configs/stack.yaml', 'utf8');
const INVENTORY = readFileSync('configs/production.example.inventory.yaml', 'utf8');

async function wharf(...argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, { out: (s) => void (stdout += s), err: (s) => void (stderr += s) });
  return { code, stdout, stderr };
}

/** mulberry32: a small seeded PRNG, so a failing case can be replayed by its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ODD_VALUES: unknown[] = [
  null,
  '',
  'x',
  -1,
  0,
  1e308,
  3.5,
  true,
  [],
  {},
  [null],
  { a: { b: [] } },
  '../../etc/passwd',
  'a b\nc',
  '10.0.0.0/33',
  '999.1.1.1',
  '$(reboot)',
  'é'.repeat(300),
];

/** Every path to a value in a parsed document. */
function paths(v: unknown, at: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [at];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...at, i])));
  else if (v && typeof v === 'object')
    for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...at, k]));
  return out;
}

/** A copy of doc with one seeded change at one seeded path. */
function mutate(doc: unknown, r: () => number): { doc: unknown; what: string } {
  const copy = structuredClone(doc);
  const all = paths(copy).filter((p) => p.length > 0);
  const path = all[Math.floor(r() * all.length)]!;
  const parent = path.slice(0, -1).reduce<any>((o, k) => o[k], copy); // eslint-disable-line @typescript-eslint/no-explicit-any
  const key = path[path.length - 1]!;
  const how = Math.floor(r() * 4);
  if (how === 0 && !Array.isArray(parent)) {
    delete parent[key];
    return { doc: copy, what: `removed ${path.join('.')}` };
  }
  if (how === 1) {
    parent[key] = Array.isArray(parent[key]) ? { ...parent[key] } : [parent[key]];
    return { doc: copy, what: `${path.join('.')} wrapped` };
  }
  const value = ODD_VALUES[Math.floor(r() * ODD_VALUES.length)];
  parent[key] = value;
  return { doc: copy, what: `${path.join('.')} = ${JSON.stringify(value)?.slice(0, 40)}` };
}

/** The outcome must be success or bad input, reported as `file: …` lines, without a stack trace. */
function expectCleanOutcome(r: { code: number; stderr: string }, file: string, what: string) {
  expect([0, 2], `${what}\n${r.stderr}`).toContain(r.code);
  expect(r.stderr, what).not.toMatch(/unexpected error|\n\s+at .+:\d+:\d+/);
  if (r.code === 2) {
    const lines = r.stderr.trim().split('\n');
    expect(lines.length, what).toBeGreaterThan(0);
    for (const l of lines) expect(l.startsWith(file), `${what}: ${l}`).toBe(true);
  }
}

describe('any shape of topology or inventory → ok or exit 2 naming the file, never a stack trace', () => {
  it.each([
    ['empty', ''],
    ['whitespace only', '  \n\n\t\n'],
    ['comments only', '# a topology\n# truncated here\n'],
    ['explicit null', '~\n'],
    ['a scalar', 'hello\n'],
    ['a list', '- a\n- b\n'],
    ['a number', '42\n'],
    ['two documents', 'name: a\n---\nname: b\n'],
    ['binary', '\u0000\u0001\u0002\uFFFE'],
  ])('topology: %s', async (_name, text) => {
    const f = join(dir, 'whole.yaml');
    writeFileSync(f, text);
    const r = await wharf('validate', '-c', f);
    expectCleanOutcome(r, f, _name);
    expect(r.code).toBe(2);
  });

  it('an empty or comment-only file is refused, not read as a default stack', async () => {
    for (const text of ['', '# nothing yet\n']) {
      const f = join(dir, 'empty.yaml');
      writeFileSync(f, text);
      const r = await wharf('validate', '-c', f);
      expect(r.code).toBe(2);
      expect(r.stderr.trim()).toBe(
        `${f}: the file is empty (nothing but comments or whitespace): expected a YAML mapping`,
      );
    }
  });

  it('an alias bomb is refused by name, with exit 2', async () => {
    const f = join(dir, 'bomb.yaml');
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 8; i++)
      levels.push(
        `l${i}: &l${i} [${Array(10)
          .fill(i === 1 ? '*a' : `*l${i - 1}`)
          .join(', ')}]`,
      );
    writeFileSync(f, levels.join('\n') + '\n');
    const r = await wharf('validate', '-c', f);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${f}: YAML: too many alias expansions`);
  });

  it('the empty inventory is refused too', async () => {
    const f = join(dir, 'inv-empty.yaml');
    writeFileSync(f, '# hosts: later\n');
    const r = await wharf('validate', '-i', f);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${f}: the file is empty`);
  });

  // Seeded mutations of each file (150; WHARF_SHAPE_SEEDS=N for a longer hunt): each is read, validated and, if valid, rendered.
  const SEEDS = Array.from({ length: Number(process.env.WHARF_SHAPE_SEEDS) || 150 }, (_, i) => 1000 + i);
  it(`${SEEDS.length} seeded mutations of configs/stack.yaml: validate and render`, async () => {
    const doc = parse(STACK);
    let rejected = 0;
    for (const seed of SEEDS) {
      const { doc: bad, what } = mutate(doc, rng(seed));
      const f = join(dir, `stack-${seed}.yaml`);
      writeFileSync(f, stringify(bad));
      const v = await wharf('validate', '-c', f);
      expectCleanOutcome(v, f, `seed ${seed}: ${what}`);
      if (v.code === 2) {
        rejected++;
        continue;
      }
      const r = await wharf('render', '-o', join(dir, `out-${seed}`), '-c', f);
      expectCleanOutcome(r, f, `seed ${seed} (render): ${what}`);
    }
    // the mutations are meant to break things: most must be caught
    expect(rejected).toBeGreaterThan(SEEDS.length / 2);
  }, 120_000);

  it(`${SEEDS.length} seeded mutations of the production inventory example: validate`, async () => {
    const doc = parse(INVENTORY);
    let rejected = 0;
    for (const seed of SEEDS) {
      const { doc: bad, what } = mutate(doc, rng(seed));
      const f = join(dir, `inv-${seed}.yaml`);
      writeFileSync(f, stringify(bad));
      const v = await wharf('validate', '-i', f);
      expectCleanOutcome(v, f, `seed ${seed}: ${what}`);
      if (v.code === 2) rejected++;
    }
    expect(rejected).toBeGreaterThan(SEEDS.length / 2);
  }, 120_000);
});
