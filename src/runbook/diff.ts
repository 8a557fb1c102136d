// A compact line diff (LCS after trimming the common prefix and suffix) and its unified format.
// Pure.

export type DiffOp = { op: ' ' | '-' | '+'; line: string };

export function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** Edit script turning `a` into `b`, line by line. */
export function diffLines(a: string[], b: string[]): DiffOp[] {
  let pre = 0;
  while (pre < a.length && pre < b.length && a[pre] === b[pre]) pre++;
  let suf = 0;
  while (suf < a.length - pre && suf < b.length - pre && a[a.length - 1 - suf] === b[b.length - 1 - suf])
    suf++;
  const A = a.slice(pre, a.length - suf);
  const B = b.slice(pre, b.length - suf);
  const ops: DiffOp[] = a.slice(0, pre).map((line) => ({ op: ' ', line }));
  const n = A.length;
  const m = B.length;
  if (n * m > 25_000_000) {
    // Too big for the table: show it as a replacement of the middle part.
    for (const line of A) ops.push({ op: '-', line });
    for (const line of B) ops.push({ op: '+', line });
  } else {
    // lcs[i][j] = LCS length of A[i..] and B[j..]
    const w = m + 1;
    const lcs = new Uint32Array((n + 1) * w);
    for (let i = n - 1; i >= 0; i--)
      for (let j = m - 1; j >= 0; j--)
        lcs[i * w + j] =
          A[i] === B[j]
            ? lcs[(i + 1) * w + j + 1]! + 1
            : Math.max(lcs[(i + 1) * w + j]!, lcs[i * w + j + 1]!);
    let i = 0;
    let j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && A[i] === B[j]) {
        ops.push({ op: ' ', line: A[i]! });
        i++;
        j++;
      } else if (j < m && (i === n || lcs[i * w + j + 1]! > lcs[(i + 1) * w + j]!)) {
        ops.push({ op: '+', line: B[j]! });
        j++;
      } else {
        ops.push({ op: '-', line: A[i]! });
        i++;
      }
    }
  }
  for (const line of a.slice(a.length - suf)) ops.push({ op: ' ', line });
  return ops;
}

export function diffStats(ops: DiffOp[]): { added: number; removed: number } {
  let added = 0;
  let removed = 0;
  for (const o of ops) {
    if (o.op === '+') added++;
    else if (o.op === '-') removed++;
  }
  return { added, removed };
}

/** Unified diff (`diff -u` format) of two texts; '' when they are equal. */
export function unifiedDiff(
  before: string,
  after: string,
  o: { fromLabel?: string; toLabel?: string; context?: number } = {},
): string {
  const ops = diffLines(splitLines(before), splitLines(after));
  const ctx = o.context ?? 3;
  const changed = ops.map((x, i) => (x.op === ' ' ? -1 : i)).filter((i) => i >= 0);
  if (changed.length === 0) {
    if (before === after) return '';
    // Only the final newline differs.
    return `--- ${o.fromLabel ?? 'before'}\n+++ ${o.toLabel ?? 'after'}\n\\ final newline differs\n`;
  }
  // Group changed op indexes into hunks whose context windows touch.
  const hunks: Array<[number, number]> = [];
  for (const i of changed) {
    const last = hunks[hunks.length - 1];
    if (last && i - ctx <= last[1] + ctx + 1) last[1] = i;
    else hunks.push([i, i]);
  }
  // Line numbers before each op.
  const aLine: number[] = [];
  const bLine: number[] = [];
  let ai = 1;
  let bi = 1;
  for (const x of ops) {
    aLine.push(ai);
    bLine.push(bi);
    if (x.op !== '+') ai++;
    if (x.op !== '-') bi++;
  }
  const out = [`--- ${o.fromLabel ?? 'before'}`, `+++ ${o.toLabel ?? 'after'}`];
  for (const [first, last] of hunks) {
    const s = Math.max(0, first - ctx);
    const e = Math.min(ops.length - 1, last + ctx);
    const slice = ops.slice(s, e + 1);
    const aLen = slice.filter((x) => x.op !== '+').length;
    const bLen = slice.filter((x) => x.op !== '-').length;
    const aStart = aLen === 0 ? aLine[s]! - 1 : aLine[s]!;
    const bStart = bLen === 0 ? bLine[s]! - 1 : bLine[s]!;
    out.push(`@@ -${aStart},${aLen} +${bStart},${bLen} @@`);
    for (const x of slice) out.push(`${x.op}${x.line}`);
  }
  return out.join('\n') + '\n';
}
