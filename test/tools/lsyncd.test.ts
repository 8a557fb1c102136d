// The rendered lsyncd.conf.lua runs in the real lsyncd 2.2.3 (rsyncssh over a loopback sshd). Only
// host-specific values are swapped (target host/port, key and known_hosts paths, log paths, and the
// target dir, as source and target live on one machine here); every option stays as rendered, so
// lsyncd itself proves it accepts them. Checks: replication lag, files appear only when whole (temp
// dir), target-only files survive (delete = false), excluded names are not copied.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
  closeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { topologyFromObject } from '../../src/topology/load.ts';
import { labInventory } from '../../src/topology/inventory.ts';
import {
  LSYNCD_CONTROL_PATH,
  LSYNCD_KEY,
  LSYNCD_KNOWN_HOSTS,
  renderLsyncdConf,
} from '../../src/render/lsyncd.ts';
import { startHostSshd, type HostSshd } from '../helpers/host-sshd.ts';

const root = mkdtempSync(join(tmpdir(), 'wharf-lsyncd-'));
const src = join(root, 'srv-main');
const dst = join(root, 'srv-sub');
let sshd: HostSshd;
let lsyncd: ChildProcess;
let log = '';

const until = async (what: string, ok: () => boolean, ms = 20_000): Promise<number> => {
  const start = Date.now();
  while (!ok()) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}\nlsyncd:\n${log}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now() - start;
};

