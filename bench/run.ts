// `npm run bench`: the stack's numbers side by side in ONE run, each against its target (not a
// timed test: it prints PASS/MISS, exit 0 unless something broke).
//   lab up cold / warm (bench/lab.ts) · configure first run / no-op rerun on the 6 stack hosts
//   chain / direct throughput (same client, same way in) · ssh2-sftp-client vs OpenSSH sftp
//   RTO: median of several real kills of sftp-main during a small-file workload
//
//   npx tsx bench/run.ts [--skip-cold] [--skip-lab-bench] [--reuse] [--size 512MiB] [--rounds 3]
//                        [--kills 3] [--handshake-timeout 2s] [--skip-throughput] [--skip-rto] [--keep]
//                        [--stack wbench --octet 98] [--json]
// Its own stack "wbench" (10.98.x). Without --reuse the bench lab is made fresh (lab down → up →
// install) so the first configure run is a real one. --keep leaves the lab up afterwards.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SftpClient from 'ssh2-sftp-client';
import { parseDuration, parseSize } from '../src/cli/commands/load.ts';
import { labDown, labStatus, labUp, waitReady, type LabStatus } from '../src/lab/lab.ts';
import { labNode } from '../src/lab/node.ts';
import { raiseHostSysctls } from '../src/lab/provision.ts';
import { loadInventory } from '../src/topology/load.ts';
import { runRunbookByName } from '../src/stack/runbooks.ts';
import { FAST_PUT, QUIET_LISTENERS, runWorkload } from '../src/workload/generator.ts';
import {
  labEndpoint,
  nodeOfRole,
  onLabNode,
  sharedHostKey,
  userRoot,
  waitForUploads,
} from '../src/workload/remote.ts';
import { makeLocalFile } from '../scenarios/large-file.ts';
import { REPO_ROOT } from '../src/lab/state.ts';
import { variantTopology } from '../src/lab/variant.ts';
import '../scripts/index.ts';
import { scaleUsersSection as scaleUsers } from './scale-users.ts';

const args = process.argv.slice(2);
const flag = (f: string) => args.includes(f);
const value = (f: string, d: string) => (args.includes(f) ? (args[args.indexOf(f) + 1] ?? d) : d);
const json = flag('--json');
const size = parseSize(value('--size', '512MiB'));
// 3 by default: the median of 3 rounds, not the mean of 2, so one disturbed round does not decide
const rounds = Number(value('--rounds', '3')) || 3;
const kills = Number(value('--kills', '3')) || 3;
// The workload client's SSH handshake timeout during the RTO runs (node-loss uses 2 s too): a
// connection HAProxy sends to the dead main before marking it down costs the client this long.
const handshakeMs = parseDuration(value('--handshake-timeout', '2s'), '--handshake-timeout');
const say = (s: string) => {
  if (!json) console.log(s);
};
const log = (s: string) => {
  if (!json) console.log(`  ${s.slice(0, 160)}`);
};
const secs = (ms: number) => Math.round(ms / 100) / 10;
const r1 = (x: number) => Math.round(x * 10) / 10;
const r3 = (x: number) => Math.round(x * 1000) / 1000;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

interface Row {
  name: string;
  value: string;
  target: string;
  verdict: 'PASS' | 'MISS' | 'n/a';
}
const rows: Row[] = [];
// kind/startedAt: `wharf report --in` reads this document (its rows and numbers)
const result: Record<string, unknown> = {
  kind: 'bench',
  startedAt: new Date().toISOString(),
  size,
  rounds,
  kills,
};
const row = (name: string, value: string, target: string, pass?: boolean) =>
  rows.push({ name, value, target, verdict: pass === undefined ? 'n/a' : pass ? 'PASS' : 'MISS' });

/** The line of a failed child's stderr that says why (its error, not the stack or Node's banner). */
const reason = (stderr: string): string => {
  const ls = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return (
    ls.find((l) => /^\w*Error: |^a cold run needs/.test(l)) ??
    ls.filter((l) => !l.startsWith('Node.js')).pop() ??
    ''
  );
};

