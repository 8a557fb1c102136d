// The rendered notifier (notify.sh + notify.env) runs for real on this host: inotifywait on a temp
// upload tree, curl to a loopback webhook and a loopback SMTP server (the smtp-server package).
// Proves: one notice per complete file by its final name, temp names ignored (rsync's, WinSCP's
// .filepart, .part), JSON escaping, retries while the webhook fails without losing or duplicating
// notices. (Cut uploads are told apart by internal-sftp's log in journald: the lab proves that, in
// the notification scenario; here there is no sftp record, so a closed file goes out after ~3 s.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  appendFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { loadTopology } from '../../src/topology/load.ts';
import { labInventory } from '../../src/topology/inventory.ts';
import { renderNode } from '../../src/render/index.ts';

interface Hook {
  status: number;
  body: { text: string; wharf: { path: string; size: number; user: string; node: string } };
}
interface Mail {
  to: string[];
  subject: string;
  raw: string;
}

const root = mkdtempSync(join(tmpdir(), 'wharf-notify-'));
const watch = join(root, 'srv/sftp');
const spool = join(root, 'spool');
// internal-sftp's log as journalctl would print it (-o cat, already filtered by tag and user): this
// host has no sshd writing it, so a stand-in journalctl prints this file, and `id` knows demo
const journal = join(root, 'journal.txt');
const fakeBin = join(root, 'bin');
const hooks: Hook[] = [];
const mails: Mail[] = [];
let webhookStatus = 200;
let http: Server;
let smtp: SMTPServer;
let daemon: ChildProcess;
let log = '';

const until = async (what: string, ok: () => boolean, ms = 15_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\nnotify.sh log:\n${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};
const delivered = (path: string) => hooks.filter((h) => h.status === 200 && h.body.wharf.path === path);
const mailed = (path: string) => mails.filter((m) => m.raw.includes(`Path: ${path}\r\n`));

/** systemd EnvironmentFile lines KEY="value" (as rendered) → object. */
function parseEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of text.split('\n')) {
    const m = /^([A-Z_]+)="((?:[^"\\]|\\.)*)"$/.exec(l);
    if (m) out[m[1]!] = m[2]!.replace(/\\(.)/g, '$1');
  }
  return out;
}

beforeAll(async () => {
  http = createServer((req, res) => {
    let data = '';
    req.on('data', (c) => (data += c));
    req.on('end', () => {
      hooks.push({ status: webhookStatus, body: JSON.parse(data) });
      res.writeHead(webhookStatus).end();
    });
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, cb) {
      let raw = '';
      stream.on('data', (c) => (raw += c));
      stream.on('end', () => {
        mails.push({
          to: session.envelope.rcptTo.map((r) => r.address),
          subject: /^Subject: (.*)$/m.exec(raw)?.[1]?.trim() ?? '',
          raw,
        });
        cb();
      });
    },
  });
  await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', r));

  const t = loadTopology('configs/stack.yaml');
  const r = renderNode(t, labInventory(t), 'sftp-main');
  const script = r.files.find((f) => f.path.endsWith('/notify.sh'))!;
  const env = parseEnv(r.files.find((f) => f.path.endsWith('/notify.env'))!.content);
  expect(env.WATCH_DIR).toBe('/srv/sftp');
  writeFileSync(join(root, 'notify.sh'), script.content, { mode: 0o755 });
  mkdirSync(fakeBin);
  writeFileSync(journal, '');
  writeFileSync(join(fakeBin, 'journalctl'), `#!/bin/sh\ncat ${journal}\n`, { mode: 0o755 });
  writeFileSync(join(fakeBin, 'id'), '#!/bin/sh\necho 2001\n', { mode: 0o755 });
  mkdirSync(join(watch, 'demo/upload'), { recursive: true });
  mkdirSync(join(watch, '.wharf-partial'), { recursive: true });
  daemon = spawn(join(root, 'notify.sh'), [], {
    detached: true, // own process group: the watcher pipeline is ended with it
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: `${fakeBin}:${process.env.PATH}`,
      ...env,
      WATCH_DIR: watch,
      SPOOL_DIR: spool,
      RETRIES: '1',
      WEBHOOK_URL: `http://127.0.0.1:${(http.address() as AddressInfo).port}/hooks/upload`,
      SMTP_URL: `smtp://127.0.0.1:${(smtp.server.address() as AddressInfo).port}`,
      SMTP_TO: 'ops@example.org audit@example.org',
    },
  });
  daemon.stdout!.on('data', (c) => (log += c));
  daemon.stderr!.on('data', (c) => (log += c));
  // Ready when a probe upload comes through (inotify watches are set up asynchronously).
  const probes: string[] = [];
  for (let i = 0; !hooks.length; i++) {
    probes.push(join(watch, `probe-${i}`));
    writeFileSync(probes[i]!, 'x');
    await new Promise((r) => setTimeout(r, 300));
    if (i > 50) throw new Error(`notify.sh did not start:\n${log}`);
  }
  // Probes written before the watch was up are never notified; every later one is, perhaps after
  // this point (a loaded CI host): wait for all of them, or their notices would land in a test.
  const first = Math.min(...hooks.map((h) => probes.indexOf(h.body.wharf.path)).filter((i) => i >= 0));
  const late = probes.slice(first);
  await until('every probe notified', () => late.every((p) => delivered(p).length && mailed(p).length));
  await new Promise((r) => setTimeout(r, 300));
  hooks.length = 0;
  mails.length = 0;
}, 30_000);

