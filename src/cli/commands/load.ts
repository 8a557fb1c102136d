// wharf load: a real SFTP upload workload against the lab (ssh2-sftp-client, tuned fastPut), every
// acknowledged upload in a ledger, then the checker: is each one on main, on sub (after
// replication) and optionally in backup's latest snapshot, with the right checksum?
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { InputError, ReportedFailure } from '../../core/errors.ts';
import { labStatus } from '../../lab/lab.ts';
import { loadTopology } from '../../topology/load.ts';
import { check, formatVerdict, type ObservedFile, type Verdict } from '../../workload/checker.ts';
import { runWorkload } from '../../workload/generator.ts';
import { Ledger } from '../../workload/ledger.ts';
import {
  TARGETS,
  labEndpoint,
  nodeOfRole,
  observeUploads,
  runBackupOnce,
  userRoot,
  waitForUploads,
  type Target,
} from '../../workload/remote.ts';
import { topologyOption } from '../inputs.ts';
import { type Io, printJson } from '../io.ts';
import { parseDuration } from '../../core/duration.ts';

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  k: 1024,
  kib: 1024,
  kb: 1000,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  mb: 1e6,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  gb: 1e9,
};

/** "1MiB", "512KiB", "1.5GB", "4096" (bytes). K/M/G and KiB/MiB/GiB are binary, KB/MB/GB decimal. */
export function parseSize(text: string, flag = '--size'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const factor = m ? SIZE_UNITS[(m[2] || 'b').toLowerCase()] : undefined;
  const bytes = m && factor ? Math.round(Number(m[1]) * factor) : NaN;
  if (!Number.isFinite(bytes) || bytes < 1 || bytes > 64 * 1024 ** 3) {
    throw new InputError(
      `${flag}: expected a size from 1 byte to 64GiB like 4096, 512KiB, 1MiB, 1GiB, 10MB, got "${text}"`,
    );
  }
  return bytes;
}

export { parseDuration };

export function parseCount(text: string, flag: string, max = 10_000): number {
  const n = /^\s*\d+\s*$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw new InputError(`${flag}: expected a whole number from 1 to ${max}, got "${text}"`);
  }
  return n;
}

export function parseTarget(text: string): Target {
  if (!(TARGETS as readonly string[]).includes(text)) {
    throw new InputError(`--target: expected one of ${TARGETS.join(', ')}, got "${text}"`);
  }
  return text as Target;
}

/** Human size: 1 MiB, 24 KiB, 1000 B. */
export const formatSize = (n: number): string => {
  for (const [u, f] of [
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ] as const) {
    if (n >= f) return `${Math.round((n / f) * 100) / 100} ${u}`;
  }
  return `${n} B`;
};

interface LoadCliOptions {
  config: string;
  clients: string;
  files?: string;
  size: string;
  duration?: string;
  target: string;
  ledger?: string;
  prefix?: string;
  backup?: boolean;
  replicationTimeout: string;
  retryDelay: string;
  retryMaxDelay: string;
  json?: boolean;
}

