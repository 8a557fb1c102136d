// A provisioned lab for scenarios, brought to a known state fast.
// The topology comes from WHARF_SCENARIO_TOPOLOGY, else configs/stack.yaml renamed `scen` on
// 10.96.x (so a developer's `seed` lab and the test labs are left alone). The first call brings the
// lab up (labUp + provisionLab: install → configure → verify); later calls only reset it:
//   every node running · no failover in progress (failback when there is one) · main ready in
//   every HAProxy backend · lsyncd's rendered config in place and running · upload folders and
//   backup snapshots emptied of previous scenarios' files.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { seedVariant } from '../src/lab/variant.ts';
import { labStatus, labUp, waitReady, type LabStatus } from '../src/lab/index.ts';
import { REPO_ROOT, stateDir } from '../src/lab/state.ts';
import { raiseInotifyInstances } from '../src/lab/lab.ts';
import { RunError } from '../src/core/errors.ts';
import { acquireLock, type StackLock } from '../src/runbook/lock.ts';
import { provisionLab } from '../src/lab/provision.ts';
import { loadInventory, topologyFromObject } from '../src/topology/load.ts';
import { sftpNode, type Topology } from '../src/topology/model.ts';
import { labInventory, type Inventory } from '../src/topology/inventory.ts';
import { renderStack } from '../src/render/index.ts';
import { sshTransports, shQuote, closeAll } from '../src/transport/index.ts';
import type { Transport } from '../src/transport/types.ts';
import { $ } from '../src/exec/index.ts';
import { labNode } from '../src/lab/node.ts';
import { renderLsyncdConf, LSYNCD_CONF } from '../src/render/lsyncd.ts';
import { NOTIFY_SPOOL } from '../src/render/notify.ts';
import { runRunbookByName } from '../src/stack/runbooks.ts';
import { ensureStackSecrets } from '../src/stack/secrets.ts';
import {
  activeHaproxy,
  haproxyGroup,
  readFailoverState,
  readReconcileMark,
  serverStateCommands,
  runtimeApi,
} from '../src/failover/index.ts';
import type { SftpEndpoint } from '../src/workload/generator.ts';

export interface ScenarioLab {
  t: Topology;
  status: LabStatus;
  inventory: Inventory;
  transports: Map<string, Transport>;
  sshConfig: string;
  /** The demo user through the lab's WAN entry point, with the shared host key pinned. */
  endpoint: SftpEndpoint;
  /** The shared ed25519 host key line (`ssh-ed25519 AAAA… comment`). */
  hostKey: string;
  log: (line: string) => void;
  /** Run a command on a node (sudo, 60 s default). */
  sh(
    node: string,
    cmd: string,
    timeoutMs?: number,
  ): Promise<{ stdout: string; stderr: string; code: number }>;
  close(): Promise<void>;
}

/** The scenario lab's trusted source range (haproxy.limits.trusted): .192/28 of its wan subnet. */
export const trustedRange = (octet: number): string => `10.${octet}.0.192/28`;

/** Backup snapshots kept by the scenario lab's topology (the seed keeps 96). */
export const SCENARIO_RETENTION = 3;

/**
 * The scenario topology file: WHARF_SCENARIO_TOPOLOGY, else a generated stack: WHARF_SCENARIO_STACK
 * (`name:octet`, e.g. `scen2:86`, so parallel work does not share a lab), else `scen` on 10.96.x.
 */
