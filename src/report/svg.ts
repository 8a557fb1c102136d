// Small inline SVG charts written by hand (no chart library, nothing fetched at view time): a line
// chart with fault bands and markers, a CDF, an event timeline. Pure: data → SVG text.

export const esc = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];
const BAND_COLORS = ['#d62728', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2'];
const f = (x: number) => (Math.round(x * 10) / 10).toString();

/** Round tick values from ≤ lo to ≥ hi, about `count` steps. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) hi = lo + 1;
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  // from the last multiple of step ≤ lo to the first ≥ hi, so the axis covers every value
  const out: number[] = [];
  const first = Math.floor(lo / step + 1e-9);
  const last = Math.ceil(hi / step - 1e-9);
  for (let i = first; i <= last; i++) out.push(Number((i * step).toPrecision(12)));
  return out;
}

const fmtTick = (v: number) =>
  Math.abs(v) >= 1000 ? v.toFixed(0) : Number.isInteger(v) ? String(v) : v.toPrecision(3);

interface Frame {
  w: number;
  h: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
  x0: number;
  x1: number;
  y0: number;
  y1: number;
}
const sx = (fr: Frame, x: number) =>
  fr.left + ((x - fr.x0) / (fr.x1 - fr.x0 || 1)) * (fr.w - fr.left - fr.right);
const sy = (fr: Frame, y: number) =>
  fr.h - fr.bottom - ((y - fr.y0) / (fr.y1 - fr.y0 || 1)) * (fr.h - fr.top - fr.bottom);

function axes(fr: Frame, xLabel: string, yLabel: string, yTicks: number[], xTicks: number[]): string {
  const parts: string[] = [];
  const xb = fr.h - fr.bottom;
  parts.push(
    `<line class="axis" x1="${fr.left}" y1="${xb}" x2="${fr.w - fr.right}" y2="${xb}" stroke="#333"/>`,
    `<line class="axis" x1="${fr.left}" y1="${fr.top}" x2="${fr.left}" y2="${xb}" stroke="#333"/>`,
  );
  for (const v of yTicks) {
    const y = f(sy(fr, v));
    parts.push(
      `<line x1="${fr.left}" y1="${y}" x2="${fr.w - fr.right}" y2="${y}" stroke="#eee"/>`,
      `<text x="${fr.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle" font-size="11">${fmtTick(v)}</text>`,
    );
  }
  for (const v of xTicks) {
    const x = f(sx(fr, v));
    parts.push(
      `<line x1="${x}" y1="${xb}" x2="${x}" y2="${xb + 4}" stroke="#333"/>`,
      `<text x="${x}" y="${xb + 16}" text-anchor="middle" font-size="11">${fmtTick(v)}</text>`,
    );
  }
  parts.push(
    `<text x="${(fr.left + fr.w - fr.right) / 2}" y="${xb + 32}" text-anchor="middle" font-size="12">${esc(xLabel)}</text>`,
    `<text x="14" y="${(fr.top + xb) / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 14 ${(fr.top + xb) / 2})">${esc(yLabel)}</text>`,
  );
  return parts.join('');
}

export interface LineChartInput {
  /** data-chart attribute: what the chart is (the browser test finds charts by it) */
  kind: string;
  title: string;
  xLabel: string;
  yLabel: string;
  series: { name: string; points: { t: number; v: number }[] }[];
  /** spans drawn behind the lines (faults: node dead, partition, writes paused) */
  bands?: { from: number; to: number; label: string }[];
  /** moments drawn as vertical lines (kill, first ack…) */
  markers?: { t: number; label: string }[];
}

