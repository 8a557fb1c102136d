// Chain vs direct throughput, measured the same way for every client (used by the large-file
// scenario and by `npm run bench`):
//   clients: ssh2-sftp-client (tuned fastPut), OpenSSH `sftp` with aes128-gcm, OpenSSH `sftp` with
//            its default cipher (chacha20-poly1305 in OpenSSH 9.2)
//   paths:   chain  = the router's WAN address (router → firewall → HAProxy → main)
//            direct = main's lan address
//            both from this host, without Docker's userland proxy (the same way in)
//   order:   chain/direct alternate per round and per client, so neither path always goes first
//   settled: after each upload, wait until lsyncd has copied it to sub (and `sync`), so the next
//            upload does not share the CPU and disk with a replication still running
// Each upload is timed from the end of authentication to the end of the transfer (ssh2: fastPut
// alone; OpenSSH: from `-v`'s "Authenticated to" line to the process's exit), so connection setup
// (a process start, a key exchange) does not weigh on small CI sizes. A client's ratio is the
// median of its per-round chain/direct ratios (each pair measured back to back), with min–max.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LabStatus } from '../src/lab/lab.ts';
import type { Topology } from '../src/topology/model.ts';
import SftpClient from 'ssh2-sftp-client';
import { FAST_PUT, QUIET_LISTENERS } from '../src/workload/generator.ts';
import { labEndpoint, sharedHostKey } from '../src/workload/remote.ts';

export const CLIENTS = ['ssh2', 'openssh-gcm', 'openssh'] as const;
export type Client = (typeof CLIENTS)[number];
export const CLIENT_LABEL: Record<Client, string> = {
  ssh2: 'ssh2-sftp-client',
  'openssh-gcm': 'OpenSSH sftp aes128-gcm',
  openssh: 'OpenSSH sftp default cipher',
};
export type Path = 'chain' | 'direct';
/** The lab target each path uses (see src/workload/remote.ts TARGETS). */
export const PATH_TARGET = { chain: 'direct', direct: 'main' } as const;
export const PATH_LABEL: Record<Path, string> = {
  chain: 'router WAN → firewall → HAProxy → main',
  direct: 'main lan',
};

export interface Upload {
  seconds: number;
  MBs: number;
  cipher: string;
}

/** The order of the two paths in round `round` for the `k`-th client: alternating both ways. */
export const pathOrder = (round: number, k: number): [Path, Path] =>
  (round + k) % 2 ? ['direct', 'chain'] : ['chain', 'direct'];

const median = (xs: number[]): number => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export interface RatioSummary {
  chainMedian: number;
  directMedian: number;
  /** chain_i / direct_i of each round (pairs measured back to back). */
  ratios: number[];
  /** The median of `ratios` (NaN without a complete pair). */
  ratio: number;
  ratioMin: number;
  ratioMax: number;
}

/** A client's numbers: per-round pairs → medians, the median paired ratio and its spread. */
export function summarize(chain: (number | undefined)[], direct: (number | undefined)[]): RatioSummary {
  const c = chain.filter((x): x is number => x !== undefined);
  const d = direct.filter((x): x is number => x !== undefined);
  const ratios: number[] = [];
  for (let i = 0; i < Math.min(chain.length, direct.length); i++) {
    const a = chain[i];
    const b = direct[i];
    if (a !== undefined && b !== undefined && b > 0) ratios.push(a / b);
  }
  return {
    chainMedian: median(c),
    directMedian: median(d),
    ratios,
    ratio: median(ratios),
    ratioMin: ratios.length ? Math.min(...ratios) : NaN,
    ratioMax: ratios.length ? Math.max(...ratios) : NaN,
  };
}

const r1 = (x: number) => Math.round(x * 10) / 10;
const r3 = (x: number) => Math.round(x * 1000) / 1000;

/** "0.912 (0.88–0.95, 3 rounds)" */
export const formatRatio = (s: RatioSummary): string =>
  Number.isNaN(s.ratio)
    ? 'not measured'
    : `${r3(s.ratio)} (${s.ratios.length > 1 ? `${r3(s.ratioMin)}–${r3(s.ratioMax)}, ` : ''}${s.ratios.length} round${s.ratios.length > 1 ? 's' : ''})`;

/** "95.1 (93.0, 95.1, 99.2)" */
export const formatSeries = (xs: (number | undefined)[]): string => {
  const got = xs.filter((x): x is number => x !== undefined);
  return got.length
    ? `${r1(median(got))} (${xs.map((x) => (x === undefined ? '–' : r1(x))).join(', ')})`
    : '–';
};

export interface Uploader {
  put(client: Client, path: Path, local: string, remote: string, size: number): Promise<Upload>;
}

/**
 * Upload helpers for one lab: ssh2-sftp-client (fastPut 8 × 255 KiB) and OpenSSH `sftp -b -`
 * (demo user's key, the shared host key pinned in a known_hosts under `workDir`).
 */
