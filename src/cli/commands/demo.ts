// wharf demo: what the README's first command runs. Today: validate the default topology and
// render every node's files into out/. (Once the lab lands it will also bring the lab up.)
import type { Command } from 'commander';
import { inventoryOption, loadInputs, topologyOption, type InputOptions } from '../inputs.ts';
import { type Io, printLines } from '../io.ts';
import { renderToDir } from './render.ts';
import { summarize, summaryLines } from './validate.ts';
import { manifestLines } from '../write-render.ts';
import { renderGraph } from '../../graph.ts';

export function registerDemo(program: Command, io: Io): void {
  const cmd = program
    .command('demo')
    .description(
      'validate the topology, render every node’s files into out/, print the graph (the README demo)',
    )
    .option('-o, --out <dir>', 'output folder', 'out');
  topologyOption(cmd);
  inventoryOption(cmd);
  cmd.action((opts: InputOptions & { out: string }) => {
    printLines(io, ['── validate', ...summaryLines(summarize(loadInputs(opts)))]);
    printLines(io, ['', `── render → ${opts.out}/`, ...manifestLines(renderToDir(opts))]);
    const { topology } = loadInputs(opts);
    printLines(io, ['', '── graph (Mermaid; paste into https://mermaid.live or a Markdown viewer)']);
    io.out(renderGraph(topology, 'mermaid'));
  });
}
