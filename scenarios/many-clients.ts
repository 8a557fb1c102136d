// many-clients: HAProxy's per-source limits stop abuse, not customers (issue 13).
// Sources: wan-client holds extra addresses of the lab's wan subnet (secondary addresses, removed
// afterwards); a port per source on wan-client is DNATed to the router's WAN address and SNATed to
// that source, so the clients of this host's workload reach the chain (router → firewall → HAProxy)
// from the source HAProxy must judge. Cases, each through the whole chain with the ledger checked on
// main and sub (sha256):
//   fleet (trusted):  64 clients from ONE address of the trusted range (haproxy.limits.trusted);
//   8 sources:        64 clients spread over 8 untrusted addresses;
//   bursts:           a steady workload (a trusted address + the 8 sources) while an untrusted address
//                     opens 500 connections at once (cut by the rate limit on accepted connections),
//                     then a trusted one does (cut by the trusted cap of open connections); the
//                     workload's files/s before, during and after, and its failed attempts;
//   fleet (unlisted): `wharf load --target direct` (this host's own address on the wan network, in
//                     no trusted range): more clients than the rate limit lets in at once; they back
//                     off and all finish (before: rejected retries renewed the penalty, a livelock).
//                     Its output carries none of ssh2-sftp-client's listener lines.
// CI size: 3 files of 16 KiB per client, an unlisted fleet of 28 × 2 × 64 KiB. WHARF_MANY_CLIENTS=full:
// 20 files of 64 KiB per client and the issue's 48 × 20 × 64 KiB fleet.
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { $ } from '../src/exec/index.ts';
import { socatLine } from '../src/failover/index.ts';
import { REPO_ROOT } from '../src/lab/state.ts';
import { RATE_TABLE } from '../src/render/haproxy.ts';
import type { Scenario, ScenarioContext } from '../src/scenario/types.ts';
import { inSubnet, intToIp, parseCidr } from '../src/topology/net.ts';
import { haproxyNodes, sftpNode } from '../src/topology/model.ts';
import { formatVerdict } from '../src/workload/checker.ts';
import { runWorkload, type SftpEndpoint, type WorkloadResult } from '../src/workload/generator.ts';
import type { Ack } from '../src/workload/ledger.ts';
import {
  activeHaproxyNode,
  ensureScenarioLab,
  resetScenarioLab,
  scenarioTopology,
  type ScenarioLab,
} from './lab.ts';
import { checkEverywhere, sleep } from './outage.ts';
import { WAN_CLIENT, onWan } from './wan.ts';

const PORT_BASE = 31000;
/**
 * Clients of a case start this far apart (64 clients over ~3 s). 64 SSH key exchanges at the same
 * instant on a CPU-starved lab node delayed sshd's banner to HAProxy's health check past its 1 s
 * timeout: main was marked down and its sessions cut (on-marked-down shutdown-sessions).
 */
const RAMP_MS = 50;
const TABLE = 'wharf_many';
/** The library's default listener lines (ssh2-sftp-client prints them with console.log/error). */
export const LISTENER_LINE = /Global (close|end|error) listener/;

export const CASES = ['fleet', 'eight', 'bursts', 'unlisted'] as const;

interface Sizes {
  cases: readonly string[];
  files: number;
  size: number;
  fleetClients: number;
  fleetFiles: number;
}

/**
 * WHARF_MANY_CLIENTS: "ci" (default) or "full"; WHARF_MANY_CLIENTS_CASES: a comma list of CASES to
 * run (default all).
 */
export function manyClientsSizes(
  env = process.env.WHARF_MANY_CLIENTS,
  only = process.env.WHARF_MANY_CLIENTS_CASES,
): Sizes {
  const cases = only ? only.split(',').map((c) => c.trim()) : [...CASES];
  const bad = cases.filter((c) => !(CASES as readonly string[]).includes(c));
  if (bad.length)
    throw new Error(
      `WHARF_MANY_CLIENTS_CASES: expected some of ${CASES.join(',')}, got ${JSON.stringify(only)}`,
    );
  if (env === undefined || env === '' || env === 'ci')
    return { cases, files: 3, size: 16 * 1024, fleetClients: 28, fleetFiles: 2 };
  if (env === 'full') return { cases, files: 20, size: 64 * 1024, fleetClients: 48, fleetFiles: 20 };
  throw new Error(`WHARF_MANY_CLIENTS: expected "full" or "ci", got ${JSON.stringify(env)}`);
}

