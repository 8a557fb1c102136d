import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectSftp, runWorkload } from '../../src/workload/generator.ts';
import { Ledger } from '../../src/workload/ledger.ts';
import { check, parseSha256sum } from '../../src/workload/checker.ts';
import { startHostSshd, type HostSshd } from '../helpers/host-sshd.ts';

// GIVEN a real OpenSSH sftp server on loopback, WHEN clients upload, THEN every ack is on disk.
describe('workload generator against a real sshd', () => {
  let sshd: HostSshd;
  let root: string;
  beforeAll(async () => {
    sshd = await startHostSshd();
    root = mkdtempSync(join(tmpdir(), 'wharf-upload-'));
    mkdirSync(join(root, 'upload'));
  });
  afterAll(async () => {
    await sshd.close();
    rmSync(root, { recursive: true, force: true });
  });

  const endpoint = () => ({
    host: '127.0.0.1',
    port: sshd.port,
    username: 'root',
    privateKey: sshd.clientKey,
    hostKey: sshd.hostPublicKey,
  });

  it('records every acknowledged upload and the checker finds them all', async () => {
    const ledgerFile = join(root, 'ledger.jsonl');
    const res = await runWorkload({
      endpoint: endpoint(),
      clients: 3,
      filesPerClient: 4,
      size: (c, i) => 1000 + c * 100 + i,
      dir: join(root, 'upload'),
      prefix: 'small',
      ledger: new Ledger(ledgerFile),
    });
    expect(res.acks).toHaveLength(12);
    expect(res.failures).toHaveLength(0);
    const out = execFileSync('sh', ['-c', `cd / && sha256sum ${root}/upload/*`], { encoding: 'utf8' });
    const observed = parseSha256sum(out, '/');
    const v = check(
      Ledger.read(ledgerFile).acks.map((a) => ({ ...a, path: a.path.slice(1) })),
      { local: observed },
    );
    expect(v.valid).toBe(true);
    expect(v.nodes[0]!.ok).toBe(12);
  });

  it('uploads a large file with fastPut and the checksum matches', async () => {
    const res = await runWorkload({
      endpoint: endpoint(),
      clients: 1,
      filesPerClient: 1,
      size: 24 * 1024 * 1024,
      dir: join(root, 'upload'),
      prefix: 'large',
    });
    expect(res.acks).toHaveLength(1);
    const sum = execFileSync(
      'sha256sum',
      [join(root, res.acks[0]!.path.split('/').pop()!).replace(root, join(root, 'upload'))],
      {
        encoding: 'utf8',
      },
    ).split(' ')[0];
    expect(sum).toBe(res.acks[0]!.sha256);
  });

  it('a wrong host key is refused (no upload acknowledged)', async () => {
    const res = await runWorkload({
      endpoint: {
        ...endpoint(),
        hostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOXfakefakefakefakefakefakefakefakefakefakefake',
      },
      clients: 1,
      filesPerClient: 1,
      size: 100,
      dir: join(root, 'upload'),
      prefix: 'badkey',
      maxAttempts: 2,
      retryDelayMs: 10,
    });
    expect(res.acks).toHaveLength(0);
    expect(res.abandoned).toHaveLength(1);
    expect(res.failures.length).toBe(2);
  });

  it('retries on a new connection when the server dies and comes back', async () => {
    let killed = false;
    let restarted: Promise<void> | undefined;
    const res = await runWorkload({
      endpoint: endpoint(),
      clients: 2,
      filesPerClient: 30,
      size: 20_000,
      dir: join(root, 'upload'),
      prefix: 'flaky',
      retryDelayMs: 50,
      onEvent: (e) => {
        if (e.kind === 'ack' && !killed && e.ack.client === 0 && e.ack.path.endsWith('000005.bin')) {
          killed = true;
          restarted = (async () => {
            await sshd.stop();
            await new Promise((r) => setTimeout(r, 300));
            await sshd.start();
          })();
        }
      },
    });
    // the server is back before anything is judged (the next test uses it)
    await restarted;
    expect(killed).toBe(true);
    expect(res.acks).toHaveLength(60);
    expect(res.failures.length).toBeGreaterThan(0);
    const out = execFileSync('sh', ['-c', `sha256sum ${root}/upload/flaky-*`], { encoding: 'utf8' });
    const v = check(
      res.acks.map((a) => ({ ...a, path: a.path.slice(1) })),
      { local: parseSha256sum(out, '/') },
    );
    expect(v.nodes[0]!.ok).toBe(60);
    expect(v.valid).toBe(true);
  });

  // GIVEN a full filesystem (a 256 KiB tmpfs), WHEN a client puts 1 MiB, THEN the server refuses a
  // WRITE: ssh2-sftp-client's put() still resolves (its write stream closes before it reports the
  // refusal), and the workload does not acknowledge the upload (it checks the size the server holds).
  it('a write the server refused (disk full) is never acknowledged', async () => {
    const full = join(root, 'full');
    mkdirSync(full);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', full]);
    try {
      const raw = await connectSftp(endpoint());
      let rawResult = 'resolved';
      await raw
        .put(Buffer.alloc(1024 * 1024, 7), join(full, 'raw.bin'))
        .catch(() => (rawResult = 'rejected'));
      await raw.end();
      const res = await runWorkload({
        endpoint: endpoint(),
        clients: 1,
        filesPerClient: 1,
        size: 1024 * 1024,
        dir: full,
        prefix: 'full',
        maxAttempts: 2,
        retryDelayMs: 10,
      });
      expect(res.acks).toEqual([]);
      expect(res.abandoned).toHaveLength(1);
      expect(res.failures[0]!.error).toMatch(/holds \d+ of 1048576 bytes|No space|Failure/);
      // the library's behaviour this guards against (if it starts to reject, the guard stays harmless)
      expect(['resolved', 'rejected']).toContain(rawResult);
      process.stderr.write(`ssh2-sftp-client put() on a full disk: ${rawResult}\n`);
    } finally {
      execFileSync('umount', [full]);
    }
  });
});
