// wharf schema: the topology's JSON Schema, for editors (yaml-language-server) and tools.
import type { Command } from 'commander';
import { z } from 'zod';
import { TopologySchema } from '../../topology/schema.ts';
import { type Io, printJson } from '../io.ts';

export function topologyJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(TopologySchema, { io: 'input', unrepresentable: 'any' }),
    title: 'wharf topology',
    description: 'The stack topology read by `wharf validate|render|graph` (configs/stack.yaml).',
  };
}

export function registerSchema(program: Command, io: Io): void {
  program
    .command('schema')
    .description(
      'print the JSON Schema of the topology file (save it: npx wharf schema > .wharf/topology.schema.json)',
    )
    .action(() => printJson(io, topologyJsonSchema()));
}
