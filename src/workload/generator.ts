// Upload workload: N concurrent SFTP clients (ssh2-sftp-client) uploading files through an
// entry point. Every acknowledged upload goes into a ledger; a failed upload is retried whole
// on a new connection (a failed fastPut can leave a truncated file — pitfall 16).
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import SftpClient from 'ssh2-sftp-client';
import { Ledger, type Ack } from './ledger.ts';
import { sleep } from '../exec/process.ts';

export interface SftpEndpoint {
  host: string;
  port: number;
  username: string;
  password?: string;
  privateKey?: string | Buffer;
  /** Expected host key (the base64 blob of an OpenSSH public key line); verified when given. */
  hostKey?: string;
  readyTimeoutMs?: number;
  /** SSH keepalive: a connection whose peer stops answering fails after interval × 3 (default 2 s). */
  keepaliveMs?: number;
}

export interface WorkloadOptions {
  endpoint: SftpEndpoint;
  clients: number;
  /** Files per client (the run stops when every client is done, or at durationMs). */
  filesPerClient: number;
  /** Size in bytes of each file, or a function of (client, index). */
  size: number | ((client: number, index: number) => number);
  /** Remote directory (inside the chroot), e.g. "upload". */
  dir: string;
  /** Prefix of file names, so several runs don't collide. */
  prefix: string;
  ledger?: Ledger;
  durationMs?: number;
  signal?: AbortSignal;
  /** Pause of each client between two files (pacing; default none). */
  pauseMs?: number;
  /** Max attempts per file before giving up on it (default: unlimited until stop). */
  maxAttempts?: number;
  /**
   * Pause after a failure (default 100 ms); it doubles with each failure in a row, up to
   * retryMaxDelayMs, with jitter (see retryDelay). Read at every retry, so a caller may change it.
   */
  retryDelayMs?: number;
  /** Cap of the backoff (default 5 s). */
  retryMaxDelayMs?: number;
  /**
   * An attempt still unanswered after this long is cut (its connection destroyed) and retried.
   * Default: 30 s plus 1 s per MB.
   */
  attemptTimeoutMs?: (size: number) => number;
  /** Files larger than this go through a local temp file and fastPut. */
  fastPutThreshold?: number;
  onEvent?: (e: WorkloadEvent) => void;
}

export type WorkloadEvent =
  | {
      kind: 'invoke';
      at: number;
      client: number;
      path: string;
      size: number;
      sha256: string;
      attempt: number;
    }
  | { kind: 'ack'; at: number; ack: Ack }
  | {
      kind: 'fail';
      at: number;
      client: number;
      path: string;
      error: string;
      /** connect: no SFTP session was made (refused, reset or cut before login); transfer: after. */
      phase: FailPhase;
      /** How long the client waits before its next attempt (ms; absent when it gives up). */
      retryInMs?: number;
    }
  | { kind: 'conn'; at: number; client: number; what: ConnEvent['what']; error?: string };

export type FailPhase = 'connect' | 'transfer';

export interface WorkloadResult {
  acks: Ack[];
  /** Every failed attempt (retried or not). */
  failures: { at: number; client: number; path: string; error: string; phase: FailPhase }[];
  /** Failed attempts that never got an SFTP session (a reject by the ingress looks like this). */
  connectFailures: number;
  /** Time the clients spent waiting in backoff, summed over clients (ms). */
  backoffMs: number;
  bytes: number;
  elapsedMs: number;
  /** MB/s (10^6 bytes) over the whole run. */
  throughputMBs: number;
  abandoned: string[];
}

/** Tuned fastPut: 8 requests of 255 KiB in flight was fastest here (environment notes). */
export const FAST_PUT = { concurrency: 8, chunkSize: 261120 } as const;

/** What happened to an SFTP connection outside any call (the library's "global" events). */
export interface ConnEvent {
  what: 'error' | 'end' | 'close';
  error?: string;
}

/**
 * ssh2-sftp-client's default listeners print "Global close listener: close event raised" (and
 * "Global end/error listener: …") with console.log/console.error whenever a connection ends or fails
 * outside a call: the server closed an idle connection, HAProxy cut it, a keepalive timed out. That
 * corrupts `--json` output and floods loads with lines nobody asked for. wharf handles these events
 * itself: they go to `onConn` (the workload turns them into events, `wharf load` prints them through
 * its own progress output); without one they are dropped (a dead connection fails the next call,
 * which the caller sees and retries).
 */