export function scenarioTopology(): { file: string; t: Topology } {
  const given = process.env.WHARF_SCENARIO_TOPOLOGY;
  if (given) {
    const doc = parse(readFileSync(given, 'utf8')) as unknown;
    return { file: given, t: topologyFromObject(doc, given) };
  }
  const spec = process.env.WHARF_SCENARIO_STACK ?? 'scen:96';
  const m = /^([a-z][a-z0-9-]{0,15}):(\d{1,3})$/.exec(spec);
  if (!m || Number(m[2]) > 255)
    throw new Error(`WHARF_SCENARIO_STACK: ${JSON.stringify(spec)} is not name:octet (e.g. scen2:86)`);
  const doc = seedVariant(m[1]!, Number(m[2])) as { replication?: { backup?: Record<string, unknown> } };
  // A short retention, so backup-restore can prove pruning in a few runs instead of 97.
  if (doc.replication?.backup) doc.replication.backup.retention = SCENARIO_RETENTION;
  // A customer range on the wan side (many-clients: a fleet behind one address), and a trusted cap
  // low enough that a burst from it proves the cap in seconds.
  (doc as { haproxy?: Record<string, unknown> }).haproxy!.limits = {
    trusted: [trustedRange(Number(m[2]))],
    trustedConcurrent: 100,
  };
  const dir = join(REPO_ROOT, '.wharf', 'scenarios');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${m[1]}.yaml`);
  const text = stringify(doc);
  if (!existsSync(file) || readFileSync(file, 'utf8') !== text) writeFileSync(file, text);
  return { file, t: topologyFromObject(doc, file) };
}

const provisionedMarker = (t: Topology) => join(stateDir(t.name), 'scenario-provisioned');
/**
 * What the lab was provisioned from: the topology file and every file the renderers make of it, so
 * a renderer change (same topology) provisions again instead of running scenarios on old configs.
 */
const topoKey = (file: string, t: Topology) =>
  createHash('sha256')
    .update(readFileSync(file))
    .update(JSON.stringify(renderStack(t, labInventory(t))))
    .digest('hex');

/**
 * One process at a time brings a stack's scenario lab up, provisions and resets it: `npm test`
 * prepares it (scenarios/prepare.ts) while the first lab files run, and the first lab file that
 * needs it waits here instead of bringing it up a second time beside it. The runbooks' stack lock
 * (its own directory, so the runbooks run inside take theirs as usual); a dead holder's is taken over.
 */
async function withScenarioLabLock<T>(stack: string, log: (line: string) => void, fn: () => Promise<T>) {
  const deadline = Date.now() + 20 * 60_000;
  let said = false;
  let lock: StackLock;
  for (;;) {
    try {
      lock = acquireLock(join(REPO_ROOT, '.wharf', 'scenarios'), stack, 'scenario lab');
      break;
    } catch (e) {
      if (!(e instanceof RunError)) throw e;
      if (Date.now() > deadline)
        throw new Error(`scenario lab ${stack}: still locked after 20 minutes: ${e.message}`);
      if (!said) log(`scenario lab ${stack}: waiting — ${e.message}`);
      said = true;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  if (lock.tookOver) log(`scenario lab ${stack}: ${lock.tookOver}`);
  try {
    return await fn();
  } finally {
    lock.release();
  }
}

/** Bring the scenario lab up (idempotent) and reset it to the known state. */
export async function ensureScenarioLab(
  log: (line: string) => void = (l) => process.stderr.write(l + '\n'),
): Promise<ScenarioLab> {
  const { file, t } = scenarioTopology();
  return withScenarioLabLock(t.name, log, () => ensureLocked(file, t, log));
}

async function ensureLocked(file: string, t: Topology, log: (line: string) => void): Promise<ScenarioLab> {
  raiseInotifyInstances(log);
  let status: LabStatus | undefined;
  try {
    status = await labStatus(t);
  } catch {
    status = undefined;
  }
  const marker = provisionedMarker(t);
  let provisioned = existsSync(marker) && readFileSync(marker, 'utf8') === topoKey(file, t);
  const gone: string[] = [];
  if (status && provisioned) {
    // the state folder says up, but the containers may be gone (taken down from another checkout
    // with the same stack name, or by hand): then it is not up
    for (const name of Object.keys(status.nodes))
      if (!(await labNode(t.name, name).inspectOrNull())) gone.push(name);
    if (gone.length) {
      log(`scenario lab ${t.name}: recorded as up, but no container for ${gone.join(', ')}`);
      provisioned = false;
    }
  }
  if (!status || !provisioned) {
    log(`scenario lab ${t.name}: lab up + provision (first run; slow)`);
    // provisioning again a lab a failed run left failed over: verify would find main held out
    if (status && !gone.length && existsSync(marker)) {
      const used = labHandle(t, status, log);
      try {
        await failBackIfHeld(used);
      } catch (e) {
        log(`scenario lab ${t.name}: ${(e as Error).message} (provisioning anyway)`);
      } finally {
        await used.close();
      }
    }
    await labUp(t, { topologyFile: file, log });
    // re-provisioning a used lab: notices queued for earlier scenarios' files would keep verify's
    // probe notice waiting behind them
    const cfg = (await labStatus(t)).sshConfig;
    const main = sftpNode(t, 'main').name;
    const clear = `find ${NOTIFY_SPOOL} -mindepth 1 -maxdepth 1 -type f -delete 2>/dev/null; systemctl restart wharf-notify 2>/dev/null; true`;
    await $({ nothrow: true, quiet: true, timeout: 30_000 })`ssh -F ${cfg} ${main} ${clear}`;
    await provisionLab(t, log);
    writeFileSync(marker, topoKey(file, t));
    status = await labStatus(t);
  }
  const lab = labHandle(t, status, log);
  await resetScenarioLab(lab);
  return lab;
}

/** Handles on a running, provisioned lab (transports, endpoint through the entry point, host key). */
export function labHandle(t: Topology, s: LabStatus, log: (line: string) => void): ScenarioLab {
  const inventory = loadInventory(s.inventory, t);
  const transports = sshTransports(inventory, undefined) as Map<string, Transport>;
  const hostKey = ensureStackSecrets(t, inventory).hostKeys.ed25519.public;
  return {
    t,
    status: s,
    inventory,
    transports,
    sshConfig: s.sshConfig,
    hostKey,
    endpoint: {
      host: s.entrypoint.host,
      port: s.entrypoint.port,
      username: s.demoUser.name,
      privateKey: readFileSync(s.demoUser.privateKey),
      hostKey,
      readyTimeoutMs: 5000,
    },
    log,
    async sh(node, cmd, timeoutMs = 60_000) {
      const tr = transports.get(node);
      if (!tr) throw new Error(`${node}: not in the lab's inventory`);
      return tr.exec(cmd, { timeoutMs });
    },
    close: () => closeAll(transports.values()),
  };
}

