// wharf graph: the stack as a Mermaid flowchart (default) or a Graphviz digraph.
import { type Command, Option } from 'commander';
import { GRAPH_FORMATS, type GraphFormat, renderGraph } from '../../graph.ts';
import { loadTopology } from '../../topology/load.ts';
import { topologyOption } from '../inputs.ts';
import type { Io } from '../io.ts';

export function registerGraph(program: Command, io: Io): void {
  const cmd = program
    .command('graph')
    .description('draw the chain: internet → router → firewall → HAProxy → SFTP nodes, replication, notices')
    .addOption(new Option('--format <format>', 'output format').choices(GRAPH_FORMATS).default('mermaid'));
  topologyOption(cmd);
  cmd.action((opts: { config: string; format: GraphFormat }) => {
    io.out(renderGraph(loadTopology(opts.config), opts.format));
  });
}
