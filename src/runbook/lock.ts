// One run per stack at a time: `<runsDir>/<stack>.lock`, created with O_EXCL, holding who runs.
// A lock left by a dead process on this machine is taken over (with a warning).
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { RunError } from '../core/errors.ts';

export interface LockInfo {
  pid: number;
  hostname: string;
  startedAt: string;
  runbook: string;
}

export interface StackLock {
  path: string;
  info: LockInfo;
  /** Set when a stale lock was taken over: the text of the warning. */
  tookOver?: string;
  release(): void;
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readLock(path: string): LockInfo | null {
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as LockInfo;
    return typeof v.pid === 'number' ? v : null;
  } catch {
    return null;
  }
}

export function acquireLock(
  runsDir: string,
  stack: string,
  runbook: string,
  o: { pid?: number; host?: string } = {},
): StackLock {
  mkdirSync(runsDir, { recursive: true });
  const path = join(runsDir, `${stack}.lock`);
  const info: LockInfo = {
    pid: o.pid ?? process.pid,
    hostname: o.host ?? hostname(),
    startedAt: new Date().toISOString(),
    runbook,
  };
  let tookOver: string | undefined;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o644);
      writeSync(fd, JSON.stringify(info) + '\n');
      closeSync(fd);
      let released = false;
      return {
        path,
        info,
        ...(tookOver ? { tookOver } : {}),
        release() {
          if (released) return;
          released = true;
          // Only remove our own lock.
          const cur = readLock(path);
          if (
            cur &&
            cur.pid === info.pid &&
            cur.hostname === info.hostname &&
            cur.startedAt === info.startedAt
          )
            unlinkSync(path);
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const held = readLock(path);
    const stale = held === null || (held.hostname === info.hostname && !pidAlive(held.pid));
    if (!stale || attempt > 0)
      throw new RunError(
        `stack ${stack} is locked by ${held ? `${held.runbook} (pid ${held.pid} on ${held.hostname}, since ${held.startedAt})` : 'another run'}: ` +
          `wait for it to finish; if that run is gone, remove ${path}`,
      );
    tookOver = held
      ? `took over a stale lock of ${held.runbook} (pid ${held.pid} on ${held.hostname}, since ${held.startedAt}: process is gone)`
      : `took over an unreadable lock file ${path}`;
    try {
      unlinkSync(path);
    } catch {
      /* someone else took it over first: the O_EXCL retry decides */
    }
  }
  throw new RunError(`stack ${stack}: could not take the lock ${path}`);
}