/** Start a stopped/killed node container and wait for ssh + systemd. */
export async function startNode(lab: ScenarioLab, node: string): Promise<void> {
  const c = lab.status.nodes[node]?.container;
  if (!c) throw new Error(`${node}: no container in lab ${lab.t.name}`);
  const n = labNode(lab.t.name, node);
  if (!(await n.inspect()).running) await n.start();
  await waitReady(lab.sshConfig, node, Date.now() + 90_000);
}

/**
 * Take a file system off `path` on `node` (a scenario's stand-in for an unmounted disk): a process
 * inside it (an rsync lsyncd started meanwhile) makes umount answer "target is busy", so it is
 * tried again for a few seconds, then detached lazily. Throws when `path` is still a mount point:
 * replication into a forgotten tmpfs would lose every later file (CI, once).
 */
export async function unmountOver(lab: ScenarioLab, node: string, path: string): Promise<string> {
  const q = shQuote(path);
  const r = await lab.sh(
    node,
    `for i in $(seq 1 20); do mountpoint -q ${q} || exit 0; umount ${q} 2>/dev/null && exit 0; sleep 0.5; done; ` +
      `umount -l ${q} && echo lazy`,
  );
  const still = await lab.sh(node, `mountpoint -q ${q} && echo mounted; true`);
  if (still.stdout.trim() === 'mounted')
    throw new Error(
      `${node}: ${path} is still a mount point (umount: ${r.stderr.trim() || `exit ${r.code}`})`,
    );
  return r.stdout.includes('lazy') ? 'busy for 10 s: detached lazily (umount -l)' : 'unmounted';
}

/** A failover left behind (a failed scenario, a failed test): fail back the proper way. */
async function failBackIfHeld(lab: ScenarioLab): Promise<void> {
  const { t } = lab;
  const hap = haproxyGroup(t, (n) => lab.transports.get(n));
  const fo = await readFailoverState(hap);
  const mark = await readReconcileMark(hap);
  if (!fo && !mark) return;
  lab.log(
    fo
      ? `reset: the stack is failed over (since ${fo.at}); running failback`
      : `reset: ${sftpNode(t, 'main').name} is held out until failback (needs-reconcile mark, ${mark?.why ?? 'no reason recorded'}); running failback`,
  );
  const r = await runRunbookByName('failback', {
    topology: t,
    inventory: lab.inventory,
    transports: lab.transports,
    log: lab.log,
  });
  if (!r.ok) throw new Error(`reset: failback failed: ${r.error}`);
}

