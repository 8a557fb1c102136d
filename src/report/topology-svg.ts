// The topology drawn as inline SVG from graph.ts's format-neutral model (the same graph `wharf
// graph` prints as Mermaid): nodes in columns by their distance from the internet, edges as curves
// with their labels. Pure: GraphModel → SVG text; nothing to fetch or run at view time.
import type { GraphModel } from '../graph.ts';
import { esc } from './svg.ts';

/** Column of each node: the longest path from a node without incoming edges (cycles are cut). */
export function layerOf(g: GraphModel): Map<string, number> {
  const rank = new Map(g.nodes.map((n) => [n.id, 0]));
  const known = (id: string) => rank.has(id);
  for (let pass = 0; pass < g.nodes.length; pass++) {
    let changed = false;
    for (const e of g.edges) {
      if (!known(e.from) || !known(e.to) || e.from === e.to) continue;
      const want = rank.get(e.from)! + 1;
      if (want > rank.get(e.to)! && want < g.nodes.length) {
        rank.set(e.to, want);
        changed = true;
      }
    }
    if (!changed) break;
  }
  return rank;
}

const labelLines = (label: string) =>
  label
    .split(/<br\s*\/?>/i)
    .map((l) => l.replace(/<[^>]+>/g, '').trim())
    .filter(Boolean);

export function topologySvg(g: GraphModel): string {
  const rank = layerOf(g);
  const cols = new Map<number, string[]>();
  for (const n of g.nodes) cols.set(rank.get(n.id)!, [...(cols.get(rank.get(n.id)!) ?? []), n.id]);
  const colW = 190;
  const boxW = 150;
  const rowH = 84;
  const boxH = 44;
  const maxRows = Math.max(1, ...[...cols.values()].map((c) => c.length));
  const w = Math.max(1, cols.size) * colW + 20;
  const h = maxRows * rowH + 40;
  const pos = new Map<string, { x: number; y: number }>();
  [...cols.keys()]
    .sort((a, b) => a - b)
    .forEach((c, ci) => {
      const ids = cols.get(c)!;
      const off = ((maxRows - ids.length) * rowH) / 2;
      ids.forEach((id, i) => pos.set(id, { x: 10 + ci * colW, y: 30 + off + i * rowH }));
    });
  const parts: string[] = [
    `<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>`,
  ];
  // groups: a dashed frame around their members
  for (const grp of g.groups) {
    const ps = g.nodes.filter((n) => n.group === grp.id).map((n) => pos.get(n.id)!);
    if (!ps.length) continue;
    const x0 = Math.min(...ps.map((p) => p.x)) - 8;
    const y0 = Math.min(...ps.map((p) => p.y)) - 20;
    const x1 = Math.max(...ps.map((p) => p.x)) + boxW + 8;
    const y1 = Math.max(...ps.map((p) => p.y)) + boxH + 8;
    parts.push(
      `<g class="group" data-group="${esc(grp.id)}"><rect x="${x0}" y="${y0}" width="${x1 - x0}" height="${y1 - y0}" rx="8" fill="#f4f7fb" stroke="#8aa" stroke-dasharray="5 4"/>` +
        `<text x="${x0 + 6}" y="${y0 + 13}" font-size="10" fill="#456">${esc(grp.label)}</text></g>`,
    );
  }
  for (const e of g.edges) {
    const a = pos.get(e.from);
    const b = pos.get(e.to);
    if (!a || !b) continue;
    const forward = b.x > a.x;
    const x1 = forward ? a.x + boxW : a.x + boxW / 2;
    const y1 = forward ? a.y + boxH / 2 : a.y + boxH;
    const x2 = forward ? b.x : b.x + boxW / 2;
    const y2 = forward ? b.y + boxH / 2 : b.y;
    const d = forward
      ? `M${x1},${y1} C${x1 + 40},${y1} ${x2 - 40},${y2} ${x2},${y2}`
      : `M${x1},${y1} C${x1},${y1 + 30} ${x2},${y2 - 30} ${x2},${y2}`;
    const dash = e.style === 'dashed' ? ' stroke-dasharray="5 4"' : '';
    const width = e.style === 'thick' ? 2.6 : 1.3;
    parts.push(
      `<g class="edge" data-from="${esc(e.from)}" data-to="${esc(e.to)}"><path d="${d}" fill="none" stroke="#555" stroke-width="${width}"${dash} marker-end="url(#arrow)"/>` +
        (e.label
          ? `<text x="${(x1 + x2) / 2}" y="${(y1 + y2) / 2 - 4}" font-size="9" fill="#333" text-anchor="middle">${esc(e.label.length > 40 ? e.label.slice(0, 39) + '…' : e.label)}</text><title>${esc(e.label)}</title>`
          : '') +
        `</g>`,
    );
  }
  for (const n of g.nodes) {
    const p = pos.get(n.id)!;
    const lines = labelLines(n.label);
    const shape =
      n.shape === 'circle'
        ? `<ellipse cx="${p.x + boxW / 2}" cy="${p.y + boxH / 2}" rx="${boxW / 2}" ry="${boxH / 2}" fill="#fff" stroke="#333"/>`
        : n.shape === 'cylinder'
          ? `<rect x="${p.x}" y="${p.y}" width="${boxW}" height="${boxH}" rx="14" fill="#eef6ee" stroke="#363"/>`
          : `<rect x="${p.x}" y="${p.y}" width="${boxW}" height="${boxH}" rx="${n.shape === 'round' ? 10 : 2}" fill="#fff" stroke="#333"/>`;
    parts.push(
      `<g class="node" data-node="${esc(n.id)}">${shape}` +
        lines
          .slice(0, 3)
          .map(
            (l, i) =>
              `<text x="${p.x + boxW / 2}" y="${p.y + boxH / 2 + (i - (Math.min(lines.length, 3) - 1) / 2) * 13 + 4}" font-size="11" text-anchor="middle">${esc(l.length > 26 ? l.slice(0, 25) + '…' : l)}</text>`,
          )
          .join('') +
        `<title>${esc(lines.join(' · '))}</title></g>`,
    );
  }
  return `<svg class="topology" data-chart="topology" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="topology">${parts.join('')}</svg>`;
}
