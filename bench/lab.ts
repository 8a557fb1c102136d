// Lab timings (not a timed test): cold `lab up` from no images at all, warm `lab down && lab up`
// with cached images, and a repeated `lab up` on a running lab. Targets: cold ≤ 180 s, warm ≤ 10 s.
//   npx tsx bench/lab.ts [--warm-only] [--runs N] [--json]
// Uses its own stack ("labbench", subnets 10.93.x) so a running `seed` lab is left alone; the cold
// run removes the lab images (docker rmi of every image labelled wharf.image).
import { ensureEngine } from '../src/lab/engine.ts';
import { labDown, labUp } from '../src/lab/lab.ts';
import { IMAGE_LABEL } from '../src/lab/images.ts';
import { dockerCall } from '../src/lab/docker.ts';
import { variantTopology } from '../src/lab/variant.ts';

const args = process.argv.slice(2);
const warmOnly = args.includes('--warm-only');
const runs = Number(args[args.indexOf('--runs') + 1] ?? 3) || 3;
const json = args.includes('--json');
const say = (s: string) => {
  if (!json) console.log(s);
};

const { file, t } = variantTopology('labbench', 93);
const secs = (ms: number) => Math.round(ms / 100) / 10;

await ensureEngine();
const result: Record<string, number | number[]> = {};

if (!warmOnly) {
  await labDown(t.name);
  const images = (
    await dockerCall(`images --filter label=${IMAGE_LABEL}`, (d, abortSignal) =>
      d.listImages({ filters: { label: [IMAGE_LABEL] }, abortSignal }),
    )
  )
    .sort((a, b) => b.Created - a.Created)
    .map((i) => i.Id);
  const users = (
    await dockerCall('ps -a --filter label=wharf.lab', (d, abortSignal) =>
      d.listContainers({ all: true, filters: { label: ['wharf.lab'] }, abortSignal }),
    )
  ).map((c) => (c.Names[0] ?? c.Id).replace(/^\//, ''));
  if (users.length) {
    console.error(
      `a cold run needs the lab images unused; these containers use them (run \`wharf lab down\`): ${users.join(' ')}`,
    );
    process.exit(1);
  }
  // Newest first: a node image goes before the base it was built from.
  for (const id of new Set(images)) {
    try {
      await dockerCall(`rmi -f ${id}`, (d, abortSignal) =>
        d.getImage(id).remove({ force: true, abortSignal }),
      );
    } catch (e) {
      if (/No such image|HTTP 404/.test((e as Error).message)) continue;
      console.error(`could not remove the lab images: ${(e as Error).message}`);
      process.exit(1);
    }
  }
  say('cold: lab up from no images …');
  const t0 = Date.now();
  await labUp(t, { topologyFile: file, log: (l) => say(`  ${l.slice(0, 140)}`) });
  result.coldUpSeconds = secs(Date.now() - t0);
  say(`cold lab up: ${result.coldUpSeconds} s`);
}

const warm: number[] = [];
const downs: number[] = [];
for (let i = 0; i < runs; i++) {
  const d0 = Date.now();
  await labDown(t.name);
  downs.push(secs(Date.now() - d0));
  const t0 = Date.now();
  await labUp(t, { topologyFile: file });
  warm.push(secs(Date.now() - t0));
  say(`warm run ${i + 1}: lab down ${downs[i]} s, lab up ${warm[i]} s`);
}
result.warmUpSeconds = warm;
result.downSeconds = downs;
const r0 = Date.now();
const again = await labUp(t, { topologyFile: file });
result.repeatUpSeconds = secs(Date.now() - r0);
say(`lab up on a running lab: ${result.repeatUpSeconds} s (${again.created.length} created)`);
await labDown(t.name);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
result.warmUpMedianSeconds = median(warm);
if (json) console.log(JSON.stringify(result, null, 2));
else
  console.log(
    `\nlab bench: cold up ${result.coldUpSeconds !== undefined ? `${String(result.coldUpSeconds)} s` : 'skipped'} (target ≤ 180), warm up median ${result.warmUpMedianSeconds} s of ${warm.join(', ')} (target ≤ 10), repeat up ${result.repeatUpSeconds} s`,
  );
