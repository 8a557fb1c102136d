// A probe upload through the stack's entry point (the inventory's user credentials, the shared host
// key pinned), then the node it landed on. Used by failover and failback to verify.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { shQuote } from '../transport/quote.ts';
import { expandHome } from '../transport/ssh.ts';
import type { Transport } from '../transport/types.ts';
import type { Inventory } from '../topology/inventory.ts';
import type { Topology } from '../topology/model.ts';
import { ensureStackSecrets } from '../stack/secrets.ts';
import { connectSftp } from '../workload/generator.ts';

export interface ProbeResult {
  ok: boolean;
  detail: string;
  ms?: number;
  /** Absolute path of the probe on the nodes (left in place: the caller removes it). */
  path?: string;
  sha256?: string;
}

/** Upload a probe file through the entry point and check it is on `expectOn` with its sha256. */
export async function probeUpload(
  t: Topology,
  inv: Inventory,
  expectOn: Transport,
  o: { attempts?: number } = {},
): Promise<ProbeResult> {
  const user = t.sftp.users
    .map((u) => ({ name: u.name, c: inv.users?.[u.name] }))
    .find((u) => u.c?.password || u.c?.privateKey);
  if (!inv.entrypoint || !user)
    return { ok: true, detail: 'skipped: no entrypoint or user credentials in the inventory' };
  const secrets = ensureStackSecrets(t, inv);
  const name = `wharf-probe-${Date.now()}-${randomBytes(3).toString('hex')}.bin`;
  const rel = `${t.sftp.uploadDir}/${name}`;
  const content = randomBytes(16 * 1024);
  const sha = createHash('sha256').update(content).digest('hex');
  const path = `${t.sftp.chrootBase}/${user.name}/${rel}`;
  const t0 = Date.now();
  let last = '';
  // 8 attempts 2 s apart: outlasts HAProxy's per-source rate window (10 s) when clients behind
  // the same address retried hard during a write pause, without adding much to their rate
  for (let i = 0; i < (o.attempts ?? 8); i++) {
    try {
      const c = await connectSftp({
        host: inv.entrypoint.host,
        port: inv.entrypoint.port,
        username: user.name,
        ...(user.c?.password ? { password: user.c.password } : {}),
        ...(user.c?.privateKey ? { privateKey: readFileSync(expandHome(user.c.privateKey), 'utf8') } : {}),
        hostKey: secrets.hostKeys.ed25519.public,
        readyTimeoutMs: 10_000,
      });
      try {
        await c.put(content, rel);
      } finally {
        await c.end().catch(() => undefined);
      }
      const ms = Date.now() - t0;
      const r = await expectOn.exec(`sha256sum ${shQuote(path)} 2>/dev/null`, { timeoutMs: 20_000 });
      const ok = r.stdout.startsWith(sha);
      return {
        ok,
        ms,
        path,
        sha256: sha,
        detail: ok
          ? `probe uploaded in ${ms} ms, landed on ${expectOn.host}`
          : `probe acknowledged but not on ${expectOn.host}`,
      };
    } catch (e) {
      last = (e as Error).message;
      await new Promise((r) => setTimeout(r, 2000));
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
