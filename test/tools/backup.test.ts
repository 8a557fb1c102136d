// The rendered backup.sh runs for real: it pulls over ssh + rsync from a throwaway sshd on
// 127.0.0.1 (the "source node") into dated --link-dest snapshots. Proves the empty-source guard,
// hard-linked unchanged files, deletions kept in older snapshots, retention, the overlap lock and
// one notice per new/changed file when notifications run on the backup node.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { topologyFromObject } from '../../src/topology/load.ts';
import { labInventory } from '../../src/topology/inventory.ts';
import { renderBackupScript } from '../../src/render/backup.ts';
import { startHostSshd, type HostSshd } from '../helpers/host-sshd.ts';

const root = mkdtempSync(join(tmpdir(), 'wharf-backup-'));
const src = join(root, 'src');
const snaps = join(root, 'snapshots');
const spool = join(root, 'spool');
const script = join(root, 'backup.sh');
let sshd: HostSshd;

function run(): { code: number | null; err: string } {
  const r = spawnSync('bash', [script], {
    encoding: 'utf8',
    timeout: 30_000,
    env: {
      PATH: process.env.PATH,
      WHARF_SRC_HOST: 'root@127.0.0.1',
      WHARF_SSH: sshd.ssh,
      WHARF_RSYNC_PATH: '/usr/bin/rsync',
      WHARF_SPOOL: spool,
    },
  });
  return { code: r.status, err: r.stderr };
}
const snapshots = () =>
  readdirSync(snaps)
    .filter((n) => /^\d{8}T\d{6}Z$/.test(n))
    .sort();
const notices = () =>
  readdirSync(spool)
    .filter((f) => f.endsWith('.notice'))
    .map((f) => readFileSync(join(spool, f), 'utf8').split('\n')[1])
    .sort();
const nextSecond = () => new Promise((r) => setTimeout(r, 1100)); // snapshot names have 1 s resolution

beforeAll(async () => {
  for (const d of [src, snaps, spool]) mkdirSync(d, { recursive: true });
  sshd = await startHostSshd();

  const d = parse(readFileSync('configs/stack.yaml', 'utf8'));
  d.sftp.chrootBase = src;
  d.replication.backup = { ...d.replication.backup, snapshotDir: snaps, retention: 2 };
  d.notifications.on = 'backup';
  const t = topologyFromObject(d, 'backup-test.yaml');
  writeFileSync(script, renderBackupScript(t, labInventory(t)).content, { mode: 0o755 });
}, 30_000);

afterAll(async () => {
  await sshd?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('backup.sh (rendered) against a real ssh source', () => {
  it('refuses to run while the guard file is missing on the source', () => {
    mkdirSync(join(src, 'demo/upload'), { recursive: true });
    writeFileSync(join(src, 'demo/upload/a.txt'), 'alpha');
    const r = run();
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/refusing to back up: guard file .*\.wharf-source is missing/);
    expect(snapshots()).toEqual([]);
  });

  it('first snapshot: a full copy, latest points at it, a notice per file, temp dir skipped', () => {
    writeFileSync(join(src, '.wharf-source'), '');
    writeFileSync(join(src, 'demo/upload/b.txt'), 'bravo');
    mkdirSync(join(src, '.wharf-partial'), { recursive: true });
    writeFileSync(join(src, '.wharf-partial/half.bin'), 'half');
    const r = run();
    expect(r.code, r.err).toBe(0);
    const [first] = snapshots();
    expect(readlinkSync(join(snaps, 'latest'))).toBe(first);
    expect(readFileSync(join(snaps, 'latest/demo/upload/b.txt'), 'utf8')).toBe('bravo');
    expect(existsSync(join(snaps, 'latest/.wharf-partial'))).toBe(false);
    expect(notices()).toEqual([join(src, 'demo/upload/a.txt'), join(src, 'demo/upload/b.txt')]);
    for (const f of readdirSync(spool)) unlinkSync(join(spool, f));
  });

  it('second snapshot: unchanged files hard-linked, deletions kept in the older one, notices only for new', async () => {
    await nextSecond();
    unlinkSync(join(src, 'demo/upload/b.txt'));
    writeFileSync(join(src, 'demo/upload/c.txt'), 'charlie');
    const r = run();
    expect(r.code, r.err).toBe(0);
    const [first, second] = snapshots();
    expect(readdirSync(join(snaps, second!, 'demo/upload')).sort()).toEqual(['a.txt', 'c.txt']);
    expect(readFileSync(join(snaps, first!, 'demo/upload/b.txt'), 'utf8')).toBe('bravo');
    const ino = (s: string) => statSync(join(snaps, s, 'demo/upload/a.txt')).ino;
    expect(ino(second!)).toBe(ino(first!));
    expect(notices()).toEqual([join(src, 'demo/upload/c.txt')]);
  });

  it('retention keeps the newest snapshots', async () => {
    const before = snapshots();
    await nextSecond();
    expect(run().code).toBe(0);
    const after = snapshots();
    expect(after).toHaveLength(2);
    expect(after).not.toContain(before[0]);
    expect(readlinkSync(join(snaps, 'latest'))).toBe(after[1]);
  });

  it('a run while another holds the lock skips without a new snapshot', async () => {
    const before = snapshots();
    await nextSecond();
    const holder = spawn('flock', [join(snaps, '.lock'), 'sleep', '5'], { stdio: 'ignore', detached: true });
    try {
      await new Promise((r) => setTimeout(r, 300));
      const r = run();
      expect(r.code).toBe(0);
      expect(r.err).toContain('another backup is still running; skipping');
      expect(snapshots()).toEqual(before);
    } finally {
      process.kill(-holder.pid!, 'SIGTERM'); // flock and its sleep: the group this test started
    }
  });
});
