// The report: one self-contained HTML file (inline CSS and SVG, no script, nothing fetched at view
// time) from the results of scenario runs, drills and the bench. Pure: inputs → HTML text.
import type { GraphModel } from '../graph.ts';
import { compareMetrics, meetsTarget, metricsOf, quantile, summaryOf, type ComparisonRow } from './model.ts';
import { barChart, cdfChart, esc, lineChart, timelineChart } from './svg.ts';
import { topologySvg } from './topology-svg.ts';
import type { DrillResult, FlatMetric, ReportInput, ScenarioRunResult, SummaryRow } from './types.ts';

export interface ReportSpec {
  inputs: ReportInput[];
  /** A previous run's results: metrics side by side with deltas. */
  baseline?: ReportInput[];
  /** The topology drawn (graphModel of the stack). */
  graph?: GraphModel;
  /** ISO time the report was made (passed in: rendering stays pure). */
  generatedAt: string;
  title?: string;
}

const CSS = `
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px} .meta{color:#666;font-size:13px}
table{border-collapse:collapse;font-size:13px;margin:6px 0 12px} th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3} td.num{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#137333;font-weight:600} .fail{color:#b3261e;font-weight:700} .info{color:#555}
.better{color:#137333} .worse{color:#b3261e}
.verdict{display:inline-block;padding:6px 12px;border-radius:6px;font-weight:700;margin:8px 0}
.verdict.ok{background:#e6f4ea;color:#137333} .verdict.bad{background:#fce8e6;color:#b3261e}
svg{max-width:100%;height:auto;display:block;margin:8px 0;background:#fff}
.detail{color:#444;max-width:640px;word-break:break-word}
`;

const fmt = (v: number | undefined): string =>
  v === undefined ? '—' : Math.abs(v) >= 100 || Number.isInteger(v) ? String(Math.round(v)) : v.toFixed(3);

function summaryTable(rows: SummaryRow[]): string {
  const body = rows
    .map(
      (r) =>
        `<tr data-verdict="${r.verdict}"><td>${esc(r.group)}</td><td>${esc(r.check)}</td><td class="${r.verdict}">${r.verdict === 'pass' ? 'PASS' : r.verdict === 'fail' ? 'FAIL' : 'info'}</td><td class="detail">${esc(r.detail)}</td></tr>`,
    )
    .join('\n');
  return `<table id="summary" class="summary"><thead><tr><th>source</th><th>check</th><th>result</th><th>measured / why</th></tr></thead><tbody>\n${body}\n</tbody></table>`;
}

function metricsTable(ms: FlatMetric[]): string {
  const body = ms
    .map((m) => {
      const met = meetsTarget(m);
      const target = m.target
        ? `${m.target.op === '<=' ? '≤' : '≥'} ${fmt(m.target.value)} ${esc(m.unit)}`
        : '';
      const verdict =
        met === undefined ? '' : met ? '<span class="pass">met</span>' : '<span class="fail">missed</span>';
      return `<tr><td>${esc(m.group)}</td><td>${esc(m.name)}</td><td class="num">${fmt(m.value)}</td><td>${esc(m.unit)}</td><td>${target}</td><td>${verdict}</td></tr>`;
    })
    .join('\n');
  return `<table id="metrics" class="metrics"><thead><tr><th>source</th><th>metric</th><th>value</th><th>unit</th><th>target</th><th></th></tr></thead><tbody>\n${body}\n</tbody></table>`;
}

function comparisonTable(rows: ComparisonRow[]): string {
  const body = rows
    .map((r) => {
      const d =
        r.delta === undefined
          ? '—'
          : `${r.delta > 0 ? '+' : ''}${fmt(r.delta)}${r.deltaPct !== undefined ? ` (${r.deltaPct > 0 ? '+' : ''}${r.deltaPct.toFixed(1)} %)` : ''}`;
      return `<tr><td>${esc(r.group)}</td><td>${esc(r.name)}</td><td class="num">${fmt(r.base)}</td><td class="num">${fmt(r.now)}</td><td class="num">${d}</td><td>${esc(r.unit)}</td></tr>`;
    })
    .join('\n');
  return `<table id="baseline" class="comparison"><thead><tr><th>source</th><th>metric</th><th>baseline</th><th>this run</th><th>delta</th><th>unit</th></tr></thead><tbody>\n${body}\n</tbody></table>`;
}