interface Source {
  addr: string;
  port: number;
}

/** wan-client: extra addresses and a DNAT+SNAT port per source; undone by `teardown`. */
async function setupSources(lab: ScenarioLab, addrs: string[]): Promise<Source[]> {
  const me = lab.status.nodes[WAN_CLIENT]!.addresses.wan!;
  const router = lab.status.direct.host;
  const sftpPort = lab.status.direct.ports.sftp ?? Object.values(lab.status.direct.ports)[0]!;
  const sources = addrs.map((addr, i) => ({ addr, port: PORT_BASE + i }));
  const nft = [
    `table ip ${TABLE} {}`,
    `delete table ip ${TABLE}`,
    `table ip ${TABLE} {`,
    '  chain pre {',
    '    type nat hook prerouting priority dstnat - 10; policy accept;',
    ...sources.map(
      (s, i) =>
        `    ip daddr ${me} tcp dport ${s.port} meta mark set ${0x7700 + i} dnat to ${router}:${sftpPort}`,
    ),
    '  }',
    '  chain post {',
    '    type nat hook postrouting priority srcnat - 10; policy accept;',
    ...sources.map((s, i) => `    meta mark ${0x7700 + i} snat to ${s.addr}`),
    '  }',
    '}',
  ].join('\n');
  const r = await onWan(
    lab,
    [
      'set -e',
      `dev=$(ip -o -4 addr show | awk -v a='${me}/' 'index($4,a)==1{print $2; exit}')`,
      '[ -n "$dev" ] || { echo "no interface holds ' + me + '"; exit 1; }',
      `for a in ${addrs.join(' ')}; do ip addr replace "$a/32" dev "$dev"; done`,
      `nft -f - <<'EOF'\n${nft}\nEOF`,
    ].join('\n'),
  );
  if (r.code !== 0) throw new Error(`wan-client: sources not set up: ${r.stdout}${r.stderr}`);
  return sources;
}

async function teardown(lab: ScenarioLab, addrs: string[]): Promise<void> {
  const me = lab.status.nodes[WAN_CLIENT]!.addresses.wan!;
  await onWan(
    lab,
    [
      `nft delete table ip ${TABLE} 2>/dev/null`,
      `dev=$(ip -o -4 addr show | awk -v a='${me}/' 'index($4,a)==1{print $2; exit}')`,
      `for a in ${addrs.join(' ')}; do ip addr del "$a/32" dev "$dev" 2>/dev/null; done`,
      'true',
    ].join('\n'),
  );
}

/** Forget every source in HAProxy's limits table (each case starts from a clean slate). */
async function clearTable(lab: ScenarioLab): Promise<void> {
  const t = lab.t;
  // both of a pair: peers would push a stale entry back from the other node
  for (const n of haproxyNodes(t))
    await lab.sh(n, socatLine(t.haproxy.stats.socket, [`clear table ${RATE_TABLE}`]));
}

/** Wait until every HAProxy server of main is UP (a case on a failed-over stack proves nothing). */
async function settled(lab: ScenarioLab, timeoutMs = 30_000): Promise<string> {
  const t = lab.t;
  const main = sftpNode(t, 'main').name;
  const end = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const r = await lab.sh(await activeHaproxyNode(lab), socatLine(t.haproxy.stats.socket, ['show stat']));
    const lines = r.stdout.split('\n');
    const head = lines[0]!.replace(/^# /, '').split(',');
    const st = head.indexOf('status');
    const rows = lines.map((l) => l.split(',')).filter((f) => f[1] === main);
    last = rows.map((f) => `${f[0]}/${main} ${f[st]}`).join(', ');
    if (rows.length && rows.every((f) => f[st] === 'UP')) return '';
    if (Date.now() > end) return last || 'no HAProxy server rows';
    await sleep(1000);
  }
}

