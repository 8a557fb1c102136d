// The drill's faults, each with its heal, acting on the lab from outside the nodes as a chaos tool
// does: container life through the Engine API (kill, pause, restart), network faults in a node's
// own network namespace entered from the host (`nsenter -n`: nftables netdev rules matched on the
// peer's MAC, tc tbf), daemons through the node's systemd (docker exec), the delaying proxy with
// the HAProxy node's own haproxy binary. Heals are idempotent and `sweep` undoes every fault kind
// on every node, so an interrupted drill (Ctrl-C, a crash) leaves nothing behind.
import { $, shQuote } from '../exec/index.ts';
import { waitReady, type LabStatus } from '../lab/lab.ts';
import { labNode, type NodeInspect } from '../lab/node.ts';
import { vipAddress, type Topology } from '../topology/model.ts';
import { holdsVipCommand } from '../failover/pair.ts';
import type { ScheduledFault } from './schedule.ts';

export interface FaultEnv {
  t: Topology;
  status: LabStatus;
  log: (line: string) => void;
}

/** The nftables table a fault owns in its node's network namespace. */
export const faultTable = (id: string) => `wharf_drill_${id.replace(/[^a-zA-Z0-9_]/g, '_')}`;

/** Port of the delaying proxy on the HAProxy node. */
export const DELAY_PORT = 17022;
const DELAY_DIR = '/run/wharf-drill';
/** The delaying proxy runs as nobody: its own connections to the server are not redirected again. */
const NOBODY_UID = 65534;

/** `ip -o link` output → the interface whose MAC is `mac` (e.g. `eth1`). Pure. */
export function ifaceByMac(ipLink: string, mac: string): string | undefined {
  for (const line of ipLink.split('\n')) {
    const m = /^\d+:\s+([^:@\s]+)(?:@\S+)?:.*link\/ether\s+([0-9a-f:]{17})/i.exec(line);
    if (m && m[2]!.toLowerCase() === mac.toLowerCase()) return m[1];
  }
  return undefined;
}

/**
 * netdev rules dropping what crosses between this node and a peer on the given interfaces: every
 * frame from the peer's MAC (ingress) and to it (egress) — forwarded traffic included — or a share
 * of them (`percent`). Pure.
 */
export function linkRules(
  table: string,
  links: { iface: string; peerMac: string }[],
  percent?: number,
): string {
  const when = percent === undefined ? '' : `numgen random mod 100 < ${percent} `;
  const chains = links.flatMap(({ iface, peerMac }) => [
    `  chain in_${iface} {`,
    `    type filter hook ingress device ${JSON.stringify(iface)} priority -500; policy accept;`,
    `    ether saddr ${peerMac} ${when}drop`,
    '  }',
    `  chain out_${iface} {`,
    `    type filter hook egress device ${JSON.stringify(iface)} priority -500; policy accept;`,
    `    ether daddr ${peerMac} ${when}drop`,
    '  }',
  ]);
  return [`table netdev ${table} {`, ...chains, '}', ''].join('\n');
}

/** The delaying proxy's config: every connection waits `ms` before HAProxy connects on. Pure. */
export function delayProxyConfig(listen: string, server: string, port: number, ms: number): string {
  return [
    'global',
    '    user nobody',
    '    group nogroup',
    `    pidfile ${DELAY_DIR}/delay.pid`,
    '    daemon',
    'defaults',
    '    mode tcp',
    '    timeout connect 2s',
    '    timeout client 1h',
    '    timeout server 1h',
    'listen wharf_drill_delay',
    `    bind ${listen}:${DELAY_PORT}`,
    `    tcp-request inspect-delay ${ms}ms`,
    '    tcp-request content accept if WAIT_END',
    `    server s ${server}:${port}`,
    '',
  ].join('\n');
}

/** nat rule on the HAProxy node: its connections to server:port go to the delaying proxy. Pure. */
export function delayNat(table: string, listen: string, server: string, port: number): string {
  return [
    `table ip ${table} {`,
    '  chain out {',
    '    type nat hook output priority -100; policy accept;',
    `    meta skuid != ${NOBODY_UID} ip daddr ${server} tcp dport ${port} dnat to ${listen}:${DELAY_PORT}`,
    '  }',
    '}',
    '',
  ].join('\n');
}

async function inspect(env: FaultEnv, node: string): Promise<NodeInspect> {
  return labNode(env.t.name, node).inspect();
}

