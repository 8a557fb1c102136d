import { spawnSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RunError } from '../../src/core/errors.ts';
import { Journal, whoAmI, type JournalEntry } from '../../src/runbook/journal.ts';
import { acquireLock } from '../../src/runbook/lock.ts';
import { parseDf, parseOsRelease } from '../../src/runbook/preflight.ts';
import { MemoryReporter, PlainReporter, TtyReporter } from '../../src/runbook/progress.ts';
import { MASK } from '../../src/transport/mask.ts';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'wharf-unit-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A pid that certainly belonged to a process that has exited. */
function deadPid(): number {
  const r = spawnSync('sh', ['-c', 'echo $$']);
  return Number(r.stdout.toString().trim());
}

describe('stack lock', () => {
  it('refuses a second run while the first holds the lock, then allows it after release', () => {
    const dir = tmp();
    const a = acquireLock(dir, 'lab', 'configure');
    expect(() => acquireLock(dir, 'lab', 'verify')).toThrow(RunError);
    expect(() => acquireLock(dir, 'lab', 'verify')).toThrow(
      /stack lab is locked by configure \(pid \d+ on .*since/,
    );
    const other = acquireLock(dir, 'prod', 'verify'); // per stack
    other.release();
    a.release();
    expect(existsSync(join(dir, 'lab.lock'))).toBe(false);
    acquireLock(dir, 'lab', 'verify').release();
  });

  it('refuses a live lock held by another process (child holds it)', async () => {
    const dir = tmp();
    const child = spawn('sleep', ['30']);
    try {
      writeFileSync(
        join(dir, 'lab.lock'),
        JSON.stringify({ pid: child.pid, hostname: hostname(), startedAt: 'x', runbook: 'install' }),
      );
      expect(() => acquireLock(dir, 'lab', 'configure')).toThrow(/locked by install \(pid/);
    } finally {
      child.kill();
    }
  });

  it('takes over a stale lock (dead pid on this machine) with a warning', () => {
    const dir = tmp();
    const pid = deadPid();
    writeFileSync(
      join(dir, 'lab.lock'),
      JSON.stringify({ pid, hostname: hostname(), startedAt: '2026-01-01T00:00:00Z', runbook: 'install' }),
    );
    const l = acquireLock(dir, 'lab', 'configure');
    expect(l.tookOver).toMatch(new RegExp(`stale lock of install \\(pid ${pid}`));
    expect(JSON.parse(readFileSync(l.path, 'utf8'))).toMatchObject({
      pid: process.pid,
      runbook: 'configure',
    });
    l.release();
  });

  it('does not take over a lock from another machine, even with a dead pid', () => {
    const dir = tmp();
    writeFileSync(
      join(dir, 'lab.lock'),
      JSON.stringify({ pid: deadPid(), hostname: 'other-host', startedAt: 'x', runbook: 'install' }),
    );
    expect(() => acquireLock(dir, 'lab', 'configure')).toThrow(/on other-host/);
  });

  /** Start n processes that race for the lock at once; returns how many won / were refused. */
  async function race(dir: string, n: number): Promise<string[]> {
    // Each child waits for "go" on stdin (so all race at once) and holds its lock until stdin closes.
    const script = `import { acquireLock } from '${process.cwd()}/src/runbook/lock.ts';
      console.log('ready');
      process.stdin.once('data', () => {
        try { acquireLock(process.argv[2], 'lab', 'r'); console.log('won'); } catch { console.log('refused'); }
        process.stdin.once('end', () => process.exit(0)); process.stdin.resume();
      });`;
    writeFileSync(join(dir, 'c.mts'), script);
    const children = Array.from({ length: n }, () =>
      spawn('node', ['--import', 'tsx', join(dir, 'c.mts'), dir]),
    );
    const outs = children.map(() => '');
    const until = (pred: () => boolean) =>
      new Promise<void>((resolve) => {
        const t = setInterval(() => pred() && (clearInterval(t), resolve()), 20);
      });
    children.forEach((c, i) => c.stdout.on('data', (b) => (outs[i] += b)));
    await until(() => outs.every((o) => o.includes('ready')));
    for (const c of children) c.stdin.write('go\n');
    await until(() => outs.every((o) => /won|refused/.test(o)));
    for (const c of children) c.stdin.end();
    return outs.map((o) => o.replace('ready', '').trim());
  }

  it('concurrent acquirers in separate processes: exactly one wins (2 rounds)', async () => {
    for (let round = 0; round < 2; round++) {
      const results = await race(tmp(), 5);
      expect(results.filter((r) => r === 'won')).toHaveLength(1);
      expect(results.filter((r) => r === 'refused')).toHaveLength(4);
    }
  }, 60_000);

  it('concurrent takeovers of one stale lock: exactly one wins', async () => {
    for (let round = 0; round < 2; round++) {
      const dir = tmp();
      writeFileSync(
        join(dir, 'lab.lock'),
        JSON.stringify({ pid: deadPid(), hostname: hostname(), startedAt: 'x', runbook: 'old' }),
      );
      const results = await race(dir, 5);
      expect(results.filter((r) => r === 'won')).toHaveLength(1);
    }
  }, 60_000);
});

describe('journal', () => {
  it('writes one JSON line per event with who/when/what, secrets masked', () => {
    const dir = tmp();
    const j = new Journal(
      dir,
      'lab',
      'configure',
      ['hunter2hunter2', 'KEY LINE ONE\nKEY LINE TWO\n'],
      new Date('2026-11-25T15:13:28.123Z'),
    );
    expect(j.path).toBe(join(dir, 'lab', '2026-11-25T15-13-28Z-configure.jsonl'));
    j.write({
      host: 'haproxy',
      step: 'apply',
      change: { id: 'file /etc/x', kind: 'update', why: 'content differs' },
      result: 'ok',
      durationMs: 12,
    });
    j.write({
      host: 'sftp-main',
      step: 'apply',
      result: 'failed',
      durationMs: 3,
      error: 'bad password hunter2hunter2 near KEY LINE TWO',
    });
    const lines = readFileSync(j.path, 'utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    const e = lines.map((l) => JSON.parse(l) as JournalEntry);
    expect(Object.keys(e[0]!)).toEqual([
      'ts',
      'runId',
      'user',
      'runbook',
      'host',
      'step',
      'change',
      'result',
      'durationMs',
    ]);
    expect(e[0]).toMatchObject({
      runId: j.runId,
      user: whoAmI(),
      runbook: 'configure',
      host: 'haproxy',
      result: 'ok',
      durationMs: 12,
    });
    expect(new Date(e[0]!.ts).toString()).not.toBe('Invalid Date');
    expect(e[1]!.error).toBe(`bad password ${MASK} near ${MASK}`);
    expect(readdirSync(join(dir, 'lab'))).toEqual(['2026-11-25T15-13-28Z-configure.jsonl']);
  });

  it('names the sudo user behind root', () => {
    expect(whoAmI({ SUDO_USER: 'alice' })).toMatch(/\(sudo from alice\)$/);
  });
});

describe('preflight parsers', () => {
  it('reads os-release and df', () => {
    expect(
      parseOsRelease('ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'),
    ).toMatchObject({ ID: 'debian', VERSION_ID: '12' });
    expect(
      parseDf('Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/vda 100 20 80 20% /\n'),
    ).toEqual([{ mount: '/', availKiB: 80 }]);
  });
});

describe('progress', () => {
  const sink = (isTTY: boolean) => {
    const chunks: string[] = [];
    return { out: { isTTY, write: (s: string) => chunks.push(s) }, chunks };
  };
  it('prints plain lines when not a terminal, masked', () => {
    const { out, chunks } = sink(false);
    const r = new PlainReporter(out, ['hunter2hunter2']);
    r.step('haproxy', 'update file /etc/x');
    r.done('haproxy', false, 'check said hunter2hunter2');
    expect(chunks.join('')).toBe(`[haproxy] update file /etc/x\n[haproxy] FAILED: check said ${MASK}\n`);
  });
  it('rewrites one line per host on a terminal', () => {
    const { out, chunks } = sink(true);
    const r = new TtyReporter(out, [], 80);
    r.step('a', 'observe');
    r.step('b', 'observe');
    r.done('a', true, '2 changes applied');
    const last = chunks[chunks.length - 1]!;
    expect(last.startsWith('\x1b[2F')).toBe(true); // cursor up over the two host lines
    expect(last).toContain('2 changes applied');
    expect(last).toContain('… observe');
  });
  it('memory reporter records events', () => {
    const r = new MemoryReporter();
    r.step('h', 'x');
    expect(r.events).toEqual(['[h] x']);
  });
});
