// Runbook options as zod fields that know how to be CLI flags: `booleanOption` → `--name`,
// `durationOption` → `--name DURATION` (parsed by the one duration parser, into milliseconds).
import { z } from 'zod';
import { parseDuration } from '../core/duration.ts';
import { flagName, type OptionsSchema } from './registry.ts';

interface FlagMeta {
  description?: string;
  /** Takes a value (shown in help as `--flag <METAVAR>`); absent: a switch. */
  metavar?: string;
  default?: string;
}

export function booleanOption(description: string) {
  return z
    .boolean()
    .default(false)
    .meta({ description } satisfies FlagMeta);
}

/** A flag that takes a text value (`--name VALUE`); required unless a default is given. */
export function stringOption(metavar: string, description: string, def?: string) {
  const base = z.string({ error: (i) => (i.input === undefined ? 'required' : 'expected a text value') });
  return (def === undefined ? base : base.default(def)).meta({
    description,
    metavar,
    ...(def !== undefined ? { default: def } : {}),
  } satisfies FlagMeta);
}

/** A duration flag: text like 30s or 2m in, milliseconds out. */
export function durationOption(
  def: string,
  description: string,
  bounds: { minMs?: number; maxMs?: number; range?: string } = {},
) {
  return z
    .union([z.string(), z.number()])
    .optional()
    .transform((v, ctx) => {
      let ms: number;
      if (typeof v === 'number') ms = v;
      else
        try {
          ms = parseDuration(v ?? def, { label: 'duration' });
        } catch {
          ctx.addIssue({
            code: 'custom',
            message: `expected a duration like 500ms, 30s, 2m, 1h, got "${v}"`,
          });
          return z.NEVER;
        }
      if (
        (bounds.minMs !== undefined && ms < bounds.minMs) ||
        (bounds.maxMs !== undefined && ms > bounds.maxMs)
      ) {
        ctx.addIssue({
          code: 'custom',
          message: `expected ${bounds.range ?? 'a duration in range'}, got "${v}"`,
        });
        return z.NEVER;
      }
      return ms;
    })
    .meta({ description, metavar: 'DURATION', default: def } satisfies FlagMeta);
}

export interface FlagSpec {
  key: string;
  flag: string;
  metavar?: string;
  description: string;
  default?: string;
}

/** The flags of a runbook's options schema. Pure. */
export function optionFlags(schema: OptionsSchema): FlagSpec[] {
  return Object.entries(schema.shape).map(([key, s]) => {
    const m = (s.meta() ?? {}) as FlagMeta;
    return {
      key,
      flag: flagName(key),
      description: m.description ?? key,
      ...(m.metavar ? { metavar: m.metavar } : {}),
      ...(m.default ? { default: m.default } : {}),
    };
  });
}
