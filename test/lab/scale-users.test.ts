// configure at scale (issue 13): 150 SFTP users on the shared scenario lab. The first run creates
// them on main, sub and backup (users, chroots, upload folders, keys) in batches; some of them log
// in for real through the entry point (OpenSSH sftp) and upload; their chroots have the owners and
// modes sshd demands; the observation of the real hosts is the same read both ways (bulk and per
// resource); a rerun reports 0 changes. The users are removed and the lab configured back after.
// GIVEN the shared scenario lab (scenarios/lab.ts: WHARF_SCENARIO_STACK, else stack "scen"),
// provisioned once by the first lab file that needs it; it comes down after every lab file.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureScenarioLab, scenarioTopology, type ScenarioLab } from '../../scenarios/lab.ts';
import { removeScaleUsers, scaleUserName, topologyWithUsers } from '../../bench/scale-users.ts';
import { runRunbookByName } from '../../src/stack/runbooks.ts';
import { MemoryReporter } from '../../src/runbook/progress.ts';
import { observeHost, observeHostEach } from '../../src/runbook/observe.ts';
import { configureDesired } from '../../src/stack/desired.ts';
import { ensureStackSecrets } from '../../src/stack/secrets.ts';
import type { Topology } from '../../src/topology/model.ts';

const N = 150;
const { file, t: baseT } = scenarioTopology();
let lab: ScenarioLab;
let t: Topology;
const dir = mkdtempSync(join(tmpdir(), 'wharf-scaleusers-'));

const configure = async (topology: Topology) => {
  const r = await runRunbookByName('configure', {
    topology,
    inventory: lab.inventory,
    transports: lab.transports,
    reporter: new MemoryReporter(),
    log: () => {},
  });
  expect(r.ok, r.error).toBe(true);
  return r;
};

beforeAll(async () => {
  lab = await ensureScenarioLab((l) => process.stderr.write(`[scenario lab] ${l}\n`));
  // bench users left by an earlier run: removed, and the lab configured back to its own users
  if (await removeScaleUsers(baseT, lab.transports)) await configure(baseT);
  t = topologyWithUsers(file, N, readFileSync(`${lab.status.demoUser.privateKey}.pub`, 'utf8'));
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  if (!lab) return;
  await removeScaleUsers(baseT, lab.transports);
  await configure(baseT);
  await lab.close();
});

/** OpenSSH sftp as `user` (the demo key) through the lab's entry point, host key pinned. */
function sftpAs(user: string, batch: string) {
  const kh = join(dir, 'known_hosts');
  writeFileSync(kh, `[${lab.status.entrypoint.host}]:${lab.status.entrypoint.port} ${lab.hostKey}\n`);
  return spawnSync(
    'sftp',
    [
      '-b',
      '-',
      '-i',
      lab.status.demoUser.privateKey,
      '-P',
      String(lab.status.entrypoint.port),
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      `UserKnownHostsFile=${kh}`,
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      'BatchMode=yes',
      `${user}@${lab.status.entrypoint.host}`,
    ],
    { input: batch, encoding: 'utf8', timeout: 60_000 },
  );
}

describe(`configure with ${N} SFTP users`, () => {
  it(`creates ${N} users in batches; sampled users log in, upload, and have sshd-proof chroots; a rerun is a no-op`, async () => {
    const t0 = Date.now();
    const first = await configure(t);
    const firstMs = Date.now() - t0;
    // per SFTP node and user: user, chroot, upload folder, .ssh, authorized_keys
    expect(first.changes).toBeGreaterThanOrEqual(3 * N * 5);
    for (const node of ['sftp-main', 'sftp-sub', 'sftp-backup'])
      expect(first.hosts[node]?.changes, node).toBeGreaterThanOrEqual(N * 5);

    const sample = [scaleUserName(0), scaleUserName(N / 2 - 1), scaleUserName(N - 1)];
    const up = t.sftp.uploadDir;
    for (const u of sample) {
      const r = sftpAs(u, `put ${join(process.cwd(), 'package.json')} ${up}/hello-${u}.json\nls ${up}\n`);
      expect(r.status, `${u}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toContain(`hello-${u}.json`);
    }
    // a user the topology does not have cannot log in with the same key
    expect(sftpAs(scaleUserName(N), 'ls\n').status).not.toBe(0);

    const base = t.sftp.chrootBase;
    for (const node of ['sftp-main', 'sftp-sub', 'sftp-backup']) {
      const r = await lab.sh(
        node,
        sample
          .map(
            (u) =>
              `stat -c '%n %U:%G %a' ${base}/${u} ${base}/${u}/${up} ${base}/${u}/.ssh/authorized_keys; ` +
              // internal-sftp's log socket in the chroot (wharf-sftp-log, restarted for the new users)
              `mountpoint -q ${base}/${u}/dev/log && echo '${u} log socket mounted'`,
          )
          .join('; '),
      );
      expect(r.code, r.stderr).toBe(0);
      const want = sample.flatMap((u) => [
        `${base}/${u} root:root 755`,
        `${base}/${u}/${up} ${u}:${t.sftp.group} 750`,
        `${base}/${u}/.ssh/authorized_keys root:root 644`,
        `${u} log socket mounted`,
      ]);
      expect(r.stdout.trim().split('\n'), node).toEqual(want);
    }

    // the real hosts read both ways: the same observations (so the same plan and diff lines); 30 of
    // the users (the per-resource read of 150 takes minutes on a busy machine), so the rendered
    // files that list users differ from the host's and their contents are read too
    const t30 = topologyWithUsers(file, 30, readFileSync(`${lab.status.demoUser.privateKey}.pub`, 'utf8'));
    const secrets = ensureStackSecrets(t30, lab.inventory);
    const rs = configureDesired(t30, lab.inventory, secrets, ['sftp-sub'])['sftp-sub']!;
    const sub = lab.transports.get('sftp-sub')!;
    expect(await observeHost(sub, rs)).toEqual(await observeHostEach(sub, rs));

    const t1 = Date.now();
    const again = await configure(t);
    const noopMs = Date.now() - t1;
    expect(again.changes).toBe(0);
    process.stderr.write(
      `[scale-users] ${N} users: first ${(firstMs / 1000).toFixed(1)} s (${first.changes} changes), no-op ${(noopMs / 1000).toFixed(1)} s\n`,
    );
  });
});
