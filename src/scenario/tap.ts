// Flat TAP 13 (tap-junit keeps only the top level) from check results. Pure.
import type { CheckResult, Metric } from './types.ts';

const clean = (s: string) => s.replace(/[\r\n#]+/g, ' ').trim();

export function toTap(results: CheckResult[], metrics: Record<string, Metric[]> = {}): string {
  const lines = ['TAP version 13', `1..${results.length}`];
  results.forEach((r, i) => {
    const title = `${r.scenario}: ${clean(r.name)}${r.detail ? ` (${clean(r.detail)})` : ''}`;
    lines.push(`${r.ok ? 'ok' : 'not ok'} ${i + 1} - ${title}`);
    if (!r.ok) {
      lines.push('  ---', `  message: ${JSON.stringify(r.detail ?? r.name)}`, '  ...');
    }
  });
  for (const [scenario, ms] of Object.entries(metrics)) {
    for (const m of ms) lines.push(`# metric ${scenario} ${m.name}=${m.value} ${m.unit}`);
  }
  return lines.join('\n') + '\n';
}
