// Jepsen-style check of acknowledged uploads against what each node really holds. Pure.
import type { Ack } from './ledger.ts';

export interface ObservedFile {
  path: string;
  sha256: string;
}

export interface NodeVerdict {
  node: string;
  ok: number;
  /** Acknowledged but absent. */
  lost: string[];
  /** Present with another checksum. */
  corrupt: string[];
  /** Present under the run's prefix but never acknowledged (a retry's leftover, or an upload cut short). */
  unexpected: string[];
}

export interface Verdict {
  acknowledged: number;
  nodes: NodeVerdict[];
  /** True when no node lost or corrupted an acknowledged file. */
  valid: boolean;
}

/** Parse `sha256sum` output lines (`<hex>  <path>`), making paths relative to `root`. */
export function parseSha256sum(out: string, root: string): ObservedFile[] {
  const prefix = root.endsWith('/') ? root : root + '/';
  const files: ObservedFile[] = [];
  for (const line of out.split('\n')) {
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
    if (!m) continue;
    const p = m[2]!;
    files.push({ sha256: m[1]!, path: p.startsWith(prefix) ? p.slice(prefix.length) : p });
  }
  return files;
}

export function checkNode(node: string, acks: Ack[], observed: ObservedFile[]): NodeVerdict {
  const seen = new Map(observed.map((f) => [f.path, f.sha256]));
  // The last ack of a path wins (a path acknowledged twice keeps its last content).
  const want = new Map<string, string>();
  for (const a of acks) want.set(a.path, a.sha256);
  const v: NodeVerdict = { node, ok: 0, lost: [], corrupt: [], unexpected: [] };
  for (const [path, sha] of want) {
    const got = seen.get(path);
    if (got === undefined) v.lost.push(path);
    else if (got !== sha) v.corrupt.push(path);
    else v.ok++;
  }
  for (const f of observed) if (!want.has(f.path)) v.unexpected.push(f.path);
  return v;
}

export function check(acks: Ack[], byNode: Record<string, ObservedFile[]>): Verdict {
  const nodes = Object.entries(byNode).map(([n, files]) => checkNode(n, acks, files));
  return {
    acknowledged: new Set(acks.map((a) => a.path)).size,
    nodes,
    valid: nodes.every((n) => n.lost.length === 0 && n.corrupt.length === 0),
  };
}

export function formatVerdict(v: Verdict): string {
  const lines = [`acknowledged uploads: ${v.acknowledged}`];
  for (const n of v.nodes) {
    lines.push(
      `  ${n.node.padEnd(12)} ok ${n.ok}  lost ${n.lost.length}  corrupt ${n.corrupt.length}  unexpected ${n.unexpected.length}` +
        (n.lost.length ? `  (lost: ${n.lost.slice(0, 5).join(', ')}${n.lost.length > 5 ? ', …' : ''})` : ''),
    );
  }
  lines.push(v.valid ? 'verdict: VALID (no acknowledged upload lost or corrupt)' : 'verdict: INVALID');
  return lines.join('\n');
}