/** HAProxy's denied connections (dcon) summed over the frontends of the active node (the VIP holder). */
async function deniedConnections(lab: ScenarioLab): Promise<number> {
  const t = lab.t;
  const r = await lab.sh(await activeHaproxyNode(lab), socatLine(t.haproxy.stats.socket, ['show stat']));
  const lines = r.stdout.split('\n');
  const head = lines[0]!.replace(/^# /, '').split(',');
  const i = head.indexOf('dcon');
  return lines
    .filter((l) => /^[^,]+,FRONTEND,/.test(l))
    .reduce((n, l) => n + Number(l.split(',')[i] ?? 0), 0);
}

/**
 * `n` connections opened at once from this host to a source's port; each is accepted when HAProxy
 * passes it on and the SSH banner arrives, rejected when it closes first. Accepted ones are held for
 * `holdMs` (idle, before login), then closed.
 */
export async function burst(
  host: string,
  port: number,
  n: number,
  holdMs: number,
): Promise<{ accepted: number; rejected: number; silent: number; ms: number }> {
  const t0 = Date.now();
  const socks: Socket[] = [];
  const outcome = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<'accepted' | 'rejected' | 'silent'>((resolve) => {
          const s = connect({ host, port });
          socks.push(s);
          let done = false;
          const end = (v: 'accepted' | 'rejected' | 'silent') => {
            if (!done) {
              done = true;
              resolve(v);
            }
          };
          s.setTimeout(5000, () => end('silent'));
          s.once('data', (d) => end(d.toString('latin1').startsWith('SSH-') ? 'accepted' : 'rejected'));
          s.once('error', () => end('rejected'));
          s.once('close', () => end('rejected'));
        }),
    ),
  );
  const ms = Date.now() - t0;
  await sleep(Math.max(0, holdMs - ms));
  for (const s of socks) s.destroy();
  const count = (v: string) => outcome.filter((o) => o === v).length;
  return { accepted: count('accepted'), rejected: count('rejected'), silent: count('silent'), ms };
}

const perSec = (acks: Ack[], from: number, to: number) =>
  Math.round((acks.filter((a) => a.ackAt >= from && a.ackAt < to).length / ((to - from) / 1000)) * 10) / 10;

function summary(w: WorkloadResult): string {
  return `${w.acks.length} acknowledged in ${(w.elapsedMs / 1000).toFixed(1)} s, ${w.failures.length} failed attempts (${w.connectFailures} before login), ${w.abandoned.length} abandoned`;
}

async function ledgerCheck(
  ctx: ScenarioContext,
  lab: ScenarioLab,
  what: string,
  acks: Ack[],
  prefix: string,
) {
  const c = await checkEverywhere(lab, acks, prefix);
  ctx.log(formatVerdict(c.verdict));
  for (const nv of c.verdict.nodes)
    ctx.check(
      `${what}: every acknowledged upload on ${nv.node} with its sha256`,
      acks.length > 0 && nv.ok === acks.length && !nv.lost.length && !nv.corrupt.length,
      `ok ${nv.ok}/${acks.length}, lost ${nv.lost.length}, corrupt ${nv.corrupt.length}`,
    );
}

/** Before a case: main in rotation everywhere, HAProxy's limits table empty. */
async function ready(ctx: ScenarioContext, lab: ScenarioLab, what: string): Promise<boolean> {
  let bad = await settled(lab);
  if (bad) {
    // a case before this one (or the lab's own flapping) left main out: reset, as between scenarios
    ctx.log(`${what}: stack not settled (${bad}): resetting it`);
    await resetScenarioLab(lab);
    bad = await settled(lab);
  }
  if (bad) return ctx.check(`${what}: the stack is settled before the case (main UP in HAProxy)`, false, bad);
  await clearTable(lab);
  return true;
}