export function registerLoad(program: Command, io: Io): void {
  const cmd = program
    .command('load')
    .description('upload workload against the lab (ledger of acks), then check main, sub (and backup)')
    .option('--clients <n>', 'concurrent SFTP clients', '4')
    .option('--files <n>', 'files per client (default 10; unlimited with --duration)')
    .option('--size <size>', 'size of each file: 4096, 512KiB, 1MiB, 1GiB, 10MB', '1MiB')
    .option('--duration <time>', 'stop after this long: 30s, 2m (whichever comes first with --files)')
    .option('--target <where>', `way in: ${TARGETS.join(' | ')}`, 'entry')
    .option('--ledger <file>', 'ledger of acknowledged uploads (JSON lines)')
    .option('--prefix <name>', 'file name prefix (default: load-<time>)')
    .option('--backup', 'also run the backup job once and check its latest snapshot')
    .option('--replication-timeout <time>', 'how long to wait for sub to have every file', '60s')
    .option(
      '--retry-delay <time>',
      'pause after a failed attempt; doubles per failure in a row (jitter)',
      '100ms',
    )
    .option('--retry-max-delay <time>', 'cap of that backoff', '5s')
    .option('--json', 'print one JSON document');
  topologyOption(cmd);
  cmd.addHelpText(
    'after',
    `
Targets: entry = 127.0.0.1:<published port> (wan-client → router → firewall → HAProxy → main),
direct = the router's WAN address (same chain, without Docker's userland proxy), main = sftp-main's
lan address (no chain). The client checks the shared ed25519 host key from the lab's secrets.
Exit: 0 every acknowledged upload is on every checked node with its checksum; 1 something
acknowledged was lost or corrupt (or nothing was acknowledged); 2 bad input.`,
  );
  cmd.action(async (o: LoadCliOptions) => {
    // Flags first (exit 2 before touching anything).
    const clients = parseCount(o.clients, '--clients', 256);
    const durationMs = o.duration !== undefined ? parseDuration(o.duration) : undefined;
    const files = o.files !== undefined ? parseCount(o.files, '--files', 1_000_000) : durationMs ? 1e9 : 10;
    const size = parseSize(o.size);
    const target = parseTarget(o.target);
    const replicationTimeoutMs = parseDuration(o.replicationTimeout, '--replication-timeout');
    const retryDelayMs = parseDuration(o.retryDelay, '--retry-delay');
    const retryMaxDelayMs = parseDuration(o.retryMaxDelay, '--retry-max-delay');
    if (retryMaxDelayMs < retryDelayMs)
      throw new InputError(
        `--retry-max-delay: expected at least --retry-delay (${o.retryDelay}), got "${o.retryMaxDelay}"`,
      );
    const t = loadTopology(o.config);

    const s = await labStatus(t);
    const endpoint = labEndpoint(t, s, target);
    const prefix = o.prefix ?? `load-${new Date().toISOString().replace(/[-:.]/g, '').slice(0, 15)}`;
    const ledger = new Ledger(o.ledger);
    const say = (l: string) => {
      if (!o.json) io.out(`${l}\n`);
    };
    say(
      `load: ${clients} client(s) × ${files >= 1e9 ? '∞' : files} file(s) of ${formatSize(size)} → ${target} ${endpoint.host}:${endpoint.port}${durationMs ? ` for at most ${durationMs / 1000} s` : ''} (prefix ${prefix})`,
    );
    const w = await runWorkload({
      endpoint,
      clients,
      filesPerClient: files,
      size,
      dir: t.sftp.uploadDir,
      prefix,
      ledger,
      ...(durationMs ? { durationMs } : {}),
      maxAttempts: 20,
      retryDelayMs,
      retryMaxDelayMs,
      // progress on stderr (stdout stays the result, one JSON document with --json); the SFTP
      // library's own listener lines never print (sftpListeners): its events come here
      onEvent: (e) => {
        if (e.kind === 'fail')
          io.err(
            `  ${e.retryInMs !== undefined ? `retry in ${e.retryInMs} ms` : 'gave up'}: client ${e.client} ${e.path} (${e.phase}): ${e.error}\n`,
          );
        else if (e.kind === 'conn')
          io.err(`  connection of client ${e.client}: ${e.what}${e.error ? `: ${e.error}` : ''}\n`);
      },
    });
    say(
      `uploads: ${w.acks.length} acknowledged, ${w.failures.length} failed attempt(s) (${w.connectFailures} before login: refused, reset or cut by the ingress), ${w.abandoned.length} abandoned; ` +
        `${(w.bytes / 1e6).toFixed(1)} MB in ${(w.elapsedMs / 1000).toFixed(1)} s = ${w.throughputMBs.toFixed(1)} MB/s; ${(w.backoffMs / 1000).toFixed(1)} s of backoff over all clients`,
    );

    // Check: main at once, sub after replication, backup after one run of its job.
    const user = s.demoUser.name;
    const main = nodeOfRole(t, 'main');
    const sub = nodeOfRole(t, 'sub');
    const backup = nodeOfRole(t, 'backup');
    const sftpRoot = userRoot(t, user, 'sftp');
    const want = new Map(w.acks.map((a) => [a.path, a.sha256]));
    const byNode: Record<string, ObservedFile[]> = {};
    byNode[main] = await observeUploads(s, main, sftpRoot, t.sftp.uploadDir, prefix);
    say(`checking ${sub} (replication; up to ${replicationTimeoutMs / 1000} s) …`);
    const repl = await waitForUploads(s, sub, sftpRoot, t.sftp.uploadDir, prefix, want, replicationTimeoutMs);
    byNode[sub] = repl.files;
    let backupMs: number | undefined;
    if (o.backup) {
      say(`running the backup job on ${backup} …`);
      backupMs = await runBackupOnce(s, backup);
      byNode[`${backup} (latest snapshot)`] = await observeUploads(
        s,
        backup,
        userRoot(t, user, 'snapshot'),
        t.sftp.uploadDir,
        prefix,
      );
    }
    const verdict: Verdict = check(w.acks, byNode);
    const ok = verdict.valid && w.acks.length > 0;
    if (o.json) {
      printJson(io, {
        ok,
        target,
        endpoint: { host: endpoint.host, port: endpoint.port },
        prefix,
        clients,
        filesPerClient: files >= 1e9 ? null : files,
        size,
        acknowledged: w.acks.length,
        failedAttempts: w.failures.length,
        failedConnects: w.connectFailures,
        backoffMs: w.backoffMs,
        abandoned: w.abandoned,
        bytes: w.bytes,
        elapsedMs: w.elapsedMs,
        throughputMBs: Math.round(w.throughputMBs * 10) / 10,
        replicationWaitMs: repl.waitedMs,
        ...(backupMs !== undefined ? { backupRunMs: backupMs } : {}),
        ledger: o.ledger ? resolve(o.ledger) : null,
        verdict: {
          valid: verdict.valid,
          acknowledged: verdict.acknowledged,
          nodes: verdict.nodes.map((n) => ({
            node: n.node,
            ok: n.ok,
            lost: n.lost.length,
            corrupt: n.corrupt.length,
            unexpected: n.unexpected.length,
            lostPaths: n.lost,
            corruptPaths: n.corrupt,
            unexpectedPaths: n.unexpected,
          })),
        },
      });
    } else {
      say(
        `${sub} had every file after ${(repl.waitedMs / 1000).toFixed(1)} s of checking${repl.complete ? '' : ' (NOT complete at the deadline)'}`,
      );
      say(formatVerdict(verdict));
      if (!w.acks.length) say('no upload was acknowledged');
    }
    if (!ok) throw new ReportedFailure(verdict.valid ? 'nothing acknowledged' : 'acknowledged uploads lost');
  });
}
