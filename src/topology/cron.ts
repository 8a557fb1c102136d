// A small parser for 5-field cron schedules and their systemd OnCalendar= equivalent. Pure.

interface FieldSpec {
  name: string;
  min: number;
  max: number;
  names?: string[];
}

const FIELDS: FieldSpec[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day-of-month', min: 1, max: 31 },
  {
    name: 'month',
    min: 1,
    max: 12,
    names: ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'],
  },
  { name: 'day-of-week', min: 0, max: 7, names: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] },
];

const DOW = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

interface Part {
  from: number | '*';
  to?: number;
  step?: number;
}

export interface CronSchedule {
  fields: Part[][];
}

function value(spec: FieldSpec, s: string): number {
  const idx = spec.names?.indexOf(s.toLowerCase()) ?? -1;
  if (idx >= 0) return idx + (spec.name === 'month' ? 1 : 0);
  if (!/^\d+$/.test(s)) throw new Error(`${spec.name}: "${s}" is not a number`);
  const n = Number(s);
  if (n < spec.min || n > spec.max) throw new Error(`${spec.name}: ${n} is outside ${spec.min}..${spec.max}`);
  return n;
}

/** Parse a cron expression; throws with a message naming the bad field. */
export function parseCron(expr: string): CronSchedule {
  const raw = expr.trim().split(/\s+/);
  if (raw.length !== 5) {
    throw new Error(`expected 5 cron fields (minute hour day-of-month month day-of-week), got ${raw.length}`);
  }
  const fields = raw.map((f, i) => {
    const spec = FIELDS[i]!;
    return f.split(',').map((item): Part => {
      const m = /^([^/]+)(?:\/(\d+))?$/.exec(item);
      if (!m) throw new Error(`${spec.name}: cannot parse "${item}"`);
      const [, range, stepS] = m;
      const step = stepS !== undefined ? Number(stepS) : undefined;
      if (step !== undefined && step < 1) throw new Error(`${spec.name}: step must be ≥ 1`);
      if (range === '*') return { from: '*', ...(step ? { step } : {}) };
      const [a, b, ...rest] = range!.split('-');
      if (rest.length) throw new Error(`${spec.name}: cannot parse "${item}"`);
      const from = value(spec, a!);
      if (b === undefined) {
        if (step !== undefined) return { from, to: spec.max, step };
        return { from };
      }
      const to = value(spec, b);
      if (to < from) throw new Error(`${spec.name}: range ${from}-${to} is reversed`);
      return { from, to, ...(step ? { step } : {}) };
    });
  });
  return { fields };
}

function numbers(parts: Part[], spec: FieldSpec): number[] {
  const out = new Set<number>();
  for (const p of parts) {
    const from = p.from === '*' ? spec.min : p.from;
    const to = p.from === '*' ? spec.max : (p.to ?? p.from);
    for (let v = from; v <= to; v += p.step ?? 1) out.add(v);
  }
  return [...out].sort((a, b) => a - b);
}

function calField(parts: Part[], spec: FieldSpec, pad: number): string {
  if (parts.length === 1 && parts[0]!.from === '*' && !parts[0]!.step) return '*';
  return numbers(parts, spec)
    .map((n) => String(n).padStart(pad, '0'))
    .join(',');
}

/** systemd OnCalendar= expression equivalent to a cron schedule. */
export function cronToOnCalendar(expr: string): string {
  const { fields } = parseCron(expr);
  const [min, hour, dom, month, dow] = fields as [Part[], Part[], Part[], Part[], Part[]];
  const dowAll = dow.length === 1 && dow[0]!.from === '*' && !dow[0]!.step;
  // cron(8) fires when EITHER restricted day field matches; OnCalendar= needs both: refuse.
  if (dom[0]!.from !== '*' && dow[0]!.from !== '*') {
    throw new Error('day-of-month and day-of-week both restricted: cron ORs them, systemd would AND them');
  }
  const dowPart = dowAll ? '' : [...new Set(numbers(dow, FIELDS[4]!).map((d) => DOW[d]!))].join(',') + ' ';
  return `${dowPart}*-${calField(month, FIELDS[3]!, 2)}-${calField(dom, FIELDS[2]!, 2)} ${calField(hour, FIELDS[1]!, 2)}:${calField(min, FIELDS[0]!, 2)}:00`;
}

/**
 * The longest gap between two consecutive runs of a schedule, in seconds (one "schedule period" of
 * a backup-age alert). Walks 4 weeks minute by minute from a Monday in UTC; month and
 * day-of-month restrictions beyond that window are ignored (a monthly job reports 4 weeks).
 */
export function cronMaxGapSeconds(expr: string): number {
  const { fields } = parseCron(expr);
  const [min, hour, dom, , dow] = fields as [Part[], Part[], Part[], Part[], Part[]];
  const mins = new Set(numbers(min, FIELDS[0]!));
  const hours = new Set(numbers(hour, FIELDS[1]!));
  const doms = new Set(numbers(dom, FIELDS[2]!));
  const dows = new Set(numbers(dow, FIELDS[4]!).map((d) => d % 7));
  const domAll = dom[0]!.from === '*' && !dom[0]!.step;
  const dowAll = dow[0]!.from === '*' && !dow[0]!.step;
  const start = Date.UTC(2024, 0, 1); // a Monday
  const span = 28 * 24 * 60;
  const hits: number[] = [];
  for (let i = 0; i < span; i++) {
    const d = new Date(start + i * 60_000);
    if (!mins.has(d.getUTCMinutes()) || !hours.has(d.getUTCHours())) continue;
    const dayOk =
      domAll && dowAll
        ? true
        : domAll
          ? dows.has(d.getUTCDay())
          : dowAll
            ? doms.has(d.getUTCDate())
            : doms.has(d.getUTCDate()) || dows.has(d.getUTCDay());
    if (dayOk) hits.push(i);
  }
  if (hits.length === 0) return span * 60;
  let gap = hits[0]! + span - hits[hits.length - 1]!; // wrap around the window
  for (let i = 1; i < hits.length; i++) gap = Math.max(gap, hits[i]! - hits[i - 1]!);
  return gap * 60;
}
