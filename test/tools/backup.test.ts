// The rendered backup.sh runs for real: it pulls over ssh + rsync from a throwaway sshd on
// 127.0.0.1 (the "source node") into dated --link-dest snapshots. Proves the empty-source guard,
// hard-linked unchanged files, deletions kept in older snapshots, retention, the overlap lock and
// one notice per new/changed file when notifications run on the backup node.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
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
import { renderAlertScript } from '../../src/render/alert.ts';
import { startSink, type RunningSink } from '../../src/lab/sink/server.ts';
import { readNotices } from '../../src/lab/sink/notice.ts';
import { startHostSshd, type HostSshd } from '../helpers/host-sshd.ts';

const root = mkdtempSync(join(tmpdir(), 'wharf-backup-'));
const src = join(root, 'src');
const snaps = join(root, 'snapshots');
const spool = join(root, 'spool');
/** backup.sh's run record for the monitoring (last-run: end duration exit; last-success: end duration). */
const state = join(root, 'state');
const record = (f: string) => readFileSync(join(state, f), 'utf8').trim().split(' ').map(Number);
const script = join(root, 'backup.sh');
const alertScript = join(root, 'alert.sh');
const alertEnv = join(root, 'alert.env');
let sshd: HostSshd;
let sink: RunningSink;

/** Run backup.sh without blocking this process: the sink answering its alert lives here too. */
function run(): Promise<{ code: number | null; err: string }> {
  const p = spawn('bash', [script], {
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 30_000,
    env: {
      PATH: process.env.PATH,
      WHARF_SRC_HOST: 'root@127.0.0.1',
      WHARF_SSH: sshd.ssh,
      WHARF_RSYNC_PATH: '/usr/bin/rsync',
      WHARF_SPOOL: spool,
      WHARF_BACKUP_STATE: state,
      WHARF_ALERT: alertScript,
      WHARF_ALERT_ENV: alertEnv,
    },
  });
  let err = '';
  p.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  return new Promise((resolve) => p.on('close', (code) => resolve({ code, err })));
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
  // the guard's alert goes to the lab's real receivers (the notify sink), started on loopback
  sink = await startSink({
    smtpPort: 0,
    httpPort: 0,
    bind: '127.0.0.1',
    dir: mkdtempSync(join(root, 'sink-')),
  });

  const d = parse(readFileSync('configs/stack.yaml', 'utf8'));
  d.sftp.chrootBase = src;
  d.replication.backup = { ...d.replication.backup, snapshotDir: snaps, retention: 2 };
  d.notifications.on = 'backup';
  const t = topologyFromObject(d, 'backup-test.yaml');
  writeFileSync(script, renderBackupScript(t, labInventory(t)).content, { mode: 0o755 });
  writeFileSync(alertScript, renderAlertScript(t).content, { mode: 0o755 });
  writeFileSync(
    alertEnv,
    [
      "WHARF_NODE='sftp-backup'",
      "WHARF_STACK='backuptest'",
      `WEBHOOK_URL='http://127.0.0.1:${sink.httpPort}/hooks/upload'`,
      "WEBHOOK_FORMAT='slack'",
      `SMTP_URL='smtp://127.0.0.1:${sink.smtpPort}'`,
      "SMTP_FROM='wharf@example.org'",
      "SMTP_TO='ops@example.org'",
    ].join('\n') + '\n',
  );
}, 30_000);

