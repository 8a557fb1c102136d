// A throwaway OpenSSH server on 127.0.0.1 (root login by a fresh key, temp host key) standing in for
// a remote node, so rendered scripts/configs that use ssh + rsync run for real on this host.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

export interface LoopbackSshd {
  port: number;
  /** Private key for root@127.0.0.1. */
  identity: string;
  knownHosts: string;
  /** ssh command line (as rsync -e / lsyncd would run it). */
  ssh: string;
  stop(): void;
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });

export async function startLoopbackSshd(dir: string): Promise<LoopbackSshd> {
  mkdirSync(dir, { recursive: true });
  const identity = join(dir, 'id');
  const knownHosts = join(dir, 'known_hosts');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'hostkey')]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', identity]);
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(`${identity}.pub`));
  const port = await freePort();
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${dir}/hostkey`,
      `PidFile ${dir}/sshd.pid`,
      `AuthorizedKeysFile ${dir}/authorized_keys`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'MaxStartups 50',
      '',
    ].join('\n'),
  );
  writeFileSync(knownHosts, `[127.0.0.1]:${port} ${readFileSync(join(dir, 'hostkey.pub'), 'utf8')}`);
  mkdirSync('/run/sshd', { recursive: true });
  const proc = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: 'ignore' });
  const ssh = `ssh -i ${identity} -p ${port} -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=${knownHosts}`;
  for (let i = 0; ; i++) {
    const r = spawnSync('sh', ['-c', `${ssh} root@127.0.0.1 true`], { encoding: 'utf8' });
    if (r.status === 0) break;
    if (i > 50) {
      proc.kill('SIGTERM');
      throw new Error(`loopback sshd did not come up: ${r.stderr}`);
    }
    await new Promise((res) => setTimeout(res, 100));
  }
  return { port, identity, knownHosts, ssh, stop: () => proc.kill('SIGTERM') };
}