export function sftpListeners(onConn?: (e: ConnEvent) => void) {
  return {
    error: (err: unknown) => onConn?.({ what: 'error', error: (err as Error)?.message ?? String(err) }),
    end: () => onConn?.({ what: 'end' }),
    close: () => onConn?.({ what: 'close' }),
  };
}

/** The listeners without a sink: nothing reaches stdout or stderr. */
export const QUIET_LISTENERS = sftpListeners();

export async function connectSftp(ep: SftpEndpoint, onConn?: (e: ConnEvent) => void): Promise<SftpClient> {
  const c = new SftpClient('wharf', sftpListeners(onConn));
  const hostKey = ep.hostKey;
  await c.connect({
    host: ep.host,
    port: ep.port,
    username: ep.username,
    ...(ep.password !== undefined ? { password: ep.password } : {}),
    ...(ep.privateKey !== undefined ? { privateKey: ep.privateKey } : {}),
    readyTimeout: ep.readyTimeoutMs ?? 5000,
    retries: 0,
    // a connection cut without a FIN/RST (a firewall rebooted, its state gone) fails, not hangs
    keepaliveInterval: ep.keepaliveMs ?? 2000,
    keepaliveCountMax: 3,
    ...(hostKey
      ? {
          hostVerifier: (key: Buffer) =>
            key.toString('base64') ===
            hostKey
              .trim()
              .split(/\s+/)
              .find((p) => p.length > 40),
        }
      : {}),
  } as SftpClient.ConnectOptions);
  return c;
}

/**
 * An upload is acknowledged only when the server holds all of it. ssh2-sftp-client's put() of a
 * Buffer resolves when ssh2's write stream closes, and that stream closes itself (autoClose) BEFORE
 * it reports a WRITE the server refused: a disk-full write (ENOSPC) came back as a success, a
 * truncated file "acknowledged" (258 of them in a 10-minute drill). OpenSSH's sftp checks every
 * write's status; this client checks the size the server ended up with.
 */
export async function verifySize(c: SftpClient, path: string, size: number): Promise<void> {
  const st = await c.stat(path);
  if (st.size !== size)
    throw new Error(
      `${path}: the server holds ${st.size} of ${size} bytes after the upload (a write was refused, e.g. disk full)`,
    );
}