afterAll(async () => {
  if (daemon?.pid) {
    try {
      process.kill(-daemon.pid, 'SIGTERM');
    } catch {
      /* already gone */
    }
  }
  await new Promise((r) => http?.close(r));
  await new Promise<void>((r) => (smtp ? smtp.close(r) : r()));
  rmSync(root, { recursive: true, force: true });
});

describe('notify.sh (rendered) against real receivers', () => {
  it('an upload is notified once by webhook (Slack JSON, escaped) and by mail to every recipient', async () => {
    const name = 'report "Q3"\tfinal\\v2.csv';
    const path = join(watch, 'demo/upload', name);
    writeFileSync(path, 'a,b\n1,2\n');
    await until('webhook and mail', () => delivered(path).length === 1 && mailed(path).length === 1);
    const h = delivered(path)[0]!.body;
    expect(h.wharf).toMatchObject({ path, size: 8, user: 'demo', node: 'sftp-main' });
    expect(h.text).toContain(path);
    const m = mailed(path)[0]!;
    expect(m.to).toEqual(['ops@example.org', 'audit@example.org']);
    expect(m.subject).toContain('wharf: new upload report "Q3"');
    await new Promise((r) => setTimeout(r, 1000));
    expect(delivered(path)).toHaveLength(1);
    expect(mailed(path)).toHaveLength(1);
  });

  it('rsync/lsyncd temp names are ignored; the renamed final file is notified once', async () => {
    const up = join(watch, 'demo/upload');
    writeFileSync(join(up, '.big.bin.Xy12Ab'), Buffer.alloc(4096, 1));
    renameSync(join(up, '.big.bin.Xy12Ab'), join(up, 'big.bin'));
    writeFileSync(join(watch, '.wharf-partial/c.bin'), 'ccc');
    renameSync(join(watch, '.wharf-partial/c.bin'), join(up, 'c.bin'));
    writeFileSync(join(up, 'ignored.part'), 'partial');
    // WinSCP: name.filepart while it writes, renamed when whole
    writeFileSync(join(up, 'w.csv.filepart'), 'winscp');
    renameSync(join(up, 'w.csv.filepart'), join(up, 'w.csv'));
    await until(
      'both files',
      () =>
        delivered(join(up, 'big.bin')).length === 1 &&
        delivered(join(up, 'c.bin')).length === 1 &&
        delivered(join(up, 'w.csv')).length === 1,
    );
    await new Promise((r) => setTimeout(r, 1000));
    expect(hooks.map((h) => h.body.wharf.path).sort()).toEqual(
      [
        join(up, 'big.bin'),
        join(up, 'c.bin'),
        join(up, 'w.csv'),
        join(watch, 'demo/upload/report "Q3"\tfinal\\v2.csv'),
      ].sort(),
    );
    expect(delivered(join(up, 'big.bin'))[0]!.body.wharf.size).toBe(4096);
  });

  it('a file its SFTP session left open (a cut upload: "forced close") is not notified; a closed one is', async () => {
    const up = join(watch, 'demo/upload');
    appendFileSync(
      journal,
      [
        'open "/upload/cut.bin" flags WRITE,CREATE,TRUNCATE mode 0644',
        'forced close "/upload/cut.bin" bytes read 0 written 1000',
        'close "/upload/whole.bin" bytes read 0 written 2000',
        // a client that sends names relative to the chroot root (ssh2-sftp-client does)
        'forced close "upload/cut2.bin" bytes read 0 written 10',
        'close "./upload//whole2.bin" bytes read 0 written 20',
        // a later read of the cut file says nothing about its completeness
        'close "/upload/cut.bin" bytes read 1000 written 0',
        '',
      ].join('\n'),
    );
    writeFileSync(join(up, 'cut.bin'), 'x'.repeat(1000));
    writeFileSync(join(up, 'whole.bin'), 'y'.repeat(2000));
    writeFileSync(join(up, 'cut2.bin'), 'x'.repeat(10));
    writeFileSync(join(up, 'whole2.bin'), 'y'.repeat(20));
    await until(
      'whole.bin',
      () => delivered(join(up, 'whole.bin')).length === 1 && mailed(join(up, 'whole.bin')).length === 1,
    );
    await until('whole2.bin', () => delivered(join(up, 'whole2.bin')).length === 1);
    await until('the cut uploads dropped', () =>
      ['cut', 'cut2'].every((c) => new RegExp(`not notified: .*/${c}\\.bin is a partial upload`).test(log)),
    );
    await new Promise((r) => setTimeout(r, 500));
    for (const c of ['cut.bin', 'cut2.bin']) {
      expect(delivered(join(up, c))).toHaveLength(0);
      expect(mailed(join(up, c))).toHaveLength(0);
    }
    expect(readdirSync(spool).filter((f) => f.endsWith('.notice'))).toHaveLength(0);
  });

  it('while the webhook fails the notice stays spooled and is retried; mail is not duplicated', async () => {
    webhookStatus = 503;
    const path = join(watch, 'demo/upload/during-outage.bin');
    writeFileSync(path, 'x'.repeat(10));
    await until('failed webhook attempts', () => hooks.filter((h) => h.body.wharf.path === path).length >= 2);
    expect(readdirSync(spool).filter((f) => f.endsWith('.notice'))).toHaveLength(1);
    expect(mailed(path)).toHaveLength(1);
    webhookStatus = 200;
    await until('delivery after recovery', () => delivered(path).length === 1, 20_000);
    await until('spool empty', () => readdirSync(spool).length === 0);
    expect(mailed(path)).toHaveLength(1);
    expect(log).toMatch(/webhook failed for .*during-outage\.bin/);
  }, 40_000);
});