function scenarioCharts(d: ScenarioRunResult): string {
  const out: string[] = [];
  const names = new Set([...Object.keys(d.series), ...Object.keys(d.events), ...Object.keys(d.samples)]);
  for (const sc of names) {
    const series = d.series[sc] ?? [];
    const events = d.events[sc] ?? [];
    const samples = d.samples[sc] ?? [];
    if (!series.length && !events.length && !samples.length) continue;
    out.push(`<h3>${esc(sc)}</h3>`);
    const spans = events.filter((e) => e.until !== undefined);
    const moments = events.filter((e) => e.until === undefined);
    const byUnit = new Map<string, typeof series>();
    for (const s of series) byUnit.set(s.unit, [...(byUnit.get(s.unit) ?? []), s]);
    for (const [unit, ss] of byUnit) {
      out.push(
        lineChart({
          kind: 'throughput',
          title: `${sc}: ${ss.map((s) => s.name).join(', ')}`,
          xLabel: 's since the scenario started',
          yLabel: unit,
          series: ss,
          bands: spans.map((e) => ({ from: e.t, to: e.until!, label: e.name })),
          markers: moments.map((e) => ({ t: e.t, label: e.name })),
        }),
      );
    }
    if (events.length) out.push(timelineChart({ kind: 'timeline', title: `${sc}: timeline`, events }));
    for (const s of samples) {
      out.push(cdfChart({ kind: 'lag-cdf', title: `${sc}: ${s.name}`, unit: s.unit, values: s.values }));
      out.push(
        `<p class="meta">${esc(s.name)}: ${s.values.length} samples, p50 ${fmt(quantile(s.values, 0.5))} ${esc(s.unit)}, p90 ${fmt(quantile(s.values, 0.9))}, p99 ${fmt(quantile(s.values, 0.99))}, max ${fmt(quantile(s.values, 1))}</p>`,
      );
    }
  }
  return out.join('\n');
}

function drillSection(d: DrillResult, file: string): string {
  const out: string[] = [
    `<h3>drill on ${esc(d.stack)} (seed ${d.seed}, ${esc(d.startedAt)}, ${(d.durationMs / 1000).toFixed(1)} s) — ${esc(file)}</h3>`,
  ];
  out.push(
    lineChart({
      kind: 'throughput',
      title: `drill: uploads per second with fault bands`,
      xLabel: 's since the drill started',
      yLabel: 'uploads/s',
      series: [
        { name: 'acknowledged', points: d.timeline.map((r) => ({ t: r.t, v: r.acks })) },
        { name: 'failed attempts', points: d.timeline.map((r) => ({ t: r.t, v: r.fails })) },
      ],
      bands: d.faults.map((f) => ({
        from: f.at / 1000,
        // a fault never healed runs to the end of the drill
        to: (f.healAt ?? d.durationMs) / 1000,
        label: `${f.id}: ${f.kind} ${f.targets.join(', ')}`,
      })),
    }),
  );
  out.push(
    `<table class="faults"><thead><tr><th>fault</th><th>kind</th><th>targets</th><th>at (s)</th><th>healed (s)</th><th>RTO (ms)</th><th>lag after heal (ms)</th></tr></thead><tbody>` +
      d.faults
        .map(
          (f) =>
            `<tr><td>${esc(f.id)}</td><td>${esc(f.kind)}</td><td>${esc(f.targets.join(', '))}</td><td class="num">${(f.at / 1000).toFixed(1)}</td><td class="num ${f.healAt === null ? 'fail' : ''}">${f.healAt === null ? 'never' : (f.healAt / 1000).toFixed(1)}</td><td class="num ${f.rtoMs === null ? 'fail' : ''}">${f.rtoMs === null ? 'none' : f.rtoMs}</td><td class="num">${f.lagAfterHealMs ?? '—'}</td></tr>`,
        )
        .join('') +
      `</tbody></table>`,
  );
  const rto = Object.entries(d.rto);
  if (rto.length) {
    out.push(
      barChart({
        kind: 'rto',
        title: 'RTO per fault kind (bar: median, red tick: max)',
        unit: 'ms',
        bars: rto.map(([kind, r]) => ({ label: kind, value: r.median, max: r.max })),
      }),
    );
    out.push(
      `<table class="rto"><thead><tr><th>fault kind</th><th>RTO median (ms)</th><th>RTO max (ms)</th></tr></thead><tbody>` +
        rto
          .map(
            ([k, r]) =>
              `<tr><td>${esc(k)}</td><td class="num">${r.median}</td><td class="num">${r.max}</td></tr>`,
          )
          .join('') +
        `</tbody></table>`,
    );
  }
  out.push(
    `<table class="node-verdict"><thead><tr><th>node</th><th>ok</th><th>lost</th><th>corrupt</th><th>unexpected</th><th>recovered</th></tr></thead><tbody>` +
      d.verdict.nodes
        .map(
          (n) =>
            `<tr><td>${esc(n.node)}</td><td class="num">${n.ok}</td><td class="num ${n.lost ? 'fail' : ''}">${n.lost}</td><td class="num ${n.corrupt ? 'fail' : ''}">${n.corrupt}</td><td class="num">${n.unexpected}</td><td class="num">${n.recovered}</td></tr>`,
        )
        .join('') +
      `</tbody></table><p class="meta">${d.verdict.acknowledged} uploads acknowledged</p>`,
  );
  return out.join('\n');
}