/**
 * lsyncd's startup sync (one rsync of the whole tree, main → sub) runs in the background after
 * `systemctl start`: wait until it is over, or it lands in the next scenario and undoes what the
 * scenario changes on sub (alerts removes sub's guard file; the startup sync put it back before the
 * backup run looked, CI). Over = a probe written on main after the start is on sub (lsyncd holds
 * every event until its startup sync ends) and lsyncd has no rsync running.
 */
export async function awaitLsyncdStartup(lab: ScenarioLab, timeoutMs = 60_000): Promise<void> {
  const { t } = lab;
  const main = sftpNode(t, 'main').name;
  const sub = t.replication.lsyncd.to;
  const probe = shQuote(`${t.sftp.chrootBase}/.wharf-reset-probe`);
  const stamp = `${Date.now()}-${process.pid}`;
  const w = await lab.sh(main, `printf '%s' ${stamp} > ${probe}`);
  if (w.code !== 0) throw new Error(`reset: writing the lsyncd probe on ${main} failed: ${w.stderr.trim()}`);
  const end = Date.now() + timeoutMs;
  let last = '';
  try {
    for (;;) {
      const onSub = (await lab.sh(sub, `cat ${probe} 2>/dev/null; true`)).stdout.trim();
      if (onSub === stamp) {
        const r = await lab.sh(
          main,
          'pid=$(systemctl show -p MainPID --value lsyncd); pgrep -P "$pid" -x rsync >/dev/null && echo busy || echo idle',
        );
        last = `probe on ${sub}, lsyncd ${r.stdout.trim()}`;
        if (r.stdout.trim() === 'idle') return;
      } else last = `probe not yet on ${sub}`;
      if (Date.now() > end)
        throw new Error(
          `reset: lsyncd's startup sync ${main} → ${sub} not over within ${timeoutMs / 1000} s (${last})`,
        );
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    // a probe left behind is harmless (a dot file in the chroot base) but named, not hidden
    for (const n of [main, sub]) {
      const r = await lab.sh(n, `rm -f ${probe}`).catch((e: Error) => ({ code: -1, stderr: e.message }));
      if (r.code !== 0) lab.log(`reset: removing the lsyncd probe on ${n} failed: ${r.stderr.trim()}`);
    }
  }
}

/** Reset to the known state (see the file header). Fast when nothing is out of place. */
export async function resetScenarioLab(lab: ScenarioLab): Promise<void> {
  const { t } = lab;
  const t0 = Date.now();
  // start whatever is not running first, then wait for each to boot: after an engine restart
  // (test/lab/engine.test.ts restarts dockerd) every node is stopped, the bastion that every other
  // node's ssh goes through among them
  const started: string[] = [];
  for (const name of Object.keys(lab.status.nodes)) {
    const node = labNode(t.name, name);
    const n = await node.inspect();
    if (n.paused) {
      lab.log(`reset: unpausing ${name}`);
      await node.unpause();
    }
    if (!n.running) {
      lab.log(`reset: starting ${name}`);
      await node.start();
      started.push(name);
    }
  }
  for (const name of started) await waitReady(lab.sshConfig, name, Date.now() + 90_000);
  const main = sftpNode(t, 'main').name;
  // every HAProxy (both of a pair)
  const hap = haproxyGroup(t, (n) => lab.transports.get(n));
  const quiet = { ...lab, log: () => {} };
  await failBackIfHeld(lab);
  // lsyncd on main: the rendered config (a scenario may have changed it), enabled and running
  const want = renderLsyncdConf(t, lab.inventory).content;
  const have = (await lab.transports.get(main)!.readFile(LSYNCD_CONF))?.toString('utf8');
  const active = (await quiet.sh(main, 'systemctl is-active lsyncd')).stdout.trim();
  const enabled = (await quiet.sh(main, 'systemctl is-enabled lsyncd')).stdout.trim();
  if (have !== want || active !== 'active' || enabled !== 'enabled') {
    lab.log(
      `reset: lsyncd on ${main} out of place (config ${have === want ? 'ok' : 'changed'}, ${active}, ${enabled}): configure`,
    );
    const r = await runRunbookByName('configure', {
      topology: t,
      inventory: lab.inventory,
      transports: lab.transports,
      log: () => {},
    });
    if (!r.ok) throw new Error(`reset: configure failed: ${r.error}`);
    await quiet.sh(main, 'systemctl enable --now lsyncd && systemctl restart lsyncd');
    await awaitLsyncdStartup(lab);
  }
  // main in rotation everywhere (maint left by an interrupted scenario)
  await runtimeApi(hap, t, [
    ...serverStateCommands(t, main, 'ready'),
    ...serverStateCommands(t, t.replication.lsyncd.to, 'ready'),
  ]);
  // empty the upload folders and the backup snapshots
  const base = t.sftp.chrootBase;
  // a scenario that stopped between its mount and its umount (backup-restore's empty-source guard)
  const sftpNodes = Object.values(t.nodes).filter((n) => n.kind === 'sftp');
  const mounted = (
    await Promise.all(
      sftpNodes.map(async (n) =>
        (await quiet.sh(n.name, `mountpoint -q ${shQuote(base)} && echo mounted; true`)).stdout.trim() ===
        'mounted'
          ? n.name
          : '',
      ),
    )
  ).filter(Boolean);
  for (const n of mounted)
    lab.log(`reset: a file system is mounted over ${base} on ${n}: ${await unmountOver(lab, n, base)}`);
  if (mounted.length) {
    await quiet.sh(main, 'systemctl restart lsyncd');
    await awaitLsyncdStartup(lab);
  }
  const uploads = t.sftp.users.map((u) => shQuote(`${base}/${u.name}/${t.sftp.uploadDir}`)).join(' ');
  // Many files on main (many-files' thousands): lsyncd would spend minutes on the deletions' events
  // (an rsync per batch, delete = false), lagging the next scenario; it is stopped meanwhile and
  // started again (its startup sync of a near-empty tree is quick).
  const many = Number(
    (await quiet.sh(main, `find ${uploads} -mindepth 1 2>/dev/null | head -n 1001 | wc -l`)).stdout.trim(),
  );
  if (many > 1000) {
    lab.log(`reset: more than 1000 entries in ${main}'s upload folders: lsyncd stopped while they go`);
    await quiet.sh(main, 'systemctl stop lsyncd');
  }
  try {
    for (const n of Object.values(t.nodes)) {
      if (n.kind !== 'sftp') continue;
      await quiet.sh(n.name, `find ${uploads} -mindepth 1 -delete 2>/dev/null; true`, 300_000);
    }
  } finally {
    if (many > 1000) {
      await quiet.sh(main, 'systemctl start lsyncd');
      await awaitLsyncdStartup(lab);
    }
  }
  // notices still queued for earlier scenarios' files (a failback of thousands of files queues
  // thousands of late notices; the notifier drains a few per second) are not this scenario's
  const notifier = t.notifications.on === 'main' ? main : t.replication.backup.to;
  await quiet.sh(
    notifier,
    `find ${shQuote(NOTIFY_SPOOL)} -mindepth 1 -maxdepth 1 -type f -delete 2>/dev/null; systemctl restart wharf-notify 2>/dev/null; true`,
  );
  const snap = t.replication.backup.snapshotDir;
  await quiet.sh(
    t.replication.backup.to,
    `find ${shQuote(snap)} -mindepth 1 -maxdepth 1 -exec rm -rf {} +; true`,
  );
  lab.log(`reset: known state in ${Date.now() - t0} ms`);
}

/**
 * The HAProxy node that serves the traffic now: the holder of the pair's floating address (the one
 * HAProxy without a pair). Its counters and stick tables are the ones clients touch.
 */
export async function activeHaproxyNode(lab: ScenarioLab): Promise<string> {
  const a = await activeHaproxy(lab.t, lab.inventory, (n) => lab.transports.get(n));
  if (!a.node)
    throw new Error(
      a.unreachable.length
        ? `no reachable HAProxy node holds the floating address; could not ask ${a.unreachable.join(', ')}`
        : `no HAProxy node holds the floating address (${lab.t.haproxy.pair.nodes.join(', ')})`,
    );
  return a.node;
}

/** Every file under the users' upload folders on a node, as `sha256sum` output (chroot-relative via parseSha256sum(out, `${base}/${user}`)). */
export async function sha256Uploads(lab: ScenarioLab, node: string, root: string): Promise<string> {
  const r = await lab.sh(
    node,
    `cd ${shQuote(root)} 2>/dev/null && find . -type f -print0 | xargs -0 -r sha256sum | sed 's#  \\./#  ${root.replace(/#/g, '')}/#'`,
    120_000,
  );
  return r.stdout;
}
