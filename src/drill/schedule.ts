// A drill's schedule: every fault, its targets, when it starts, how long it holds and its
// parameters, generated from a seed BEFORE anything runs (so a run can be replayed exactly from its
// schedule.json). Pure: the same (seed, spec, lab shape) gives the same schedule, byte for byte.
import { z } from 'zod';

export const FAULT_KINDS = [
  'kill',
  'pause',
  'restart',
  'partition',
  'loss',
  'bandwidth',
  'delay',
  'disk-full',
  'process',
  'haproxy-active',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** What a fault kind does and to what (shown by `wharf drill --help` and in the README). */
export const FAULT_HELP: Record<FaultKind, string> = {
  kill: 'SIGKILL the node container (a power cut); heal: start it, wait for sshd',
  pause: 'freeze the node container (cgroup freezer); heal: unpause',
  restart: 'restart the node container (stop, start); heal: wait for sshd',
  partition: "drop every packet between two nodes (nftables in the first node's network namespace)",
  loss: 'drop a seeded share of packets between two nodes (nftables numgen random)',
  bandwidth: "limit a node's egress on its data networks (tc tbf)",
  delay:
    'delay every new connection from HAProxy to an SFTP node (a delaying TCP proxy on the HAProxy node, nftables DNAT)',
  'disk-full': "fill an SFTP node's upload filesystem (a ballast file on its size-limited mount)",
  process: 'SIGKILL one daemon on a node (lsyncd, sshd, the notifier); heal: start its unit',
  'haproxy-active':
    'SIGKILL the container of whichever HAProxy of the pair holds the floating address (keepalived moves it to the other); heal: start it, wait for sshd',
};

/** The lab's shape the generator needs: node names by role, and which networks each node is on. */
export interface DrillLabShape {
  main: string;
  sub: string;
  backup: string;
  haproxy: string;
  /** The HAProxy pair's nodes (haproxy.pair on), empty or absent without a pair. */
  haproxies?: string[];
  /** The node running the upload notifier (main or backup). */
  notifier: string;
  /** Data networks (not mgmt) of every node. */
  networks: Record<string, string[]>;
  /** SFTP nodes with a size-limited upload filesystem (disk-full needs one). */
  sizedUploads: string[];
}

export interface DrillSpec {
  seed: number;
  durationMs: number;
  faults: FaultKind[];
  /** Node names faults may touch (default: every stack node but the WAN client). */
  targets: string[];
}

export const scheduledFault = z.object({
  id: z.string(),
  kind: z.enum(FAULT_KINDS),
  /** One node, or two for partition/loss (the first one's netns holds the rule)/delay (haproxy, server). */
  targets: z.array(z.string()).min(1).max(2),
  /** ms after the workload started. */
  at: z.number().int().nonnegative(),
  /** How long the fault holds before its heal. */
  holdMs: z.number().int().positive(),
  params: z.record(z.string(), z.union([z.string(), z.number()])),
});
export type ScheduledFault = z.infer<typeof scheduledFault>;

export const drillSchedule = z.object({
  version: z.literal(1),
  stack: z.string(),
  seed: z.number().int(),
  durationMs: z.number().int().positive(),
  faultKinds: z.array(z.enum(FAULT_KINDS)),
  targets: z.array(z.string()),
  /** The workload's parameters (also seeded). */
  workload: z.object({
    clients: z.number().int().positive(),
    sizeSeed: z.number().int(),
    /** Each client's pause between two files. */
    pauseMs: z.number().int().nonnegative(),
  }),
  faults: z.array(scheduledFault),
});
export type DrillSchedule = z.infer<typeof drillSchedule>;

/** mulberry32: a small, fast, well-distributed 32-bit PRNG; the same seed gives the same stream. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const between = (r: () => number, lo: number, hi: number) => Math.round(lo + r() * (hi - lo));

const shareNetwork = (s: DrillLabShape, a: string, b: string) =>
  (s.networks[a] ?? []).some((n) => (s.networks[b] ?? []).includes(n));

/**
 * Every (targets, params) a fault kind can take in this lab, among the allowed targets, in a fixed
 * order (the generator picks from it with the seeded stream). Empty: the kind has nothing to act on.
 */
export function candidates(
  kind: FaultKind,
  s: DrillLabShape,
  allowed: readonly string[],
): { targets: string[]; params: Record<string, string | number> }[] {
  const ok = (...ns: string[]) => ns.every((n) => allowed.includes(n));
  const nodes = allowed.filter((n) => s.networks[n] !== undefined);
  switch (kind) {
    case 'kill':
    case 'pause':
    case 'restart':
      return nodes.map((n) => ({ targets: [n], params: {} }));
    case 'partition':
    case 'loss': {
      const pairs: string[][] = [];
      for (let i = 0; i < nodes.length; i++)
        for (let j = i + 1; j < nodes.length; j++)
          if (shareNetwork(s, nodes[i]!, nodes[j]!)) pairs.push([nodes[i]!, nodes[j]!]);
      return pairs.map((p) => ({ targets: p, params: {} }));
    }
    case 'bandwidth':
      return nodes.map((n) => ({ targets: [n], params: {} }));
    case 'delay':
      return [s.main, s.sub]
        .filter((n) => ok(s.haproxy, n))
        .map((n) => ({ targets: [s.haproxy, n], params: {} }));
    case 'haproxy-active': {
      const pair = s.haproxies ?? [];
      // which of the two holds the address is read when the fault is injected
      return pair.length === 2 && ok(...pair) ? [{ targets: [...pair], params: {} }] : [];
    }
    case 'disk-full':
      return s.sizedUploads.filter((n) => ok(n)).map((n) => ({ targets: [n], params: {} }));
    case 'process': {
      const out: { targets: string[]; params: Record<string, string | number> }[] = [];
      if (ok(s.main)) out.push({ targets: [s.main], params: { process: 'lsyncd' } });
      for (const n of [s.main, s.sub]) if (ok(n)) out.push({ targets: [n], params: { process: 'sshd' } });
      if (ok(s.notifier)) out.push({ targets: [s.notifier], params: { process: 'notifier' } });
      return out;
    }
  }
}

/** Seeded parameters of a fault (loss share, rate, delay). */
function params(kind: FaultKind, r: () => number): Record<string, string | number> {
  switch (kind) {
    case 'loss':
      return { percent: between(r, 10, 40) };
    case 'bandwidth':
      return { kbit: pick(r, [1024, 2048, 4096, 8192]) };
    case 'delay':
      // below HAProxy's check timeout: the node is slow, not down
      return { ms: between(r, 150, 600) };
    default:
      return {};
  }
}

/**
 * The schedule: faults one after another (never two at once, so each RTO and each lag belongs to
 * one fault), each kind in turn in a seeded order so a short drill still sees every kind asked
 * for. A fault holds 4–8 s in drills under 2 min (CI's), 6–15 s up to 5 min, 10–30 s beyond,
 * then the stack gets 5–8 s, 8–14 s or 10–20 s to recover before the next one. Kinds with no candidate in this lab are an error.
 */
export function generateSchedule(
  stack: string,
  spec: DrillSpec,
  s: DrillLabShape,
  workload: { clients: number; pauseMs: number } = { clients: 4, pauseMs: 500 },
): DrillSchedule {
  const r = rng(spec.seed);
  for (const k of spec.faults)
    if (candidates(k, s, spec.targets).length === 0)
      throw new Error(
        `--faults ${k}: nothing to act on among the targets (${spec.targets.join(', ')})` +
          (k === 'disk-full' ? ': no SFTP node has a size-limited upload filesystem' : '') +
          (k === 'haproxy-active'
            ? ': it needs both nodes of the HAProxy pair (haproxy.pair) among them'
            : ''),
      );
  const long = spec.durationMs >= 300_000;
  const short = spec.durationMs < 120_000;
  const [holdLo, holdHi] = long ? [10_000, 30_000] : short ? [4_000, 8_000] : [6_000, 15_000];
  const [gapLo, gapHi] = long ? [10_000, 20_000] : short ? [5_000, 8_000] : [8_000, 14_000];
  const warmup = 5_000;
  const faults: ScheduledFault[] = [];
  let order: FaultKind[] = [];
  let t = warmup;
  for (let i = 0; ; i++) {
    if (order.length === 0) {
      // a seeded shuffle of the kinds: each round sees every kind once
      order = [...spec.faults];
      for (let j = order.length - 1; j > 0; j--) {
        const k = Math.floor(r() * (j + 1));
        [order[j], order[k]] = [order[k]!, order[j]!];
      }
    }
    const kind = order.shift()!;
    const c = pick(r, candidates(kind, s, spec.targets));
    const holdMs = between(r, holdLo, holdHi);
    const gap = between(r, gapLo, gapHi);
    if (t + holdMs > spec.durationMs) break;
    faults.push({
      id: `f${String(i + 1).padStart(2, '0')}`,
      kind,
      targets: c.targets,
      at: t,
      holdMs,
      params: { ...c.params, ...params(kind, r) },
    });
    t += holdMs + gap;
  }
  if (faults.length === 0)
    throw new Error(
      `--duration ${spec.durationMs / 1000}s is too short for one fault (warm-up ${warmup / 1000} s + at least ${holdHi / 1000} s)`,
    );
  return {
    version: 1,
    stack,
    seed: spec.seed,
    durationMs: spec.durationMs,
    faultKinds: spec.faults,
    targets: spec.targets,
    workload: { ...workload, sizeSeed: Math.floor(r() * 2 ** 31) },
    faults,
  };
}

/**
 * The workload's file sizes, seeded: mostly small files (4–64 KiB), some medium (64 KiB–1 MiB),
 * a few large (1–8 MiB). Deterministic per (seed, client, index).
 */
export function drillFileSize(sizeSeed: number, client: number, index: number): number {
  const r = rng((sizeSeed ^ Math.imul(client + 1, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0);
  const x = r();
  if (x < 0.7) return between(r, 4 * 1024, 64 * 1024);
  if (x < 0.95) return between(r, 64 * 1024, 1024 * 1024);
  return between(r, 1024 * 1024, 8 * 1024 * 1024);
}

/** A schedule read back from a file (`--replay`), checked field by field. */
export function parseSchedule(text: string, file: string): DrillSchedule {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not JSON (${(e as Error).message})`);
  }
  const p = drillSchedule.safeParse(doc);
  if (!p.success) {
    const i = p.error.issues[0]!;
    throw new Error(`${file}: ${i.path.join('.') || '(root)'}: ${i.message}`);
  }
  return p.data;
}
