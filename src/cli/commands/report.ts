// wharf report --in FILE… [--baseline FILE] --out FILE: one self-contained HTML file (inline CSS
// and SVG, nothing fetched at view time) from scenario, drill and bench results.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { InputError } from '../../core/errors.ts';
import { graphModel } from '../../graph.ts';
import { renderReport } from '../../report/html.ts';
import { readReportInput } from '../../report/load.ts';
import type { ReportInput } from '../../report/types.ts';
import { loadTopology } from '../../topology/load.ts';
import { topologyOption } from '../inputs.ts';
import type { Io } from '../io.ts';

/** Render and write the report; the topology file is drawn when it loads (else InputError). */
export function writeReport(
  out: string,
  o: { inputs: ReportInput[]; baseline?: ReportInput[]; topologyFile?: string; title?: string },
): void {
  const graph = o.topologyFile ? graphModel(loadTopology(o.topologyFile)) : undefined;
  const html = renderReport({
    inputs: o.inputs,
    ...(o.baseline ? { baseline: o.baseline } : {}),
    ...(graph ? { graph } : {}),
    ...(o.title ? { title: o.title } : {}),
    generatedAt: new Date().toISOString(),
  });
  mkdirSync(dirname(resolve(out)), { recursive: true });
  writeFileSync(out, html);
}

export function registerReport(program: Command, io: Io): void {
  const cmd = program
    .command('report')
    .description(
      'one self-contained HTML report (summary, metrics vs targets, charts, topology, baseline comparison) from JSON results',
    )
    .option('--in <files...>', 'results: `scenario run --json FILE`, a drill result, `bench/run.ts --json`')
    .option('--baseline <file>', 'a previous run’s results: metrics side by side with deltas')
    .option('--out <file>', 'the HTML file to write')
    .option('--title <text>', 'the report’s title', 'wharf report')
    .option('--no-topology', 'leave the topology drawing out');
  topologyOption(cmd);
  cmd.action(
    (o: {
      in?: string[];
      baseline?: string;
      out?: string;
      title: string;
      topology: boolean;
      config: string;
    }) => {
      const missing = [...(o.in?.length ? [] : ['--in FILE…']), ...(o.out ? [] : ['--out FILE'])];
      if (missing.length) throw new InputError(`report: missing ${missing.join(' and ')}`);
      const inputs = o.in!.map(readReportInput);
      const baseline = o.baseline ? [readReportInput(o.baseline)] : undefined;
      writeReport(o.out!, {
        inputs,
        ...(baseline ? { baseline } : {}),
        ...(o.topology ? { topologyFile: o.config } : {}),
        title: o.title,
      });
      io.err(
        `report: ${o.out} (${inputs.map((i) => `${i.file}: ${i.kind}`).join(', ')}${baseline ? `; baseline ${o.baseline}` : ''})\n`,
      );
    },
  );
}