// 1. Lab up cold / warm: bench/lab.ts (its own stack "labbench"), before the bench lab exists.
if (!flag('--skip-lab-bench')) {
  say('== lab up: cold / warm (bench/lab.ts)');
  const run = (extra: string[]) =>
    spawnSync(
      process.execPath,
      ['--import', 'tsx', join(REPO_ROOT, 'bench/lab.ts'), '--json', '--runs', '2', ...extra],
      {
        encoding: 'utf8',
        cwd: REPO_ROOT,
        timeout: 1_800_000,
      },
    );
  let r = run(flag('--skip-cold') ? ['--warm-only'] : []);
  if (r.status !== 0 && !flag('--skip-cold')) {
    say(`  cold run not possible: ${reason(r.stderr).slice(0, 200)}`);
    r = run(['--warm-only']);
  }
  if (r.status === 0) {
    const lab = JSON.parse(r.stdout) as { coldUpSeconds?: number; warmUpMedianSeconds: number };
    result.lab = lab;
    if (lab.coldUpSeconds !== undefined)
      row('lab up, cold (no images)', `${lab.coldUpSeconds} s`, '≤ 180 s', lab.coldUpSeconds <= 180);
    else row('lab up, cold (no images)', 'not measured', '≤ 180 s');
    row('lab up, warm (median)', `${lab.warmUpMedianSeconds} s`, '≤ 10 s', lab.warmUpMedianSeconds <= 10);
  } else {
    const why = reason(r.stderr);
    say(`  bench/lab.ts failed: ${why.trim().slice(0, 400)}`);
    row('lab up, warm', `failed: ${why.trim().slice(0, 60)}…`, '≤ 10 s', false);
  }
}

// 2. The bench lab; configure first run and no-op rerun on the 6 stack hosts.
// --stack NAME --octet N: a second bench lab next to the first (other subnets 10.N.x)
const { file, t } = variantTopology(value('--stack', 'wbench'), Number(value('--octet', '98')) || 98);
if (!flag('--reuse')) {
  say('== bench lab: fresh (lab down → up → install)');
  await labDown(t.name);
}
await labUp(t, { topologyFile: file, log });
const inv = () => loadInventory(join(REPO_ROOT, '.wharf/lab', t.name, 'inventory.yaml'), t);
raiseHostSysctls(t, inv(), log);
const runbook = async (name: string, options: Record<string, boolean> = {}) => {
  const r = await runRunbookByName(name, { topology: t, inventory: inv(), log: () => {}, options });
  if (!r.ok) throw new Error(`${name} failed: ${r.error ?? r.journal}`);
  return r;
};
{
  const i = await runbook('install');
  log(`install: ${i.changes} change(s) in ${secs(i.durationMs)} s`);
  const first = await runbook('configure');
  const again = await runbook('configure');
  await runbook('verify');
  const hosts = Object.values(t.nodes).filter((n) => !n.labOnly).length;
  result.configure = {
    firstSeconds: secs(first.durationMs),
    firstChanges: first.changes,
    noopSeconds: secs(again.durationMs),
    noopChanges: again.changes,
    hosts,
  };
  say(
    `== configure on ${hosts} hosts: first ${secs(first.durationMs)} s (${first.changes} changes), rerun ${secs(again.durationMs)} s (${again.changes} changes)`,
  );
  if (first.changes > 0)
    row(
      `configure, first run (${hosts} hosts)`,
      `${secs(first.durationMs)} s`,
      '≤ 30 s',
      first.durationMs <= 30_000,
    );
  else row(`configure, first run (${hosts} hosts)`, 'not measured (--reuse: already configured)', '≤ 30 s');
  row(
    `configure, no-op rerun (${again.changes} changes)`,
    `${secs(again.durationMs)} s`,
    '≤ 5 s',
    again.durationMs <= 5_000 && again.changes === 0,
  );
}
const s: LabStatus = await labStatus(t);
if (!flag('--skip-scale-users')) await scaleUsers({ file, t, inventory: inv(), status: s, say, row, result });
const user = s.demoUser.name;
const dir = t.sftp.uploadDir;
const main = nodeOfRole(t, 'main');
const sub = nodeOfRole(t, 'sub');
const sftpRoot = userRoot(t, user, 'sftp');
// then wait out lsyncd's delay (1 s) and the run the deletes trigger, so it is not in the next round
const clean = () =>
  onLabNode(s, main, `rm -f ${sftpRoot}/${dir}/bench-*`)
    .then(() => onLabNode(s, sub, `rm -f ${sftpRoot}/${dir}/bench-*`))
    .then(() => new Promise((r) => setTimeout(r, 2500)));

// Upload helpers: ssh2-sftp-client (tuned fastPut) and OpenSSH sftp, each timed connect → close.
async function ssh2Put(target: 'direct' | 'main', local: string, remote: string) {
  const ep = labEndpoint(t, s, target);
  const c = new SftpClient('bench', QUIET_LISTENERS); // nothing on stdout: --json prints one document
  let cipher = '?';
  (c as unknown as { client: NodeJS.EventEmitter }).client.on(
    'handshake',
    (n: { cs: { cipher: string } }) => {
      cipher = n.cs.cipher;
    },
  );
  const t0 = process.hrtime.bigint();
  await c.connect({
    host: ep.host,
    port: ep.port,
    username: ep.username,
    privateKey: ep.privateKey,
    readyTimeout: 15_000,
    hostVerifier: (key: Buffer) => key.toString('base64') === sharedHostKey(t).split(/\s+/)[1],
  } as SftpClient.ConnectOptions);
  await c.fastPut(local, remote, FAST_PUT);
  await c.end();
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, cipher };
}

