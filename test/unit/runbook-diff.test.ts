import { describe, expect, it } from 'vitest';
import { diffLines, splitLines, unifiedDiff } from '../../src/runbook/diff.ts';

/** Apply a unified diff produced by unifiedDiff to `before` (hunks in order). */
function patch(before: string, diff: string): string {
  const a = splitLines(before);
  const out: string[] = [];
  let ai = 0;
  const lines = diff.split('\n').slice(2);
  for (let k = 0; k < lines.length; k++) {
    const m = /^@@ -(\d+),(\d+) \+\d+,\d+ @@$/.exec(lines[k]!);
    if (!m) continue;
    const start = Number(m[2]) === 0 ? Number(m[1]) : Number(m[1]) - 1;
    while (ai < start) out.push(a[ai++]!);
    for (k++; k < lines.length && !lines[k]!.startsWith('@@'); k++) {
      const l = lines[k]!;
      if (l === '') continue;
      if (l[0] === ' ') out.push(a[ai++]!);
      else if (l[0] === '-') ai++;
      else if (l[0] === '+') out.push(l.slice(1));
    }
    k--;
  }
  while (ai < a.length) out.push(a[ai++]!);
  return out.length ? out.join('\n') + '\n' : '';
}

function rnd(n: number, seed: number): string {
  const l: string[] = [];
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    l.push(`line${s % 6}`);
  }
  return l.length ? l.join('\n') + '\n' : '';
}

describe('unified diff', () => {
  it('GIVEN one changed line in ten WHEN diffed THEN one hunk with 3 lines of context', () => {
    const a = 'a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n';
    const b = a.replace('e\n', 'E\n');
    expect(unifiedDiff(a, b, { fromLabel: 'a/f', toLabel: 'b/f' })).toBe(
      ['--- a/f', '+++ b/f', '@@ -2,7 +2,7 @@', ' b', ' c', ' d', '-e', '+E', ' f', ' g', ' h', ''].join(
        '\n',
      ),
    );
  });

  it('is empty for equal texts and notes a final-newline-only change', () => {
    expect(unifiedDiff('x\n', 'x\n')).toBe('');
    expect(unifiedDiff('x', 'x\n')).toContain('final newline');
  });

  it('shows a new file as all additions from line 0', () => {
    expect(unifiedDiff('', 'one\ntwo\n')).toBe('--- before\n+++ after\n@@ -0,0 +1,2 @@\n+one\n+two\n');
  });

  it('keeps distant changes in separate hunks', () => {
    const a = Array.from({ length: 30 }, (_, i) => `l${i}`).join('\n') + '\n';
    const b = a.replace('l2\n', 'X\n').replace('l25\n', 'Y\n');
    expect(unifiedDiff(a, b).match(/^@@/gm)).toHaveLength(2);
  });

  it('is a minimal edit script (LCS): only the lines that differ', () => {
    const ops = diffLines(['a', 'b', 'c', 'd'], ['a', 'x', 'c', 'd', 'e']);
    expect(ops.filter((o) => o.op !== ' ').map((o) => o.op + o.line)).toEqual(['-b', '+x', '+e']);
  });

  it('round-trips: patching `before` with the diff gives `after` (300 random pairs)', () => {
    for (let k = 0; k < 300; k++) {
      const a = rnd(k % 37, k);
      const b = rnd((k * 7) % 41, k * 3 + 1);
      const d = unifiedDiff(a, b);
      if (a === b) expect(d).toBe('');
      else expect(patch(a, d)).toBe(b);
      const ops = diffLines(splitLines(a), splitLines(b));
      expect(ops.filter((o) => o.op !== '+').map((o) => o.line)).toEqual(splitLines(a));
      expect(ops.filter((o) => o.op !== '-').map((o) => o.line)).toEqual(splitLines(b));
    }
  });
});