/** The whole report. */
export function renderReport(spec: ReportSpec): string {
  const summary = spec.inputs.flatMap(summaryOf);
  const metrics = spec.inputs.flatMap(metricsOf);
  const failed = summary.filter((r) => r.verdict === 'fail').length;
  const passed = summary.filter((r) => r.verdict === 'pass').length;
  const missed = metrics.filter((m) => meetsTarget(m) === false).length;
  const ok = failed === 0 && summary.length > 0;
  const title = spec.title ?? 'wharf report';
  const sources = spec.inputs
    .map(
      (i) =>
        `${esc(i.file)} (${i.kind}${'startedAt' in i.data && i.data.startedAt ? `, ${esc(String(i.data.startedAt))}` : ''})`,
    )
    .join(', ');
  const body: string[] = [
    `<h1>${esc(title)}</h1>`,
    `<p class="meta">generated ${esc(spec.generatedAt)} from ${sources}${spec.baseline?.length ? `; baseline ${spec.baseline.map((b) => esc(b.file)).join(', ')}` : ''}</p>`,
    `<div class="verdict ${ok ? 'ok' : 'bad'}" id="overall">${ok ? 'PASS' : 'FAIL'}: ${passed} passed, ${failed} failed${missed ? `; ${missed} metric(s) miss their target` : ''}</div>`,
    `<h2>Summary</h2>`,
    summaryTable(summary),
    `<h2>Metrics</h2>`,
    metrics.length ? metricsTable(metrics) : '<p>no metrics</p>',
  ];
  if (spec.baseline?.length) {
    body.push(
      `<h2>Compared with the baseline</h2>`,
      comparisonTable(compareMetrics(metrics, spec.baseline.flatMap(metricsOf))),
    );
  }
  const charts: string[] = [];
  for (const i of spec.inputs) {
    if (i.kind === 'scenarios') charts.push(scenarioCharts(i.data));
    else if (i.kind === 'drill') charts.push(drillSection(i.data, i.file));
  }
  if (charts.some((c) => c.trim())) body.push(`<h2>Charts</h2>`, ...charts);
  if (spec.graph) body.push(`<h2>Topology</h2>`, topologySvg(spec.graph));
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title><style>${CSS}</style></head>
<body>
${body.join('\n')}
</body></html>
`;
}
