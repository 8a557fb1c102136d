// wharf demo: what the README's first command runs — validate the default topology, render every
// node's files into out/, bring the lab up and provision the stack on it through the runbooks
// (install → configure → verify), then show how to use it.
import type { Command } from 'commander';
import { inventoryOption, loadInputs, topologyOption, type InputOptions } from '../inputs.ts';
import { type Io, printLines } from '../io.ts';
import { renderToDir } from './render.ts';
import { summarize, summaryLines } from './validate.ts';
import { manifestLines } from '../write-render.ts';
import { renderGraph } from '../../graph.ts';
import { endpointLines, labStatus, labUp } from '../../lab/lab.ts';
import { provisionLab, sftpKnownHostsFile } from '../../lab/provision.ts';

export function registerDemo(program: Command, io: Io): void {
  const cmd = program
    .command('demo')
    .description(
      'validate, render into out/, bring the lab up and provision the stack on it (the README demo)',
    )
    .option('-o, --out <dir>', 'output folder', 'out')
    .option('--no-lab', 'stop after validate + render + graph');
  topologyOption(cmd);
  inventoryOption(cmd);
  cmd.action(async (opts: InputOptions & { out: string; lab: boolean }) => {
    const inputs = loadInputs(opts);
    printLines(io, ['── validate', ...summaryLines(summarize(inputs))]);
    printLines(io, ['', `── render → ${opts.out}/`, ...manifestLines(renderToDir(opts))]);
    printLines(io, ['', '── graph (Mermaid; paste into https://mermaid.live or a Markdown viewer)']);
    io.out(renderGraph(inputs.topology, 'mermaid'));
    if (!opts.lab) return;
    const t = inputs.topology;
    const log = (l: string) => io.err(`${l}\n`);
    printLines(io, ['', '── lab up (offline images, networks, nodes)']);
    const up = await labUp(t, { topologyFile: opts.config, log });
    printLines(io, [
      `lab up in ${(up.durationMs / 1000).toFixed(1)} s`,
      '',
      '── provision: install → configure → verify',
    ]);
    const p = await provisionLab(t, log);
    for (const r of p.results) {
      printLines(io, [
        `${r.runbook.padEnd(10)} ${r.ok ? 'ok' : 'FAILED'}  ${r.changes} change(s)  ${(r.durationMs / 1000).toFixed(1)} s`,
      ]);
    }
    const s = await labStatus(t);
    printLines(io, ['', '── the stack is up', ...endpointLines(s)]);
    printLines(io, [
      '',
      'try it (OpenSSH sftp through the WAN entry, strict host keys):',
      `  npx wharf lab ssh sftp-main -- ls -l /srv/sftp/${s.demoUser.name}/upload`,
      `  sftp -i ${s.demoUser.privateKey} -P ${s.entrypoint.port} -o UserKnownHostsFile=${sftpKnownHostsFile(t.name)} ${s.demoUser.name}@127.0.0.1`,
      '  npx wharf lab notices',
      '  npx wharf lab down',
    ]);
  });
}