/** Run a command in a running node's network namespace (host tools: nft, tc, ip). */
async function inNetns(pid: number, argv: string[], input?: string) {
  const r = await $({
    nothrow: true,
    timeout: 20_000,
    ...(input !== undefined ? { input } : {}),
  })`nsenter -t ${pid} -n ${argv}`;
  return { code: r.exitCode ?? 128, stdout: r.stdout, stderr: r.stderr.trim() };
}

async function mustNetns(node: string, pid: number, argv: string[], input?: string): Promise<string> {
  const r = await inNetns(pid, argv, input);
  if (r.code !== 0) throw new Error(`${node}: ${argv.join(' ')}: ${r.stderr || `exit ${r.code}`}`);
  return r.stdout;
}

const dataNets = (i: NodeInspect) => Object.keys(i.macs).filter((n) => n !== 'mgmt');

/** The interfaces of `a` on each data network it shares with `b`, with b's MAC there. */
async function linksBetween(env: FaultEnv, a: string, b: string) {
  const ia = await inspect(env, a);
  const ib = await inspect(env, b);
  if (!ia.running || ia.pid === 0) throw new Error(`${a}: not running`);
  const ipLink = await mustNetns(a, ia.pid, ['ip', '-o', 'link']);
  const links: { iface: string; peerMac: string }[] = [];
  for (const net of dataNets(ia)) {
    const peerMac = ib.macs[net];
    if (!peerMac) continue;
    const iface = ifaceByMac(ipLink, ia.macs[net]!);
    if (!iface) throw new Error(`${a}: no interface with MAC ${ia.macs[net]} (network ${net})`);
    links.push({ iface, peerMac });
  }
  if (links.length === 0) throw new Error(`${a} and ${b} share no data network`);
  return { pid: ia.pid, links };
}

async function dataIfaces(env: FaultEnv, node: string) {
  const i = await inspect(env, node);
  if (!i.running || i.pid === 0) return { pid: 0, ifaces: [] as string[] };
  const ipLink = await mustNetns(node, i.pid, ['ip', '-o', 'link']);
  const ifaces = dataNets(i)
    .map((n) => ifaceByMac(ipLink, i.macs[n]!))
    .filter((x): x is string => !!x);
  return { pid: i.pid, ifaces };
}

async function execOn(env: FaultEnv, node: string, cmd: string, timeoutMs = 30_000) {
  const r = await labNode(env.t.name, node).exec(['sh', '-c', cmd], { timeoutMs });
  if (r.code !== 0) throw new Error(`${node}: ${cmd}: ${r.stderr.trim() || `exit ${r.code}`}`);
  return r.stdout;
}

/** The disk-full ballast: in lsyncd's temp folder (never replicated, never compared, never noticed). */
function ballastOf(env: FaultEnv) {
  const base = env.t.sftp.chrootBase;
  const tmp = env.t.replication.lsyncd.tempDir.replace(/^\/+|\/+$/g, '');
  return { base, ballast: `${base}/${tmp}/wharf-drill-ballast` };
}

const UNITS: Record<string, string> = { lsyncd: 'lsyncd', sshd: 'ssh', notifier: 'wharf-notify' };
const unitOf = (f: ScheduledFault) => {
  const u = UNITS[String(f.params.process)];
  if (!u) throw new Error(`${f.id}: unknown process ${String(f.params.process)} (lsyncd, sshd, notifier)`);
  return u;
};

async function ready(env: FaultEnv, node: string) {
  await waitReady(env.status.sshConfig, node, Date.now() + 120_000);
}

/** Which of the nodes holds the HAProxy pair's floating address now (read inside each container). */
export async function vipHolder(env: FaultEnv, nodes: string[]): Promise<string | undefined> {
  const vip = vipAddress(env.t);
  for (const n of nodes) {
    const node = labNode(env.t.name, n);
    const i = await node.inspectOrNull();
    if (!i?.running || i.paused) continue;
    const r = await node.exec(['sh', '-c', holdsVipCommand(vip)], { timeoutMs: 30_000 });
    if (r.code === 0) return n;
  }
  return undefined;
}

/** The HAProxy nodes a delay fault scheduled on `hap` acts on: the whole pair when `hap` is in it. */
function delayNodes(env: FaultEnv, hap: string): string[] {
  const pair = env.t.haproxy.pair.nodes;
  return pair.includes(hap) ? [...pair] : [hap];
}

