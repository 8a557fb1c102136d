// A real OpenSSH server on 127.0.0.1 for integration tests of the transport and the engine:
// temp host key, temp client key, known_hosts and ssh_config; strict host-key checking stays on.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import type { SshTargetT } from '../topology/inventory.ts';
import type { SshOptions } from './ssh.ts';

export interface TestSshd {
  port: number;
  dir: string;
  target: SshTargetT;
  options: SshOptions;
  /** ssh_config with a Host alias `wharf-test` for this server. */
  sshConfig: string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

function banner(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection({ host: '127.0.0.1', port });
    c.once('data', (d) => {
      c.destroy();
      resolve(d.toString().startsWith('SSH-2.0'));
    });
    c.once('error', () => resolve(false));
    c.setTimeout(1000, () => {
      c.destroy();
      resolve(false);
    });
  });
}

export async function startTestSshd(): Promise<TestSshd> {
  const dir = mkdtempSync('/tmp/wharf-sshd-');
  const controlDir = mkdtempSync('/tmp/wc-');
  mkdirSync('/run/sshd', { recursive: true }); // privilege separation directory
  const keygen = (file: string) => execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', file]);
  keygen(join(dir, 'host_ed25519'));
  keygen(join(dir, 'id_ed25519'));
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'id_ed25519.pub')), { mode: 0o644 });
  // sshd reads AuthorizedKeysFile as the logging-in user: let non-root test users traverse the dir
  // (the private keys in it stay 0600).
  chmodSync(dir, 0o755);
  const port = await freePort();
  const hostPub = readFileSync(join(dir, 'host_ed25519.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ');
  writeFileSync(join(dir, 'known_hosts'), `[127.0.0.1]:${port} ${hostPub}\n`);
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${dir}/host_ed25519`,
      `AuthorizedKeysFile ${dir}/authorized_keys`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'MaxSessions 50',
      'MaxStartups 50',
      'PidFile none',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(dir, 'ssh_config'),
    [
      'Host wharf-test',
      '  HostName 127.0.0.1',
      `  Port ${port}`,
      '  User root',
      `  IdentityFile ${dir}/id_ed25519`,
      '  IdentitiesOnly yes',
      `  UserKnownHostsFile ${dir}/known_hosts`,
      '',
    ].join('\n'),
  );
  const proc: ChildProcess = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  proc.stderr?.on('data', (b: Buffer) => (log += b.toString()));
  const deadline = Date.now() + 10_000;
  while (!(await banner(port))) {
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`sshd did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    dir,
    sshConfig: join(dir, 'ssh_config'),
    target: { host: '127.0.0.1', port, user: 'root', identityFile: join(dir, 'id_ed25519'), sudo: false },
    options: { knownHosts: join(dir, 'known_hosts'), controlDir, connectTimeoutS: 5 },
    async stop() {
      proc.kill('SIGTERM');
      await new Promise((r) => (proc.exitCode !== null ? r(null) : proc.once('exit', r)));
      rmSync(dir, { recursive: true, force: true });
      rmSync(controlDir, { recursive: true, force: true });
    },
  };
}
