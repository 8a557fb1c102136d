// One duration parser for the whole tool: CLI flags (`--drain-timeout 30s`) and topology fields
// (HAProxy's `inter: 1s`, where a bare number is milliseconds, as in HAProxy itself).
import { InputError } from './errors.ts';

const UNITS: Record<string, number> = {
  us: 0.001,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

export interface DurationOptions {
  /** Named in the error (a flag such as `--drain-timeout`, or a field path). */
  label?: string;
  /** Accept a bare number as milliseconds (HAProxy style). Default false: a unit is required. */
  bareMs?: boolean;
  /** Smallest accepted value in ms (default 1 without bareMs, 0 with it). */
  minMs?: number;
}

/** "30s", "2m", "500ms", "1.5h" → milliseconds; bad text → InputError naming `label`. */
export function parseDuration(text: string, o: DurationOptions | string = {}): number {
  const opts: DurationOptions = typeof o === 'string' ? { label: o } : o;
  const label = opts.label ?? '--duration';
  const m = /^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|m|h|d)?\s*$/.exec(String(text));
  // flags take ms, s, m, h; topology fields (HAProxy's syntax) also us and d, and bare ms
  const unit = m?.[2] ?? (opts.bareMs ? 'ms' : undefined);
  const allowed = opts.bareMs || (unit !== 'us' && unit !== 'd');
  const ms = m && unit && allowed ? Number(m[1]) * UNITS[unit]! : NaN;
  const min = opts.minMs ?? (opts.bareMs ? 0 : 1);
  if (!Number.isFinite(ms) || ms < min) {
    throw new InputError(`${label}: expected a duration like 500ms, 30s, 2m, 1h, got "${text}"`);
  }
  return opts.bareMs ? ms : Math.round(ms);
}