/** Lines over time with fault bands and markers. */
export function lineChart(c: LineChartInput): string {
  const w = 760;
  const bands = c.bands ?? [];
  const markers = c.markers ?? [];
  const legendRows = Math.ceil((c.series.length + bands.length) / 3);
  const h = 260 + legendRows * 16;
  const ts = [
    ...c.series.flatMap((s) => s.points.map((p) => p.t)),
    ...bands.flatMap((b) => [b.from, b.to]),
    ...markers.map((m) => m.t),
  ];
  const vs = c.series.flatMap((s) => s.points.map((p) => p.v));
  const xTicks = niceTicks(ts.length ? Math.min(...ts) : 0, ts.length ? Math.max(...ts) : 1, 8);
  const yTicks = niceTicks(0, Math.max(1, ...vs), 5);
  const fr: Frame = {
    w,
    h,
    left: 56,
    right: 16,
    top: markers.length ? 58 : 28,
    bottom: 46 + legendRows * 16,
    x0: xTicks[0]!,
    x1: xTicks[xTicks.length - 1]!,
    y0: 0,
    y1: yTicks[yTicks.length - 1]!,
  };
  const parts: string[] = [];
  bands.forEach((b, i) => {
    const xa = sx(fr, b.from);
    const xb = sx(fr, b.to);
    const color = BAND_COLORS[i % BAND_COLORS.length];
    parts.push(
      `<rect class="band" data-from="${b.from}" data-to="${b.to}" x="${f(xa)}" y="${fr.top}" width="${f(Math.max(1, xb - xa))}" height="${f(h - fr.top - fr.bottom)}" fill="${color}" fill-opacity="0.13"><title>${esc(`${b.label}: ${f(b.from)} s → ${f(b.to)} s`)}</title></rect>`,
    );
  });
  parts.push(axes(fr, c.xLabel, c.yLabel, yTicks, xTicks));
  markers.forEach((m, i) => {
    const x = f(sx(fr, m.t));
    const y = fr.top - 4 - (i % 3) * 10;
    parts.push(
      `<g class="marker" data-t="${m.t}"><line x1="${x}" y1="${fr.top}" x2="${x}" y2="${h - fr.bottom}" stroke="#555" stroke-dasharray="4 3"/>` +
        `<text x="${x}" y="${y}" font-size="10" text-anchor="${Number(x) > w * 0.7 ? 'end' : 'start'}">${esc(m.label)}</text><title>${esc(`${m.label} at ${f(m.t)} s`)}</title></g>`,
    );
  });
  c.series.forEach((s, i) => {
    const pts = s.points.map((p) => `${f(sx(fr, p.t))},${f(sy(fr, p.v))}`).join(' ');
    parts.push(
      `<polyline class="series" data-series="${esc(s.name)}" data-points="${s.points.length}" points="${pts}" fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="1.8"><title>${esc(s.name)}</title></polyline>`,
    );
  });
  // legend
  const legend = [
    ...c.series.map((s, i) => ({ label: s.name, color: COLORS[i % COLORS.length]!, band: false })),
    ...bands.map((b, i) => ({ label: b.label, color: BAND_COLORS[i % BAND_COLORS.length]!, band: true })),
  ];
  legend.forEach((l, i) => {
    const x = fr.left + (i % 3) * 235;
    const y = h - fr.bottom + 50 + Math.floor(i / 3) * 16;
    parts.push(
      l.band
        ? `<rect x="${x}" y="${y - 9}" width="14" height="10" fill="${l.color}" fill-opacity="0.25"/>`
        : `<line x1="${x}" y1="${y - 4}" x2="${x + 14}" y2="${y - 4}" stroke="${l.color}" stroke-width="2"/>`,
      `<text x="${x + 18}" y="${y}" font-size="11">${esc(l.label.length > 36 ? l.label.slice(0, 35) + '…' : l.label)}</text>`,
    );
  });
  return svg(c.kind, c.title, w, h, parts);
}

function svg(kind: string, title: string, w: number, h: number, parts: string[]): string {
  return (
    `<svg class="chart" data-chart="${esc(kind)}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="${esc(title)}">` +
    `<text x="${w / 2}" y="14" text-anchor="middle" font-size="13" font-weight="bold">${esc(title)}</text>` +
    parts.join('') +
    `</svg>`
  );
}

