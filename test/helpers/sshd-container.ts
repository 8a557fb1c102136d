// The throwaway sshd for tests: one container of the lab's offline node image (testcontainers'
// GenericContainer), running sshd as its command instead of systemd, its port 22 published on
// 127.0.0.1 only. Strict host-key checking stays on: a host key generated here is copied into the
// container and written into known_hosts, so the client refuses anything else. Tests that need the
// server on this host itself use host-sshd.ts (it says why).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import { ensureImages } from '../../src/lab/images.ts';
import { TEST_SSHD_OPTIONS, testClient, testKeys, type TestClient } from './ssh-client.ts';

/** Label on every fixture container, so a leftover can be found (`docker ps -a --filter label=…`). */
export const FIXTURE_LABEL = 'wharf.test-fixture';
const CONF = '/etc/ssh/wharf-test';

const SSHD_CONFIG = [
  'Port 22',
  `HostKey ${CONF}/host_ed25519`,
  // readable by every user, so non-root test users log in with the same key
  `AuthorizedKeysFile ${CONF}/authorized_keys`,
  ...TEST_SSHD_OPTIONS,
  'Subsystem sftp internal-sftp',
  '',
].join('\n');

/** A node-image container that runs sshd (not systemd) with the given keys, on 127.0.0.1. */
export class SshdContainer extends GenericContainer {
  constructor(image: string, keys: { hostKey: string; authorizedKeys: string }) {
    super(image);
    this.withCommand([
      '/bin/sh',
      '-c',
      `mkdir -p /run/sshd && exec /usr/sbin/sshd -D -e -f ${CONF}/sshd_config`,
    ])
      .withCopyContentToContainer([
        { content: SSHD_CONFIG, target: `${CONF}/sshd_config`, mode: 0o644 },
        { content: keys.hostKey, target: `${CONF}/host_ed25519`, mode: 0o600 },
        { content: keys.authorizedKeys, target: `${CONF}/authorized_keys`, mode: 0o644 },
      ])
      .withExposedPorts(22)
      .withLabels({ [FIXTURE_LABEL]: 'sshd' })
      .withWaitStrategy(
        Wait.forAll([Wait.forLogMessage(/Server listening on 0\.0\.0\.0 port 22/), Wait.forListeningPorts()]),
      )
      .withStartupTimeout(30_000);
    // The node image stops systemd with SIGRTMIN+3; sshd as PID 1 ends on SIGTERM.
    this.createOpts.StopSignal = 'SIGTERM';
    // Published on loopback only, on a port Docker picks.
    this.hostConfig.PortBindings = { '22/tcp': [{ HostIp: '127.0.0.1', HostPort: '0' }] };
  }
}

export interface SshdFixture extends TestClient {
  container: StartedTestContainer;
  /** The published port on 127.0.0.1. */
  port: number;
  /** Run a shell line in the container as root (docker exec), for setting up and checking. */
  sh(line: string): Promise<{ stdout: string; stderr: string; exitCode: number }>;
  /** Stop and remove the container, remove the keys. */
  close(): Promise<void>;
}

/** Build (once per machine) or find the node image, then start the sshd container. */
export async function startSshdContainer(): Promise<SshdFixture> {
  const image = (await ensureImages(['sftp'], (l) => process.stderr.write(`${l}\n`))).plain;
  const dir = mkdtempSync('/tmp/wharf-sshc-');
  const { hostKey, identity, hostPublicKey } = testKeys(dir);
  const container = await new SshdContainer(image, {
    hostKey: readFileSync(hostKey, 'utf8'),
    authorizedKeys: readFileSync(`${identity}.pub`, 'utf8'),
  }).start();
  const port = container.getMappedPort(22);
  const client = testClient(dir, port, identity, hostPublicKey);
  return {
    ...client,
    container,
    port,
    async sh(line) {
      const r = await container.exec(['/bin/sh', '-c', line]);
      return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode };
    },
    async close() {
      await container.stop({ remove: true, removeVolumes: true });
      rmSync(dir, { recursive: true, force: true });
      rmSync(client.controlDir, { recursive: true, force: true });
    },
  };
}
