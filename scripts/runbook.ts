// What every runbook in scripts/ receives and returns. `wharf run <name>` loads the inputs, builds
// this context and calls the runbook; the runbooks stay short because the engine does the rest.
import type { Inventory } from '../src/topology/inventory.ts';
import type { Topology } from '../src/topology/model.ts';
import type { Reporter } from '../src/runbook/progress.ts';
import type { Transport } from '../src/transport/types.ts';

export interface RunbookContext {
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
  /** Extra runbook options (--unplanned, …). */
  options: Record<string, string | boolean | undefined>;
}

export interface RunbookResult {
  runbook: string;
  ok: boolean;
  check: boolean;
  /** Changes planned (--check) or made. */
  changes: number;
  hosts: Record<string, { changes: number; failed?: string }>;
  durationMs: number;
  journal?: string;
  error?: string;
  exitCode: number;
  /** Runbook-specific data (verify's checks and measurements, failover's RPO window…). */
  details?: unknown;
}

export interface Runbook {
  name: string;
  description: string;
  run(ctx: RunbookContext): Promise<RunbookResult>;
}