/** Empirical CDF of samples (step line), p50 / p90 / p99 marked. */
export function cdfChart(c: { kind: string; title: string; unit: string; values: number[] }): string {
  const w = 760;
  const h = 260;
  const s = [...c.values].sort((a, b) => a - b);
  const xTicks = niceTicks(Math.min(0, s[0] ?? 0), Math.max(1, s[s.length - 1] ?? 1), 8);
  const fr: Frame = {
    w,
    h,
    left: 56,
    right: 16,
    top: 28,
    bottom: 40,
    x0: xTicks[0]!,
    x1: xTicks[xTicks.length - 1]!,
    y0: 0,
    y1: 100,
  };
  const parts = [axes(fr, c.unit, '% of samples ≤ x', [0, 25, 50, 75, 100], xTicks)];
  if (s.length) {
    const pts: string[] = [`${f(sx(fr, s[0]!))},${f(sy(fr, 0))}`];
    s.forEach((v, i) => {
      pts.push(`${f(sx(fr, v))},${f(sy(fr, (i / s.length) * 100))}`);
      pts.push(`${f(sx(fr, v))},${f(sy(fr, ((i + 1) / s.length) * 100))}`);
    });
    parts.push(
      `<polyline class="series" data-series="cdf" data-points="${s.length}" points="${pts.join(' ')}" fill="none" stroke="${COLORS[0]}" stroke-width="1.8"/>`,
    );
    for (const [q, label] of [
      [0.5, 'p50'],
      [0.9, 'p90'],
      [0.99, 'p99'],
    ] as const) {
      const v = s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
      const x = f(sx(fr, v));
      parts.push(
        `<g class="marker" data-q="${label}" data-value="${v}"><line x1="${x}" y1="${fr.top}" x2="${x}" y2="${h - fr.bottom}" stroke="#d62728" stroke-dasharray="4 3"/><text x="${x}" y="${fr.top + 12 + (label === 'p90' ? 12 : label === 'p99' ? 24 : 0)}" font-size="11" text-anchor="end">${label} ${fmtTick(v)}</text></g>`,
      );
    }
  } else {
    parts.push(`<text x="${w / 2}" y="${h / 2}" text-anchor="middle" font-size="12">no samples</text>`);
  }
  return svg(c.kind, `${c.title} (${s.length} samples)`, w, h, parts);
}

/**
 * Events on one time axis, one row each in time order: a dot for a moment, a bar for a span, with
 * the time relative to the first event (e.g. kill → marked down → first ack → failback).
 */
export function timelineChart(c: {
  kind: string;
  title: string;
  events: { name: string; t: number; until?: number }[];
}): string {
  const ev = [...c.events].sort((a, b) => a.t - b.t);
  const w = 760;
  const rowH = 24;
  const h = 60 + ev.length * rowH + 30;
  const t0 = ev[0]?.t ?? 0;
  const tEnd = Math.max(t0 + 1, ...ev.map((e) => e.until ?? e.t));
  const xTicks = niceTicks(0, tEnd - t0, 8);
  const fr: Frame = {
    w,
    h,
    left: 250,
    right: 20,
    top: 28,
    bottom: 40,
    x0: 0,
    x1: xTicks[xTicks.length - 1]!,
    y0: 0,
    y1: 1,
  };
  const parts: string[] = [];
  const xb = h - fr.bottom;
  parts.push(`<line class="axis" x1="${fr.left}" y1="${xb}" x2="${w - fr.right}" y2="${xb}" stroke="#333"/>`);
  for (const v of xTicks) {
    const x = f(sx(fr, v));
    parts.push(
      `<line x1="${x}" y1="${fr.top}" x2="${x}" y2="${xb}" stroke="#eee"/>`,
      `<text x="${x}" y="${xb + 16}" text-anchor="middle" font-size="11">${fmtTick(v)}</text>`,
    );
  }
  parts.push(
    `<text x="${(fr.left + w - fr.right) / 2}" y="${h - 6}" text-anchor="middle" font-size="12">s after ${esc(ev[0]?.name ?? 'start')}</text>`,
  );
  ev.forEach((e, i) => {
    const y = fr.top + 8 + i * rowH;
    const xa = sx(fr, e.t - t0);
    const rel = `+${(e.t - t0).toFixed(2)} s`;
    const dur = e.until !== undefined ? `, ${(e.until - e.t).toFixed(1)} s` : '';
    parts.push(
      `<g class="event" data-t="${e.t}"${e.until !== undefined ? ` data-until="${e.until}"` : ''}>`,
      `<text x="${fr.left - 8}" y="${y + 4}" text-anchor="end" font-size="11">${esc(e.name.length > 38 ? e.name.slice(0, 37) + '…' : e.name)}</text>`,
      e.until !== undefined
        ? `<rect x="${f(xa)}" y="${y - 6}" width="${f(Math.max(2, sx(fr, e.until - t0) - xa))}" height="12" fill="#ff7f0e" fill-opacity="0.6"/>`
        : `<circle cx="${f(xa)}" cy="${y}" r="5" fill="#1f77b4"/>`,
      `<text x="${f(Math.min(xa + 8, w - 90))}" y="${y - 8 + (e.until !== undefined ? 0 : 4)}" font-size="10" fill="#444">${esc(rel + dur)}</text>`,
      `<title>${esc(`${e.name}: ${rel}${dur}`)}</title></g>`,
    );
  });
  return svg(c.kind, c.title, w, h, parts);
}

