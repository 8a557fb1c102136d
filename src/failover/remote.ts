// The failover/failback steps that talk to hosts (through the runbook transports).
import { posix } from 'node:path';
import { shell } from '../transport/shell.ts';
import { shQuote } from '../exec/index.ts';
import { CommandFailed, type Transport } from '../transport/types.ts';
import { addressOf, type Inventory } from '../topology/inventory.ts';
import type { Topology } from '../topology/model.ts';
import { LSYNCD_KEY, LSYNCD_KNOWN_HOSTS } from '../render/lsyncd.ts';
import { CHROOT_LOG_DIR } from '../render/sshd.ts';
import { AGENT_BASELINE, RECONCILE_MARK, RECONCILE_TABLE, SERVER_STATE_FILE } from '../render/agent.ts';
import { HEARTBEAT_DIR } from '../render/readpool.ts';
import { SYNC_HOME } from '../stack/desired.ts';
import { parseStat, socatLine, type StatRow } from './haproxy.ts';
import { fenceAuthorizedKeys, isFenced, unfenceAuthorizedKeys } from './fence.ts';
import { listingCommand, parseListing, type Listing } from './plan.ts';

/** Where the haproxy node records that the stack is failed over (failback and verify read it). */
export const FAILOVER_STATE = '/var/lib/wharf/failover.json';
export const CONFLICTS_DIR = '/var/lib/wharf/failback-conflicts';

export interface FailoverState {
  /** When the failover started (ISO); kept across re-runs. */
  at: string;
  mode: 'planned' | 'unplanned';
  main: string;
  sub: string;
  /** started → done. */
  phase: 'started' | 'done';
  /** When HAProxy saw main go down (unplanned), ISO. */
  lostAt?: string;
  rpo?: unknown;
}

/** Run an already-built command line that must succeed; a non-zero exit throws CommandFailed. */
export async function must(t: Transport, cmd: string, timeoutMs = 60_000, input?: string) {
  const r = await t.exec(cmd, { timeoutMs, ...(input !== undefined ? { input } : {}) });
  if (r.code !== 0) throw new CommandFailed(t.host, cmd, r);
  return r;
}

export async function runtimeApi(hap: Transport, t: Topology, commands: string[]): Promise<string> {
  if (!commands.length) return '';
  const r = await must(hap, socatLine(t.haproxy.stats.socket, commands), 15_000);
  const out = r.stdout.trim();
  // the runtime API answers errors as text (e.g. "No such server.")
  if (/no such|unknown command|denied|require/i.test(out))
    throw new Error(`${hap.host}: HAProxy runtime API: ${out}`);
  return out;
}

export async function showStat(hap: Transport, t: Topology): Promise<StatRow[]> {
  return parseStat((await must(hap, socatLine(t.haproxy.stats.socket, ['show stat']), 15_000)).stdout);
}

/** A JSON file of wharf's state on a host: null when absent, `unreadable` when not JSON. */
async function readJson<T>(host: Transport, path: string, unreadable: T | null): Promise<T | null> {
  const b = await host.readFile(path);
  if (!b) return null;
  try {
    return JSON.parse(b.toString('utf8')) as T;
  } catch {
    return unreadable;
  }
}

export const readFailoverState = (hap: Transport): Promise<FailoverState | null> =>
  readJson<FailoverState>(hap, FAILOVER_STATE, null);

export async function writeFailoverState(hap: Transport, s: FailoverState): Promise<void> {
  await hap.writeFileAtomic(FAILOVER_STATE, JSON.stringify(s, null, 2) + '\n', {
    mode: 0o644,
    owner: 'root',
    group: 'root',
  });
}

/** Failback done: keep the record as failover.last.json. */
export async function clearFailoverState(hap: Transport): Promise<void> {
  const last = posix.join(posix.dirname(FAILOVER_STATE), 'failover.last.json');
  await shell(hap)`if [ -f ${FAILOVER_STATE} ]; then mv -f ${FAILOVER_STATE} ${last}; fi`;
}

const syncKeys = `${SYNC_HOME}/.ssh/authorized_keys`;

/** Fence (or unfence) main out of sub's replication account; returns whether it changed. */
export async function setFence(sub: Transport, mainAddr: string, on: boolean): Promise<boolean> {
  const b = await sub.readFile(syncKeys);
  if (!b) throw new Error(`${sub.host}: ${syncKeys} is missing (run configure)`);
  const text = b.toString('utf8');
  const next = on ? fenceAuthorizedKeys(text, mainAddr) : unfenceAuthorizedKeys(text, mainAddr);
  if (next === text) return false;
  await sub.writeFileAtomic(syncKeys, next, { mode: 0o644, owner: 'root', group: 'root' });
  return true;
}

export async function fenced(sub: Transport, mainAddr: string): Promise<boolean> {
  const b = await sub.readFile(syncKeys);
  return b ? isFenced(b.toString('utf8'), mainAddr) : false;
}

/**
 * Folders under the chroot base that are not data: rsync's temp dir, main's heartbeat, and each
 * user's chroot log folder (<user>/dev: journald's socket is bind-mounted over a placeholder file
 * there, which find still reports as a file and sha256sum cannot open).
 */
export const excludedDirs = (t: Topology): string[] => [
  t.replication.lsyncd.tempDir.replace(/^\/+|\/+$/g, ''),
  HEARTBEAT_DIR,
  ...t.sftp.users.map((u) => `${u.name}/${CHROOT_LOG_DIR}`),
];