export const manyClients: Scenario = {
  name: 'many-clients',
  description:
    'per-source limits stop abuse, not customers: 64 clients from a trusted address and 64 over 8 addresses finish; 500-connection bursts are cut while others carry on; an unlisted fleet backs off and finishes; no library listener lines',
  async run(ctx) {
    const sizes = manyClientsSizes();
    const lab = await ensureScenarioLab(ctx.log);
    const t = lab.t;
    const wanNet = t.networks.wan.subnet;
    const trusted = t.haproxy.limits.trusted.find((r) => {
      const c = r.includes('/') ? r : `${r}/32`;
      return parseCidr(c).size >= 4 && inSubnet(intToIp(parseCidr(c).base), wanNet);
    });
    if (
      !ctx.check(
        'the topology trusts a range inside the lab wan subnet (haproxy.limits.trusted)',
        trusted !== undefined,
        trusted ?? `none of ${JSON.stringify(t.haproxy.limits.trusted)} lies in ${wanNet} with ≥ 4 addresses`,
      )
    )
      return;
    const tb = parseCidr(trusted!).base;
    const fleetAddr = intToIp(tb + 1);
    const trustedBurstAddr = intToIp(tb + 2);
    // untrusted: past the trusted range (the .192/28 of the scenario lab: .210–.217, .220)
    const base = parseCidr(wanNet).base + 210;
    const eight = Array.from({ length: 8 }, (_, i) => intToIp(base + i));
    const burstAddr = intToIp(base + 10);
    const addrs = [fleetAddr, trustedBurstAddr, ...eight, burstAddr];
    for (const a of addrs)
      if (!inSubnet(a, wanNet) || Object.values(lab.status.nodes).some((n) => n.addresses.wan === a))
        throw new Error(`source ${a}: not a free address of the lab's wan subnet ${wanNet}`);
    const me = lab.status.nodes[WAN_CLIENT]!.addresses.wan!;
    const sources = await setupSources(lab, addrs);
    const src = new Map(sources.map((s) => [s.addr, s]));
    const ep = (addr: string): SftpEndpoint => ({
      ...lab.endpoint,
      host: me,
      port: src.get(addr)!.port,
      // 64 handshakes at once on 2 shared cores: slow is not refused
      readyTimeoutMs: 20_000,
    });
    const run = (
      prefix: string,
      clients: number,
      endpoint: (c: number) => SftpEndpoint,
      o: { files?: number; signal?: AbortSignal } = {},
    ) =>
      runWorkloadPerClient(prefix, clients, endpoint, {
        files: sizes.files,
        size: sizes.size,
        dir: t.sftp.uploadDir,
        ...o,
      });
    const stamp = Date.now().toString(36);
    const r = t.haproxy.rateLimit;
    try {
      // 1. a customer's fleet behind one (trusted) address
      if (sizes.cases.includes('fleet') && (await ready(ctx, lab, 'fleet (trusted)'))) {
        const p1 = `many-fleet-${stamp}`;
        const w1 = await run(p1, 64, () => ep(fleetAddr));
        ctx.metric('fleet (trusted, 1 source): time', w1.elapsedMs, 'ms');
        ctx.metric('fleet (trusted, 1 source): failed attempts', w1.failures.length, 'attempts');
        ctx.check(
          `64 clients from one trusted address (${fleetAddr}) all finish`,
          w1.acks.length === 64 * sizes.files && !w1.abandoned.length,
          summary(w1),
        );
        await ledgerCheck(ctx, lab, 'fleet', w1.acks, p1);
      }

      // 2. 64 clients over 8 untrusted addresses (8 each: under every per-source limit)
      if (sizes.cases.includes('eight') && (await ready(ctx, lab, '8 sources'))) {
        const p2 = `many-eight-${stamp}`;
        const w2 = await run(p2, 64, (c) => ep(eight[c % 8]!));
        ctx.metric('8 sources: time', w2.elapsedMs, 'ms');
        ctx.metric('8 sources: failed attempts', w2.failures.length, 'attempts');
        ctx.check(
          '64 clients spread over 8 addresses all finish',
          w2.acks.length === 64 * sizes.files && !w2.abandoned.length,
          summary(w2),
        );
        await ledgerCheck(ctx, lab, '8 sources', w2.acks, p2);
      }

      // 3. bursts while others work: 8 clients from the trusted address + 1 per untrusted source
      if (sizes.cases.includes('bursts') && (await ready(ctx, lab, 'bursts'))) {
        const p3 = `many-steady-${stamp}`;
        const ac = new AbortController();
        const steadyClients = 16;
        const steady = run(p3, steadyClients, (c) => (c < 8 ? ep(fleetAddr) : ep(eight[c - 8]!)), {
          files: 1_000_000,
          signal: ac.signal,
        });
        const acks: Ack[] = [];
        const phaseMs = 3000;
        const hold = 3000;
        const t0 = Date.now();
        let s1 = 0;
        let e1 = 0;
        let s2 = 0;
        let e2 = 0;
        let b1: Awaited<ReturnType<typeof burst>> | undefined;
        let b2: Awaited<ReturnType<typeof burst>> | undefined;
        let denied1 = 0;
        let denied2 = 0;
        let w3: WorkloadResult;
        let stopAt = 0;
        try {
          await sleep(phaseMs + steadyClients * RAMP_MS);
          const d0 = await deniedConnections(lab);
          s1 = Date.now();
          b1 = await burst(me, src.get(burstAddr)!.port, 500, hold);
          e1 = Date.now();
          const d1 = await deniedConnections(lab);
          denied1 = d1 - d0;
          s2 = Date.now();
          b2 = await burst(me, src.get(trustedBurstAddr)!.port, 500, hold);
          e2 = Date.now();
          denied2 = (await deniedConnections(lab)) - d1;
          await sleep(phaseMs);
        } finally {
          stopAt = Date.now();
          ac.abort();
          w3 = await steady;
        }
        const end = Date.now();
        acks.push(...w3.acks);
        const before = perSec(acks, t0 + steadyClients * RAMP_MS + 500, s1);
        const during1 = perSec(acks, s1, e1);
        const during2 = perSec(acks, s2, e2);
        const after = perSec(acks, e2, stopAt);
        ctx.metric('others: files/s before the bursts', before, 'files/s');
        ctx.metric('others: files/s during the untrusted burst', during1, 'files/s');
        ctx.metric('others: files/s during the trusted burst', during2, 'files/s');
        ctx.metric('others: files/s after the bursts', after, 'files/s');
        ctx.series(
          'others: acknowledged uploads per second',
          Array.from({ length: Math.ceil((end - t0) / 1000) }, (_, i) => ({
            t: t0 + i * 1000,
            v: acks.filter((a) => a.ackAt >= t0 + i * 1000 && a.ackAt < t0 + (i + 1) * 1000).length,
          })),
          'files/s',
        );
        ctx.event('untrusted burst (500 connections)', s1, { until: e1 });
        ctx.event('trusted burst (500 connections)', s2, { until: e2 });
        // the stop cuts the uploads in flight: those are not the bursts' doing
        const steadyFails = w3.failures.filter((f) => f.at < stopAt);
        ctx.metric('others: failed attempts during the run', steadyFails.length, 'attempts');
        const cap = t.haproxy.limits.trustedConcurrent;
        ctx.metric('untrusted burst: denied by HAProxy', denied1, 'connections');
        ctx.metric('trusted burst: denied by HAProxy', denied2, 'connections');
        ctx.metric('untrusted burst: banners', b1!.accepted, 'connections');
        ctx.metric('untrusted burst: closed without banner', b1!.rejected, 'connections');
        ctx.metric('trusted burst: banners', b2!.accepted, 'connections');
        ctx.metric('trusted burst: closed without banner', b2!.rejected, 'connections');
        ctx.check(
          `an untrusted address opening 500 connections at once is cut at the rate limit (${r.connections} per ${r.period})`,
          // HAProxy's own count of refused connections is the truth; every one of them was closed
          // without a banner on the client side, and the client got banners only from the others
          // (an accepted connection with no server left to take it is closed too: ≥ and ≤)
          // (sess_rate counts a session once the rules let it through: a connection evaluated on
          // another HAProxy thread at the same moment can pass before the count moves — 21 of 20
          // seen in CI — so up to 2 over the limit, never a fleet's worth)
          denied1 < 500 &&
            500 - denied1 <= r.connections + 2 &&
            b1!.rejected >= denied1 &&
            b1!.accepted + b1!.silent <= 500 - denied1,
          `${b1!.accepted} accepted, ${b1!.rejected} rejected, ${b1!.silent} silent in ${b1!.ms} ms; HAProxy denied ${denied1}`,
        );
        ctx.check(
          `a trusted address opening 500 connections at once is cut at its cap of open connections (${cap})`,
          denied2 === 500 - cap && b2!.rejected >= denied2 && b2!.accepted + b2!.silent <= cap,
          `${b2!.accepted} accepted, ${b2!.rejected} rejected, ${b2!.silent} silent in ${b2!.ms} ms; HAProxy denied ${denied2}`,
        );
        ctx.check(
          'the other clients carry on through both bursts (uploads acknowledged in every phase, no failed attempt)',
          before > 0 && during1 > 0 && during2 > 0 && after > 0 && steadyFails.length === 0,
          `files/s before ${before}, during ${during1} / ${during2}, after ${after}; ${steadyFails.length} failed attempts${steadyFails[0] ? ` (first: ${steadyFails[0].error})` : ''}`,
        );
        await ledgerCheck(ctx, lab, 'others', acks, p3);
      }

      // 4. a fleet behind an address in no trusted range: `wharf load`, as a user runs it
      if (sizes.cases.includes('unlisted') && (await ready(ctx, lab, 'fleet (unlisted)'))) {
        const { file } = scenarioTopology();
        const p4 = `many-unlisted-${stamp}`;
        const n = sizes.fleetClients;
        const r4 = await $({
          nothrow: true,
          timeout: 300_000,
          stdio: ['ignore', 'pipe', 'pipe'],
        })`node ${join(
          REPO_ROOT,
          'bin/wharf.mjs',
        )} load -c ${file} --target direct --clients ${n} --files ${sizes.fleetFiles} --size 64KiB --prefix ${p4} --replication-timeout 60s --json`;
        let j: Record<string, unknown> = {};
        try {
          j = JSON.parse(r4.stdout) as Record<string, unknown>;
        } catch {
          /* checked below */
        }
        const num = (k: string) => Number(j[k] ?? NaN);
        ctx.metric('fleet (unlisted, 1 source): time', num('elapsedMs'), 'ms');
        ctx.metric('fleet (unlisted, 1 source): failed attempts', num('failedAttempts'), 'attempts');
        ctx.metric('fleet (unlisted, 1 source): backoff', num('backoffMs'), 'ms');
        ctx.check(
          `${n} clients from one unlisted address (this host, ${r.connections} new connections per ${r.period}) back off and all finish, nothing lost`,
          r4.exitCode === 0 &&
            j.ok === true &&
            num('acknowledged') === n * sizes.fleetFiles &&
            Array.isArray(j.abandoned) &&
            j.abandoned.length === 0,
          `exit ${r4.exitCode}; ${num('acknowledged')}/${n * sizes.fleetFiles} acknowledged in ${num('elapsedMs')} ms, ${num('failedAttempts')} failed attempts (${num('failedConnects')} before login), ${num('backoffMs')} ms of backoff; ${String(
            r4.stderr,
          )
            .split('\n')
            .filter((l) => !l.startsWith('  '))
            .slice(-2)
            .join(' ')}`,
        );
        const lines = `${r4.stdout}\n${r4.stderr}`.split('\n');
        const listener = lines.filter((l) => LISTENER_LINE.test(l));
        const progress = lines.filter((l) => /^ {2}(retry in|gave up|connection of client)/.test(l));
        ctx.check(
          "`wharf load`'s output has none of ssh2-sftp-client's listener lines; retries are wharf's own progress lines",
          listener.length === 0 && (num('failedAttempts') === 0 || progress.length >= num('failedAttempts')),
          `${listener.length} listener lines${listener[0] ? ` (first: ${listener[0]})` : ''}; ${progress.length} progress lines on stderr for ${num('failedAttempts')} failed attempts; stdout is one JSON document: ${Object.keys(j).length > 0}`,
        );
      }
    } finally {
      await teardown(lab, addrs).catch(() => {});
      await clearTable(lab).catch(() => {});
    }
  },
};

