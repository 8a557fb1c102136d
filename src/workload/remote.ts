// What the workload needs from a running lab: SFTP endpoints (entry point, router WAN, main) with
// the demo user and the shared host key, and what each SFTP node really holds (sha256 over ssh).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RunError } from '../core/errors.ts';
import { $, sleep } from '../exec/process.ts';
import { shQuote } from '../exec/quote.ts';
import type { LabStatus } from '../lab/lab.ts';
import { secretsDir } from '../lab/state.ts';
import { sftpNode, type Topology } from '../topology/model.ts';
import type { SftpRole } from '../topology/schema.ts';
import type { ObservedFile } from './checker.ts';
import { parseSha256sum } from './checker.ts';
import type { SftpEndpoint } from './generator.ts';

/**
 * Ways into the stack from this host:
 * - entry:  127.0.0.1:<published port> (wan-client → router; through Docker's userland proxy)
 * - direct: the router's WAN address (router → firewall → HAProxy → main; no userland proxy)
 * - main:   sftp-main's lan address (straight to main; no proxy, no chain)
 */
export const TARGETS = ['entry', 'direct', 'main'] as const;
export type Target = (typeof TARGETS)[number];

/** The SFTP nodes' shared ed25519 host key (the public key line). */
export const sharedHostKey = (t: Topology): string =>
  readFileSync(join(secretsDir(t.name), 'ssh_host_ed25519_key.pub'), 'utf8').trim();

export const nodeOfRole = (t: Topology, role: SftpRole): string => sftpNode(t, role).name;

export function labEndpoint(t: Topology, s: LabStatus, target: Target): SftpEndpoint {
  const common = {
    username: s.demoUser.name,
    privateKey: readFileSync(s.demoUser.privateKey),
    hostKey: sharedHostKey(t),
    readyTimeoutMs: 5000,
  };
  if (target === 'entry') return { ...common, ...s.entrypoint };
  if (target === 'direct') {
    const port = s.direct.ports.sftp ?? Object.values(s.direct.ports)[0];
    if (port === undefined) throw new RunError('the topology has no HAProxy frontend');
    return { ...common, host: s.direct.host, port };
  }
  const main = nodeOfRole(t, 'main');
  const host = s.nodes[main]?.addresses.lan;
  if (!host) throw new RunError(`${main} has no lan address in the lab`);
  return { ...common, host, port: t.sftp.port };
}

/** Run a command on a lab node as root through the lab's ssh_config (strict host key checking). */
export async function onLabNode(s: LabStatus, node: string, cmd: string, timeoutMs = 60_000) {
  const r = await $({
    nothrow: true,
    timeout: timeoutMs,
    stdio: ['ignore', 'pipe', 'pipe'],
  })`ssh -F ${s.sshConfig} -o StrictHostKeyChecking=yes ${node} ${cmd}`;
  const timedOut = r.signal !== null;
  return {
    code: r.exitCode ?? 128,
    stdout: r.stdout,
    stderr: r.stderr + (timedOut ? `\n(timed out after ${timeoutMs} ms)` : ''),
    ...(timedOut && { timedOut }),
  };
}

/** Where a user's chroot is on a node: the SFTP nodes' chroot, or the backup's latest snapshot. */
export function userRoot(t: Topology, user: string, where: 'sftp' | 'snapshot'): string {
  return where === 'sftp'
    ? `${t.sftp.chrootBase}/${user}`
    : `${t.replication.backup.snapshotDir}/latest/${user}`;
}

/**
 * sha256 of the files named `<prefix>*` under `<root>/<dir>` on a node, paths relative to the
 * chroot (`upload/x.bin`), as the checker wants them. A missing directory is an empty list.
 */
export async function observeUploads(
  s: LabStatus,
  node: string,
  root: string,
  dir: string,
  prefix: string,
): Promise<ObservedFile[]> {
  const q = shQuote;
  const cmd =
    `cd ${q(root)} 2>/dev/null || exit 0; [ -d ${q(dir)} ] || exit 0; ` +
    `find ${q(dir)} -maxdepth 1 -type f -name ${q(prefix + '*')} -print0 | xargs -0 -r sha256sum`;
  const r = await onLabNode(s, node, cmd, 600_000);
  if (r.code !== 0) throw new RunError(`sha256sum on ${node} failed: ${r.stderr.trim()}`);
  return parseSha256sum(r.stdout, '');
}

/**
 * Poll a node until every wanted path is there with its checksum (or the deadline): replication
 * (lsyncd delay + transfer) is asynchronous. Returns what was observed last and how long it took.
 */
export async function waitForUploads(
  s: LabStatus,
  node: string,
  root: string,
  dir: string,
  prefix: string,
  want: Map<string, string>,
  timeoutMs: number,
): Promise<{ files: ObservedFile[]; waitedMs: number; complete: boolean }> {
  const t0 = Date.now();
  for (;;) {
    const files = await observeUploads(s, node, root, dir, prefix);
    const seen = new Map(files.map((f) => [f.path, f.sha256]));
    const complete = [...want].every(([p, sha]) => seen.get(p) === sha);
    if (complete || Date.now() - t0 > timeoutMs) return { files, waitedMs: Date.now() - t0, complete };
    await sleep(500);
  }
}

/** Run the backup job once on the backup node (systemd unit, waits for it to finish). */
export async function runBackupOnce(s: LabStatus, backupNode: string): Promise<number> {
  const t0 = Date.now();
  const r = await onLabNode(s, backupNode, 'systemctl start wharf-backup.service', 900_000);
  if (r.code !== 0) {
    const j = await onLabNode(s, backupNode, 'journalctl -u wharf-backup.service -n 20 --no-pager');
    throw new RunError(`backup run on ${backupNode} failed: ${r.stderr.trim()}\n${j.stdout}`);
  }
  return Date.now() - t0;
}
