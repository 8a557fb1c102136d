// bench "scale: users": `configure` first run / no-op rerun with 1, 50 and 150 extra SFTP users
// (issue 13: ≤ 15 s / ≤ 2 s at 150 users). On a provisioned lab: before each size the bench users
// are removed from the SFTP nodes (userdel, chroot removed), so the first run creates them all
// (user, chroot, upload folder, .ssh, authorized_keys on main, sub and backup); the lab's other
// configuration is already in place. At the end the bench users are removed and the lab is
// configured back to its own topology.
//
//   called from bench/run.ts (one line), or on its own on the scenario lab:
//   WHARF_SCENARIO_STACK=name:octet npx tsx bench/scale-users.ts [--sizes 1,50,150] [--json]
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { runRunbookByName } from '../src/stack/runbooks.ts';
import { topologyFromObject } from '../src/topology/load.ts';
import type { Topology } from '../src/topology/model.ts';
import type { Inventory } from '../src/topology/inventory.ts';
import { sshTransports, closeAll } from '../src/transport/index.ts';
import type { Transport } from '../src/transport/types.ts';
import { MemoryReporter } from '../src/runbook/progress.ts';

/** Bench/test users: `su001`, `su002`… (never a name the topology uses). */
export const SCALE_PREFIX = 'su';
export const scaleUserName = (i: number) => `${SCALE_PREFIX}${String(i + 1).padStart(3, '0')}`;

/** The topology `file` with `n` extra SFTP users, each allowed to log in with `publicKey`. */
export function topologyWithUsers(file: string, n: number, publicKey: string): Topology {
  const doc = parse(readFileSync(file, 'utf8')) as { sftp?: { users?: unknown[] } };
  doc.sftp ??= {};
  const base = doc.sftp.users ?? [{ name: 'demo' }];
  doc.sftp.users = [
    ...base,
    ...Array.from({ length: n }, (_, i) => ({ name: scaleUserName(i), authorizedKeys: [publicKey.trim()] })),
  ];
  return topologyFromObject(doc, file);
}

/**
 * Remove the bench users and their chroots from the SFTP nodes (one command per node). Returns how
 * many users were removed: the caller then configures the lab's own topology again, so the files
 * that list users (the chroot log-socket script) change and their unit runs when users come back.
 */
export async function removeScaleUsers(
  t: Topology,
  transports: ReadonlyMap<string, Transport>,
): Promise<number> {
  const base = t.sftp.chrootBase;
  const script =
    // their chroots' log sockets are bind mounts (wharf-sftp-log): unmounted first
    `for m in $(cut -d' ' -f2 /proc/self/mounts | grep -E '^${base}/${SCALE_PREFIX}[0-9]{3}/'); do umount "$m" || exit 1; done; ` +
    `n=0; for u in $(getent passwd | cut -d: -f1 | grep -E '^${SCALE_PREFIX}[0-9]{3}$'); do userdel "$u" || exit 1; n=$((n+1)); done; ` +
    `rm -rf -- ${base}/${SCALE_PREFIX}[0-9][0-9][0-9] && echo "removed=$n"`;
  const counts = await Promise.all(
    Object.values(t.nodes)
      .filter((n) => n.kind === 'sftp' && transports.has(n.name))
      .map(async (n) => {
        const r = await transports.get(n.name)!.exec(script, { timeoutMs: 600_000 });
        if (r.code !== 0) throw new Error(`${n.name}: removing bench users failed: ${r.stderr.trim()}`);
        return Number(/removed=(\d+)/.exec(r.stdout)?.[1] ?? 0);
      }),
  );
  return counts.reduce((a, b) => a + b, 0);
}

export interface ScaleUsersPoint {
  users: number;
  firstSeconds: number;
  firstChanges: number;
  noopSeconds: number;
  noopChanges: number;
}

const secs = (ms: number) => Math.round(ms / 100) / 10;

