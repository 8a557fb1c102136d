// The wharf CLI: one module per command under commands/, errors mapped to exit codes in exit.ts.
import { Command } from 'commander';
import { reportOf, type ExitCode } from './exit.ts';
import { type Io, printJson, processIo } from './io.ts';
import { registerDemo } from './commands/demo.ts';
import { registerDrill } from './commands/drill.ts';
import { registerGraph } from './commands/graph.ts';
import { registerLabCommands } from './commands/lab.ts';
import { registerLoad } from './commands/load.ts';
import { registerRender } from './commands/render.ts';
import { registerReport } from './commands/report.ts';
import { registerRun } from './commands/run.ts';
import { registerSchema } from './commands/schema.ts';
import { registerScenario } from './commands/scenario.ts';
import { registerStatus } from './commands/status.ts';
import { registerValidate } from './commands/validate.ts';
import { registerWatch } from './commands/watch.ts';

const EXIT_CODES_HELP = `
Exit codes: 0 ok, 1 failure, 2 bad input (topology, inventory or command line).`;

export function buildProgram(io: Io = processIo): Command {
  const program = new Command('wharf')
    .description('Runbooks, lab and checks for an HA SFTP ingress stack (router → firewall → HAProxy → SFTP)')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', EXIT_CODES_HELP);
  registerValidate(program, io);
  registerRender(program, io);
  registerGraph(program, io);
  registerSchema(program, io);
  registerLabCommands(program, io);
  registerRun(program, io);
  registerDemo(program, io);
  registerLoad(program, io);
  registerScenario(program, io);
  registerWatch(program, io);
  registerStatus(program, io);
  registerDrill(program, io);
  registerReport(program, io);
  // Every command, including ones added with addCommand(), reports to io and never calls
  // process.exit itself: runCli maps what it throws to an exit code.
  const configure = (cmd: Command) => {
    cmd.exitOverride().configureOutput({
      writeOut: (s) => io.out(s),
      writeErr: (s) => io.err(s),
    });
    cmd.commands.forEach(configure);
  };
  configure(program);
  return program;
}

/** Run the CLI with argv (without node and script); returns the exit code. */
export async function runCli(argv: string[], io: Io = processIo): Promise<ExitCode> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    const { exitCode, problems } = reportOf(err);
    for (const p of problems) io.err(`${p}\n`);
    // --json promises one JSON document on stdout, for failures too.
    if (exitCode !== 0 && problems.length && argv.includes('--json')) {
      printJson(io, { ok: false, exitCode, problems });
    }
    return exitCode;
  }
}