afterAll(async () => {
  await sshd?.close();
  await sink?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('backup.sh (rendered) against a real ssh source', () => {
  it('refuses to run while the guard file is missing on the source', async () => {
    mkdirSync(join(src, 'demo/upload'), { recursive: true });
    writeFileSync(join(src, 'demo/upload/a.txt'), 'alpha');
    const r = await run();
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/refusing to back up: guard file .*\.wharf-source is missing/);
    expect(snapshots()).toEqual([]);
    // …and raises an alert on both channels, in wharf watch's shapes
    expect(r.err).toContain('alert backup-refused sent');
    const got = readNotices(readFileSync(sink.messagesFile, 'utf8'));
    const hook = got.find((n) => n.kind === 'webhook');
    const mail = got.find((n) => n.kind === 'smtp');
    expect(hook?.kind === 'webhook' && hook.body).toMatchObject({
      text: expect.stringMatching(/^wharf backuptest: backup on .*: refusing to back up: guard file/),
      username: 'wharf',
      wharf: { event: 'backup-refused', stack: 'backuptest', source: 'sftp-backup' },
    });
    expect(mail?.kind === 'smtp' && mail.headers['x-wharf-event']).toBe('backup-refused');
    expect(mail?.kind === 'smtp' && mail.to).toEqual(['ops@example.org']);
    // the refusal is recorded for the monitoring (WharfBackupFailed), no success
    expect(record('last-run')[2]).toBe(3);
    expect(existsSync(join(state, 'last-success'))).toBe(false);
  });

  it('first snapshot: a full copy, latest points at it, a notice per file, temp dir skipped', async () => {
    writeFileSync(join(src, '.wharf-source'), '');
    writeFileSync(join(src, 'demo/upload/b.txt'), 'bravo');
    mkdirSync(join(src, '.wharf-partial'), { recursive: true });
    writeFileSync(join(src, '.wharf-partial/half.bin'), 'half');
    const r = await run();
    expect(r.code, r.err).toBe(0);
    const [first] = snapshots();
    expect(readlinkSync(join(snaps, 'latest'))).toBe(first);
    expect(readFileSync(join(snaps, 'latest/demo/upload/b.txt'), 'utf8')).toBe('bravo');
    expect(existsSync(join(snaps, 'latest/.wharf-partial'))).toBe(false);
    expect(notices()).toEqual([join(src, 'demo/upload/a.txt'), join(src, 'demo/upload/b.txt')]);
    for (const f of readdirSync(spool)) unlinkSync(join(spool, f));
    // a good run: exit 0 recorded, and its end as the last success
    const [end, , code] = record('last-run');
    expect(code).toBe(0);
    expect(record('last-success')[0]).toBe(end);
    expect(Math.abs(end! - Date.now() / 1000)).toBeLessThan(60);
  });

  it('second snapshot: unchanged files hard-linked, deletions kept in the older one, notices only for new', async () => {
    await nextSecond();
    unlinkSync(join(src, 'demo/upload/b.txt'));
    writeFileSync(join(src, 'demo/upload/c.txt'), 'charlie');
    const r = await run();
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
    expect((await run()).code).toBe(0);
    const after = snapshots();
    expect(after).toHaveLength(2);
    expect(after).not.toContain(before[0]);
    expect(readlinkSync(join(snaps, 'latest'))).toBe(after[1]);
  });

  it('two runs within one second get two names (the second waits for a new one)', async () => {
    await nextSecond();
    expect((await run()).code).toBe(0);
    const first = readlinkSync(join(snaps, 'latest'));
    const r = await run();
    expect(r.code, r.err).toBe(0);
    const second = readlinkSync(join(snaps, 'latest'));
    expect(second).not.toBe(first);
    expect(snapshots()).toEqual([first, second]);
  });

  it('a run while another holds the lock skips without a new snapshot', async () => {
    const before = snapshots();
    await nextSecond();
    const holder = spawn('flock', [join(snaps, '.lock'), 'sleep', '5'], { stdio: 'ignore', detached: true });
    try {
      await new Promise((r) => setTimeout(r, 300));
      const r = await run();
      expect(r.code).toBe(0);
      expect(r.err).toContain('another backup is still running; skipping');
      expect(snapshots()).toEqual(before);
    } finally {
      process.kill(-holder.pid!, 'SIGTERM'); // flock and its sleep: the group this test started
    }
  });
});
