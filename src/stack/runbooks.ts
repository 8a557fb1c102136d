// Run a runbook of scripts/ by name with transports made from the inventory (closed after).
import { InputError } from '../core/errors.ts';
import { sshTransports, closeAll } from '../transport/index.ts';
import type { Transport } from '../transport/types.ts';
import type { Reporter } from '../runbook/progress.ts';
import type { Inventory } from '../topology/inventory.ts';
import type { Topology } from '../topology/model.ts';
import { RUNBOOKS } from '../../scripts/index.ts';
import type { RunbookResult } from '../../scripts/runbook.ts';

export async function runRunbookByName(
  name: string,
  o: {
    topology: Topology;
    inventory: Inventory;
    only?: string[];
    check?: boolean;
    diff?: boolean;
    log?: (l: string) => void;
    options?: Record<string, string | boolean | undefined>;
    transports?: Map<string, Transport>;
    reporter?: Reporter;
  },
): Promise<RunbookResult> {
  const rb = RUNBOOKS[name];
  if (!rb) throw new InputError(`unknown runbook "${name}" (runbooks: ${Object.keys(RUNBOOKS).join(', ')})`);
  const own = !o.transports;
  const transports = o.transports ?? (sshTransports(o.inventory, undefined) as Map<string, Transport>);
  try {
    return await rb.run({
      topology: o.topology,
      inventory: o.inventory,
      ...(o.only ? { only: o.only } : {}),
      check: Boolean(o.check),
      diff: Boolean(o.diff),
      transports,
      ...(o.reporter ? { reporter: o.reporter } : {}),
      log: o.log ?? ((l) => process.stderr.write(l + '\n')),
      options: o.options ?? {},
    });
  } finally {
    if (own) await closeAll(transports.values());
  }
}
