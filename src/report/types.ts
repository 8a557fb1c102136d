// The report's inputs: the JSON results of `scenario run --json`, of a drill and of the bench,
// as zod schemas (a bad file is named with the field that is wrong) and their TypeScript types.
import { z } from 'zod';

const num = z.number().finite();
const countOrList = z.union([num, z.array(z.string()).transform((xs) => xs.length)]);
const target = z.object({ op: z.enum(['<=', '>=']), value: num });

/** `wharf scenario run --json`: checks, metrics (some with a target), series, events, sample sets. */
export const ScenarioRunSchema = z.object({
  kind: z.literal('scenarios').optional(),
  ok: z.boolean(),
  startedAt: z.string().optional(),
  durationMs: num,
  results: z.array(
    z.object({ scenario: z.string(), name: z.string(), ok: z.boolean(), detail: z.string().optional() }),
  ),
  metrics: z.record(
    z.string(),
    z.array(z.object({ name: z.string(), value: num, unit: z.string(), target: target.optional() })),
  ),
  series: z
    .record(
      z.string(),
      z.array(
        z.object({
          name: z.string(),
          unit: z.string(),
          points: z.array(z.object({ t: num, v: num })),
        }),
      ),
    )
    .default({}),
  events: z
    .record(
      z.string(),
      z.array(z.object({ name: z.string(), t: num, until: num.optional(), detail: z.string().optional() })),
    )
    .default({}),
  samples: z
    .record(z.string(), z.array(z.object({ name: z.string(), unit: z.string(), values: z.array(num) })))
    .default({}),
});
export type ScenarioRunResult = z.infer<typeof ScenarioRunSchema>;

/** A drill's result (the drill itself lives elsewhere; this is the shape the report reads). */
export const DrillSchema = z.object({
  kind: z.literal('drill'),
  stack: z.string(),
  seed: num,
  startedAt: z.string(),
  durationMs: num,
  valid: z.boolean(),
  faults: z.array(
    z.object({
      id: z.string(),
      kind: z.string(),
      targets: z.array(z.string()),
      /** ms since the drill started */
      at: num,
      healAt: num.nullable(),
      rtoMs: num.nullable(),
      lagAfterHealMs: num.nullable(),
    }),
  ),
  /** One row per second: `t` in s since the start, acknowledged and failed uploads in that second. */
  timeline: z.array(z.object({ t: num, acks: num, fails: num })),
  verdict: z.object({
    acknowledged: num,
    nodes: z.array(
      z.object({
        node: z.string(),
        ok: num,
        // wharf drill's result.json lists the paths; a count is read as it is
        lost: countOrList,
        corrupt: countOrList,
        unexpected: countOrList,
        recovered: countOrList,
      }),
    ),
  }),
  rto: z.record(z.string(), z.object({ median: num, max: num })),
});
export type DrillResult = z.output<typeof DrillSchema>;

/**
 * `npx tsx bench/run.ts --json`: rows (name, value, target, PASS/MISS/n/a) and the measured numbers
 * in sections of its own (throughput, client, rtoMs, lab…); those are read generically.
 */
export const BenchSchema = z
  .object({
    kind: z.literal('bench').optional(),
    rows: z.array(
      z.object({
        name: z.string(),
        value: z.string(),
        target: z.string(),
        verdict: z.enum(['PASS', 'MISS', 'n/a']),
      }),
    ),
  })
  .catchall(z.unknown());
export type BenchResult = z.infer<typeof BenchSchema>;

/** One loaded input file, by kind. */
export type ReportInput =
  | { kind: 'scenarios'; file: string; data: ScenarioRunResult }
  | { kind: 'drill'; file: string; data: DrillResult }
  | { kind: 'bench'; file: string; data: BenchResult };

/** A number the report shows and compares with the baseline. */
export interface FlatMetric {
  /** The source (scenario name, "drill", "bench") — part of the comparison key with `name`. */
  group: string;
  name: string;
  value: number;
  unit: string;
  target?: z.infer<typeof target>;
}

/** One row of the summary table. */
export interface SummaryRow {
  group: string;
  check: string;
  verdict: 'pass' | 'fail' | 'info';
  detail: string;
}