/** Apply a fault; returns what was done (for the history). Throws when it could not be applied. */
export async function injectFault(env: FaultEnv, f: ScheduledFault): Promise<string> {
  const [a, b] = f.targets as [string, string | undefined];
  const table = faultTable(f.id);
  switch (f.kind) {
    case 'kill':
      await labNode(env.t.name, a).kill();
      return `docker kill ${a}`;
    case 'pause':
      await labNode(env.t.name, a).pause();
      return `docker pause ${a}`;
    case 'haproxy-active': {
      const holder = await vipHolder(env, f.targets);
      if (!holder) throw new Error(`no node of ${f.targets.join(', ')} holds ${vipAddress(env.t)}`);
      await labNode(env.t.name, holder).kill();
      return `docker kill ${holder} (it held ${vipAddress(env.t)})`;
    }
    case 'restart':
      await labNode(env.t.name, a).restart(2);
      return `docker restart ${a}`;
    case 'partition':
    case 'loss': {
      const { pid, links } = await linksBetween(env, a, b!);
      const pct = f.kind === 'loss' ? Number(f.params.percent) : undefined;
      await mustNetns(a, pid, ['nft', '-f', '-'], linkRules(table, links, pct));
      return `${f.kind === 'loss' ? `${pct}% loss` : 'partition'} ${a} ⇹ ${b} on ${links.map((l) => l.iface).join(', ')}`;
    }
    case 'bandwidth': {
      const { pid, ifaces } = await dataIfaces(env, a);
      if (pid === 0) throw new Error(`${a}: not running`);
      const kbit = Number(f.params.kbit);
      for (const i of ifaces)
        await mustNetns(a, pid, [
          'tc',
          'qdisc',
          'replace',
          'dev',
          i,
          'root',
          'tbf',
          'rate',
          `${kbit}kbit`,
          'burst',
          '64kb',
          'latency',
          '200ms',
        ]);
      return `egress of ${a} limited to ${kbit} kbit/s on ${ifaces.join(', ')}`;
    }
    case 'delay': {
      // every HAProxy that may carry the traffic: with a pair, both (the address may move while
      // the fault holds; the scheduled node is only the first of them)
      const haps = delayNodes(env, a);
      const server = env.status.nodes[b!]?.addresses.lan;
      const port = env.t.sftp.port;
      for (const h of haps) {
        const hap = await inspect(env, h);
        const listen = hap.addresses.lan;
        if (!server || !listen) throw new Error(`delay ${h} → ${b}: no lan address`);
        await execOn(
          env,
          h,
          `mkdir -p ${DELAY_DIR} && printf %s ${shQuote(delayProxyConfig(listen, server, port, Number(f.params.ms)))} > ${DELAY_DIR}/delay.cfg && haproxy -q -f ${DELAY_DIR}/delay.cfg`,
        );
        await mustNetns(h, hap.pid, ['nft', '-f', '-'], delayNat(table, listen, server, port));
      }
      return `connections ${haps.join(', ')} → ${b}:${port} delayed ${f.params.ms} ms`;
    }
    case 'disk-full': {
      const { base, ballast } = ballastOf(env);
      const out = await execOn(
        env,
        a,
        `mountpoint -q ${shQuote(base)} || { echo "${base} is not a mount of its own" >&2; exit 3; }; ` +
          `mkdir -p "$(dirname ${shQuote(ballast)})" && avail=$(df -B1 --output=avail ${shQuote(base)} | tail -1) && ` +
          `if [ "$avail" -gt 0 ]; then fallocate -l "$avail" ${shQuote(ballast)} 2>/dev/null || fallocate -l $((avail - 1048576)) ${shQuote(ballast)}; fi && ` +
          `df -B1 --output=avail,size ${shQuote(base)} | tail -1`,
        60_000,
      );
      const [avail, size] = out.trim().split(/\s+/).map(Number);
      return `${base} on ${a} filled: ${avail} bytes free of ${size}`;
    }
    case 'process': {
      const unit = unitOf(f);
      await execOn(env, a, `systemctl kill -s KILL --kill-whom=main ${unit}`);
      return `SIGKILL ${unit}'s main process on ${a}`;
    }
  }
}

