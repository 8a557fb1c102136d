// A probe upload through the stack's entry point (the inventory's user credentials, the shared host
// key pinned), then the node it landed on. Used by failover and failback to verify.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { shQuote } from '../exec/index.ts';
import { expandHome } from '../transport/ssh.ts';
import type { Transport } from '../transport/types.ts';
import type { Inventory } from '../topology/inventory.ts';
import type { Topology } from '../topology/model.ts';
import { ensureStackSecrets } from '../stack/secrets.ts';
import { connectSftp } from '../workload/generator.ts';
import { sleep } from '../exec/process.ts';

export interface ProbeResult {
  ok: boolean;
  detail: string;
  ms?: number;
  /** Absolute path of the probe on the nodes (left in place: the caller removes it). */
  path?: string;
  sha256?: string;
}

export interface ProbeUser {
  name: string;
  password?: string;
  privateKey?: string;
}

/** The first SFTP user the inventory has credentials for: the probe uploads as that user. */
export function probeUser(t: Topology, inv: Inventory): ProbeUser | undefined {
  for (const u of t.sftp.users) {
    const c = inv.users?.[u.name];
    if (!c?.password && !c?.privateKey) continue;
    return {
      name: u.name,
      ...(c.password ? { password: c.password } : {}),
      ...(c.privateKey ? { privateKey: readFileSync(expandHome(c.privateKey), 'utf8') } : {}),
    };
  }
  return undefined;
}

export interface Probe {
  /** File name, unique per probe (the notice carries it). */
  name: string;
  /** Path inside the user's chroot, as uploaded. */
  rel: string;
  /** Absolute path on the SFTP nodes. */
  path: string;
  sha256: string;
  bytes: number;
}

/** Upload `size` random bytes through the entry point as `user`, the shared host key pinned. */
export async function putProbe(t: Topology, inv: Inventory, user: ProbeUser, size: number): Promise<Probe> {
  if (!inv.entrypoint) throw new Error('the inventory has no entrypoint');
  const name = `wharf-probe-${Date.now()}-${randomBytes(3).toString('hex')}.bin`;
  const rel = `${t.sftp.uploadDir}/${name}`;
  const content = randomBytes(size);
  const c = await connectSftp({
    host: inv.entrypoint.host,
    port: inv.entrypoint.port,
    username: user.name,
    ...(user.password ? { password: user.password } : {}),
    ...(user.privateKey ? { privateKey: user.privateKey } : {}),
    hostKey: ensureStackSecrets(t, inv).hostKeys.ed25519.public,
    readyTimeoutMs: 10_000,
  });
  try {
    await c.put(content, rel);
  } finally {
    await c.end().catch(() => undefined);
  }
  return {
    name,
    rel,
    path: `${t.sftp.chrootBase}/${user.name}/${rel}`,
    sha256: createHash('sha256').update(content).digest('hex'),
    bytes: size,
  };
}

/** Upload a probe file through the entry point and check it is on `expectOn` with its sha256. */
export async function probeUpload(
  t: Topology,
  inv: Inventory,
  expectOn: Transport,
  o: { attempts?: number } = {},
): Promise<ProbeResult> {
  const user = probeUser(t, inv);
  if (!inv.entrypoint || !user)
    return { ok: true, detail: 'skipped: no entrypoint or user credentials in the inventory' };
  const t0 = Date.now();
  let last = '';
  // 8 attempts 2 s apart: outlasts HAProxy's per-source rate window (10 s) when clients behind
  // the same address retried hard during a write pause, without adding much to their rate
  for (let i = 0; i < (o.attempts ?? 8); i++) {
    try {
      const p = await putProbe(t, inv, user, 16 * 1024);
      const ms = Date.now() - t0;
      const r = await expectOn.exec(`sha256sum ${shQuote(p.path)} 2>/dev/null`, { timeoutMs: 20_000 });
      const ok = r.stdout.startsWith(p.sha256);
      return {
        ok,
        ms,
        path: p.path,
        sha256: p.sha256,
        detail: ok
          ? `probe uploaded in ${ms} ms, landed on ${expectOn.host}`
          : `probe acknowledged but not on ${expectOn.host}`,
      };
    } catch (e) {
      last = (e as Error).message;
      await sleep(2000);
    }
  }
  return { ok: false, detail: `probe upload failed: ${last}` };
}

/** Wait until the probe is on `node` too (replication), then remove it from every node given. */
export async function cleanupProbe(
  p: ProbeResult,
  waitOn: Transport | undefined,
  all: Transport[],
  waitMs: number,
) {
  if (!p.path || !p.sha256) return;
  const end = Date.now() + waitMs;
  while (waitOn && Date.now() < end) {
    const r = await waitOn
      .exec(`sha256sum ${shQuote(p.path)} 2>/dev/null`, { timeoutMs: 10_000 })
      .catch(() => undefined);
    if (r?.stdout.startsWith(p.sha256)) break;
    await new Promise((res) => setTimeout(res, 250));
  }
  await Promise.all(
    all.map((x) => x.exec(`rm -f ${shQuote(p.path!)}`, { timeoutMs: 10_000 }).catch(() => undefined)),
  );
}
