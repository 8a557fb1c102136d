// The report's pure parts: inputs told apart and validated (bad fields named), summary rows,
// metrics against targets, the baseline comparison, the SVG charts and the topology drawing, the
// whole HTML (self-contained: no script, nothing fetched) and `wharf report`'s exit codes.
// test/fixtures/node-loss-run.json was captured from a real `wharf scenario run node-loss --json FILE`;
// test/fixtures/drill-shape.json is hand-written, a shape fixture for the drill's result format.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Command } from 'commander';
import { registerScenario } from '../../src/cli/commands/scenario.ts';
import { runCli } from '../../src/cli/program.ts';
import { runScenarios } from '../../src/scenario/runner.ts';
import type { Scenario } from '../../src/scenario/types.ts';
import { InputError } from '../../src/core/errors.ts';
import { graphModel } from '../../src/graph.ts';
import { renderReport } from '../../src/report/html.ts';
import { kindOf, readReportInput, reportInputFrom } from '../../src/report/load.ts';
import {
  benchMetrics,
  benchSummary,
  compareMetrics,
  drillMetrics,
  drillSummary,
  meetsTarget,
  quantile,
  scenarioMetrics,
} from '../../src/report/model.ts';
import { cdfChart, esc, lineChart, niceTicks, timelineChart } from '../../src/report/svg.ts';
import { layerOf, topologySvg } from '../../src/report/topology-svg.ts';
import type { DrillResult, ReportInput } from '../../src/report/types.ts';
import { loadTopology } from '../../src/topology/load.ts';

const FIX = join(import.meta.dirname, '../fixtures');
const RUN = join(FIX, 'node-loss-run.json');
const DRILL = join(FIX, 'drill-shape.json');
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'wharf-report-'));
  dirs.push(d);
  return d;
};

/** The bench's --json output as bench/run.ts prints it (a shape sample, numbers made up). */
const BENCH = {
  size: 536870912,
  lab: { coldUpSeconds: 151.2, warmUpMedianSeconds: 6.1 },
  throughput: { chainMBs: [120.1, 118.4, 125.9], directMBs: [131.2, 129.9, 130.5], ratio: 0.92, cipher: 'x' },
  rtoMs: [812, 1203, 990],
  rows: [
    { name: 'lab up, warm (median)', value: '6.1 s', target: '≤ 10 s', verdict: 'PASS' },
    { name: 'chain / direct throughput', value: '0.92', target: '≥ 0.95', verdict: 'MISS' },
    { name: 'direct MB/s', value: '130.5', target: '', verdict: 'n/a' },
  ],
};

const run = () => readReportInput(RUN);
const drill = () => readReportInput(DRILL) as Extract<ReportInput, { kind: 'drill' }>;

describe('inputs', () => {
  it('tells scenario runs, drills and bench results apart', () => {
    expect(kindOf(JSON.parse(readFileSync(RUN, 'utf8')))).toBe('scenarios');
    expect(kindOf(JSON.parse(readFileSync(DRILL, 'utf8')))).toBe('drill');
    expect(kindOf(BENCH)).toBe('bench');
    expect(kindOf([])).toBeUndefined();
    expect(kindOf({ hello: 1 })).toBeUndefined();
  });

  it('the captured node-loss run has its series, timeline and lag samples', () => {
    const r = run();
    expect(r.kind).toBe('scenarios');
    if (r.kind !== 'scenarios') return;
    expect(r.data.series['node-loss']!.map((s) => s.name)).toContain('uploads acknowledged per second');
    const names = r.data.events['node-loss']!.map((e) => e.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'docker kill sftp-main',
        'HAProxy marks sftp-main down',
        'first upload acknowledged after the kill',
        'failback',
      ]),
    );
    expect(r.data.samples['node-loss']![0]!.values.length).toBeGreaterThan(10);
  });

  it('a bad field is named with the file (exit 2)', () => {
    const d = JSON.parse(readFileSync(DRILL, 'utf8')) as Record<string, unknown> & {
      faults: { at: unknown }[];
    };
    d.faults[0]!.at = 'soon';
    delete d.verdict;
    let err: unknown;
    try {
      reportInputFrom(d, 'd.json');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InputError);
    const problems = (err as InputError).problems;
    expect(problems).toContainEqual(expect.stringMatching(/^d\.json: faults\.0\.at: expected a number, got/));
    expect(problems).toContainEqual(
      expect.stringMatching(/^d\.json: verdict: expected a mapping, got nothing/),
    );
    expect(() => reportInputFrom({ x: 1 }, 'x.json')).toThrow(
      /x\.json: not a scenario run, drill or bench result/,
    );
  });

  it('unreadable and non-JSON files are bad input', () => {
    const d = tmp();
    writeFileSync(join(d, 'bad.json'), '{ nope');
    expect(() => readReportInput(join(d, 'bad.json'))).toThrow(/bad\.json: not JSON/);
    expect(() => readReportInput(join(d, 'absent.json'))).toThrow(/absent\.json: cannot read/);
  });
});