/** Random content and its sha256; large files are written to a local temp file. */
async function makeContent(size: number, threshold: number, tmp: string, name: string) {
  const hash = createHash('sha256');
  if (size <= threshold) {
    const buf = randomBytes(size);
    hash.update(buf);
    return { buf, sha256: hash.digest('hex') };
  }
  const file = join(tmp, name.replace(/\//g, '_'));
  return { file, sha256: await writeRandomFile(file, size) };
}

/** Write `size` random bytes to a local file in 4 MiB blocks; returns their sha256. */
export async function writeRandomFile(file: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  const out = createWriteStream(file);
  const block = 4 * 1024 * 1024;
  for (let left = size; left > 0; left -= block) {
    const chunk = randomBytes(Math.min(block, left));
    hash.update(chunk);
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return hash.digest('hex');
}

/**
 * Backoff after `inARow` failures in a row (1 = the first): base × 2^(inARow−1), capped at max,
 * then "equal jitter" (half fixed, half random) so clients cut at the same moment do not retry in
 * lockstep. Real clients back off; without it, a few clients behind one source address hammer
 * HAProxy's per-source connection-rate limit during an outage and lock themselves out.
 */
export function retryDelay(
  baseMs: number,
  maxMs: number,
  inARow: number,
  random: () => number = Math.random,
) {
  const d = Math.min(maxMs, baseMs * 2 ** Math.max(0, Math.min(30, inARow - 1)));
  return Math.round(d / 2 + random() * (d / 2));
}

export async function runWorkload(o: WorkloadOptions): Promise<WorkloadResult> {
  const ledger = o.ledger ?? new Ledger();
  const started = Date.now();
  const deadline = o.durationMs ? started + o.durationMs : Infinity;
  const threshold = o.fastPutThreshold ?? 8 * 1024 * 1024;
  const tmp = mkdtempSync(join(tmpdir(), 'wharf-load-'));
  const failures: WorkloadResult['failures'] = [];
  let backoffMs = 0;
  const abandoned: string[] = [];
  const acks: Ack[] = [];
  let bytes = 0;
  const stopped = () => o.signal?.aborted || Date.now() > deadline;
  // a stop cuts the attempts in flight (their files were never acknowledged)
  const live = new Set<SftpClient>();
  const destroy = (c: SftpClient) => (c as unknown as { client?: { destroy(): void } }).client?.destroy();
  const onAbort = () => live.forEach(destroy);
  o.signal?.addEventListener('abort', onAbort);
  const attemptTimeout = o.attemptTimeoutMs ?? ((size: number) => 30_000 + size / 1000);

  const client = async (id: number) => {
    let conn: SftpClient | undefined;
    const drop = async () => {
      const c = conn;
      conn = undefined;
      if (!c) return;
      live.delete(c);
      await Promise.race([c.end().catch(() => undefined), sleep(2000).then(() => destroy(c))]);
    };
    try {
      for (let i = 0; i < o.filesPerClient && !stopped(); i++) {
        const name = `${o.prefix}-c${id}-${String(i).padStart(6, '0')}.bin`;
        const path = `${o.dir}/${name}`;
        const size = typeof o.size === 'function' ? o.size(id, i) : o.size;
        const content = await makeContent(size, threshold, tmp, name);
        let attempts = 0;
        let inARow = 0;
        let done = false;
        while (!done && !stopped()) {
          attempts++;
          const startedAt = Date.now();
          o.onEvent?.({
            kind: 'invoke',
            at: startedAt,
            client: id,
            path,
            size,
            sha256: content.sha256,
            attempt: attempts,
          });
          let phase: FailPhase = 'connect';
          try {
            conn ??= await connectSftp(o.endpoint, (e) =>
              o.onEvent?.({ kind: 'conn', at: Date.now(), client: id, ...e }),
            );
            phase = 'transfer';
            live.add(conn);
            if (o.signal?.aborted) throw new Error('stopped');
            const c = conn;
            let timer: NodeJS.Timeout | undefined;
            const limit = attemptTimeout(size);
            const timeout = new Promise<never>((_, reject) => {
              timer = setTimeout(() => {
                destroy(c);
                reject(new Error(`no answer within ${limit} ms: connection cut`));
              }, limit);
            });
            try {
              await Promise.race([
                ('buf' in content && content.buf
                  ? c.put(content.buf, path)
                  : c.fastPut(content.file!, path, FAST_PUT)
                ).then(() => verifySize(c, path, size)),
                timeout,
              ]);
            } finally {
              clearTimeout(timer);
            }
            const ack: Ack = {
              path,
              size,
              sha256: content.sha256,
              ackAt: Date.now(),
              startedAt,
              client: id,
              attempts,
            };
            ledger.record(ack);
            acks.push(ack);
            bytes += size;
            o.onEvent?.({ kind: 'ack', at: ack.ackAt, ack });
            done = true;
          } catch (e) {
            const error = (e as Error).message.split('\n')[0] ?? String(e);
            const f = { at: Date.now(), client: id, path, error, phase };
            failures.push(f);
            await drop();
            if (o.maxAttempts && attempts >= o.maxAttempts) {
              o.onEvent?.({ kind: 'fail', ...f });
              break;
            }
            // back off (doubling, capped, jittered) before the next attempt: a client refused by the
            // ingress's per-source limits comes back later instead of hammering it
            inARow++;
            const base = o.retryDelayMs ?? 100;
            const wait = retryDelay(base, Math.max(base, o.retryMaxDelayMs ?? 5000), inARow);
            o.onEvent?.({ kind: 'fail', ...f, retryInMs: wait });
            backoffMs += wait;
            await sleep(wait);
          }
        }
        if (!done) abandoned.push(path);
        if (done && o.pauseMs) await sleep(o.pauseMs);
        if ('file' in content && content.file) rmSync(content.file, { force: true });
      }
    } finally {
      await drop();
    }
  };

  try {
    await Promise.all(Array.from({ length: o.clients }, (_, i) => client(i)));
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
    rmSync(tmp, { recursive: true, force: true });
  }
  const elapsedMs = Date.now() - started;
  return {
    acks,
    failures,
    connectFailures: failures.filter((f) => f.phase === 'connect').length,
    backoffMs,
    bytes,
    elapsedMs,
    throughputMBs: bytes / 1e6 / (elapsedMs / 1000),
    abandoned,
  };
}

/** sha256 of a local file (used by benches and checks). */
export const sha256File = (file: string): string =>
  createHash('sha256').update(readFileSync(file)).digest('hex');
