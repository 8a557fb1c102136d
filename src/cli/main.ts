// Entry point (bin/wharf.mjs → tsx → here).
import { runCli } from './program.ts';

process.exitCode = await runCli(process.argv.slice(2));