export function uploader(t: Topology, s: LabStatus, workDir: string, timeoutMs = 600_000): Uploader {
  const knownHosts = join(workDir, 'known_hosts');
  writeFileSync(knownHosts, `wharf-sftp ${sharedHostKey(t)}\n`);
  return {
    async put(client, path, local, remote, size) {
      const ep = labEndpoint(t, s, PATH_TARGET[path]);
      let t0 = process.hrtime.bigint();
      let cipher = '?';
      if (client === 'ssh2') {
        const c = new SftpClient('wharf-bench', QUIET_LISTENERS);
        // the negotiated cipher, for the record (listening before connect: it fires during it)
        (c as unknown as { client: NodeJS.EventEmitter }).client.on(
          'handshake',
          (n: { cs: { cipher: string } }) => (cipher = n.cs.cipher),
        );
        const blob = sharedHostKey(t).split(/\s+/)[1];
        try {
          await c.connect({
            host: ep.host,
            port: ep.port,
            username: ep.username,
            privateKey: ep.privateKey,
            readyTimeout: 15_000,
            retries: 0,
            hostVerifier: (key: Buffer) => key.toString('base64') === blob,
          } as SftpClient.ConnectOptions);
          t0 = process.hrtime.bigint();
          await c.fastPut(local, remote, FAST_PUT);
        } finally {
          await c.end().catch(() => undefined);
        }
      } else {
        let authAt = 0n;
        cipher = await opensshPut(
          {
            host: ep.host,
            port: ep.port,
            user: ep.username,
            key: s.demoUser.privateKey,
            knownHosts,
            cipher: client === 'openssh-gcm' ? 'aes128-gcm@openssh.com' : undefined,
          },
          local,
          remote,
          timeoutMs,
          () => (authAt = process.hrtime.bigint()),
        );
        if (authAt) t0 = authAt;
      }
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      return { seconds, MBs: size / 1e6 / seconds, cipher };
    },
  };
}

/** `sftp -b -` with `put LOCAL REMOTE`; resolves to the cipher OpenSSH negotiated (from -v). */
export function opensshPut(
  o: { host: string; port: number; user: string; key: string; knownHosts: string; cipher?: string },
  local: string,
  remote: string,
  timeoutMs: number,
  onAuthenticated?: () => void,
): Promise<string> {
  const args = [
    '-v',
    '-b',
    '-',
    '-P',
    String(o.port),
    '-i',
    o.key,
    ...(o.cipher ? ['-c', o.cipher] : []),
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    `UserKnownHostsFile=${o.knownHosts}`,
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'HostKeyAlias=wharf-sftp',
    '-o',
    'ConnectTimeout=15',
    `${o.user}@${o.host}`,
  ];
  return new Promise((resolve, reject) => {
    const p = spawn('sftp', args, { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    let authed = false;
    p.stderr.on('data', (d: Buffer) => {
      if (stderr.length < 200_000) stderr += d.toString('utf8');
      if (!authed && /Authenticated to /.test(stderr)) {
        authed = true;
        onAuthenticated?.();
      }
    });
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`sftp: ${e.message}`));
    });
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      const why = stderr
        .split('\n')
        .filter((l) => l && !l.startsWith('debug'))
        .join(' | ')
        .slice(0, 300);
      if (code !== 0)
        return reject(
          new Error(
            `sftp to ${o.host}:${o.port} failed (${signal ? `killed by ${signal} after ${timeoutMs} ms` : `exit ${code}`}): ${why}`,
          ),
        );
      resolve(/kex: client->server cipher: (\S+)/.exec(stderr)?.[1] ?? '?');
    });
    p.stdin.end(`put ${local} ${remote}\n`);
  });
}

export interface ChainDirectResult {
  client: Client;
  chainMBs: (number | undefined)[];
  directMBs: (number | undefined)[];
  cipher: string;
  summary: RatioSummary;
  errors: string[];
}

/**
 * `rounds` rounds; in each, every client uploads `local` once through the chain and once direct
 * (order from pathOrder), each upload followed by `settle(remote)`. A failed upload is recorded in
 * `errors` (its slot stays empty, its pair gives no ratio) and the run goes on.
 */
export async function measureChainDirect(o: {
  up: Uploader;
  clients: readonly Client[];
  rounds: number;
  local: string;
  size: number;
  /** remote path of one upload */
  remote: (client: Client, path: Path, round: number) => string;
  settle: (remote: string) => Promise<void>;
  log: (line: string) => void;
  onUpload?: (client: Client, path: Path, round: number, u: Upload | Error, remote: string) => void;
  /** after every round (e.g. remove its files) */
  afterRound?: (round: number) => Promise<void>;
}): Promise<ChainDirectResult[]> {
  const res: ChainDirectResult[] = o.clients.map((client) => ({
    client,
    chainMBs: [],
    directMBs: [],
    cipher: '?',
    summary: summarize([], []),
    errors: [],
  }));
  for (let i = 0; i < o.rounds; i++) {
    for (const [k, client] of o.clients.entries()) {
      const r = res[k]!;
      const got: Partial<Record<Path, number>> = {};
      for (const path of pathOrder(i, k)) {
        const remote = o.remote(client, path, i);
        try {
          const u = await o.up.put(client, path, o.local, remote, o.size);
          r.cipher = u.cipher;
          got[path] = u.MBs;
          o.onUpload?.(client, path, i, u, remote);
        } catch (e) {
          r.errors.push(`${path}, round ${i + 1}: ${(e as Error).message}`);
          o.onUpload?.(client, path, i, e as Error, remote);
          continue;
        }
        await o.settle(remote);
      }
      r.chainMBs[i] = got.chain;
      r.directMBs[i] = got.direct;
      o.log(
        `round ${i + 1} ${CLIENT_LABEL[client]} (${r.cipher}): chain ${got.chain === undefined ? 'failed' : r1(got.chain)} / direct ${got.direct === undefined ? 'failed' : r1(got.direct)} MB/s` +
          (got.chain !== undefined && got.direct !== undefined ? ` = ${r3(got.chain / got.direct)}` : ''),
      );
    }
    await o.afterRound?.(i);
  }
  for (const r of res) r.summary = summarize(r.chainMBs, r.directMBs);
  return res;
}
