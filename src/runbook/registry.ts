// The runbook type and the registry `wharf run` reads. Runbooks live in scripts/ and register
// themselves there (scripts/index.ts); src/ never imports them. Each runbook declares its options
// as a zod object: the CLI turns its fields into flags (see src/cli/commands/run.ts).
import { z } from 'zod';
import { InputError, RunError } from '../core/errors.ts';
import type { Inventory } from '../topology/inventory.ts';
import type { Topology } from '../topology/model.ts';
import type { Transport } from '../transport/types.ts';
import type { Reporter } from './progress.ts';
import type { StepSummary } from './steps.ts';

export interface RunbookContext<O = Record<string, unknown>> {
  topology: Topology;
  inventory: Inventory;
  /** Limit to these nodes (--only). */
  only?: string[];
  check: boolean;
  diff: boolean;
  /** Runs folder (lock + journal); default .wharf/runs. */
  runsDir?: string;
  reporter?: Reporter;
  /** Transports per node (made from the inventory unless a caller passes its own). */
  transports: Map<string, Transport>;
  log: (line: string) => void;
  /** The runbook's own options, parsed by its schema. */
  options: O;
}

export interface RunbookResult {
  runbook: string;
  ok: boolean;
  check: boolean;
  /** Steps planned (--check) or made. */
  changes: number;
  /** The plan's steps; after a run each carries its result. */
  steps: StepSummary[];
  hosts: Record<string, { changes: number; failed?: string }>;
  durationMs: number;
  journal?: string;
  error?: string;
  exitCode: number;
  /** Runbook-specific data (verify's checks, failover's RPO window…). */
  details?: unknown;
}

export type OptionsSchema = z.ZodObject<Record<string, z.ZodType>>;

export interface Runbook<S extends OptionsSchema = OptionsSchema> {
  name: string;
  description: string;
  /** The runbook's options; every field becomes a CLI flag (camelCase → --kebab-case). */
  options: S;
  /**
   * The common flags it honours beyond -i/-c/--check/--json: `only` (--only NODE,…: it limits
   * itself to those nodes), `diff` (--diff: its plan has file diffs). A runbook that would ignore
   * one does not get the flag, so passing it is an error (exit 2), never silently ignored.
   */
  honours?: { only?: boolean; diff?: boolean };
  run(ctx: RunbookContext<z.output<S>>): Promise<RunbookResult>;
}

/** Identity with types: `defineRunbook({ name, description, options: z.object({…}), run })`. */
export function defineRunbook<S extends OptionsSchema>(rb: Runbook<S>): Runbook<S> {
  return rb;
}

const registry = new Map<string, Runbook>();

export function registerRunbook<S extends OptionsSchema>(rb: Runbook<S>): void {
  const had = registry.get(rb.name);
  if (had && had !== (rb as unknown as Runbook)) throw new RunError(`runbook "${rb.name}" registered twice`);
  registry.set(rb.name, rb as unknown as Runbook);
}

export function runbookNames(): string[] {
  return [...registry.keys()];
}

export function listRunbooks(): Runbook[] {
  return [...registry.values()];
}

/** A registered runbook, or a clear error (unknown name, or none registered at all). */
export function getRunbook(name: string): Runbook {
  if (registry.size === 0)
    throw new RunError(
      'no runbooks registered: load scripts/index.ts first (bin/wharf.mjs does; tests and scripts import it)',
    );
  const rb = registry.get(name);
  if (!rb) throw new InputError(`unknown runbook "${name}" (runbooks: ${runbookNames().join(', ')})`);
  return rb;
}

/** Parse raw options (from flags or a caller) with the runbook's schema; problems name the flag. */
export function parseRunbookOptions<S extends OptionsSchema>(rb: Runbook<S>, raw: unknown): z.output<S> {
  const shape = rb.options.shape;
  const given = (raw ?? {}) as Record<string, unknown>;
  const unknown = Object.keys(given).filter((k) => given[k] !== undefined && !(k in shape));
  const problems = unknown.map((k) => `${flagName(k)}: not an option of runbook ${rb.name}`);
  const r = rb.options.safeParse(given);
  if (!r.success)
    for (const i of r.error.issues)
      problems.push(`${i.path.length ? flagName(String(i.path[0])) : rb.name}: ${i.message}`);
  if (problems.length) throw new InputError(problems.join('; '), problems);
  return r.data as z.output<S>;
}

export const flagName = (key: string): string => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