const work = mkdtempSync(join(tmpdir(), 'wharf-bench-'));
const knownHosts = join(work, 'known_hosts');
writeFileSync(knownHosts, `wharf-sftp ${sharedHostKey(t)}\n`);
function opensshPut(target: 'direct' | 'main', local: string, remote: string, cipher?: string) {
  const ep = labEndpoint(t, s, target);
  const t0 = process.hrtime.bigint();
  const r = spawnSync(
    'sftp',
    [
      '-v',
      '-b',
      '-',
      '-P',
      String(ep.port),
      '-i',
      s.demoUser.privateKey,
      ...(cipher ? ['-c', cipher] : []),
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      'BatchMode=yes',
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      `UserKnownHostsFile=${knownHosts}`,
      '-o',
      'HostKeyAlias=wharf-sftp',
      `${user}@${ep.host}`,
    ],
    { input: `put ${local} ${remote}\n`, encoding: 'utf8', timeout: 600_000 },
  );
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0)
    throw new Error(
      `sftp failed (${r.status}): ${r.stderr
        .split('\n')
        .filter((l) => !l.startsWith('debug'))
        .join(' ')
        .slice(0, 300)}`,
    );
  const used = /kex: client->server cipher: (\S+)/.exec(r.stderr)?.[1] ?? '?';
  return { seconds, cipher: used };
}

class SkipThroughput extends Error {}
const payload = await makeLocalFile(flag('--skip-throughput') ? 1 : size);
const MB = size / 1e6;
const want = (remote: string) => new Map([[remote, payload.sha256]]);
/**
 * After each upload: wait until lsyncd copied it to sub, then flush the page cache (`sync`: the
 * nodes' overlay filesystems live on this host's disk), so the next upload has the CPU and the
 * disk to itself instead of sharing them with the writeback of the previous ~2 × size bytes.
 */
const settle = async (remote: string) => {
  const r = await waitForUploads(s, sub, sftpRoot, dir, remote.slice(dir.length + 1), want(remote), 180_000);
  if (!r.complete) log(`warning: ${remote} not on ${sub} after ${secs(r.waitedMs)} s`);
  spawnSync('sync', { timeout: 120_000 });
};
try {
  if (flag('--skip-throughput')) throw new SkipThroughput();
  // 3. Chain vs direct: ssh2-sftp-client both times, from this host without the userland proxy.
  say(
    `== throughput: ${(size / 1024 ** 2).toFixed(0)} MiB from /dev/shm, ${rounds} round(s), alternating order`,
  );
  const chain: number[] = [];
  const direct: number[] = [];
  let ssh2Cipher = '?';
  for (let i = 0; i < rounds; i++) {
    const order = i % 2 ? (['main', 'direct'] as const) : (['direct', 'main'] as const);
    for (const target of order) {
      const remote = `${dir}/bench-${target}-${i}.bin`;
      const r = await ssh2Put(target, payload.file, remote);
      ssh2Cipher = r.cipher;
      (target === 'direct' ? chain : direct).push(MB / r.seconds);
      log(
        `${target === 'direct' ? 'chain ' : 'direct'} round ${i + 1}: ${r1(MB / r.seconds)} MB/s (${r.cipher})`,
      );
      await settle(remote);
    }
    await clean();
  }
  const ratio = median(chain) / median(direct);
  result.throughput = {
    chainMBs: chain.map(r1),
    directMBs: direct.map(r1),
    ratio: r3(ratio),
    cipher: ssh2Cipher,
  };
  row(
    'chain MB/s (router WAN → firewall → HAProxy → main)',
    `${r1(median(chain))} (${chain.map(r1).join(', ')})`,
    '',
  );
  row('direct MB/s (main lan)', `${r1(median(direct))} (${direct.map(r1).join(', ')})`, '');
  row('chain / direct throughput', r3(ratio).toString(), '≥ 0.95', ratio >= 0.95);

  // 4. ssh2-sftp-client vs OpenSSH sftp on the same path (the chain, router WAN).
  say('== client: ssh2-sftp-client (fastPut 8 × 255 KiB) vs OpenSSH sftp, through the chain');
  const ssh2: number[] = [];
  const ossh: number[] = [];
  const osshGcm: number[] = [];
  let osshCipher = '?';
  for (let i = 0; i < rounds; i++) {
    const a = `${dir}/bench-ssh2-${i}.bin`;
    const b = `${dir}/bench-openssh-${i}.bin`;
    const c = `${dir}/bench-openssh-gcm-${i}.bin`;
    const x = await ssh2Put('direct', payload.file, a);
    ssh2.push(MB / x.seconds);
    await settle(a);
    const y = opensshPut('direct', payload.file, b);
    osshCipher = y.cipher;
    ossh.push(MB / y.seconds);
    await settle(b);
    const z = opensshPut('direct', payload.file, c, 'aes128-gcm@openssh.com');
    osshGcm.push(MB / z.seconds);
    await settle(c);
    log(
      `round ${i + 1}: ssh2 ${r1(MB / x.seconds)} MB/s (${x.cipher}), OpenSSH ${r1(MB / y.seconds)} MB/s (${y.cipher}), OpenSSH ${r1(MB / z.seconds)} MB/s (${z.cipher})`,
    );
    await clean();
  }
  const best = Math.max(median(ossh), median(osshGcm));
  const clientRatio = median(ssh2) / best;
  result.client = {
    ssh2MBs: ssh2.map(r1),
    opensshMBs: ossh.map(r1),
    opensshCipher: osshCipher,
    opensshAesGcmMBs: osshGcm.map(r1),
    ratio: r3(clientRatio),
  };
  row(`ssh2-sftp-client MB/s (${ssh2Cipher})`, r1(median(ssh2)).toString(), '');
  row(
    `OpenSSH sftp MB/s (default ${osshCipher} / aes128-gcm)`,
    `${r1(median(ossh))} / ${r1(median(osshGcm))}`,
    '',
  );
  row('ssh2-sftp-client / best OpenSSH', r3(clientRatio).toString(), '≥ 1.0', clientRatio >= 1);
} catch (e) {
  if (!(e instanceof SkipThroughput)) throw e;
} finally {
  rmSync(payload.dir, { recursive: true, force: true });
}

