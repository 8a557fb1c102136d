// A throwaway OpenSSH server on THIS host (127.0.0.1), for the tests that need the server's side
// of the connection to be this machine:
// - the engine tests (engine-ssh, engine-interrupt) assert on files under a temp root of this host
//   and interrupt a run whose remote command must be seen on this host;
// - lsyncd and backup run the real lsyncd/rsync between two directories of this host;
// - the workload test checks uploads on this host's disk and kills the server mid-run (sessions
//   included, like a crashed host), then starts it again on the same port.
// Everything else uses the container fixture (sshd-container.ts). Strict host-key checking stays
// on: a fresh host key, written into known_hosts.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { freePort } from '../../src/core/net.ts';
import { $, sleep, type ProcessPromise } from '../../src/exec/process.ts';
import { TEST_SSHD_OPTIONS, testClient, testKeys, type TestClient } from './ssh-client.ts';

export interface HostSshd extends TestClient {
  port: number;
  dir: string;
  /** ssh command line (as rsync -e / lsyncd run it). */
  ssh: string;
  /** Start the listener again after stop(), on the same port and keys. */
  start(): Promise<void>;
  /** Kill the listener and every session (a crashed host). */
  stop(): Promise<void>;
  /** stop() and remove the keys and config. */
  close(): Promise<void>;
}

/** SIGSTOP then SIGKILL a process and all its descendants, synchronously. */
function killTree(root: number): void {
  process.kill(root, 'SIGSTOP');
  const children = new Map<number, number[]>();
  for (const line of execFileSync('ps', ['-e', '-o', 'pid=,ppid='], { encoding: 'utf8' }).split('\n')) {
    const [pid, ppid] = line.trim().split(/\s+/).map(Number);
    if (!pid || ppid === undefined) continue;
    children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  }
  const all: number[] = [];
  for (const todo = [root]; todo.length;) {
    const pid = todo.pop()!;
    all.push(pid);
    todo.push(...(children.get(pid) ?? []));
  }
  for (const pid of all) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e; // ESRCH: already gone
    }
  }
}

/** True once something on the port answers with an SSH banner. */
export function sshBanner(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection({ host, port });
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

export async function startHostSshd(o: { extraConfig?: string } = {}): Promise<HostSshd> {
  const dir = mkdtempSync('/tmp/wharf-sshd-');
  mkdirSync('/run/sshd', { recursive: true }); // privilege separation directory
  const { hostKey, identity, hostPublicKey } = testKeys(dir);
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(`${identity}.pub`), { mode: 0o644 });
  // sshd reads AuthorizedKeysFile as the logging-in user: let it traverse the dir (keys stay 0600).
  chmodSync(dir, 0o755);
  const port = await freePort();
  const client = testClient(dir, port, identity, hostPublicKey);
  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `AuthorizedKeysFile ${dir}/authorized_keys`,
      ...TEST_SSHD_OPTIONS,
      'LogLevel ERROR',
      'Subsystem sftp internal-sftp',
      o.extraConfig ?? '',
      '',
    ].join('\n'),
  );

  let proc: ProcessPromise | undefined;
  const s: HostSshd = {
    ...client,
    port,
    dir,
    ssh: `ssh -i ${identity} -p ${port} -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=${client.knownHosts}`,
    async start() {
      const p = $({
        nothrow: true,
        stdio: ['ignore', 'ignore', 'pipe'],
      })`exec /usr/sbin/sshd -D -e -f ${config}`;
      proc = p;
      const deadline = Date.now() + 10_000;
      while (!(await sshBanner('127.0.0.1', port))) {
        if (p.stage !== 'running' || Date.now() > deadline)
          throw new Error(
            `sshd did not start on 127.0.0.1:${port}: ${p.output?.stderr ?? '(still starting)'}`,
          );
        await sleep(50);
      }
    },
    async stop() {
      const p = proc;
      proc = undefined;
      if (!p || p.stage !== 'running') return;
      // Killed synchronously, before stop() first yields: the listener is stopped first (it forks no
      // new session meanwhile), then it and every descendant (sshd's sessions call setsid(), so a
      // process-group kill would miss them) get SIGKILL. A caller in a workload's event callback
      // thus cuts the next transfer; zx's asynchronous tree kill let a fast workload finish first.
      if (p.pid) killTree(p.pid);
      await p;
    },
    async close() {
      await s.stop();
      rmSync(dir, { recursive: true, force: true });
      rmSync(client.controlDir, { recursive: true, force: true });
    },
  };
  await s.start();
  return s;
}
