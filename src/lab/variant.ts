// A lab of the seed stack under another name and subnets (10.<octet>.x), so tests, scenarios and
// benches run next to a developer's `seed` lab (and next to each other) without touching it.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { topologyFromObject } from '../topology/load.ts';
import type { Topology } from '../topology/model.ts';
import { REPO_ROOT } from './state.ts';

/** configs/stack.yaml as a plain document, renamed, with a second octet for every subnet. */
export function seedVariant(name: string, octet: number): Record<string, unknown> {
  const doc = parse(readFileSync(join(REPO_ROOT, 'configs/stack.yaml'), 'utf8')) as Record<string, unknown>;
  doc.name = name;
  // WHARF_FIREWALL_KIND=opnsense: the same stack with an OPNsense firewall (the lab's API emulation)
  const kind = process.env.WHARF_FIREWALL_KIND;
  if (kind) doc.firewall = { ...((doc.firewall as Record<string, unknown> | undefined) ?? {}), kind };
  doc.networks = {
    wan: { subnet: `10.${octet}.0.0/24` },
    transit: { subnet: `10.${octet}.1.0/24` },
    dmz: { subnet: `10.${octet}.2.0/24` },
    lan: { subnet: `10.${octet}.3.0/24` },
    mgmt: { subnet: `10.${octet}.9.0/24` },
  };
  return doc;
}

/** The variant written to a temporary topology file (for `-c FILE`) and loaded; `edit` changes it first. */
export function variantTopology(
  name: string,
  octet: number,
  edit?: (doc: Record<string, unknown>) => void,
): { file: string; t: Topology } {
  const doc = seedVariant(name, octet);
  edit?.(doc);
  const file = join(mkdtempSync(join(tmpdir(), 'wharf-variant-')), `${name}.yaml`);
  writeFileSync(file, stringify(doc));
  return { file, t: topologyFromObject(doc, file) };
}
