// wharf status: the stack's live state for an operator (src/status/): the HAProxy nodes' stats
// sockets and the monitor node's Prometheus, both over SSH. Exit 1 when a host did not answer.
import type { Command } from 'commander';
import { ReportedFailure } from '../../core/errors.ts';
import { loadTopology } from '../../topology/load.ts';
import { closeAll, sshTransports } from '../../transport/index.ts';
import type { Transport } from '../../transport/types.ts';
import { collectStatus } from '../../status/collect.ts';
import { formatStatus } from '../../status/model.ts';
import { topologyOption } from '../inputs.ts';
import { type Io, printJson, printLines } from '../io.ts';
import { resolveInventory } from './run.ts';

export function registerStatus(program: Command, io: Io): void {
  const cmd = program
    .command('status')
    .description(
      'live state: active HAProxy, backends, failover, replication lag, last backup, alerts firing',
    )
    .option('-i, --inventory <file>', "inventory (default: the running lab's generated inventory)")
    .option('--json', 'one JSON document');
  topologyOption(cmd);
  cmd.addHelpText(
    'after',
    `
Asks every HAProxy node's stats socket (show stat; the needs-reconcile mark and a failover record)
and, when the inventory names a monitor node, its Prometheus (127.0.0.1:9090 there: wharf's metrics,
keepalived's MASTER, alerts), all over SSH. Exit: 0 every host answered (alerts may be firing: see
the output), 1 a host did not answer (named), 2 bad input.`,
  );
  cmd.action(async (o: { config: string; inventory?: string; json?: boolean }) => {
    const t = loadTopology(o.config);
    const { inventory } = resolveInventory(t, o.inventory);
    const transports = sshTransports(inventory, undefined) as Map<string, Transport>;
    try {
      const s = await collectStatus(t, inventory, transports);
      if (o.json) printJson(io, s);
      else printLines(io, formatStatus(s, t));
      if (!s.reachable) {
        const what = s.unreachable
          .map((u) => (u.error.startsWith(`${u.node}:`) ? u.error : `${u.node}: ${u.error}`))
          .join('; ');
        if (!o.json) io.err(`status: unreachable: ${what}\n`);
        throw new ReportedFailure(`status: unreachable: ${what}`);
      }
    } finally {
      await closeAll(transports.values());
    }
  });
}