describe('summary, metrics, targets, baseline', () => {
  it('scenario metrics keep their targets; met or missed is computed', () => {
    const r = run();
    if (r.kind !== 'scenarios') throw new Error('fixture');
    const ms = scenarioMetrics(r.data);
    const rto = ms.find((m) => m.name === 'RTO')!;
    expect(rto.target).toEqual({ op: '<=', value: 2000 });
    expect(meetsTarget(rto)).toBe(rto.value <= 2000);
    expect(meetsTarget({ group: 'g', name: 'n', value: 3, unit: '', target: { op: '<=', value: 2 } })).toBe(
      false,
    );
    expect(meetsTarget({ group: 'g', name: 'n', value: 3, unit: '', target: { op: '>=', value: 2 } })).toBe(
      true,
    );
    expect(meetsTarget({ group: 'g', name: 'n', value: 3, unit: '' })).toBeUndefined();
  });

  it('drill: validity, per-node verdict and per-fault recovery are checks; RTO per kind are metrics', () => {
    const d = drill().data;
    const rows = drillSummary(d);
    expect(rows[0]).toMatchObject({ verdict: 'pass', check: expect.stringMatching(/valid/) });
    expect(rows.filter((r) => r.check.startsWith('every acknowledged upload on'))).toHaveLength(2);
    // f4 (pause haproxy) has no RTO: uploads never resumed → fail
    expect(rows.find((r) => r.check.startsWith('f4:'))).toMatchObject({ verdict: 'fail' });
    const lost: DrillResult = {
      ...d,
      verdict: { ...d.verdict, nodes: [{ ...d.verdict.nodes[0]!, lost: 2 }] },
    };
    expect(drillSummary(lost).find((r) => r.check.includes('sftp-main'))).toMatchObject({
      verdict: 'fail',
      detail: expect.stringContaining('lost 2'),
    });
    const ms = drillMetrics(d);
    expect(ms).toContainEqual({ group: 'drill', name: 'RTO node-kill (median)', value: 1655, unit: 'ms' });
    expect(ms).toContainEqual({ group: 'drill', name: 'RTO node-kill (max)', value: 1890, unit: 'ms' });
    expect(ms.find((m) => m.name === 'lost or corrupt on sftp-main')!.target).toEqual({ op: '<=', value: 0 });
  });

  it('bench: rows become checks (MISS fails), numbers become metrics (arrays by their median)', () => {
    const b = reportInputFrom(BENCH, 'bench.json');
    if (b.kind !== 'bench') throw new Error('kind');
    expect(benchSummary(b.data).map((r) => r.verdict)).toEqual(['pass', 'fail', 'info']);
    const ms = benchMetrics(b.data);
    expect(ms).toContainEqual({ group: 'bench', name: 'throughput.ratio', value: 0.92, unit: '' });
    expect(ms).toContainEqual({
      group: 'bench',
      name: 'throughput.chainMBs (median of 3)',
      value: 120.1,
      unit: 'MB/s',
    });
    expect(ms).toContainEqual({ group: 'bench', name: 'rtoMs (median of 3)', value: 990, unit: 'ms' });
    expect(ms).toContainEqual({ group: 'bench', name: 'lab.coldUpSeconds', value: 151.2, unit: 's' });
    expect(ms.some((m) => m.name.startsWith('rows'))).toBe(false);
  });

  it('the comparison matches by source and name, with deltas; one-sided rows stay', () => {
    const rows = compareMetrics(
      [
        { group: 'a', name: 'RTO', value: 900, unit: 'ms' },
        { group: 'a', name: 'new', value: 1, unit: '' },
        { group: 'b', name: 'zero', value: 5, unit: '' },
      ],
      [
        { group: 'a', name: 'RTO', value: 1200, unit: 'ms' },
        { group: 'a', name: 'gone', value: 7, unit: '' },
        { group: 'b', name: 'zero', value: 0, unit: '' },
      ],
    );
    expect(rows).toEqual([
      { group: 'a', name: 'RTO', unit: 'ms', now: 900, base: 1200, delta: -300, deltaPct: -25 },
      { group: 'a', name: 'new', unit: '', now: 1 },
      { group: 'b', name: 'zero', unit: '', now: 5, base: 0, delta: 5 },
      { group: 'a', name: 'gone', unit: '', base: 7 },
    ]);
  });

  it('quantiles by nearest rank', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(quantile(xs, 0.5)).toBe(50);
    expect(quantile(xs, 0.99)).toBe(99);
    expect(quantile(xs, 1)).toBe(100);
    expect(quantile([], 0.5)).toBeUndefined();
  });
});

