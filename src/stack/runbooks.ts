// Run a registered runbook by name with transports made from the inventory (closed after).
// The runbooks register themselves (scripts/index.ts); this module only reads the registry.
import { sshTransports, closeAll } from '../transport/index.ts';
import type { Transport } from '../transport/types.ts';
import type { Reporter } from '../runbook/progress.ts';
import { getRunbook, parseRunbookOptions, type RunbookResult } from '../runbook/registry.ts';
import type { Inventory } from '../topology/inventory.ts';
import type { Topology } from '../topology/model.ts';

export async function runRunbookByName(
  name: string,
  o: {
    topology: Topology;
    inventory: Inventory;
    only?: string[];
    check?: boolean;
    diff?: boolean;
    log?: (l: string) => void;
    /** The runbook's options (checked by its schema: unknown or malformed → InputError). */
    options?: Record<string, unknown>;
    transports?: Map<string, Transport>;
    reporter?: Reporter;
    runsDir?: string;
  },
): Promise<RunbookResult> {
  const rb = getRunbook(name);
  const options = parseRunbookOptions(rb, o.options ?? {});
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
      ...(o.runsDir ? { runsDir: o.runsDir } : {}),
      log: o.log ?? ((l) => process.stderr.write(l + '\n')),
      options,
    });
  } finally {
    if (own) await closeAll(transports.values());
  }
}
