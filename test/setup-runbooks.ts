// Every test process has the runbooks of scripts/ registered, as bin/wharf.mjs does for the CLI
// (src/ only knows the registry: src/runbook/registry.ts).
import '../scripts/index.ts';
