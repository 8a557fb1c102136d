// Pure helpers of failover/failback: HAProxy runtime API commands and `show stat` parsing, the
// fence on sub's replication account, the failback plan (never delete, newer wins, losers kept),
// the RPO window. The listing and conflict-saving shell commands run for real in a temp dir.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadTopology } from '../../src/topology/load.ts';
import { labInventory } from '../../src/topology/inventory.ts';
import {
  backendsOf,
  excludedDirs,
  changedDuringPass,
  fenceAuthorizedKeys,
  isOwnCopy,
  isFenced,
  listingCommand,
  lostAt,
  mismatches,
  failbackReasons,
  parseListing,
  parseStat,
  planFailback,
  rpoEstimate,
  rpoMeasured,
  rsyncOnMain,
  saveConflictsCommand,
  serverStateCommands,
  sessionsOf,
  shutdownSessionsCommands,
  socatLine,
  statusOf,
  unfenceAuthorizedKeys,
  type FileInfo,
  type Listing,
  cutUploads,
  closeLogCommand,
} from '../../src/failover/index.ts';

const t = loadTopology('configs/stack.yaml');
const inv = labInventory(t);
const tmp = mkdtempSync(join(tmpdir(), 'wharf-failover-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// `show stat` CSV: pxname,svname,qcur,qmax,scur,...,status (17),...,lastchg (23)
const row = (px: string, sv: string, scur: number, status: string, lastchg = 0) => {
  const f = Array.from({ length: 30 }, () => '');
  f[0] = px;
  f[1] = sv;
  f[4] = String(scur);
  f[17] = status;
  f[23] = String(lastchg);
  return f.join(',');
};
const STAT = [
  '# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg',
  row('sftp', 'FRONTEND', 9, 'OPEN'),
  row('sftp', 'sftp-main', 3, 'DOWN', 4),
  row('sftp', 'sftp-sub', 0, 'UP'),
  row('sftp', 'BACKEND', 3, 'UP'),
  row('write', 'sftp-main', 2, 'DOWN', 5),
  row('write', 'sftp-sub', 0, 'UP'),
  row('read', 'sftp-main', 0, 'DOWN', 4),
  row('read', 'sftp-sub', 7, 'UP'),
  '',
].join('\n');

describe('HAProxy runtime API', () => {
  it('GIVEN the seed topology WHEN main goes to maint THEN every backend holding main gets the command', () => {
    expect(backendsOf(t, 'sftp-main').sort()).toEqual(['read', 'sftp', 'write']);
    expect(serverStateCommands(t, 'sftp-main', 'maint').sort()).toEqual([
      'set server read/sftp-main state maint',
      'set server sftp/sftp-main state maint',
      'set server write/sftp-main state maint',
    ]);
    expect(shutdownSessionsCommands(t, 'sftp-sub').sort()).toEqual([
      'shutdown sessions server read/sftp-sub',
      'shutdown sessions server sftp/sftp-sub',
      'shutdown sessions server write/sftp-sub',
    ]);
  });

  it('sends all commands in one socat call, quoted', () => {
    expect(socatLine('/run/haproxy/admin.sock', ['set server a/b state ready', "x'y"])).toBe(
      `echo 'set server a/b state ready; x'\\''y' | socat -t 5 stdio UNIX-CONNECT:/run/haproxy/admin.sock`,
    );
    expect(socatLine('/run/my sock', ['show stat'])).toBe(
      `echo 'show stat' | socat -t 5 stdio UNIX-CONNECT:'/run/my sock'`,
    );
  });

  it('parses show stat: sessions, status and the moment HAProxy saw main go', () => {
    const rows = parseStat(STAT);
    expect(rows).toHaveLength(6);
    expect(sessionsOf(rows, t, 'sftp-main')).toBe(5);
    expect(sessionsOf(rows, t, 'sftp-sub')).toBe(7);
    expect(statusOf(rows, t, 'sftp-main')).toEqual({ sftp: 'DOWN', write: 'DOWN', read: 'DOWN' });
    expect(lostAt(rows, t, 'sftp-main', 100_000)).toBe(95_000);
    expect(lostAt(rows, t, 'sftp-sub', 100_000)).toBeUndefined();
  });
});

describe('fence', () => {
  const line = 'restrict,from="10.88.3.0/24" ssh-ed25519 AAAAkey wharf-seed-replication\n';
  it('refuses main first, is idempotent, and unfences to the exact rendered text', () => {
    const f = fenceAuthorizedKeys(line, '10.88.3.11');
    expect(f).toBe('restrict,from="!10.88.3.11,10.88.3.0/24" ssh-ed25519 AAAAkey wharf-seed-replication\n');
    expect(isFenced(f, '10.88.3.11')).toBe(true);
    expect(isFenced(line, '10.88.3.11')).toBe(false);
    expect(fenceAuthorizedKeys(f, '10.88.3.11')).toBe(f);
    expect(unfenceAuthorizedKeys(f, '10.88.3.11')).toBe(line);
    expect(unfenceAuthorizedKeys(line, '10.88.3.11')).toBe(line);
  });
  it('a key line without from= gets one that still admits everyone else', () => {
    const f = fenceAuthorizedKeys('ssh-ed25519 AAAAkey c\n', '10.0.0.11');
    expect(f).toBe('from="!10.0.0.11,*" ssh-ed25519 AAAAkey c\n');
    expect(unfenceAuthorizedKeys(f, '10.0.0.11')).toBe('ssh-ed25519 AAAAkey c\n');
  });
});

const fi = (sha: string, mtime: number, size = 1): FileInfo => ({ sha256: sha.repeat(64), mtime, size });
const L = (o: Record<string, FileInfo>): Listing => new Map(Object.entries(o));

describe('failback plan', () => {
  it('copies sub-only files to main, keeps main-only files (to sub), newer version wins, nothing deleted', () => {
    const main = L({
      'demo/upload/both': fi('a', 10),
      'demo/upload/only-main': fi('b', 11),
      'demo/upload/cut-by-crash': fi('c', 12, 100), // half-written when main died
      'demo/upload/main-newer': fi('d', 30),
    });
    const sub = L({
      'demo/upload/both': fi('a', 10),
      'demo/upload/only-sub': fi('e', 20),
      'demo/upload/cut-by-crash': fi('f', 13, 200), // the retry, acknowledged on sub
      'demo/upload/main-newer': fi('0', 29),
    });
    const p = planFailback(main, sub);
    expect(p.same).toBe(1);
    expect(p.onlyMain).toEqual(['demo/upload/only-main']);
    expect(p.onlySub).toEqual(['demo/upload/only-sub']);
    expect(p.toMain).toEqual(['demo/upload/cut-by-crash', 'demo/upload/only-sub']);
    expect(p.toSub).toEqual(['demo/upload/main-newer', 'demo/upload/only-main']);
    expect(p.conflicts.map((c) => [c.path, c.winner])).toEqual([
      ['demo/upload/cut-by-crash', 'sub'],
      ['demo/upload/main-newer', 'main'],
    ]);
    // every path of either side ends up somewhere: no path is dropped
    const all = new Set([...main.keys(), ...sub.keys()]);
    for (const x of all)
      expect(p.toMain.includes(x) || p.toSub.includes(x) || main.get(x)?.sha256 === sub.get(x)?.sha256).toBe(
        true,
      );
  });

  it('equal mtimes with different content: sub wins (what clients were acknowledged against last)', () => {
    const p = planFailback(L({ x: fi('a', 5) }), L({ x: fi('b', 5) }));
    expect(p.conflicts[0]!.winner).toBe('sub');
    expect(p.toMain).toEqual(['x']);
  });

  it('mismatches lists differing and one-sided paths', () => {
    expect(
      mismatches(L({ a: fi('a', 1), b: fi('b', 1) }), L({ a: fi('a', 2), b: fi('c', 1), c: fi('c', 1) })),
    ).toEqual(['b', 'c']);
  });

  it('an upload still being written on sub during a pass is left to the catch-up, not a failed check', () => {
    const listedMain = L({ pushed: fi('m', 5), same: fi('s', 1) });
    const listedSub = L({ growing: fi('g1', 10, 100), same: fi('s', 1), stable: fi('x', 9) });
    const nowSub = L({
      growing: fi('g2', 11, 300), // the client kept writing after the listing
      same: fi('s', 1),
      stable: fi('x', 9),
      pushed: fi('m', 5), // our own copy main → sub: not a change by a client
      brandNew: fi('n', 12), // started after the listing: the next pass's
    });
    expect(changedDuringPass(listedSub, listedMain, nowSub)).toEqual(['growing']);
    expect(changedDuringPass(listedSub, listedMain, listedSub)).toEqual([]);
  });

  it('a later conflict against a version an earlier pass copied to main is an update, not a conflict', () => {
    const original = L({ own: fi('o', 1) });
    const nowMain = L({ own: fi('o', 1), copied: fi('partial', 2) });
    expect(isOwnCopy('copied', original, nowMain)).toBe(true); // main never had it: came from sub
    expect(isOwnCopy('own', original, nowMain)).toBe(false); // main's pre-crash data: a real conflict
    expect(isOwnCopy('own', original, L({ own: fi('o2', 3) }))).toBe(true);
  });
});

describe('failback: is there anything to do (it looks at the data, not only at its record)', () => {
  const up = { sftp: 'UP', write: 'UP' };
  const same = L({ 'demo/upload/a': fi('a', 10) });
  const why = (o: Partial<Parameters<typeof failbackReasons>[0]>, main = same, sub = same) =>
    failbackReasons(
      { record: false, mark: false, mainStatus: up, lsyncd: 'active', plan: planFailback(main, sub), ...o },
      'sftp-main',
      'sftp-sub',
    );
  it('nothing: no record, no mark, main UP, lsyncd active, both trees equal', () => {
    expect(why({})).toEqual([]);
  });
  it('files only on main (or newer there) are lsyncd still carrying them: not a reason', () => {
    const main = L({ 'demo/upload/a': fi('a2', 20), 'demo/upload/b': fi('b', 21) });
    expect(why({}, main, same)).toEqual([]);
  });
  it('the unattended outage: no record, no mark, main back UP, sub holds uploads main lacks', () => {
    const sub = L({ 'demo/upload/a': fi('a', 10), 'demo/upload/outage': fi('o', 20) });
    expect(why({}, same, sub)).toEqual([
      'the trees differ: 1 file(s) only on sftp-sub, 0 newer on sftp-sub (sftp-main lacks them)',
    ]);
    const newer = L({ 'demo/upload/a': fi('a2', 30) });
    expect(why({}, same, newer)).toEqual([
      'the trees differ: 0 file(s) only on sftp-sub, 1 newer on sftp-sub (sftp-main lacks them)',
    ]);
  });
  it('the mark alone (no failover.json), main held in maint, lsyncd stopped: each is a reason', () => {
    expect(why({ mark: true })).toEqual(['the "needs reconcile" mark is set (sftp-main held in maint)']);
    expect(why({ record: true, mainStatus: { sftp: 'MAINT', write: 'MAINT' }, lsyncd: 'inactive' })).toEqual([
      'a failover is on record',
      'sftp-main is not in rotation (sftp MAINT, write MAINT)',
      'lsyncd on sftp-main is inactive',
    ]);
  });
});

describe('listing and conflict copies (real find, sha256sum, cp in a temp dir)', () => {
  it('lists files with mtime, size and sha256, skipping the temp dir and excluded names', () => {
    const base = join(tmp, 'base');
    mkdirSync(join(base, 'demo/upload'), { recursive: true });
    mkdirSync(join(base, '.lsyncd-tmp'), { recursive: true });
    writeFileSync(join(base, 'demo/upload/a file.bin'), 'hello');
    writeFileSync(join(base, 'demo/upload/x.part'), 'partial');
    writeFileSync(join(base, '.lsyncd-tmp/junk'), 'junk');
    utimesSync(join(base, 'demo/upload/a file.bin'), 1000, 1234.5);
    const out = execFileSync('bash', ['-c', listingCommand(base, ['.lsyncd-tmp'], ['*.part'])], {
      encoding: 'utf8',
    });
    const l = parseListing(out);
    expect([...l.keys()]).toEqual(['demo/upload/a file.bin']);
    expect(l.get('demo/upload/a file.bin')).toEqual({
      size: 5,
      mtime: 1234.5,
      sha256: '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824',
    });
  });

  it("skips each user's chroot log folder (<user>/dev), not a folder named dev inside the uploads", () => {
    const t = loadTopology('configs/stack.yaml');
    expect(excludedDirs(t)).toEqual(['.wharf-partial', '.wharf-heartbeat', 'demo/dev']);
    const base = join(tmp, 'base3');
    mkdirSync(join(base, 'demo/dev'), { recursive: true });
    mkdirSync(join(base, 'demo/upload/dev'), { recursive: true });
    writeFileSync(join(base, 'demo/dev/log'), ''); // the bind mount's placeholder
    writeFileSync(join(base, 'demo/upload/dev/x'), 'x');
    const out = execFileSync('bash', ['-c', listingCommand(base, excludedDirs(t), ['*.part'])], {
      encoding: 'utf8',
    });
    expect([...parseListing(out).keys()]).toEqual(['demo/upload/dev/x']);
  });

  it('keeps a copy of each losing version under the conflicts folder', () => {
    const base = join(tmp, 'base2');
    mkdirSync(join(base, 'demo/upload'), { recursive: true });
    writeFileSync(join(base, 'demo/upload/v'), 'old version');
    const dest = join(tmp, 'conflicts/sftp-main');
    execFileSync('bash', ['-c', saveConflictsCommand(base, dest, ['demo/upload/v', 'demo/upload/missing'])]);
    expect(readFileSync(join(dest, 'demo/upload/v'), 'utf8')).toBe('old version');
  });
});

describe('rsync on main', () => {
  it('never deletes; an explicit list is always transferred; lsyncd key, sudo rsync, temp dir on push', () => {
    for (const dir of ['push', 'pull'] as const) {
      for (const files of [true, false]) {
        const c = rsyncOnMain(t, inv, dir, { files });
        expect(c).not.toMatch(/--delete|--remove/);
        expect(c).toContain('-i /etc/lsyncd/id_ed25519');
        expect(c).toContain("--rsync-path='sudo /usr/bin/rsync'");
        if (files) expect(c).toContain('--files-from=- -I');
      }
    }
    expect(rsyncOnMain(t, inv, 'push')).toMatch(
      /--temp-dir='?\/srv\/sftp\/[^' ]+'? \/srv\/sftp\/ wharfsync@10\.88\.3\.12:\/srv\/sftp\/$/,
    );
    expect(rsyncOnMain(t, inv, 'pull', { files: true })).toMatch(
      /wharfsync@10\.88\.3\.12:\/srv\/sftp\/ \/srv\/sftp\/$/,
    );
  });
});

describe('RPO window', () => {
  it('estimate: loss moment − newest replicated file, ignoring files uploaded to sub after the loss', () => {
    const sub = L({ a: fi('a', 100), b: fi('b', 103.5), late: fi('c', 120) });
    const r = rpoEstimate({ lostAt: 105_000, delaySec: 1, sub });
    expect(r.windowSec).toBe(1.5);
    expect(r.idleBoundSec).toBe(2);
    expect(r.newestReplicated).toBe(new Date(103_500).toISOString());
    expect(rpoEstimate({ lostAt: 1000, delaySec: 1, sub: L({}) }).windowSec).toBeUndefined();
  });
  it('measured: the oldest file only main had, aged at the loss', () => {
    const main = L({ a: fi('a', 95), b: fi('b', 99) });
    expect(rpoMeasured(['a', 'b'], main, 100_000)).toEqual({ files: 2, windowSec: 5 });
    expect(rpoMeasured([], main, 100_000)).toEqual({ files: 0, windowSec: 0 });
  });
});

describe('failback: a cut upload never wins a conflict', () => {
  const f = (sha256: string, mtime: number) => ({ size: 10, mtime, sha256 });
  // journalctl -o json --output-fields=_UID,MESSAGE (MESSAGE as a string, or as bytes when not UTF-8)
  const log = [
    JSON.stringify({ _UID: '1001', MESSAGE: 'close "upload/a.bin" bytes read 0 written 4096' }),
    JSON.stringify({ _UID: '1001', MESSAGE: 'forced close "/upload/b.bin" bytes read 0 written 2048' }),
    JSON.stringify({ _UID: '1001', MESSAGE: 'forced close "./upload/c.bin" bytes read 0 written 100' }),
    JSON.stringify({ _UID: '1001', MESSAGE: 'close "upload/c.bin" bytes read 0 written 4096' }),
    JSON.stringify({ _UID: '1001', MESSAGE: 'forced close "upload/d.bin" bytes read 512 written 0' }),
    JSON.stringify({
      _UID: '1001',
      MESSAGE: [...Buffer.from('forced close "upload/e.bin" bytes read 0 written 7')],
    }),
    JSON.stringify({ _UID: '0', MESSAGE: 'forced close "upload/root.bin" bytes read 0 written 7' }),
    'not json',
  ].join('\n');
  const out = `${log}\n--passwd--\nroot:x:0:0:root:/root:/bin/bash\ndemo:x:1001:1001::/srv/sftp/demo:/usr/sbin/nologin\n`;

  it('reads the last close per file: forced (with bytes written) is cut, a later client close is not', () => {
    expect([...cutUploads(out)].sort()).toEqual([
      'demo/upload/b.bin',
      'demo/upload/e.bin',
      'root/upload/root.bin',
    ]);
    expect(closeLogCommand(1700000000.7)).toContain('--since @1700000000');
  });

  it("main's younger partial loses to sub's closed upload; without the log the mtime decides", () => {
    const main = new Map([['demo/upload/b.bin', f('partial', 200)]]);
    const sub = new Map([['demo/upload/b.bin', f('whole', 100)]]);
    expect(planFailback(main, sub).conflicts[0]).toMatchObject({ winner: 'main', by: 'mtime' });
    const p = planFailback(main, sub, { main: cutUploads(out), sub: new Set() });
    expect(p.conflicts[0]).toMatchObject({ winner: 'sub', by: 'cut' });
    expect(p.toMain).toEqual(['demo/upload/b.bin']);
    expect(p.toSub).toEqual([]);
    // both cut, or neither: the mtime rule
    const both = planFailback(main, sub, {
      main: new Set(['demo/upload/b.bin']),
      sub: new Set(['demo/upload/b.bin']),
    });
    expect(both.conflicts[0]).toMatchObject({ winner: 'main', by: 'mtime' });
  });
});
