// host-keys: every SFTP node behind the entry point presents the same host keys (pitfall 11), so a
// client that pinned the key before the failover keeps working after it and after the failback.
// The client is OpenSSH's own `sftp` with StrictHostKeyChecking=yes and a known_hosts written once
// (the entry point with the shared ed25519 key): it uploads before the failover (lands on main),
// after `failover` (lands on sub) and after `failback` (main again), with no host-key error. A
// control run with a known_hosts holding another key must fail with OpenSSH's host-key error, so
// the check cannot pass by accident.
import { spawnSync } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runRunbookByName } from '../src/stack/runbooks.ts';
import { sftpNode } from '../src/topology/model.ts';
import type { Scenario } from '../src/scenario/types.ts';
import { userRoot } from '../src/workload/remote.ts';
import { ensureScenarioLab, type ScenarioLab } from './lab.ts';

/** One OpenSSH sftp upload through the entry point with the given known_hosts. */
function sftpPut(lab: ScenarioLab, knownHosts: string, local: string, remote: string) {
  const { host, port } = lab.status.entrypoint;
  const r = spawnSync(
    'sftp',
    [
      '-b',
      '-',
      '-i',
      lab.status.demoUser.privateKey,
      '-P',
      String(port),
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      `UserKnownHostsFile=${knownHosts}`,
      '-o',
      'GlobalKnownHostsFile=/dev/null',
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      'BatchMode=yes',
      '-o',
      'ConnectTimeout=10',
      `${lab.status.demoUser.name}@${host}`,
    ],
    { input: `put "${local}" "${remote}"\n`, encoding: 'utf8', timeout: 60_000 },
  );
  const err = (r.stderr ?? '').trim();
  return {
    ok: r.status === 0,
    hostKeyError:
      /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed|No .* host key is known/i.test(
        err,
      ),
    err: err
      .split('\n')
      .filter((l) => !/^@+$/.test(l.trim()))
      .slice(0, 3)
      .join(' | '),
  };
}

export const hostKeys: Scenario = {
  name: 'host-keys',
  description:
    'OpenSSH sftp with StrictHostKeyChecking=yes and the known_hosts it had before: works after failover and after failback',
  async run(ctx) {
    const lab = await ensureScenarioLab(ctx.log);
    const t = lab.t;
    const main = sftpNode(t, 'main').name;
    const sub = t.replication.lsyncd.to;
    const dir = mkdtempSync(join(tmpdir(), 'wharf-hostkeys-'));
    const rb = (name: string) =>
      runRunbookByName(name, {
        topology: t,
        inventory: lab.inventory,
        transports: lab.transports,
        log: (l) => ctx.log(`[${name}] ${l}`),
      });
    try {
      const { host, port } = lab.status.entrypoint;
      const kh = join(dir, 'known_hosts');
      writeFileSync(kh, `[${host}]:${port} ${lab.hostKey.split(/\s+/).slice(0, 2).join(' ')}\n`);
      const other = join(dir, 'other');
      spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
      const wrong = join(dir, 'known_hosts.wrong');
      writeFileSync(
        wrong,
        `[${host}]:${port} ${spawnSync('cat', [`${other}.pub`], { encoding: 'utf8' })
          .stdout.split(/\s+/)
          .slice(0, 2)
          .join(' ')}\n`,
      );
      const root = userRoot(t, lab.status.demoUser.name, 'sftp');

      const phase = async (label: string, expectOn: string) => {
        const slug = label.replace(/\W+/g, '-');
        const local = join(dir, `hk-${slug}.bin`);
        const content = randomBytes(32 * 1024);
        writeFileSync(local, content);
        const sha = createHash('sha256').update(content).digest('hex');
        const remote = `${t.sftp.uploadDir}/hk-${slug}-${Date.now()}.bin`;
        const r = sftpPut(lab, kh, local, remote);
        ctx.check(
          `OpenSSH sftp (StrictHostKeyChecking=yes, known_hosts from before) ${label}`,
          r.ok && !r.hostKeyError,
          r.ok ? 'uploaded, no host-key prompt or error' : r.err,
        );
        const on = await lab.sh(expectOn, `sha256sum '${root}/${remote}' 2>/dev/null`);
        ctx.check(
          `upload ${label} served by ${expectOn}`,
          on.stdout.startsWith(sha),
          on.stdout.trim() || 'not there',
        );
      };

      const control = sftpPut(lab, wrong, '/dev/null', `${t.sftp.uploadDir}/hk-control.bin`);
      ctx.check(
        'control: a known_hosts with another key is refused by OpenSSH',
        !control.ok && control.hostKeyError,
        control.err,
      );
      await phase('before the failover', main);
      const fo = await rb('failover');
      ctx.check('failover (planned)', fo.ok, fo.error ?? `${(fo.durationMs / 1000).toFixed(1)} s`);
      await phase('after the failover', sub);
      const fb = await rb('failback');
      ctx.check('failback', fb.ok, fb.error ?? `${(fb.durationMs / 1000).toFixed(1)} s`);
      await phase('after the failback', main);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await lab.close();
    }
  },
};
export default hostKeys;