/** configure first / no-op at each size. Leaves the lab as it found it (bench users removed). */
export async function benchScaleUsers(o: {
  file: string;
  t: Topology;
  inventory: Inventory;
  publicKey: string;
  sizes?: number[];
  log?: (l: string) => void;
}): Promise<ScaleUsersPoint[]> {
  const transports = sshTransports(o.inventory) as Map<string, Transport>;
  const configure = async (t: Topology) => {
    const r = await runRunbookByName('configure', {
      topology: t,
      inventory: o.inventory,
      transports,
      reporter: new MemoryReporter(),
      log: () => {},
    });
    if (!r.ok) throw new Error(`configure failed: ${r.error ?? r.journal}`);
    return r;
  };
  const points: ScaleUsersPoint[] = [];
  try {
    for (const n of o.sizes ?? [1, 50, 150]) {
      if (await removeScaleUsers(o.t, transports)) await configure(o.t);
      const t = topologyWithUsers(o.file, n, o.publicKey);
      const first = await configure(t);
      const again = await configure(t);
      const p = {
        users: n,
        firstSeconds: secs(first.durationMs),
        firstChanges: first.changes,
        noopSeconds: secs(again.durationMs),
        noopChanges: again.changes,
      };
      o.log?.(
        `${n} users: first ${p.firstSeconds} s (${p.firstChanges} changes), no-op ${p.noopSeconds} s (${p.noopChanges} changes)`,
      );
      points.push(p);
    }
  } finally {
    await removeScaleUsers(o.t, transports).catch(() => undefined);
    await configure(o.t).catch((e: unknown) =>
      o.log?.(`restoring the lab's configuration failed: ${String(e)}`),
    );
    await closeAll(transports.values());
  }
  return points;
}

type Row = (name: string, value: string, target: string, pass?: boolean) => unknown;

/** bench/run.ts's section: the growth curve as rows (targets at 150 users). */
export async function scaleUsersSection(o: {
  file: string;
  t: Topology;
  inventory: Inventory;
  /** The lab: its demo user's key logs the bench users in. */
  status: { demoUser: { privateKey: string } };
  say: (s: string) => void;
  row: Row;
  result: Record<string, unknown>;
}): Promise<void> {
  o.say('== scale: users (configure first / no-op; bench users on main, sub, backup)');
  const points = await benchScaleUsers({
    ...o,
    publicKey: readFileSync(`${o.status.demoUser.privateKey}.pub`, 'utf8'),
    log: (l) => o.say(`  ${l}`),
  });
  o.result.scaleUsers = points;
  for (const p of points) {
    const at150 = p.users >= 150;
    o.row(
      `configure first, +${p.users} users (${p.firstChanges} changes)`,
      `${p.firstSeconds} s`,
      at150 ? '≤ 15 s' : '—',
      at150 ? p.firstSeconds <= 15 : undefined,
    );
    o.row(
      `configure no-op, +${p.users} users (${p.noopChanges} changes)`,
      `${p.noopSeconds} s`,
      at150 ? '≤ 2 s, 0 changes' : '0 changes',
      at150 ? p.noopSeconds <= 2 && p.noopChanges === 0 : p.noopChanges === 0,
    );
  }
}

// On its own: the scenario lab (WHARF_SCENARIO_STACK), brought up and provisioned when needed.
if (import.meta.url === `file://${process.argv[1]}`) {
  await import('../scripts/index.ts');
  const { ensureScenarioLab, scenarioTopology } = await import('../scenarios/lab.ts');
  const args = process.argv.slice(2);
  const at = args.indexOf('--sizes');
  const sizes = at >= 0 ? args[at + 1]!.split(',').map(Number) : [1, 50, 150];
  const lab = await ensureScenarioLab((l) => process.stderr.write(`[scenario lab] ${l}\n`));
  await lab.close();
  const { file, t } = scenarioTopology();
  const points = await benchScaleUsers({
    file,
    t,
    inventory: lab.inventory,
    publicKey: readFileSync(`${lab.status.demoUser.privateKey}.pub`, 'utf8'),
    sizes,
    log: (l) => process.stderr.write(`${l}\n`),
  });
  if (args.includes('--json')) console.log(JSON.stringify(points));
  else for (const p of points) console.log(JSON.stringify(p));
}
