// A throwaway real OpenSSH server on 127.0.0.1 for tests that need one without the lab.
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync, chmodSync } from 'node:fs';
import { freePort } from '../../src/transport/testing.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export { freePort };

export interface LocalSshd {
  port: number;
  dir: string;
  clientKey: string;
  clientKeyPath: string;
  hostPublicKey: string;
  knownHosts: string;
  proc: ChildProcess;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function startLocalSshd(extraConfig = ''): Promise<LocalSshd> {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-sshd-'));
  chmodSync(dir, 0o755);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_key')]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'client_key')]);
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client_key.pub')));
  chmodSync(join(dir, 'authorized_keys'), 0o600);
  const port = await freePort();
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_key')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'StrictModes no',
      'UsePAM no',
      `PidFile ${join(dir, 'sshd.pid')}`,
      'Subsystem sftp internal-sftp',
      extraConfig,
    ].join('\n') + '\n',
  );
  const hostPublicKey = readFileSync(join(dir, 'host_key.pub'), 'utf8').trim();
  writeFileSync(join(dir, 'known_hosts'), `[127.0.0.1]:${port} ${hostPublicKey}\n`);
  const s: LocalSshd = {
    port,
    dir,
    clientKeyPath: join(dir, 'client_key'),
    clientKey: readFileSync(join(dir, 'client_key'), 'utf8'),
    hostPublicKey,
    knownHosts: join(dir, 'known_hosts'),
    proc: undefined as unknown as ChildProcess,
    async start() {
      s.proc = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: 'ignore' });
      for (let i = 0; i < 100; i++) {
        const ok = await new Promise<boolean>((r) => {
          const c = require_net().connect(port, '127.0.0.1');
          c.once('connect', () => (c.destroy(), r(true)));
          c.once('error', () => r(false));
        });
        if (ok) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`local sshd did not start on port ${port}`);
    },
    async stop() {
      if (s.proc && s.proc.exitCode === null) {
        // sessions are forked children of the listener: end them too, like a crashed host
        spawnSync('pkill', ['-KILL', '-P', String(s.proc.pid)]);
        s.proc.kill('SIGKILL');
        await new Promise((r) => s.proc.once('exit', r));
      }
    },
  };
  await s.start();
  return s;
}

import * as net from 'node:net';
const require_net = () => net;

export function cleanupSshd(s: LocalSshd): void {
  rmSync(s.dir, { recursive: true, force: true });
}