export async function listTree(tr: Transport, t: Topology): Promise<Listing> {
  const r = await must(
    tr,
    listingCommand(t.sftp.chrootBase, excludedDirs(t), t.replication.lsyncd.excludes),
    300_000,
  );
  return parseListing(r.stdout);
}

/**
 * rsync run ON MAIN with lsyncd's key, to or from sub, exactly the path lsyncd uses (sync user,
 * sudo rsync on the far side, rsync's temp dir so a file appears whole). Never --delete.
 * files: an explicit list (--files-from, transferred even when size+mtime look equal), or all.
 */
export function rsyncOnMain(
  t: Topology,
  inv: Inventory,
  dir: 'push' | 'pull',
  o: { files?: boolean; update?: boolean } = {},
): string {
  const l = t.replication.lsyncd;
  const base = t.sftp.chrootBase;
  const sub = addressOf(inv, l.to, 'lan');
  const ssh = `ssh -i ${LSYNCD_KEY} -p ${t.sftp.port} -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=${LSYNCD_KNOWN_HOSTS} -o ConnectTimeout=10`;
  const excl = [`/${l.tempDir}/`, `/*/${CHROOT_LOG_DIR}/`, ...l.excludes].map(
    (e) => `--exclude=${shQuote(e)}`,
  );
  const args = [
    'rsync',
    '-a',
    '-s',
    ...(o.files ? ['--files-from=-', '-I'] : excl),
    ...(o.update ? ['--update'] : []),
    '-e',
    shQuote(ssh),
    `--rsync-path=${shQuote('sudo /usr/bin/rsync')}`,
  ];
  const remote = `${l.user}@${sub}:${base}/`;
  if (dir === 'push') args.push(`--temp-dir=${shQuote(`${base}/${l.tempDir}`)}`, `${base}/`, remote);
  else args.push(remote, `${base}/`);
  return args.join(' ');
}

/** Keep a copy of files about to be overwritten (failback conflicts) outside the chroot. */
export function saveConflictsCommand(base: string, dest: string, paths: string[]): string {
  return [
    `mkdir -p ${shQuote(dest)}`,
    ...paths.map(
      (p) =>
        `if [ -f ${shQuote(`${base}/${p}`)} ]; then mkdir -p ${shQuote(`${dest}/${p.replace(/\/[^/]*$/, '')}`)} && cp -a ${shQuote(`${base}/${p}`)} ${shQuote(`${dest}/${p}`)}; fi`,
    ),
  ].join(' && ');
}

/** zx's sleep (milliseconds, or a duration such as '2s'): kept here for the runbooks' imports. */
export { sleep } from '../exec/process.ts';

export async function reachable(tr: Transport | undefined, timeoutMs = 8_000): Promise<boolean> {
  if (!tr) return false;
  try {
    return (await shell(tr)({ timeoutMs, nothrow: true })`true`).code === 0;
  } catch {
    return false;
  }
}

/** The "needs reconcile" mark on the HAProxy node (non-preemptive failover; src/render/agent.ts). */
export { RECONCILE_MARK } from '../render/agent.ts';

export interface ReconcileMark {
  at?: string;
  by?: string;
  why?: string;
}

/** The mark's content (an empty object when it exists but is not JSON), or null when absent. */
export const readReconcileMark = (hap: Transport): Promise<ReconcileMark | null> =>
  readJson<ReconcileMark>(hap, RECONCILE_MARK, {});

/** Set the mark (kept as it is when already set); returns whether this call created it. */
export async function setReconcileMark(hap: Transport, by: string, why: string): Promise<boolean> {
  if (await hap.readFile(RECONCILE_MARK)) return false;
  const mark: ReconcileMark = { at: new Date().toISOString(), by, why };
  await hap.writeFileAtomic(RECONCILE_MARK, JSON.stringify(mark) + '\n', {
    mode: 0o644,
    owner: 'root',
    group: 'root',
  });
  return true;
}

/**
 * Remove the mark. `withBaseline` (failback, main UP again): also the agent's count of sub's
 * sessions, so the sessions sub took while failed over are not counted as a new outage.
 */
export async function clearReconcileMark(
  hap: Transport,
  withBaseline = false,
  socket?: string,
): Promise<void> {
  // the flag a pair's agents share through peers goes to 0 first, or an agent would set the mark
  // again from it (best effort: a stopped HAProxy has no table, and loads none at start)
  if (socket)
    await hap.exec(
      `${socatLine(socket, [`set table ${RECONCILE_TABLE} key 1 data.gpt0 0`])} >/dev/null 2>&1; true`,
      {
        timeoutMs: 15_000,
      },
    );
  await shell(hap)`rm -f ${RECONCILE_MARK} ${withBaseline ? AGENT_BASELINE : RECONCILE_MARK}`;
}

/**
 * Write HAProxy's server-state file now (what the agent does on every check), so a reload right
 * after a runbook changed admin states starts from them.
 */
export async function saveServerState(hap: Transport, t: Topology): Promise<void> {
  const tmp = `${SERVER_STATE_FILE}.tmp.wharf`;
  await must(
    hap,
    `${socatLine(t.haproxy.stats.socket, ['show servers state'])} > ${shQuote(tmp)} && test -s ${shQuote(tmp)} && mv -f ${shQuote(tmp)} ${shQuote(SERVER_STATE_FILE)}`,
    15_000,
  );
}