/** Horizontal bars, one per label (e.g. RTO per fault kind: median bar, max tick). */
export function barChart(c: {
  kind: string;
  title: string;
  unit: string;
  bars: { label: string; value: number; max?: number }[];
}): string {
  const w = 760;
  const rowH = 26;
  const h = 60 + c.bars.length * rowH + 20;
  const xTicks = niceTicks(0, Math.max(1, ...c.bars.map((b) => b.max ?? b.value)), 6);
  const fr: Frame = {
    w,
    h,
    left: 180,
    right: 20,
    top: 28,
    bottom: 40,
    x0: 0,
    x1: xTicks[xTicks.length - 1]!,
    y0: 0,
    y1: 1,
  };
  const parts: string[] = [];
  const xb = h - fr.bottom;
  parts.push(`<line class="axis" x1="${fr.left}" y1="${xb}" x2="${w - fr.right}" y2="${xb}" stroke="#333"/>`);
  for (const v of xTicks) {
    const x = f(sx(fr, v));
    parts.push(
      `<line x1="${x}" y1="${fr.top}" x2="${x}" y2="${xb}" stroke="#eee"/>`,
      `<text x="${x}" y="${xb + 16}" text-anchor="middle" font-size="11">${fmtTick(v)}</text>`,
    );
  }
  parts.push(
    `<text x="${(fr.left + w - fr.right) / 2}" y="${h - 6}" text-anchor="middle" font-size="12">${esc(c.unit)}</text>`,
  );
  c.bars.forEach((b, i) => {
    const y = fr.top + 6 + i * rowH;
    const x = sx(fr, b.value);
    parts.push(
      `<g class="bar" data-value="${b.value}"><text x="${fr.left - 8}" y="${y + 9}" text-anchor="end" font-size="11">${esc(b.label)}</text>`,
      `<rect x="${fr.left}" y="${y}" width="${f(Math.max(1, x - fr.left))}" height="14" fill="${COLORS[0]}"/>`,
      b.max !== undefined
        ? `<line x1="${f(sx(fr, b.max))}" y1="${y - 3}" x2="${f(sx(fr, b.max))}" y2="${y + 17}" stroke="#d62728" stroke-width="2"/>`
        : '',
      `<text x="${f(Math.min(x + 4, w - 120))}" y="${y + 11}" font-size="10">${fmtTick(b.value)}${b.max !== undefined ? ` (max ${fmtTick(b.max)})` : ''}</text></g>`,
    );
  });
  return svg(c.kind, c.title, w, h, parts);
}