describe('SVG charts', () => {
  it('ticks are round and cover the range', () => {
    expect(niceTicks(0, 83)).toEqual([0, 20, 40, 60, 80, 100]);
    expect(niceTicks(0, 80)).toEqual([0, 20, 40, 60, 80]);
    expect(niceTicks(0, 1552, 8)).toEqual([0, 200, 400, 600, 800, 1000, 1200, 1400, 1600]);
    expect(niceTicks(7.5, 37.8, 8)).toEqual([5, 10, 15, 20, 25, 30, 35, 40]);
    expect(niceTicks(5, 5)).toEqual([5, 5.2, 5.4, 5.6, 5.8, 6]);
  });

  it('line chart: one polyline per series with every point, a band per fault, a marker per moment', () => {
    const svg = lineChart({
      kind: 'throughput',
      title: 'acks <per> second',
      xLabel: 's',
      yLabel: 'uploads/s',
      series: [
        { name: 'acks', points: [0, 1, 2, 3].map((t) => ({ t, v: 10 * t })) },
        { name: 'fails', points: [0, 1, 2, 3].map((t) => ({ t, v: t % 2 })) },
      ],
      bands: [{ from: 1, to: 2, label: 'main dead' }],
      markers: [{ t: 1.5, label: 'first ack' }],
    });
    expect(svg).toMatch(/^<svg class="chart" data-chart="throughput"/);
    expect([...svg.matchAll(/<polyline[^>]*data-points="4"/g)]).toHaveLength(2);
    expect([...svg.matchAll(/<rect class="band" data-from="1" data-to="2"/g)]).toHaveLength(1);
    expect(svg).toContain('<g class="marker" data-t="1.5">');
    expect(svg).toContain('acks &lt;per&gt; second');
    // the band spans x of t=1 … t=2: a quarter of the plot width each side of the middle
    const poly = / points="([^"]+)"/
      .exec(svg)![1]!
      .split(' ')
      .map((p) => p.split(',').map(Number));
    const band = /<rect class="band"[^>]* x="([\d.]+)"[^>]* width="([\d.]+)"/.exec(svg)!;
    expect(Number(band[1])).toBeCloseTo(poly[1]![0]!, 0);
    expect(Number(band[1]) + Number(band[2])).toBeCloseTo(poly[2]![0]!, 0);
    // higher value → smaller y
    expect(poly[3]![1]!).toBeLessThan(poly[0]![1]!);
  });

  it('CDF: a step line over every sample, p50/p90/p99 marked at the samples', () => {
    const svg = cdfChart({ kind: 'lag-cdf', title: 'lag', unit: 'ms', values: [300, 100, 200, 400] });
    expect(svg).toContain('data-points="4"');
    expect(svg).toContain('data-q="p50" data-value="200"');
    expect(svg).toContain('data-q="p99" data-value="400"');
    expect(cdfChart({ kind: 'lag-cdf', title: 'lag', unit: 'ms', values: [] })).toContain('no samples');
  });

  it('timeline: events in time order relative to the first, spans as bars', () => {
    const svg = timelineChart({
      kind: 'timeline',
      title: 't',
      events: [
        { name: 'first ack', t: 10.8 },
        { name: 'kill', t: 10 },
        { name: 'failback', t: 20, until: 30 },
      ],
    });
    const order = [...svg.matchAll(/<g class="event" data-t="([\d.]+)"/g)].map((m) => Number(m[1]));
    expect(order).toEqual([10, 10.8, 20]);
    expect(svg).toContain('+0.80 s');
    expect(svg).toContain('+10.00 s, 10.0 s');
    expect(svg).toContain('s after kill');
  });

  it('esc escapes markup', () => {
    expect(esc(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });
});

