// From the inputs to what the report shows: summary rows, metrics (with targets), the baseline
// comparison. Pure.
import type {
  BenchResult,
  DrillResult,
  FlatMetric,
  ReportInput,
  ScenarioRunResult,
  SummaryRow,
} from './types.ts';

export function scenarioSummary(d: ScenarioRunResult): SummaryRow[] {
  return d.results.map((r) => ({
    group: r.scenario,
    check: r.name,
    verdict: r.ok ? 'pass' : 'fail',
    detail: r.detail ?? '',
  }));
}

export function scenarioMetrics(d: ScenarioRunResult): FlatMetric[] {
  return Object.entries(d.metrics).flatMap(([scenario, ms]) => ms.map((m) => ({ group: scenario, ...m })));
}

export function drillSummary(d: DrillResult): SummaryRow[] {
  const rows: SummaryRow[] = [
    {
      group: 'drill',
      check: 'the run is valid (faults applied and healed as planned)',
      verdict: d.valid ? 'pass' : 'fail',
      detail: `stack ${d.stack}, seed ${d.seed}, ${d.faults.length} fault(s) in ${(d.durationMs / 1000).toFixed(1)} s`,
    },
  ];
  for (const n of d.verdict.nodes) {
    rows.push({
      group: 'drill',
      check: `every acknowledged upload on ${n.node}`,
      verdict: n.lost === 0 && n.corrupt === 0 ? 'pass' : 'fail',
      detail: `acknowledged ${d.verdict.acknowledged}, ok ${n.ok}, lost ${n.lost}, corrupt ${n.corrupt}, unexpected ${n.unexpected}, recovered ${n.recovered}`,
    });
  }
  for (const f of d.faults) {
    rows.push({
      group: 'drill',
      check: `${f.id}: ${f.kind} on ${f.targets.join(', ')} — uploads resume`,
      verdict: f.rtoMs === null ? 'fail' : 'pass',
      detail:
        f.rtoMs === null
          ? 'no upload acknowledged after the fault'
          : `RTO ${f.rtoMs} ms${f.lagAfterHealMs === null ? '' : `, lag after heal ${f.lagAfterHealMs} ms`}`,
    });
  }
  return rows;
}

export function drillMetrics(d: DrillResult): FlatMetric[] {
  const out: FlatMetric[] = [
    { group: 'drill', name: 'uploads acknowledged', value: d.verdict.acknowledged, unit: 'files' },
  ];
  for (const n of d.verdict.nodes)
    out.push({
      group: 'drill',
      name: `lost or corrupt on ${n.node}`,
      value: n.lost + n.corrupt,
      unit: 'files',
      target: { op: '<=', value: 0 },
    });
  for (const [kind, r] of Object.entries(d.rto)) {
    out.push({ group: 'drill', name: `RTO ${kind} (median)`, value: r.median, unit: 'ms' });
    out.push({ group: 'drill', name: `RTO ${kind} (max)`, value: r.max, unit: 'ms' });
  }
  for (const f of d.faults) {
    if (f.lagAfterHealMs !== null)
      out.push({ group: 'drill', name: `${f.id} lag after heal`, value: f.lagAfterHealMs, unit: 'ms' });
  }
  return out;
}

export function benchSummary(d: BenchResult): SummaryRow[] {
  return d.rows.map((r) => ({
    group: 'bench',
    check: r.target ? `${r.name} (target ${r.target})` : r.name,
    verdict: r.verdict === 'PASS' ? 'pass' : r.verdict === 'MISS' ? 'fail' : 'info',
    detail: r.value,
  }));
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** The unit a bench key names by its suffix (chainMBs → MB/s, rtoMs → ms, coldUpSeconds → s). */
export function benchUnit(key: string): string {
  if (/MBs$/.test(key)) return 'MB/s';
  if (/Ms$/.test(key)) return 'ms';
  if (/Seconds$/.test(key)) return 's';
  if (/^size$/.test(key)) return 'bytes';
  return '';
}

/**
 * Every number of the bench's JSON outside its rows, by path (`throughput.ratio`); an array of
 * numbers is shown as its median. The bench's sections change as it grows: read them generically.
 */
export function benchMetrics(d: BenchResult): FlatMetric[] {
  const out: FlatMetric[] = [];
  const walk = (v: unknown, path: string[]) => {
    const key = path[path.length - 1] ?? '';
    if (typeof v === 'number' && Number.isFinite(v)) {
      out.push({ group: 'bench', name: path.join('.'), value: v, unit: benchUnit(key) });
    } else if (Array.isArray(v)) {
      const nums = v.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
      if (nums.length && nums.length === v.length)
        out.push({
          group: 'bench',
          name: `${path.join('.')} (median of ${nums.length})`,
          value: median(nums),
          unit: benchUnit(key),
        });
    } else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
    }
  };
  for (const [k, v] of Object.entries(d)) if (k !== 'rows' && k !== 'kind') walk(v, [k]);
  return out;
}

export function summaryOf(i: ReportInput): SummaryRow[] {
  if (i.kind === 'scenarios') return scenarioSummary(i.data);
  if (i.kind === 'drill') return drillSummary(i.data);
  return benchSummary(i.data);
}

export function metricsOf(i: ReportInput): FlatMetric[] {
  if (i.kind === 'scenarios') return scenarioMetrics(i.data);
  if (i.kind === 'drill') return drillMetrics(i.data);
  return benchMetrics(i.data);
}

/** Whether a metric meets its target (undefined: it has none). */
export function meetsTarget(m: FlatMetric): boolean | undefined {
  if (!m.target) return undefined;
  return m.target.op === '<=' ? m.value <= m.target.value : m.value >= m.target.value;
}

export interface ComparisonRow {
  group: string;
  name: string;
  unit: string;
  now?: number;
  base?: number;
  /** now − base, when both exist */
  delta?: number;
  /** delta / |base| × 100, when both exist and base ≠ 0 */
  deltaPct?: number;
}

const key = (m: FlatMetric) => `${m.group}\u0000${m.name}`;

/** Current metrics next to the baseline's, matched by group and name; rows only one side has too. */
export function compareMetrics(now: FlatMetric[], base: FlatMetric[]): ComparisonRow[] {
  const b = new Map(base.map((m) => [key(m), m]));
  const seen = new Set<string>();
  const rows: ComparisonRow[] = [];
  for (const m of now) {
    const k = key(m);
    if (seen.has(k)) continue;
    seen.add(k);
    const o = b.get(k);
    const row: ComparisonRow = { group: m.group, name: m.name, unit: m.unit, now: m.value };
    if (o) {
      row.base = o.value;
      row.delta = m.value - o.value;
      if (o.value !== 0) row.deltaPct = ((m.value - o.value) / Math.abs(o.value)) * 100;
    }
    rows.push(row);
  }
  for (const o of base) {
    const k = key(o);
    if (seen.has(k)) continue;
    seen.add(k);
    rows.push({ group: o.group, name: o.name, unit: o.unit, base: o.value });
  }
  return rows;
}

/** Quantile q (0..1) of values by nearest rank; undefined for no values. */
export function quantile(values: number[], q: number): number | undefined {
  if (!values.length) return undefined;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}
