// wharf run <runbook>: plan (--check, --diff) or apply a runbook against the inventory's hosts.
// One sub-command per registered runbook, its flags made from the runbook's options schema.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { InputError, ReportedFailure } from '../../core/errors.ts';
import { loadInventory, loadTopology } from '../../topology/load.ts';
import { stateDir } from '../../lab/state.ts';
import {
  getRunbook,
  listRunbooks,
  parseRunbookOptions,
  runbookNames,
  type Runbook,
  type RunbookResult,
} from '../../runbook/registry.ts';
import { optionFlags } from '../../runbook/options.ts';
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

const COMMON_HELP = `
Every runbook is a plan of steps (id, host, action, why, guard, undo): --check prints it (--json:
{runbook, steps, changes}), applying runs the same steps under a per-stack lock, journalled by id in
.wharf/runs/<stack>/. A failed step stops the run and the completed steps are undone in reverse; a
failed undo is reported as a failed step. Exit: 0 ok, 1 failed, 2 bad input.`;

/** Plain lines for a failed run: every failed step and failed undo, with host and error. Pure. */
export function failureLines(res: RunbookResult): string[] {
  return res.steps
    .filter((s) => s.result === 'failed')
    .map((s) =>
      s.undoes
        ? `failed undo ${s.id} on ${s.host}: ran ${s.undo?.commands.join('; ') ?? '?'}: ${s.error ?? ''}`
        : `failed step ${s.id} on ${s.host}: ${s.error ?? ''}`,
    );
}

function registerRunbookCommand(run: Command, rb: Runbook, io: Io): void {
  const cmd = run
    .command(rb.name)
    .description(rb.description)
    .option('-i, --inventory <file>', "inventory (default: the running lab's generated inventory)")
    .option('--check', 'print the plan (steps), change nothing')
    .option('--json', 'print a JSON summary at the end (with --check: the plan)');
  if (rb.honours?.diff) cmd.option('--diff', 'show unified diffs of files (secrets masked)');
  if (rb.honours?.only) cmd.option('--only <nodes>', 'limit to these nodes (comma-separated)');
  topologyOption(cmd);
  const flags = optionFlags(rb.options);
  for (const f of flags)
    cmd.option(
      f.metavar ? `${f.flag} <${f.metavar}>` : f.flag,
      f.description + (f.default ? ` (default ${f.default})` : ''),
    );
  cmd.addHelpText('after', COMMON_HELP);
  cmd.action(async (opts: RunCliOptions & Record<string, unknown>) => {
    const raw = Object.fromEntries(
      flags.filter((f) => opts[f.key] !== undefined).map((f) => [f.key, opts[f.key]]),
    );
    const options = parseRunbookOptions(rb, raw);
    const topology = loadTopology(opts.config);
    const { inventory } = resolveInventory(topology, opts.inventory);
    const only = parseOnly(topology, opts.only);
    const res = await runRunbookByName(rb.name, {
      topology,
      inventory,
      ...(only ? { only } : {}),
      check: Boolean(opts.check),
      diff: Boolean(opts.diff),
      log: (l) => io.err(l + '\n'),
      options,
    });
    if (opts.json)
      printJson(
        io,
        res.check
          ? {
              runbook: res.runbook,
              steps: res.steps,
              changes: res.changes,
              ok: res.ok,
              check: true,
              ...(res.details !== undefined ? { details: res.details } : {}),
              ...(res.error ? { error: res.error } : {}),
            }
          : res,
      );
    else {
      io.err(
        `${res.runbook}: ${res.ok ? 'ok' : 'FAILED'}, ${res.changes} change(s)${res.check ? ' planned' : ''} in ${(res.durationMs / 1000).toFixed(1)} s${res.journal ? ` (journal ${res.journal})` : ''}\n`,
      );
      if (!res.ok) {
        const lines = failureLines(res);
        io.err((lines.length ? lines.join('\n') : (res.error ?? 'failed')) + '\n');
      }
    }
    if (!res.ok) throw new ReportedFailure(res.error);
  });
}

export function registerRun(program: Command, io: Io): void {
  const names = runbookNames();
  const run = program
    .command('run')
    .description(`run a runbook (${names.join(', ') || 'none registered'}) against the inventory's hosts`)
    .argument('[runbook]', `one of: ${names.join(', ')}`)
    .allowUnknownOption()
    .allowExcessArguments();
  run.addHelpText('after', COMMON_HELP + `\nPer runbook: wharf run <runbook> --help`);
  for (const rb of listRunbooks()) registerRunbookCommand(run, rb, io);
  // not a registered runbook's name: say which exist (exit 2); none registered: say why (exit 1)
  run.action((name?: string) => {
    if (!name) {
      run.outputHelp();
      throw new InputError('run: which runbook? (wharf run <runbook>)');
    }
    getRunbook(name);
    throw new InputError(`unknown runbook "${name}" (runbooks: ${runbookNames().join(', ')})`);
  });
}

export { runRunbookByName };
