// read-write-split: the read port serves reads only, from nodes that hold the data, sticky per
// source, and a replica that falls behind leaves the read pool (pitfalls 13, 20). Through the lab's
// WAN entry with OpenSSH sftp:
// 1. files uploaded through the write port, replicated to sub;
// 2. stickiness: HAProxy's stick table cleared, then several read-port connections from the wan
//    client and from a second source (this host straight at the router's WAN address): which reader
//    served each one is read from HAProxy's own per-server session counters (stot), and the stick
//    table's entry for the source is checked against it; each listing shows the uploaded files;
// 3. writes through the read port (put, mkdir, rename, rm) fail with "Permission denied", and
//    nothing lands on main, sub or backup;
// 4. lag: lsyncd stopped on main → sub's copy of main's heartbeat ages → sub's agent answers "down"
//    → HAProxy takes sub out of the read pool (its server state), reads go to main and see a file
//    uploaded meanwhile; lsyncd started again → sub caught up → back in the pool.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { durationMs, haproxyNodes, sftpNode } from '../src/topology/model.ts';
import { socatLine } from '../src/failover/haproxy.ts';
import { heartbeatStamp } from '../src/render/readpool.ts';
import type { Scenario, ScenarioContext } from '../src/scenario/types.ts';
import { activeHaproxyNode, ensureScenarioLab, type ScenarioLab } from './lab.ts';
import { until } from './outage.ts';
import { firstLines, listedNames, pinnedKnownHosts, sftpBatch, sha256File, type SftpRun } from './openssh.ts';
import { entryPorts, remoteSha } from './smoke.ts';

interface ServerStat {
  status: string;
  stot: number;
  sid: string;
  lastAgt: string;
}