// 5. RTO: kill sftp-main (docker kill, SIGKILL) during a small-file workload through the entry point;
// RTO = kill issued → first acknowledged upload that started after the kill returned. Then the
// operator's path: failover --unplanned → docker start → failback (main in rotation again) before
// the next kill.
const rtoKills = flag('--skip-rto') ? 0 : kills;
if (rtoKills)
  say(`== RTO: ${kills} kill(s) of ${main} during a 4-client 64 KiB workload through the entry point`);
const rtos: number[] = [];
const mainNode = labNode(t.name, main);
for (let k = 0; k < rtoKills; k++) {
  const ctl = new AbortController();
  let killStart = 0;
  let killDone = 0;
  let firstAfter = 0;
  const w = runWorkload({
    endpoint: { ...labEndpoint(t, s, 'entry'), readyTimeoutMs: handshakeMs },
    clients: 4,
    filesPerClient: 1e9,
    size: 64 * 1024,
    dir,
    prefix: `bench-rto${k}`,
    signal: ctl.signal,
    retryDelayMs: 50,
    onEvent: (e) => {
      // an upload started once main was dead (one whose reply was in flight at the kill is no recovery)
      if (e.kind === 'ack' && killDone && !firstAfter && (e.ack.startedAt ?? 0) >= killDone)
        firstAfter = e.at;
    },
  });
  await new Promise((r) => setTimeout(r, 2000));
  killStart = Date.now();
  await mainNode.kill();
  killDone = Date.now();
  const deadline = Date.now() + 60_000;
  while (!firstAfter && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 1000));
  ctl.abort();
  const res = await w;
  const rto = firstAfter ? firstAfter - killStart : NaN;
  rtos.push(rto);
  log(
    `kill ${k + 1}: RTO ${firstAfter ? `${rto} ms` : 'no upload within 60 s'} (${res.acks.length} acks, ${res.failures.length} failed attempts)`,
  );
  await runbook('failover', { unplanned: true });
  await mainNode.start();
  await waitReady(s.sshConfig, main, Date.now() + 120_000);
  const fb = await runbook('failback');
  log(`  failover --unplanned, docker start, failback: ok (failback ${secs(fb.durationMs)} s)`);
  await clean();
}
const rtoMedian = median(rtos.filter((x) => Number.isFinite(x)));
result.rtoMs = rtos;
if (rtoKills)
  row(
    `RTO, median of ${kills} kills (ms: ${rtos.join(', ')})`,
    `${secs(rtoMedian)} s`,
    '≤ 2 s',
    rtos.every(Number.isFinite) && rtoMedian <= 2000,
  );

rmSync(work, { recursive: true, force: true });
if (!flag('--keep')) await labDown(t.name);
result.rows = rows;
if (json) console.log(JSON.stringify(result, null, 2));
else {
  const w0 = Math.max(...rows.map((r) => r.name.length));
  const w1 = Math.max(...rows.map((r) => r.value.length));
  console.log(`\nwharf bench (${new Date().toISOString()}; one run, 2 shared cores: numbers are noisy)`);
  for (const r of rows)
    console.log(
      `  ${r.name.padEnd(w0)}  ${r.value.padEnd(w1)}  ${r.target.padEnd(8)} ${r.verdict === 'n/a' ? '' : r.verdict}`,
    );
}
