// wharf render: every node's files under DIR/<node>/<target path>, modes applied, plus a manifest.
import type { Command } from 'commander';
import { renderStack } from '../../render/index.ts';
import { type InputOptions, inventoryOption, loadInputs, topologyOption } from '../inputs.ts';
import { type Io, printJson, printLines } from '../io.ts';
import { manifestLines, type RenderManifest, writeRender } from '../write-render.ts';

export interface RenderOptions extends InputOptions {
  out: string;
  json?: boolean;
}

/** Load, render and write; shared with `wharf demo`. */
export function renderToDir(opts: InputOptions & { out: string }): RenderManifest {
  const inputs = loadInputs(opts);
  const renders = renderStack(inputs.topology, inputs.inventory);
  return writeRender(opts.out, renders, inputs);
}

export function registerRender(program: Command, io: Io): void {
  const cmd = program
    .command('render')
    .description('render every node’s config files into DIR/<node>/<target path> (with DIR/manifest.json)')
    .requiredOption('-o, --out <dir>', 'output folder')
    .option('--json', 'print the manifest as JSON');
  topologyOption(cmd);
  inventoryOption(cmd);
  cmd.action((opts: RenderOptions) => {
    const manifest = renderToDir(opts);
    if (opts.json) printJson(io, manifest);
    else printLines(io, manifestLines(manifest));
  });
}
