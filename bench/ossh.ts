// The bench's "chain / direct" and "client" sections, measured side by side in one run:
// ssh2-sftp-client (tuned fastPut), OpenSSH `sftp` with aes128-gcm and with its default cipher,
// each through the chain (router WAN → firewall → HAProxy → main) and straight to main, the same
// way in (this host, no userland proxy), alternating order, lsyncd's copy awaited between uploads
// (scenarios/chain-direct.ts). Prints per client the chain and direct medians with every round, and
// chain/direct as the median of the rounds' paired ratios with their min–max; then the clients
// against each other on the chain.
import type { LabStatus } from '../src/lab/lab.ts';
import type { Topology } from '../src/topology/model.ts';
import {
  CLIENT_LABEL,
  CLIENTS,
  formatRatio,
  formatSeries,
  measureChainDirect,
  uploader,
  type ChainDirectResult,
} from '../scenarios/chain-direct.ts';

const r1 = (x: number) => Math.round(x * 10) / 10;
const r3 = (x: number) => Math.round(x * 1000) / 1000;

export interface ChainDirectBench {
  t: Topology;
  s: LabStatus;
  workDir: string;
  size: number;
  rounds: number;
  local: string;
  dir: string;
  settle: (remote: string) => Promise<void>;
  /** removes this run's uploads from main and sub (after each round) */
  clean: () => Promise<void>;
  say: (line: string) => void;
  log: (line: string) => void;
  row: (name: string, value: string, target: string, pass?: boolean) => void;
  result: Record<string, unknown>;
}

/** Target for OpenSSH's chain/direct (issue 10): the chain costs at most a tenth of the throughput. */
export const OPENSSH_RATIO_TARGET = 0.9;

export async function benchChainDirect(b: ChainDirectBench): Promise<ChainDirectResult[]> {
  b.say(
    `== chain / direct: ${(b.size / 1024 ** 2).toFixed(0)} MiB from /dev/shm, ${b.rounds} round(s), ${CLIENTS.length} clients, alternating order, settled`,
  );
  const res = await measureChainDirect({
    up: uploader(b.t, b.s, b.workDir),
    clients: CLIENTS,
    rounds: b.rounds,
    local: b.local,
    size: b.size,
    remote: (client, path, round) => `${b.dir}/bench-${client}-${path}-${round}.bin`,
    settle: b.settle,
    log: b.log,
    afterRound: () => b.clean(),
  });
  b.result.chainDirect = Object.fromEntries(
    res.map((r) => [
      r.client,
      {
        cipher: r.cipher,
        chainMBs: r.chainMBs.map((x) => (x === undefined ? null : r1(x))),
        directMBs: r.directMBs.map((x) => (x === undefined ? null : r1(x))),
        ratios: r.summary.ratios.map(r3),
        ratio: r3(r.summary.ratio),
        ...(r.errors.length && { errors: r.errors }),
      },
    ]),
  );
  for (const r of res) {
    const label = `${CLIENT_LABEL[r.client]}, ${r.cipher}`;
    for (const e of r.errors) b.log(`${CLIENT_LABEL[r.client]}: upload failed: ${e.slice(0, 200)}`);
    b.row(`chain MB/s, ${label}`, formatSeries(r.chainMBs), '');
    b.row(`direct MB/s, ${label}`, formatSeries(r.directMBs), '');
    const ok = !Number.isNaN(r.summary.ratio) && !r.errors.length;
    if (r.client === 'ssh2')
      b.row(
        `chain / direct, ${CLIENT_LABEL[r.client]}`,
        formatRatio(r.summary),
        '≥ 0.95',
        ok && r.summary.ratio >= 0.95,
      );
    else
      b.row(
        `chain / direct, ${label}`,
        formatRatio(r.summary),
        `≥ ${OPENSSH_RATIO_TARGET}`,
        ok && r.summary.ratio >= OPENSSH_RATIO_TARGET,
      );
  }
  // the clients against each other on the chain (the path users take)
  const chainOf = (c: string) => res.find((r) => r.client === c)?.summary.chainMedian ?? NaN;
  const best = Math.max(chainOf('openssh'), chainOf('openssh-gcm'));
  const clientRatio = chainOf('ssh2') / best;
  b.result.client = { ratio: r3(clientRatio) };
  b.row(
    'ssh2-sftp-client / best OpenSSH, through the chain',
    Number.isNaN(clientRatio) ? 'not measured' : r3(clientRatio).toString(),
    '≥ 1.0',
    clientRatio >= 1,
  );
  return res;
}
