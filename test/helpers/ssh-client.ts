// What both throwaway sshd fixtures (host-sshd.ts, sshd-container.ts) hand a test: fresh keys, a
// pinned known_hosts, an ssh_config alias and the transport target, for a server on 127.0.0.1:port.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureKeyPair } from '../../src/stack/keys.ts';
import type { SshTargetT } from '../../src/topology/inventory.ts';
import type { SshOptions } from '../../src/transport/ssh.ts';

/** sshd options both fixtures share (key-only root login, no PAM, room for parallel sessions). */
export const TEST_SSHD_OPTIONS = [
  'PermitRootLogin prohibit-password',
  'PasswordAuthentication no',
  'KbdInteractiveAuthentication no',
  'UsePAM no',
  'StrictModes no',
  'MaxSessions 50',
  'MaxStartups 50',
  'PidFile none',
];

/** A server host key and a client key, generated in dir. */
export function testKeys(dir: string): { hostKey: string; identity: string; hostPublicKey: string } {
  const hostKey = join(dir, 'host_ed25519');
  const identity = join(dir, 'id_ed25519');
  ensureKeyPair(hostKey, 'ed25519', 'wharf-test-host');
  ensureKeyPair(identity, 'ed25519', 'wharf-test-client');
  const hostPublicKey = readFileSync(`${hostKey}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
  return { hostKey, identity, hostPublicKey };
}

export interface TestClient {
  /** root@127.0.0.1 with the client key: for `new SshTransport(name, target, options)`. */
  target: SshTargetT;
  options: SshOptions;
  /** ssh_config with a Host alias `wharf-test` for this server. */
  sshConfig: string;
  identity: string;
  /** The client's private key content (for ssh2 clients). */
  clientKey: string;
  /** The server's host key line (`ssh-ed25519 AAAA…`). */
  hostPublicKey: string;
  knownHosts: string;
  /** A short directory for ssh's control sockets (paths must stay < 104 bytes). */
  controlDir: string;
}

/** known_hosts (the host key pinned at [127.0.0.1]:port) and ssh_config for a client of the server. */
export function testClient(dir: string, port: number, identity: string, hostPublicKey: string): TestClient {
  const knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, `[127.0.0.1]:${port} ${hostPublicKey}\n`);
  const sshConfig = join(dir, 'ssh_config');
  writeFileSync(
    sshConfig,
    [
      'Host wharf-test',
      '  HostName 127.0.0.1',
      `  Port ${port}`,
      '  User root',
      `  IdentityFile ${identity}`,
      '  IdentitiesOnly yes',
      `  UserKnownHostsFile ${knownHosts}`,
      '',
    ].join('\n'),
  );
  const controlDir = mkdtempSync('/tmp/wc-');
  return {
    target: { host: '127.0.0.1', port, user: 'root', identityFile: identity, sudo: false },
    options: { knownHosts, controlDir, connectTimeoutS: 5 },
    sshConfig,
    identity,
    clientKey: readFileSync(identity, 'utf8'),
    hostPublicKey,
    knownHosts,
    controlDir,
  };
}