describe('topology drawing', () => {
  const g = graphModel(loadTopology('configs/stack.yaml'));
  it('columns follow the chain: internet → router → firewall → frontends → backends → sftp', () => {
    const rank = layerOf(g);
    const r = (id: string) => rank.get(id)!;
    expect(r('internet')).toBe(0);
    expect(r('n_router')).toBe(1);
    expect(r('n_firewall')).toBe(2);
    expect(r('fe_write')).toBe(3);
    expect(r('be_write')).toBe(4);
    expect(r('n_sftp_main')).toBeGreaterThanOrEqual(5);
    expect(r('n_sftp_sub')).toBeGreaterThan(r('n_sftp_main')); // lsyncd main → sub
  });

  it('every node and edge of the graph is drawn', () => {
    const svg = topologySvg(g);
    expect([...svg.matchAll(/<g class="node" /g)]).toHaveLength(g.nodes.length);
    expect([...svg.matchAll(/<g class="edge" /g)]).toHaveLength(g.edges.length);
    expect(svg).toContain('lsyncd, delay');
    expect(svg).not.toContain('<br/>');
  });
});

describe('the HTML report', () => {
  it('one self-contained page: summary, metrics vs targets, charts, topology, baseline', () => {
    const r = run();
    const html = renderReport({
      inputs: [r, drill(), reportInputFrom(BENCH, 'bench.json')],
      baseline: [r],
      graph: graphModel(loadTopology('configs/stack.yaml')),
      generatedAt: '2026-11-30T00:00:00.000Z',
    });
    if (r.kind !== 'scenarios') throw new Error('fixture');
    const summaryRows = /<table id="summary"[\s\S]*?<\/table>/.exec(html)![0].match(/<tr data-verdict=/g)!;
    expect(summaryRows).toHaveLength(r.data.results.length + drillSummary(drill().data).length + 3);
    expect(html).toMatch(/<div class="verdict bad" id="overall">FAIL: \d+ passed, 2 failed/);
    expect(html).toMatch(/<td>RTO<\/td><td class="num">\d+<\/td><td>ms<\/td><td>≤ 2000 ms<\/td>/);
    for (const kind of ['throughput', 'timeline', 'lag-cdf', 'rto', 'topology'])
      expect(html, kind).toContain(`data-chart="${kind}"`);
    // baseline = the same run: every delta 0
    const base = /<table id="baseline"[\s\S]*?<\/table>/.exec(html)![0];
    expect(base).toContain('<td>node-loss</td><td>RTO</td>');
    expect(base).toMatch(/<td class="num">\+?0 \(\+?0\.0 %\)<\/td>/);
    // self-contained: no script, no external reference (the SVG namespace is a name, not a fetch)
    expect(html).not.toMatch(/<script|<link|<img|<iframe|@import|url\(http/i);
    expect(html.replace(/xmlns="http:\/\/www\.w3\.org\/2000\/svg"/g, '')).not.toMatch(/https?:\/\//);
    expect(html).toContain("default-src 'none'");
  });

  it('all checks passing: PASS; no baseline section without a baseline', () => {
    const html = renderReport({ inputs: [run()], generatedAt: 'now' });
    expect(html).toMatch(/id="overall">PASS: \d+ passed, 0 failed/);
    expect(html).not.toContain('id="baseline"');
  });

  it('check names and details are escaped', () => {
    const html = renderReport({
      inputs: [
        reportInputFrom(
          {
            ok: false,
            durationMs: 1,
            results: [{ scenario: 's', name: '<script>alert(1)</script>', ok: false }],
            metrics: {},
          },
          'x.json',
        ),
      ],
      generatedAt: 'now',
    });
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).not.toContain('<script>');
  });
});

describe('wharf report', () => {
  const io = () => {
    const o = { out: '', err: '' };
    return { o, io: { out: (s: string) => void (o.out += s), err: (s: string) => void (o.err += s) } };
  };
  it('writes the file from --in and --baseline', async () => {
    const out = join(tmp(), 'sub', 'r.html');
    const { o, io: i } = io();
    const code = await runCli(['report', '--in', RUN, DRILL, '--baseline', RUN, '--out', out], i);
    expect(code, o.err).toBe(0);
    const html = readFileSync(out, 'utf8');
    expect(html).toContain('id="summary"');
    expect(html).toContain('id="baseline"');
    expect(html).toContain('data-chart="topology"');
  });

  it('missing flags and bad files: exit 2 naming them', async () => {
    const a = io();
    expect(await runCli(['report', '--in', RUN], a.io)).toBe(2);
    expect(a.o.err).toContain('report: missing --out FILE');
    const b = io();
    const bad = join(tmp(), 'bad.json');
    writeFileSync(bad, JSON.stringify({ kind: 'drill' }));
    expect(await runCli(['report', '--in', bad, '--out', join(tmp(), 'x.html')], b.io)).toBe(2);
    expect(b.o.err).toMatch(/bad\.json: stack: expected a string, got nothing/);
  });
});

describe('the runner records series, events and samples for the report', () => {
  /** A scenario doing real local work: times a few hashes, records them as a series and samples. */
  const timed: Scenario = {
    name: 'timed',
    description: 'sleeps and records what happened when',
    async run(ctx) {
      const start = Date.now();
      await new Promise((r) => setTimeout(r, 120));
      const mid = Date.now();
      ctx.event('half-way', mid);
      ctx.event('a span', start, { until: mid, detail: 'first part' });
      ctx.series(
        'steps',
        [
          { t: start, v: 1 },
          { t: mid, v: 2 },
        ],
        'steps/s',
      );
      ctx.samples('waits', [mid - start], 'ms');
      ctx.metric('wait', mid - start, 'ms', { op: '<=', value: 10_000 });
      ctx.check('waited', mid - start >= 100, `${mid - start} ms`);
    },
  };

  it('times are seconds since the scenario started; targets are kept', async () => {
    const run = await runScenarios([timed], { log: () => {} });
    const ev = run.events.timed!;
    expect(ev[0]!.name).toBe('half-way');
    expect(ev[0]!.t).toBeGreaterThanOrEqual(0.1);
    expect(ev[0]!.t).toBeLessThan(5);
    expect(ev[1]).toMatchObject({ name: 'a span', detail: 'first part' });
    expect(ev[1]!.until).toBe(ev[0]!.t);
    expect(run.series.timed![0]!.points.map((p) => p.v)).toEqual([1, 2]);
    expect(run.series.timed![0]!.points[1]!.t).toBe(ev[0]!.t);
    expect(run.samples.timed).toEqual([{ name: 'waits', unit: 'ms', values: [expect.any(Number)] }]);
    expect(run.metrics.timed![0]).toMatchObject({ name: 'wait', target: { op: '<=', value: 10_000 } });
    expect(Date.parse(run.startedAt)).toBeGreaterThan(0);
  });

  it('scenario run --json FILE keeps TAP on stdout; --report FILE writes the HTML', async () => {
    const d = tmp();
    let stdout = '';
    let stderr = '';
    const io = { out: (x: string) => void (stdout += x), err: (x: string) => void (stderr += x) };
    const program = new Command('wharf').exitOverride();
    registerScenario(program, io, { timed });
    const json = join(d, 'r.json');
    const report = join(d, 'r.html');
    await program.parseAsync(['scenario', 'run', 'timed', '--json', json, '--report', report], {
      from: 'user',
    });
    expect(stdout).toMatch(/^ok 1 - timed: waited \(\d+ ms\)$/m);
    const doc = JSON.parse(readFileSync(json, 'utf8')) as { kind: string; events: Record<string, unknown[]> };
    expect(doc.kind).toBe('scenarios');
    expect(doc.events.timed).toHaveLength(2);
    const html = readFileSync(report, 'utf8');
    expect(html).toContain('<title>wharf scenarios: timed</title>');
    expect(html).toContain('data-chart="timeline"');
    expect(html).toContain('data-chart="topology"');
    expect(stderr).toContain(`(report ${report})`);
  });
});