/** Undo a fault (idempotent: healing a healed or never-applied fault is fine). */
export async function healFault(env: FaultEnv, f: ScheduledFault): Promise<string> {
  const [a, b] = f.targets as [string, string | undefined];
  const n = labNode(env.t.name, a);
  const table = faultTable(f.id);
  switch (f.kind) {
    case 'kill':
    case 'restart': {
      const i = await n.inspect();
      if (i.paused) await n.unpause();
      if (!i.running) await n.start();
      await ready(env, a);
      return `${a} running, sshd answers`;
    }
    case 'pause': {
      if ((await n.inspect()).paused) await n.unpause();
      return `${a} unpaused`;
    }
    case 'haproxy-active': {
      const started: string[] = [];
      for (const x of f.targets) {
        const node = labNode(env.t.name, x);
        const i = await node.inspect();
        if (i.paused) await node.unpause();
        if (!i.running) {
          await node.start();
          started.push(x);
        }
        await ready(env, x);
      }
      return started.length
        ? `${started.join(', ')} running, sshd answers`
        : `${f.targets.join(', ')} running`;
    }
    case 'partition':
    case 'loss': {
      const i = await n.inspect();
      if (!i.running || i.pid === 0) return `${a} not running: its rules went with its network namespace`;
      const has = await inNetns(i.pid, ['nft', 'list', 'table', 'netdev', table]);
      if (has.code === 0) await mustNetns(a, i.pid, ['nft', 'delete', 'table', 'netdev', table]);
      return `${table} removed from ${a} (${f.kind} ${a} ⇹ ${b})`;
    }
    case 'delay': {
      const done: string[] = [];
      for (const h of delayNodes(env, a)) {
        const i = await labNode(env.t.name, h).inspect();
        if (!i.running || i.pid === 0) {
          done.push(`${h} not running: its rules went with its network namespace`);
          continue;
        }
        await execOn(
          env,
          h,
          `[ -f ${DELAY_DIR}/delay.pid ] && kill $(cat ${DELAY_DIR}/delay.pid) 2>/dev/null; rm -f ${DELAY_DIR}/delay.pid; true`,
        );
        const has = await inNetns(i.pid, ['nft', 'list', 'table', 'ip', table]);
        if (has.code === 0) await mustNetns(h, i.pid, ['nft', 'delete', 'table', 'ip', table]);
        done.push(`${table} removed from ${h}`);
      }
      return `${done.join('; ')} (delay → ${b})`;
    }
    case 'bandwidth': {
      const { pid, ifaces } = await dataIfaces(env, a);
      for (const i of ifaces) {
        const q = await inNetns(pid, ['tc', 'qdisc', 'show', 'dev', i, 'root']);
        if (/\btbf\b/.test(q.stdout)) await mustNetns(a, pid, ['tc', 'qdisc', 'del', 'dev', i, 'root']);
      }
      return `tbf removed from ${a}`;
    }
    case 'disk-full': {
      const { ballast } = ballastOf(env);
      if (!(await n.inspect()).running) return `${a} not running`;
      await execOn(env, a, `rm -f ${shQuote(ballast)}`);
      return `ballast removed from ${a}`;
    }
    case 'process': {
      const unit = unitOf(f);
      await execOn(env, a, `systemctl start ${unit} && systemctl is-active ${unit}`, 60_000);
      return `${unit} active on ${a}`;
    }
  }
}

/**
 * Undo every drill fault on every node, whatever state a killed drill left: unpause, start,
 * delete every wharf_drill_* nftables table, remove tbf qdiscs, stop a delaying proxy.
 */
export async function sweep(env: FaultEnv, nodes: string[]): Promise<string[]> {
  const done: string[] = [];
  for (const node of nodes) {
    const n = labNode(env.t.name, node);
    let i = await n.inspectOrNull();
    if (!i) continue;
    if (i.paused) {
      await n.unpause();
      done.push(`${node}: unpaused`);
    }
    if (!i.running) {
      await n.start();
      await ready(env, node);
      done.push(`${node}: started`);
      i = await n.inspect();
    }
    const tables = await inNetns(i.pid, ['nft', 'list', 'tables']);
    for (const m of tables.stdout.matchAll(/^table (netdev|ip|inet) (wharf_drill_\S+)$/gm)) {
      await mustNetns(node, i.pid, ['nft', 'delete', 'table', m[1]!, m[2]!]);
      done.push(`${node}: nftables ${m[1]} ${m[2]} deleted`);
    }
    const { ifaces } = await dataIfaces(env, node);
    for (const d of ifaces) {
      const q = await inNetns(i.pid, ['tc', 'qdisc', 'show', 'dev', d, 'root']);
      if (/\btbf\b/.test(q.stdout)) {
        await mustNetns(node, i.pid, ['tc', 'qdisc', 'del', 'dev', d, 'root']);
        done.push(`${node}: tbf on ${d} removed`);
      }
    }
    const r = await labNode(env.t.name, node).exec(
      [
        'sh',
        '-c',
        `[ -f ${DELAY_DIR}/delay.pid ] || exit 3; kill $(cat ${DELAY_DIR}/delay.pid); rm -f ${DELAY_DIR}/delay.pid`,
      ],
      { timeoutMs: 10_000 },
    );
    if (r.code === 0) done.push(`${node}: delaying proxy stopped`);
  }
  return done;
}