/** `show stat` of one backend's servers, read by column name (HAProxy's own counters and states). */
export async function backendStats(lab: ScenarioLab, backend: string): Promise<Map<string, ServerStat>> {
  const hap = await activeHaproxyNode(lab);
  const r = await lab.sh(hap, socatLine(lab.t.haproxy.stats.socket, ['show stat']), 15_000);
  const lines = r.stdout.split('\n');
  const head = (lines[0] ?? '').replace(/^# /, '').split(',');
  const col = (f: string[], name: string) => f[head.indexOf(name)] ?? '';
  const out = new Map<string, ServerStat>();
  for (const l of lines.slice(1)) {
    const f = l.split(',');
    if (f[0] !== backend || f[1] === 'FRONTEND' || f[1] === 'BACKEND' || !f[1]) continue;
    out.set(f[1], {
      status: col(f, 'status'),
      stot: Number(col(f, 'stot')) || 0,
      sid: col(f, 'sid'),
      lastAgt: col(f, 'last_agt'),
    });
  }
  if (!out.size) throw new Error(`HAProxy has no servers in backend ${backend}: ${firstLines(r.stdout)}`);
  return out;
}

/** Run one client session and tell which servers of the backend it reached (their stot rose). */
async function servedBy<T>(
  lab: ScenarioLab,
  backend: string,
  fn: () => Promise<T>,
): Promise<{ result: T; servers: string[] }> {
  const before = await backendStats(lab, backend);
  const result = await fn();
  const after = await backendStats(lab, backend);
  const servers = [...after].filter(([n, s]) => s.stot > (before.get(n)?.stot ?? 0)).map(([n]) => n);
  return { result, servers };
}

/** The stick table's entries: source address → server name. */
async function stickEntries(lab: ScenarioLab, backend: string): Promise<Map<string, string>> {
  const hap = await activeHaproxyNode(lab);
  const r = await lab.sh(hap, socatLine(lab.t.haproxy.stats.socket, [`show table ${backend}`]), 15_000);
  const byId = new Map([...(await backendStats(lab, backend))].map(([n, s]) => [s.sid, n]));
  const out = new Map<string, string>();
  for (const m of r.stdout.matchAll(/key=(\S+).*?server_id=(\d+)/g))
    out.set(m[1]!, byId.get(m[2]!) ?? `server_id ${m[2]}`);
  return out;
}

export const readWriteSplit: Scenario = {
  name: 'read-write-split',
  description:
    'read port: listings of what the write port took, sticky per source, writes refused (nothing lands), a lagging replica out of the pool and back',
  async run(ctx) {
    const lab = await ensureScenarioLab(ctx.log);
    const dir = mkdtempSync(join(tmpdir(), 'wharf-rws-'));
    const main = sftpNode(lab.t, 'main').name;
    try {
      await splitChecks(lab, ctx, dir);
    } finally {
      // whatever happened above, replication runs again
      await lab.sh(main, 'systemctl start lsyncd', 30_000).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
      await lab.close();
    }
  },
};

async function splitChecks(lab: ScenarioLab, ctx: ScenarioContext, dir: string): Promise<void> {
  const t = lab.t;
  const main = sftpNode(t, 'main').name;
  const sub = t.replication.lsyncd.to;
  const backupNode = t.replication.backup.to;
  const up = t.sftp.uploadDir;
  const kh = pinnedKnownHosts(lab, dir);
  const ports = entryPorts(lab);
  const write = ports.write.find((p) => p.name === 'write') ?? ports.write[0];
  const read = ports.read[0];
  if (!ctx.check('the topology has a write port and a read-only read port', !!write && !!read)) return;
  const backend = t.haproxy.frontends[read!.name]!.backend;
  const entry = lab.status.entrypoint.host;
  const wanAddr = lab.status.nodes['wan-client']?.addresses.wan ?? '?';
  const sources = [
    { label: `wan client (${wanAddr})`, host: entry, port: read!.port },
    {
      label: `this host at the router's WAN address ${lab.status.direct.host}`,
      host: lab.status.direct.host,
      port: lab.status.direct.ports[read!.name]!,
    },
  ];
  const session = (s: { host: string; port: number }, commands: string[]) =>
    sftpBatch(lab, { host: s.host, port: s.port, knownHosts: kh, commands });
  const stamp = Date.now().toString(36);

  // 1. uploads through the write port, replicated to sub
  const files: { name: string; sha: string }[] = [];
  const puts: string[] = [];
  for (let i = 0; i < 3; i++) {
    const name = `rws-${stamp}-${i}.bin`;
    writeFileSync(join(dir, name), randomBytes(64 * 1024));
    files.push({ name, sha: sha256File(join(dir, name)) });
    puts.push(`put ${join(dir, name)} ${up}/${name}`);
  }
  const w = await session({ host: entry, port: write!.port }, puts);
  if (
    !ctx.check(
      `3 uploads through the ${write!.name} port`,
      w.code === 0,
      w.code === 0 ? `${w.ms} ms` : firstLines(w.stderr),
    )
  )
    return;
  const ackAt = Date.now();
  const replicated = await until(
    (t.replication.lsyncd.delay + 20) * 1000,
    async () =>
      (
        await Promise.all(files.map(async (f) => (await remoteSha(lab, sub, `${up}/${f.name}`)) === f.sha))
      ).every(Boolean),
    100,
  );
  ctx.check(
    `replicated to ${sub}`,
    replicated,
    replicated ? `${Date.now() - ackAt} ms after the ack` : 'not within the timeout',
  );

  // 2. stickiness per source, and what each reader lists
  // on every HAProxy (a pair shares the table through peers)
  for (const hap of haproxyNodes(t))
    await lab.sh(hap, socatLine(t.haproxy.stats.socket, [`clear table ${backend}`]), 15_000);
  const readerOf = new Map<string, string>();
  let subListed: string[] | undefined;
  for (const [i, src] of sources.entries()) {
    const n = i === 0 ? 4 : 2;
    const served: string[] = [];
    const listings: string[][] = [];
    for (let k = 0; k < n; k++) {
      const r = await servedBy(lab, backend, () => session(src, [`ls -1 ${up}`]));
      served.push(r.servers.join('+') || 'none');
      listings.push(r.result.code === 0 ? listedNames(r.result.stdout) : []);
      if (r.result.code !== 0) ctx.log(`${src.label}: ls failed: ${firstLines(r.result.stderr)}`);
    }
    const one = served.every((s) => s === served[0]) && served[0] !== 'none' && !served[0]!.includes('+');
    ctx.check(
      `sticky: ${n} connections from ${src.label} all on one reader`,
      one,
      `served by ${served.join(', ')} (HAProxy stot per server)`,
    );
    if (one) readerOf.set(src.label, served[0]!);
    const all = listings.every((l) => files.every((f) => l.includes(f.name)));
    ctx.check(
      `read port listing from ${src.label} (${served[0]}) shows the files uploaded through the ${write!.name} port`,
      all,
      `${listings.map((l) => files.filter((f) => l.includes(f.name)).length).join(', ')} of ${files.length} per listing`,
    );
    if (one && served[0] === sub && all) subListed = listings[0];
  }
  const table = await stickEntries(lab, backend);
  ctx.check(
    `HAProxy's stick table pins the wan client to the reader that served it`,
    table.get(wanAddr) !== undefined && table.get(wanAddr) === readerOf.get(sources[0]!.label),
    [...table].map(([k, v]) => `${k} → ${v}`).join(', ') || 'empty',
  );
  ctx.check(
    `${sub} served a listing with the replicated files (two sources, round robin over ${main} and ${sub})`,
    subListed !== undefined,
    [...readerOf].map(([k, v]) => `${k} → ${v}`).join('; '),
  );

  // 3. writes through the read port are refused, and nothing lands anywhere
  const refused = `rws-${stamp}-refused.bin`;
  writeFileSync(join(dir, refused), randomBytes(16 * 1024));
  const put = await session(sources[0]!, [`put ${join(dir, refused)} ${up}/${refused}`]);
  ctx.check(
    'put through the read port fails with "Permission denied"',
    put.code !== 0 && /Permission denied/.test(put.stderr),
    `sftp exit ${put.code}: ${firstLines(put.stderr)}`,
  );
  const victim = files[0]!.name;
  const others: SftpRun = await session(sources[0]!, [
    `-mkdir ${up}/rws-${stamp}-dir`,
    `-rename ${up}/${victim} ${up}/rws-${stamp}-renamed`,
    `-rm ${up}/${victim}`,
  ]);
  const denied = others.stderr.split('\n').filter((l) => /Permission denied/.test(l));
  ctx.check(
    'mkdir, rename and rm through the read port fail with "Permission denied"',
    denied.length === 3,
    firstLines(others.stderr, 4),
  );
  const base = t.sftp.chrootBase;
  const landed: string[] = [];
  for (const n of [main, sub, backupNode]) {
    const r = await lab.sh(
      n,
      `find ${base} ${t.replication.backup.snapshotDir} -name 'rws-${stamp}-refused*' -o -name 'rws-${stamp}-dir' -o -name 'rws-${stamp}-renamed' 2>/dev/null`,
    );
    landed.push(
      ...r.stdout
        .split('\n')
        .filter(Boolean)
        .map((p) => `${n}:${p}`),
    );
  }
  const kept = (
    await Promise.all(
      [main, sub].map(async (n) => (await remoteSha(lab, n, `${up}/${victim}`)) === files[0]!.sha),
    )
  ).every(Boolean);
  ctx.check(
    `nothing landed on ${main}, ${sub} or ${backupNode}, and the file rm/rename aimed at is intact`,
    landed.length === 0 && kept,
    landed.length
      ? `found ${landed.join(', ')}`
      : `no trace; ${victim} ${kept ? 'unchanged' : 'CHANGED'} on ${main} and ${sub}`,
  );

  // 4. a replica behind by more than readLag.max leaves the read pool, and comes back
  const maxS = Math.floor(durationMs(t.replication.readLag.max) / 1000);
  const subState = async () => (await backendStats(lab, backend)).get(sub)!;
  const before = await subState();
  if (
    !ctx.check(
      `${sub} in the read pool before the lag test`,
      before.status.startsWith('UP'),
      `${before.status}; ${before.lastAgt}`,
    )
  )
    return;
  const stoppedAt = Date.now();
  await lab.sh(main, 'systemctl stop lsyncd', 30_000);
  // the last heartbeat sub received: from here on it only ages
  const hb = Number((await lab.sh(sub, `cat ${heartbeatStamp(t)}`)).stdout.trim());
  // uploaded while sub is behind: a read must not miss it
  const late = `rws-${stamp}-late.bin`;
  writeFileSync(join(dir, late), randomBytes(16 * 1024));
  const lw = await session({ host: entry, port: write!.port }, [`put ${join(dir, late)} ${up}/${late}`]);
  ctx.check(
    `upload through the ${write!.name} port while ${sub} falls behind`,
    lw.code === 0,
    firstLines(lw.stderr) || `${lw.ms} ms`,
  );
  let out: ServerStat | undefined;
  const left = await until(
    (maxS + 20) * 1000,
    async () => {
      out = await subState();
      return out.status.startsWith('DOWN');
    },
    200,
  );
  const downAt = Date.now();
  // the agent compares whole seconds: the lag first exceeds max at heartbeat + max + 1 s
  const exceededAt = (hb + maxS + 1) * 1000;
  ctx.check(
    `${sub} leaves the read pool once behind ${main} by more than ${t.replication.readLag.max} (HAProxy server state)`,
    left,
    `${out?.status}; agent: ${out?.lastAgt}; ${left ? `${downAt - stoppedAt} ms after lsyncd stopped, ${downAt - exceededAt} ms after the lag exceeded ${maxS}s` : `not within ${maxS + 20} s`}`,
  );
  if (left) {
    ctx.metric('read-pool exit after lsyncd stopped', downAt - stoppedAt, 'ms');
    ctx.metric('read-pool exit after the lag exceeded readLag.max', downAt - exceededAt, 'ms');
  }
  // the source that stuck to sub (or the wan client) reads from main meanwhile, and sees the new file
  const src = sources.find((s) => readerOf.get(s.label) === sub) ?? sources[0]!;
  const r = await servedBy(lab, backend, () => session(src, [`ls -1 ${up}`]));
  const names = r.result.code === 0 ? listedNames(r.result.stdout) : [];
  ctx.check(
    `while ${sub} is out, ${src.label} reads from ${main} and sees the upload made meanwhile`,
    r.servers.length === 1 && r.servers[0] === main && names.includes(late),
    `served by ${r.servers.join('+') || 'none'}; ${late} ${names.includes(late) ? 'listed' : 'NOT listed'}`,
  );

  const healAt = Date.now();
  await lab.sh(main, 'systemctl start lsyncd', 30_000);
  let back: ServerStat | undefined;
  const rejoined = await until(
    60_000,
    async () => {
      back = await subState();
      return back.status.startsWith('UP');
    },
    200,
  );
  ctx.check(
    `${sub} back in the read pool once replication caught up`,
    left && rejoined,
    !left
      ? 'it never left the pool'
      : `${back?.status}; agent: ${back?.lastAgt}; ${rejoined ? `${Date.now() - healAt} ms after lsyncd started` : 'not within 60 s'}`,
  );
  if (left && rejoined) ctx.metric('read-pool rejoin after lsyncd started', Date.now() - healAt, 'ms');
  const lateSha = sha256File(join(dir, late));
  const lateOnSub = await until(
    (t.replication.lsyncd.delay + 20) * 1000,
    async () => (await remoteSha(lab, sub, `${up}/${late}`)) === lateSha,
    200,
  );
  ctx.check(
    `the upload made while ${sub} was out is on ${sub} now`,
    lateOnSub,
    lateOnSub ? 'sha256 ok' : 'missing',
  );
}

export default readWriteSplit;
