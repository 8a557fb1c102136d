// `npx tsx scenarios/prepare.ts`: bring the scenario lab up, provisioned and in its known state —
// what the first scenario run or lab test does first (ensureScenarioLab) — and exit. `npm test`
// runs it beside the first lab files, which do not use this lab, so no lab file waits ~1.5 minutes
// for the provisioning; a lab file that gets there first waits for it (a lock, scenarios/lab.ts).
// `--images`: only build the lab's images (every variant) when missing, and exit: `npm test` runs
// that first, alone, so the labs and throwaway containers started side by side never build the same
// image twice at once on a fresh machine.
import { ensureImages, VARIANTS, type Variant } from '../src/lab/images.ts';
import { ensureScenarioLab } from './lab.ts';
import '../scripts/index.ts';

const log = (l: string) => process.stderr.write(`[scenario lab] ${l}\n`);
const t0 = Date.now();
if (process.argv.includes('--images')) {
  await ensureImages([], log, Object.keys(VARIANTS) as Variant[]);
  log(`images ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
} else {
  const lab = await ensureScenarioLab(log);
  await lab.close();
  log(`${lab.t.name} ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}
