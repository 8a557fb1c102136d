// wharf run <runbook>: plan (--check, --diff) or apply a runbook against the inventory's hosts.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { InputError, ReportedFailure } from '../../core/errors.ts';
import { loadInventory, loadTopology } from '../../topology/load.ts';
import { stateDir } from '../../lab/state.ts';
import { RUNBOOKS } from '../../../scripts/index.ts';
import { runRunbookByName } from '../../stack/runbooks.ts';
import type { Inventory } from '../../topology/inventory.ts';
import type { Topology } from '../../topology/model.ts';
import { topologyOption } from '../inputs.ts';
import { type Io, printJson } from '../io.ts';

interface RunCliOptions {
  config: string;
  inventory?: string;
  check?: boolean;
  diff?: boolean;
  only?: string;
  json?: boolean;
  unplanned?: boolean;
}

/** The lab's generated inventory for this stack, when the lab is up. */
export const labInventoryFile = (stack: string): string => join(stateDir(stack), 'inventory.yaml');

export function resolveInventory(t: Topology, file?: string): { file: string; inventory: Inventory } {
  const f = file ?? labInventoryFile(t.name);
  if (!file && !existsSync(f)) {
    throw new InputError(
      `no inventory: pass -i FILE, or start the lab (wharf lab up) to use its inventory ${f}`,
    );
  }
  return { file: f, inventory: loadInventory(f, t) };
}

export function parseOnly(t: Topology, only?: string): string[] | undefined {
  if (!only) return undefined;
  const names = only
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const n of names) {
    if (!t.nodes[n])
      throw new InputError(`--only: node "${n}" does not exist (nodes: ${Object.keys(t.nodes).join(', ')})`);
  }
  return names;
}

export function registerRun(program: Command, io: Io): void {
  const cmd = program
    .command('run')
    .description(`run a runbook (${Object.keys(RUNBOOKS).join(', ')}) against the inventory's hosts`)
    .argument('<runbook>', `one of: ${Object.keys(RUNBOOKS).join(', ')}`)
    .option('-i, --inventory <file>', "inventory (default: the running lab's generated inventory)")
    .option('--check', 'print the plan, change nothing')
    .option('--diff', 'show unified diffs of files (secrets masked)')
    .option('--only <nodes>', 'limit to these nodes (comma-separated)')
    .option('--unplanned', 'failover: main is unreachable (promote sub now)')
    .option('--json', 'print a JSON summary at the end');
  topologyOption(cmd);
  cmd.addHelpText(
    'after',
    `
Every runbook first checks every host (reachable, sudo, Debian 12, disk): one failure, nothing changes.
Files are validated by their daemon's own tool before they replace the old ones; a failed reload or
health check restores the old file. Journal: .wharf/runs/<stack>/. Exit: 0 ok, 1 failed, 2 bad input.`,
  );
  cmd.action(async (name: string, opts: RunCliOptions) => {
    if (!RUNBOOKS[name])
      throw new InputError(`unknown runbook "${name}" (runbooks: ${Object.keys(RUNBOOKS).join(', ')})`);
    const topology = loadTopology(opts.config);
    const { inventory } = resolveInventory(topology, opts.inventory);
    const only = parseOnly(topology, opts.only);
    const res = await runRunbookByName(name, {
      topology,
      inventory,
      ...(only ? { only } : {}),
      check: Boolean(opts.check),
      diff: Boolean(opts.diff),
      log: (l) => io.err(l + '\n'),
      options: { unplanned: opts.unplanned },
    });
    if (opts.json) printJson(io, res);
    else
      io.err(
        `${res.runbook}: ${res.ok ? 'ok' : 'FAILED'}, ${res.changes} change(s)${res.check ? ' planned' : ''} in ${(res.durationMs / 1000).toFixed(1)} s${res.journal ? ` (journal ${res.journal})` : ''}\n`,
      );
    if (!res.ok) {
      if (res.error && !opts.json) io.err(res.error + '\n');
      throw new ReportedFailure(res.error);
    }
  });
}

export { runRunbookByName };
