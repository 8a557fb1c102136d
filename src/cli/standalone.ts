// A runbook file of scripts/ run on its own (`./scripts/failover.ts --unplanned -i inv.yaml`) does
// exactly what `wharf run failover --unplanned -i inv.yaml` does.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** When `moduleUrl` is the program being run (not imported), run `wharf run <name> …argv` and exit. */
export async function runAsScript(moduleUrl: string, name: string): Promise<void> {
  const main = process.argv[1];
  if (!main || resolve(main) !== fileURLToPath(moduleUrl)) return;
  const { runCli } = await import('./program.ts');
  process.exitCode = await runCli(['run', name, ...process.argv.slice(2)]);
}
