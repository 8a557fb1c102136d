// `wharf report` in a real browser: Debian's headless Chromium (scripts/setup-host.sh installs it),
// driven by playwright-core, opens the report from file:// with every network request aborted and
// recorded. The page must make none, log no console error and throw no page error, and show the
// summary table, the charts (laid-out SVG with their data), the topology and the baseline comparison.
// Inputs: test/fixtures/node-loss-run.json and node-loss-baseline.json were captured from two real
// `wharf scenario run node-loss --json FILE` runs on a scenario lab; test/fixtures/drill-shape.json is
// a hand-written shape fixture of the drill result format (the drill is built elsewhere).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphModel } from '../../src/graph.ts';
import { loadTopology } from '../../src/topology/load.ts';

const REPO = join(import.meta.dirname, '../..');
const FIX = join(REPO, 'test/fixtures');
const CHROMIUM = '/usr/bin/chromium';
const dir = mkdtempSync(join(tmpdir(), 'wharf-report-browser-'));
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: run scripts/setup-host.sh (installs Debian's chromium)`);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
}, 60_000);
afterAll(async () => {
  await browser?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Opened {
  page: Page;
  requests: string[];
  consoleErrors: string[];
  pageErrors: string[];
}

/** Open a file offline: every request except the file itself is aborted and recorded. */
async function open(file: string): Promise<Opened> {
  const url = pathToFileURL(file).href;
  const ctx = await browser.newContext({ offline: true, javaScriptEnabled: true });
  const page = await ctx.newPage();
  const o: Opened = { page, requests: [], consoleErrors: [], pageErrors: [] };
  await ctx.route('**/*', (route) => {
    if (route.request().url() === url) return route.continue();
    o.requests.push(route.request().url());
    return route.abort();
  });
  page.on('request', (r) => {
    if (r.url() !== url && !o.requests.includes(r.url())) o.requests.push(r.url());
  });
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') o.consoleErrors.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => o.pageErrors.push(e.message));
  await page.goto(url, { waitUntil: 'load' });
  return o;
}

describe('the HTML report in headless Chromium', () => {
  it('offline: summary, charts with data, topology, baseline; no request, no console or page error', async () => {
    const t0 = Date.now();
    const out = join(dir, 'report.html');
    const r = spawnSync(
      process.execPath,
      [
        join(REPO, 'bin/wharf.mjs'),
        'report',
        '--in',
        join(FIX, 'node-loss-run.json'),
        join(FIX, 'drill-shape.json'),
        '--baseline',
        join(FIX, 'node-loss-baseline.json'),
        '--out',
        out,
      ],
      { encoding: 'utf8', cwd: REPO, timeout: 60_000 },
    );
    expect(r.status, r.stderr).toBe(0);
    const run = JSON.parse(readFileSync(join(FIX, 'node-loss-run.json'), 'utf8')) as {
      results: unknown[];
      samples: Record<string, { values: number[] }[]>;
    };
    const drill = JSON.parse(readFileSync(join(FIX, 'drill-shape.json'), 'utf8')) as {
      faults: unknown[];
      verdict: { nodes: unknown[] };
    };

    const { page, requests, consoleErrors, pageErrors } = await open(out);
    expect(await page.title()).toBe('wharf report');

    // summary: one row per scenario check + the drill's (valid, per node, per fault)
    const rows = page.locator('table#summary tbody tr');
    expect(await rows.count()).toBe(
      run.results.length + 1 + drill.verdict.nodes.length + drill.faults.length,
    );
    expect(await page.locator('table#summary').isVisible()).toBe(true);
    expect(await page.locator('table#summary tr[data-verdict="pass"]').count()).toBeGreaterThan(5);
    // metrics with targets
    const cells = await page
      .locator('table#metrics tbody tr')
      .evaluateAll((trs) =>
        trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')),
      );
    const rto = cells.find((c) => c[0] === 'node-loss' && c[1] === 'RTO');
    expect(rto).toEqual([
      'node-loss',
      'RTO',
      expect.stringMatching(/^\d+$/),
      'ms',
      '≤ 2000 ms',
      expect.stringMatching(/^(met|missed)$/),
    ]);

    // charts: laid out (non-zero boxes) and drawn from the data
    const box = async (sel: string) => (await page.locator(sel).first().boundingBox())?.width ?? 0;
    for (const kind of ['throughput', 'timeline', 'lag-cdf', 'rto', 'topology'])
      expect(await box(`svg[data-chart="${kind}"]`), kind).toBeGreaterThan(300);
    // node-loss throughput: acks/s and failures/s, with the fault bands (main dead, failover, failback)
    const nl = page.locator('svg[data-chart="throughput"]').first();
    const pts = await nl
      .locator('polyline.series')
      .evaluateAll((ps) => ps.map((p) => (p.getAttribute('points') ?? '').trim().split(/\s+/).length));
    expect(pts.length).toBe(2);
    expect(Math.min(...pts)).toBeGreaterThan(10);
    const bands = await nl
      .locator('rect.band')
      .evaluateAll((rs) => rs.map((r) => (r as SVGGraphicsElement).getBBox().width));
    expect(bands.length).toBeGreaterThanOrEqual(3);
    expect(Math.min(...bands)).toBeGreaterThan(0);
    // the drill's chart has one band per fault
    expect(await page.locator('svg[data-chart="throughput"]').nth(1).locator('rect.band').count()).toBe(
      drill.faults.length,
    );
    // timeline: kill → marked down → first ack → failover → failback
    const events = await page.locator('svg[data-chart="timeline"] g.event').allTextContents();
    for (const e of [
      'docker kill sftp-main',
      'HAProxy marks sftp-main down',
      'first upload acknowledged',
      'failback',
    ])
      expect(events.join('\n')).toContain(e);
    // lag CDF over every sample
    const lag = page.locator('svg[data-chart="lag-cdf"] polyline.series');
    expect(Number(await lag.getAttribute('data-points'))).toBe(run.samples['node-loss']![0]!.values.length);

    // topology: every node drawn, with its name
    const g = graphModel(loadTopology(join(REPO, 'configs/stack.yaml')));
    expect(await page.locator('svg[data-chart="topology"] g.node').count()).toBe(g.nodes.length);
    expect(await page.locator('svg[data-chart="topology"]').textContent()).toContain('sftp-main');

    // baseline comparison: RTO of this run and of the baseline, with a delta
    const cmp = await page
      .locator('table#baseline tbody tr')
      .evaluateAll((trs) =>
        trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')),
      );
    const row = cmp.find((c) => c[0] === 'node-loss' && c[1] === 'RTO')!;
    expect(row).toEqual([
      'node-loss',
      'RTO',
      expect.stringMatching(/^\d+$/),
      expect.stringMatching(/^\d+$/),
      expect.stringMatching(/^[+-]?\d+ \([+-]?[\d.]+ %\)$/),
      'ms',
    ]);
    expect(Number(row[3]) - Number(row[2])).toBe(Number(row[4]!.split(' ')[0]));

    expect(requests).toEqual([]);
    expect(consoleErrors).toEqual([]);
    expect(pageErrors).toEqual([]);
    await page.screenshot({ path: join(dir, 'report.png'), fullPage: true });
    console.log(`report-browser: generated and checked in ${Date.now() - t0} ms`);
  });

  it('the harness sees a request, a console error and a page error when a page makes them', async () => {
    const bad = join(dir, 'bad.html');
    writeFileSync(
      bad,
      `<!doctype html><html><head><title>bad</title></head><body>
<img src="http://127.0.0.1:9/pixel.png"><script>console.error('oops'); throw new Error('boom');</script></body></html>`,
    );
    const o = await open(bad);
    expect(o.requests).toContain('http://127.0.0.1:9/pixel.png');
    expect(o.consoleErrors.join('\n')).toContain('oops');
    expect(o.pageErrors.join('\n')).toContain('boom');
  });
});