/** runWorkload with a per-client endpoint: one runWorkload per client, started together. */
async function runWorkloadPerClient(
  prefix: string,
  clients: number,
  endpoint: (client: number) => SftpEndpoint,
  o: { files: number; size: number; dir: string; signal?: AbortSignal },
): Promise<WorkloadResult> {
  const t0 = Date.now();
  const rs = await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      // a fleet does not connect within one millisecond: clients start RAMP_MS apart
      await sleep(c * RAMP_MS);
      return runWorkload({
        retryDelayMs: 200,
        retryMaxDelayMs: 5000,
        maxAttempts: 20,
        size: o.size,
        dir: o.dir,
        ...(o.signal ? { signal: o.signal } : {}),
        endpoint: endpoint(c),
        clients: 1,
        filesPerClient: o.files,
        prefix: `${prefix}-c${c}`,
      });
    }),
  );
  const elapsedMs = Date.now() - t0;
  const bytes = rs.reduce((n, r) => n + r.bytes, 0);
  return {
    acks: rs.flatMap((r) => r.acks),
    failures: rs.flatMap((r) => r.failures),
    connectFailures: rs.reduce((n, r) => n + r.connectFailures, 0),
    backoffMs: rs.reduce((n, r) => n + r.backoffMs, 0),
    bytes,
    elapsedMs,
    throughputMBs: bytes / 1e6 / (elapsedMs / 1000),
    abandoned: rs.flatMap((r) => r.abandoned),
  };
}
