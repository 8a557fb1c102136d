// What node-loss, failback-naive and the bench share: a small-file workload through the entry point,
// a real `docker kill` of sftp-main, the RTO measured from the moment the container died to the
// first upload acknowledged after it, and the checker over main, sub and backup.
import { labNode } from '../src/lab/node.ts';
import { sftpNode } from '../src/topology/model.ts';
import { check, type Verdict } from '../src/workload/checker.ts';
import type { Ack } from '../src/workload/ledger.ts';
import { runWorkload, type WorkloadResult } from '../src/workload/generator.ts';
import { observeUploads, runBackupOnce, userRoot, waitForUploads } from '../src/workload/remote.ts';
import type { ScenarioLab } from './lab.ts';

import { sleep } from '../src/exec/index.ts';

export { sleep };

export async function until(timeoutMs: number, fn: () => boolean | Promise<boolean>, everyMs = 50) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return true;
    if (Date.now() > end) return false;
    await sleep(everyMs);
  }
}

export interface RunningWorkload {
  prefix: string;
  acks: Ack[];
  failures: { at: number; error: string }[];
  /** Pause between a client's attempts from now on (clients back off before a write pause). */
  setRetryDelay(ms: number): void;
  stop(): Promise<WorkloadResult>;
}

/** Start clients × small files through the lab's entry point (until stopped). */
export function startWorkload(
  lab: ScenarioLab,
  o: {
    prefix: string;
    clients?: number;
    size?: number;
    handshakeTimeoutMs?: number;
    retryDelayMs?: number;
    /** Each client's pause between two files (default none: back to back). */
    pauseMs?: number;
  },
): RunningWorkload {
  const ac = new AbortController();
  const acks: Ack[] = [];
  const failures: { at: number; error: string }[] = [];
  const opts: Parameters<typeof runWorkload>[0] = {
    // A client gives up on a handshake after 2 s and retries on a new connection: right after the
    // kill, HAProxy still sends new connections to main until its checks mark it down (~1–2 s), and
    // those wait for nothing (with ssh2's default 5 s, RTO was ~5.4 s here: see the report).
    endpoint: { ...lab.endpoint, readyTimeoutMs: o.handshakeTimeoutMs ?? 2000 },
    clients: o.clients ?? 4,
    filesPerClient: 1_000_000,
    size: o.size ?? 32 * 1024,
    dir: lab.t.sftp.uploadDir,
    prefix: o.prefix,
    signal: ac.signal,
    retryDelayMs: o.retryDelayMs ?? 100,
    ...(o.pauseMs ? { pauseMs: o.pauseMs } : {}),
    onEvent: (e) => {
      if (e.kind === 'ack') acks.push(e.ack);
      else if (e.kind === 'fail') failures.push({ at: e.at, error: e.error });
    },
  };
  // runWorkload reads retryDelayMs at every retry: setRetryDelay changes it for the running clients
  const p = runWorkload(opts);
  return {
    prefix: o.prefix,
    acks,
    failures,
    setRetryDelay(ms) {
      opts.retryDelayMs = ms;
    },
    async stop() {
      ac.abort();
      return p;
    },
  };
}

/**
 * Main→sub replication lag: the time from an upload's ack until sub holds it (polled every 100 ms
 * over the multiplexed ssh connection, so the number includes up to ~0.1 s of polling).
 */
export async function measureLag(lab: ScenarioLab, ack: Ack): Promise<number | undefined> {
  const sub = lab.t.replication.lsyncd.to;
  const path = `${userRoot(lab.t, lab.status.demoUser.name, 'sftp')}/${ack.path}`;
  let at: number | undefined;
  await until(
    (lab.t.replication.lsyncd.delay + 20) * 1000,
    async () => {
      const r = await lab.sh(sub, `sha256sum '${path}' 2>/dev/null`, 10_000);
      if (r.stdout.startsWith(ack.sha256)) at = Date.now();
      return at !== undefined;
    },
    100,
  );
  return at === undefined ? undefined : at - ack.ackAt;
}

/** Kill sftp-main (SIGKILL through the Engine API); returns the moment it died (docker's FinishedAt, else the call time). */
export async function killMain(lab: ScenarioLab): Promise<{ diedAt: number; calledAt: number }> {
  const main = labNode(lab.t.name, sftpNode(lab.t, 'main').name);
  const calledAt = Date.now();
  await main.kill();
  const fin = Date.parse((await main.inspect()).finishedAt);
  const diedAt = Number.isFinite(fin) && fin >= calledAt - 2000 && fin <= Date.now() ? fin : calledAt;
  return { diedAt, calledAt };
}

/**
 * Kill main during the workload and wait for the first ack of an upload started after it: RTO in ms
 * (undefined: none in timeoutMs).
 */
export async function killAndMeasureRto(
  lab: ScenarioLab,
  w: RunningWorkload,
  timeoutMs = 30_000,
): Promise<{ rtoMs?: number; diedAt: number; calledAt: number }> {
  const k = await killMain(lab);
  let first: number | undefined;
  // only uploads started once main was dead: an ack whose reply was in flight at the kill is no
  // recovery (it measured "1 ms" here)
  await until(timeoutMs, () => {
    const a = w.acks.filter((x) => (x.startedAt ?? 0) >= k.diedAt).sort((x, y) => x.ackAt - y.ackAt)[0];
    first = a?.ackAt;
    return first !== undefined;
  });
  return { ...k, ...(first !== undefined ? { rtoMs: first - k.diedAt } : {}) };
}

/** Checker over main and sub (after waiting for replication) and, optionally, backup's latest snapshot. */
export async function checkEverywhere(
  lab: ScenarioLab,
  acks: Ack[],
  prefix: string,
  o: { backup?: boolean } = {},
): Promise<{ verdict: Verdict; subWaitMs: number; backupMs?: number }> {
  const t = lab.t;
  const user = lab.status.demoUser.name;
  const dir = t.sftp.uploadDir;
  const main = sftpNode(t, 'main').name;
  const sub = t.replication.lsyncd.to;
  const want = new Map<string, string>();
  for (const a of acks) want.set(a.path, a.sha256);
  const root = userRoot(t, user, 'sftp');
  const onMain = await observeUploads(lab.status, main, root, dir, prefix);
  const onSub = await waitForUploads(
    lab.status,
    sub,
    root,
    dir,
    prefix,
    want,
    (t.replication.lsyncd.delay + 30) * 1000,
  );
  const byNode: Record<string, { path: string; sha256: string }[]> = { [main]: onMain, [sub]: onSub.files };
  let backupMs: number | undefined;
  if (o.backup) {
    const b = t.replication.backup.to;
    backupMs = await runBackupOnce(lab.status, b);
    byNode[`${b} (latest snapshot)`] = await observeUploads(
      lab.status,
      b,
      userRoot(t, user, 'snapshot'),
      dir,
      prefix,
    );
  }
  return {
    verdict: check(acks, byNode),
    subWaitMs: onSub.waitedMs,
    ...(backupMs !== undefined ? { backupMs } : {}),
  };
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** The q-quantile (0..1) of a sample, nearest rank. */
export const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
};
