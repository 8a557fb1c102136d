// The options shared by commands that read a topology (and an inventory) and their loading.
import type { Command } from 'commander';
import { DEFAULT_TOPOLOGY, loadInventory, loadTopology } from '../topology/load.ts';
import { labInventory, type Inventory } from '../topology/inventory.ts';
import type { Topology } from '../topology/model.ts';

export interface InputOptions {
  config: string;
  inventory?: string;
}

export interface Inputs {
  topologyFile: string;
  /** null: no -i given, the lab's addressing plan (subnet + hostId) is used. */
  inventoryFile: string | null;
  topology: Topology;
  inventory: Inventory;
}

export function topologyOption(cmd: Command): Command {
  return cmd.option('-c, --config <file>', 'topology file', DEFAULT_TOPOLOGY);
}

export function inventoryOption(cmd: Command): Command {
  return cmd.option('-i, --inventory <file>', 'inventory file (default: the lab addressing plan)');
}

/** Load and cross-check the topology and the inventory; throws InputError (exit 2) on bad input. */
export function loadInputs(opts: InputOptions): Inputs {
  const topology = loadTopology(opts.config);
  const inventory = opts.inventory ? loadInventory(opts.inventory, topology) : labInventory(topology);
  return { topologyFile: opts.config, inventoryFile: opts.inventory ?? null, topology, inventory };
}
