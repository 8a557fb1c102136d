// `npm run bench`: the stack's numbers side by side in ONE run, each against its target (not a
// timed test: it prints PASS/MISS, exit 0 unless something broke).
//   lab up cold / warm (bench/lab.ts) · configure first run / no-op rerun on the 6 stack hosts
//   chain / direct throughput for ssh2-sftp-client and OpenSSH sftp (bench/ossh.ts) · the clients
//   RTO: median of several real kills of sftp-main during a small-file workload
//
//   npx tsx bench/run.ts [--skip-cold] [--skip-lab-bench] [--reuse] [--size 512MiB] [--rounds 3]
//                        [--kills 3] [--handshake-timeout 2s] [--skip-throughput] [--skip-rto] [--keep]
//                        [--skip-scale-files] (scale: files, bench/scale-files.ts; 20k: WHARF_BENCH_FILES_20K=1)
//                        [--stack wbench --octet 98] [--json]
// Its own stack "wbench" (10.98.x). Without --reuse the bench lab is made fresh (lab down → up →
// install) so the first configure run is a real one. --keep leaves the lab up afterwards.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDuration, parseSize } from '../src/cli/commands/load.ts';
import { labDown, labStatus, labUp, waitReady, type LabStatus } from '../src/lab/lab.ts';
import { labNode } from '../src/lab/node.ts';
import { raiseHostSysctls } from '../src/lab/provision.ts';
import { loadInventory } from '../src/topology/load.ts';
import { runRunbookByName } from '../src/stack/runbooks.ts';
import { runWorkload } from '../src/workload/generator.ts';
import { labEndpoint, nodeOfRole, onLabNode, userRoot, waitForUploads } from '../src/workload/remote.ts';
import { makeLocalFile } from '../scenarios/large-file.ts';
import { benchChainDirect } from './ossh.ts';
import { REPO_ROOT } from '../src/lab/state.ts';
import { variantTopology } from '../src/lab/variant.ts';
import '../scripts/index.ts';
import { benchScaleFiles } from './scale-files.ts';
import { scaleClients } from './scale-clients.ts';
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

const work = mkdtempSync(join(tmpdir(), 'wharf-bench-'));

class SkipThroughput extends Error {}
const payload = await makeLocalFile(flag('--skip-throughput') ? 1 : size);
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
  // 3–4. Chain / direct for ssh2-sftp-client and OpenSSH sftp (aes128-gcm, default), side by side
  await benchChainDirect({
    t,
    s,
    workDir: work,
    size,
    rounds,
    local: payload.file,
    dir,
    settle,
    clean: async () => void (await clean()),
    say,
    log,
    row,
    result,
  });
} catch (e) {
  if (!(e instanceof SkipThroughput)) throw e;
} finally {
  rmSync(payload.dir, { recursive: true, force: true });
}

if (!flag('--skip-scale-clients')) await scaleClients({ t, s, say, log, row, result });

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

if (!flag('--skip-scale-files')) result.scaleFiles = await benchScaleFiles(t, s, row, say);
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
