// bench, scale: clients. 1, 16 and 64 clients from ONE source (this host, through the chain at the
// router's WAN address, an address in no trusted range): files/s and failed attempts per step. The
// per-source limits (haproxy.rateLimit: new accepted connections per period; haproxy.limits) decide
// the curve past the rate limit: clients refused at first back off and come back (issue 13: before,
// the rejected retries renewed the penalty and 48 clients never finished). A trusted range
// (haproxy.limits.trusted) lifts the rate limit for a customer's fleet; many-clients shows that.
import type { LabStatus } from '../src/lab/lab.ts';
import type { Topology } from '../src/topology/model.ts';
import { runWorkload } from '../src/workload/generator.ts';
import { labEndpoint, nodeOfRole, onLabNode, userRoot, waitForUploads } from '../src/workload/remote.ts';

export interface ScaleClientsContext {
  t: Topology;
  s: LabStatus;
  say(line: string): void;
  log(line: string): void;
  row(name: string, value: string, target: string, pass?: boolean): void;
  result: Record<string, unknown>;
}

export const SCALE_CLIENTS = [1, 16, 64] as const;

export async function scaleClients(c: ScaleClientsContext, files = 10, size = 64 * 1024): Promise<void> {
  const { t, s } = c;
  const rl = t.haproxy.rateLimit;
  c.say(
    `== scale: clients from one source (${files} × ${size / 1024} KiB each, through the chain; rate limit ${rl.connections} per ${rl.period})`,
  );
  const main = nodeOfRole(t, 'main');
  const sub = nodeOfRole(t, 'sub');
  const root = userRoot(t, s.demoUser.name, 'sftp');
  const dir = t.sftp.uploadDir;
  const hap = Object.values(t.nodes).find((n) => n.kind === 'haproxy')!.name;
  const out: Record<string, unknown>[] = [];
  for (const n of SCALE_CLIENTS) {
    // every step starts with a clean slate in HAProxy's limits table
    await onLabNode(
      s,
      hap,
      `echo 'clear table wharf_src_rate' | socat -t 5 stdio UNIX-CONNECT:${t.haproxy.stats.socket}`,
    );
    const prefix = `bench-scale${n}-${Date.now().toString(36)}`;
    const w = await runWorkload({
      endpoint: { ...labEndpoint(t, s, 'direct'), readyTimeoutMs: 20_000 },
      clients: n,
      filesPerClient: files,
      size,
      dir,
      prefix,
      maxAttempts: 30,
      retryDelayMs: 200,
      retryMaxDelayMs: 5000,
    });
    const want = new Map(w.acks.map((a) => [a.path, a.sha256]));
    const onSub = await waitForUploads(s, sub, root, dir, prefix, want, 60_000);
    const fps = Math.round((w.acks.length / (w.elapsedMs / 1000)) * 10) / 10;
    const ok = w.acks.length === n * files && !w.abandoned.length && onSub.complete;
    out.push({
      clients: n,
      files: n * files,
      acknowledged: w.acks.length,
      seconds: Math.round(w.elapsedMs / 100) / 10,
      filesPerSecond: fps,
      failedAttempts: w.failures.length,
      failedConnects: w.connectFailures,
      backoffSeconds: Math.round(w.backoffMs / 100) / 10,
      abandoned: w.abandoned.length,
      onSub: onSub.complete,
    });
    const cap = t.haproxy.limits.concurrent;
    c.log(
      `${n} client(s)${n > cap ? ` (more than limits.concurrent ${cap}: the rest wait for a free slot)` : ''}: ${w.acks.length}/${n * files} in ${(w.elapsedMs / 1000).toFixed(1)} s = ${fps} files/s, ${w.failures.length} failed attempts (${w.connectFailures} before login), ${(w.backoffMs / 1000).toFixed(1)} s backoff; sub ${onSub.complete ? 'has all' : 'INCOMPLETE'}`,
    );
    c.row(
      `scale: ${n} client(s), one source: files/s (failed attempts)`,
      `${fps} (${w.failures.length})`,
      'all done',
      ok,
    );
    await onLabNode(s, main, `rm -f ${root}/${dir}/${prefix}*`);
    await onLabNode(s, sub, `rm -f ${root}/${dir}/${prefix}*`);
  }
  c.result.scaleClients = out;
}
