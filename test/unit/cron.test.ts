// cronToOnCalendar: the systemd timer must fire exactly when cron would. Cross-checked against
// systemd's own calendar parser (`systemd-analyze calendar --base-time`) and an independent
// brute-force cron matcher written here.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { cronToOnCalendar, parseCron } from '../../src/topology/cron.ts';

/** A deliberately naive cron matcher (cron(8) semantics), independent of src/topology/cron.ts. */
function cronMatches(expr: string, d: Date): boolean {
  const names: Record<string, string[]> = {
    3: ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'],
    4: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'],
  };
  const bounds = [
    [0, 59],
    [0, 23],
    [1, 31],
    [1, 12],
    [0, 7],
  ] as const;
  const num = (i: number, s: string) => {
    const k = names[i]?.indexOf(s.toLowerCase()) ?? -1;
    return k >= 0 ? k + (i === 3 ? 1 : 0) : Number(s);
  };
  const fieldMatches = (i: number, field: string, v: number) =>
    field.split(',').some((item) => {
      const [range, step = '1'] = item.split('/');
      const [lo, hi] =
        range === '*'
          ? bounds[i]!
          : range!.includes('-')
            ? range!.split('-').map((x) => num(i, x))
            : [num(i, range!), item.includes('/') ? bounds[i]![1] : num(i, range!)];
      for (let x = lo!; x <= hi!; x += Number(step))
        if (x === v || (i === 4 && x === 7 && v === 0)) return true;
      return false;
    });
  const f = expr.trim().split(/\s+/);
  const dom = f[2]!;
  const dow = f[4]!;
  const values = [d.getUTCMinutes(), d.getUTCHours(), d.getUTCDate(), d.getUTCMonth() + 1, d.getUTCDay()];
  const ok = (i: number) => fieldMatches(i, f[i]!, values[i]!);
  if (!ok(0) || !ok(1) || !ok(3)) return false;
  // cron(8): when both day fields are restricted, either one matching is enough.
  if (!dom.startsWith('*') && !dow.startsWith('*')) return ok(2) || ok(4);
  return ok(2) && ok(4);
}

const BASE = Date.UTC(2026, 0, 1, 0, 0); // Thu 2026-01-01 00:00 UTC

function cronNext(expr: string, n: number): string[] {
  const out: string[] = [];
  // Day by day (a day with no match at 00:00..23:59 is skipped quickly), for up to 20 years.
  for (let day = BASE; out.length < n && day < BASE + 20 * 366 * 86_400_000; day += 86_400_000) {
    if (!dayOk(expr, new Date(day))) continue;
    for (let t = day; t < day + 86_400_000 && out.length < n; t += 60_000) {
      if (t > BASE && cronMatches(expr, new Date(t)))
        out.push(new Date(t).toISOString().slice(0, 16).replace('T', ' '));
    }
  }
  return out;
}

/** Could the expression fire on this day at all? (cronMatches with minute and hour ignored.) */
function dayOk(expr: string, d: Date): boolean {
  const f = expr.trim().split(/\s+/);
  return cronMatches(['*', '*', ...f.slice(2)].join(' '), d);
}

function systemdNext(onCalendar: string, n: number): string[] {
  const text = execFileSync(
    'systemd-analyze',
    ['calendar', `--base-time=@${BASE / 1000}`, `--iterations=${n}`, onCalendar],
    { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } },
  );
  return [...text.matchAll(/(?:Next elapse|Iter\. #\d+): \w+ (\d{4}-\d\d-\d\d \d\d:\d\d):00 UTC/g)].map(
    (m) => m[1]!,
  );
}

describe('cronToOnCalendar', () => {
  it.each([
    ['*/15 * * * *', '*-*-* *:00,15,30,45:00'],
    ['0 3 * * *', '*-*-* 03:00:00'],
    ['30 2 * * 1-5', 'Mon,Tue,Wed,Thu,Fri *-*-* 02:30:00'],
    ['0 0 1 */3 *', '*-01,04,07,10-01 00:00:00'],
    ['5,35 8-18/2 * * sun', 'Sun *-*-* 08,10,12,14,16,18:05,35:00'],
    ['0 12 * jan,jul 0,7', 'Sun *-01,07-* 12:00:00'],
  ])('%s → %s', (cron, expected) => {
    expect(cronToOnCalendar(cron)).toBe(expected);
  });

  it.each([
    '* * *',
    '60 * * * *',
    '* 24 * * *',
    '* * 0 * *',
    '* * * 13 *',
    '* * * * 8',
    '1-2-3 * * * *',
    'x * * * *',
  ])('rejects %j', (cron) => expect(() => parseCron(cron)).toThrow());

  // systemd-analyze comes with systemd (scripts/setup-host.sh installs it): absent, this fails loudly.
  describe('fires when cron would (systemd-analyze calendar)', () => {
    it.each([
      '*/15 * * * *',
      '0 3 * * *',
      '30 2 * * 1-5',
      '0 0 1 */3 *',
      '5,35 8-18/2 * * sun',
      '0 12 * jan,jul 0,7',
      '45 23 28-31 2 *',
      '*/20 1/6 * * 6',
    ])('%s', (cron) => {
      const onCalendar = cronToOnCalendar(cron);
      expect(systemdNext(onCalendar, 12)).toEqual(cronNext(cron, 12));
    });
  });
});