beforeAll(async () => {
  sshd = await startHostSshd();
  mkdirSync(join(src, 'demo/upload'), { recursive: true });
  mkdirSync(join(dst, 'demo/upload'), { recursive: true });
  // The runbook creates the temp dir on the target (rsync does not create --temp-dir).
  mkdirSync(join(dst, '.wharf-partial'), { recursive: true });
  writeFileSync(join(dst, 'demo/upload/only-on-sub.txt'), 'uploaded during a failover');

  const d = parse(readFileSync('configs/stack.yaml', 'utf8'));
  d.sftp.chrootBase = src;
  const t = topologyFromObject(d, 'lsyncd-test.yaml');
  const inv = labInventory(t);
  const rendered = renderLsyncdConf(t, inv).content;
  const swap: Array<[string, string]> = [
    [`"wharfsync@${inv.hosts['sftp-sub']!.addresses.lan}"`, '"root@127.0.0.1"'],
    [`targetdir = "${src}"`, `targetdir = "${dst}"`],
    [`temp_dir = "${src}/.wharf-partial"`, `temp_dir = "${dst}/.wharf-partial"`],
    [`port = ${t.sftp.port},`, `port = ${sshd.port},`],
    [`"${LSYNCD_KEY}"`, `"${sshd.identity}"`],
    [`"${LSYNCD_KNOWN_HOSTS}"`, `"${sshd.knownHosts}"`],
    ['"/var/log/lsyncd/lsyncd.log"', `"${root}/lsyncd.log"`],
    ['"/var/log/lsyncd/lsyncd.status"', `"${root}/lsyncd.status"`],
    [`"${LSYNCD_CONTROL_PATH}"`, `"${root}/mux-%C"`],
  ];
  let conf = rendered;
  for (const [from, to] of swap) {
    expect(conf, `rendered config contains ${from}`).toContain(from);
    conf = conf.replace(from, to);
  }
  writeFileSync(join(root, 'lsyncd.conf.lua'), conf);
  lsyncd = spawn('lsyncd', ['-nodaemon', join(root, 'lsyncd.conf.lua')], {
    detached: true, // own process group: its rsync/ssh children end with it
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  lsyncd.stdout!.on('data', (c) => (log += c));
  lsyncd.stderr!.on('data', (c) => (log += c));
  lsyncd.on('exit', (code) => (log += `\n[lsyncd exited ${code}]`));
  await until('startup sync', () => /Startup of .* finished/.test(log) || /exited/.test(log), 30_000);
  expect(log, 'lsyncd accepted the rendered config').not.toMatch(/exited|Error|unknown/i);
}, 60_000);

afterAll(async () => {
  if (lsyncd?.pid && lsyncd.exitCode === null) {
    const exited = new Promise((r) => lsyncd!.once('exit', r));
    try {
      process.kill(-lsyncd.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  }
  // the ssh master (ControlPersist) runs in a session of its own: end it
  if (sshd)
    spawnSync(
      'ssh',
      ['-o', `ControlPath=${root}/mux-%C`, '-p', String(sshd.port), '-O', 'exit', 'root@127.0.0.1'],
      {
        stdio: 'ignore',
        timeout: 10_000,
      },
    );
  await sshd?.close();
  // an rsync child of lsyncd may still be finishing a write: retry until the tree is gone
  rmSync(root, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
});

describe('lsyncd (rendered config, real lsyncd 2.2.3)', () => {
  it('replicates a new upload within a few seconds (delay = 1)', async () => {
    writeFileSync(join(src, 'demo/upload/hello.txt'), 'hello');
    const lag = await until('hello.txt on the target', () => existsSync(join(dst, 'demo/upload/hello.txt')));
    expect(readFileSync(join(dst, 'demo/upload/hello.txt'), 'utf8')).toBe('hello');
    console.log(`lsyncd: new file on the target after ${lag} ms`);
    expect(lag).toBeLessThan(10_000);
  });

  it('reuses one ssh connection for its runs (a ControlMaster socket stays after the run)', () => {
    expect(
      readdirSync(root).filter((f) => f.startsWith('mux-')),
      `no control socket in ${root}\n${log}`,
    ).toHaveLength(1);
  });

  it('a large file appears on the target only when whole (rsync temp dir)', async () => {
    const size = 64 << 20;
    const fd = openSync(join(src, 'demo/upload/big.bin'), 'w');
    const chunk = Buffer.alloc(1 << 20, 7);
    for (let i = 0; i < size / chunk.length; i++) writeSync(fd, chunk);
    closeSync(fd);
    const target = join(dst, 'demo/upload/big.bin');
    const seen = new Set<number>();
    await until(
      'big.bin complete',
      () => {
        if (existsSync(target)) seen.add(statSync(target).size);
        return seen.has(size);
      },
      60_000,
    );
    expect([...seen]).toEqual([size]);
  }, 90_000);

  it('an upload still open for writing is not copied; its close copies it whole (pitfall 2)', async () => {
    const path = join(src, 'demo/upload/slow.bin');
    const target = join(dst, 'demo/upload/slow.bin');
    const fd = openSync(path, 'w');
    const chunk = Buffer.alloc(256 << 10, 3);
    const seen = new Set<number>();
    // written for ~4 s (4 × the delay): without the hold, lsyncd copies the part written so far
    for (let i = 0; i < 16; i++) {
      writeSync(fd, chunk);
      await new Promise((r) => setTimeout(r, 250));
      if (existsSync(target)) seen.add(statSync(target).size);
    }
    expect(existsSync(target), `not on the target while open\n${log}`).toBe(false);
    expect(log).toMatch(/Still open for writing, copied when closed: \/demo\/upload\/slow\.bin/);
    closeSync(fd);
    const lag = await until('slow.bin whole on the target', () => {
      if (existsSync(target)) seen.add(statSync(target).size);
      return seen.has(16 * chunk.length);
    });
    expect([...seen]).toEqual([16 * chunk.length]);
    console.log(`lsyncd: held while open, on the target ${lag} ms after close`);
    // a reader (a download, a checksum) does not hold a file back
    const r = openSync(join(src, 'demo/upload/hello.txt'), 'r');
    writeFileSync(join(src, 'demo/upload/read-while-new.txt'), 'x');
    const rd = openSync(join(src, 'demo/upload/read-while-new.txt'), 'r');
    await until('read-while-new.txt', () => existsSync(join(dst, 'demo/upload/read-while-new.txt')));
    closeSync(rd);
    closeSync(r);
  }, 60_000);

  it('keeps files that exist only on the target and skips excluded names', async () => {
    writeFileSync(join(src, 'demo/upload/skip.part'), 'partial upload');
    writeFileSync(join(src, 'demo/upload/marker.txt'), 'sync me');
    await until('marker.txt', () => existsSync(join(dst, 'demo/upload/marker.txt')));
    await new Promise((r) => setTimeout(r, 1500));
    expect(existsSync(join(dst, 'demo/upload/skip.part'))).toBe(false);
    expect(readFileSync(join(dst, 'demo/upload/only-on-sub.txt'), 'utf8')).toBe('uploaded during a failover');
  });
});
