// One run per stack at a time: `<runsDir>/<stack>.lock`, created with O_EXCL, holding who runs.
// A lock left by a dead process on this machine is taken over (with a warning).
import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
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

/** Is the process alive? A zombie (killed, not yet reaped by its parent) counts as dead. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
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

/**
 * Create `path` with `content` atomically: written to a temp file, then hard-linked into place
 * (link fails with EEXIST if the lock exists), so a reader never sees a half-written lock.
 */
function createExclusive(path: string, content: string): boolean {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(tmp, content, { mode: 0o644 });
  try {
    linkSync(tmp, path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    unlinkSync(tmp);
  }
}

function readRaw(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

function ageMs(path: string): number {
  try {
    return Date.now() - statSync(path).mtimeMs;
  } catch {
    return 0;
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
  const content = JSON.stringify(info) + '\n';
  const made = (tookOver?: string): StackLock => {
    let released = false;
    return {
      path,
      info,
      ...(tookOver ? { tookOver } : {}),
      release() {
        if (released) return;
        released = true;
        if (readRaw(path) === content) unlinkSync(path); // only our own lock
      },
    };
  };
  const refuse = (held: LockInfo | null) =>
    new RunError(
      `stack ${stack} is locked by ${held ? `${held.runbook} (pid ${held.pid} on ${held.hostname}, since ${held.startedAt})` : 'another run'}: ` +
        `wait for it to finish; if that run is gone, remove ${path}`,
    );

  for (let attempt = 0; attempt < 3; attempt++) {
    if (createExclusive(path, content)) return made();
    const raw = readRaw(path);
    if (raw === null) continue; // released meanwhile: try again
    const held = readLock(path);
    const stale =
      held === null ? ageMs(path) > 10_000 : held.hostname === info.hostname && !pidAlive(held.pid);
    if (!stale) throw refuse(held);
    // Take over under a short-lived second lock, so two runs cannot both replace the stale one.
    const takeover = `${path}.takeover`;
    if (!createExclusive(takeover, content)) {
      if (ageMs(takeover) > 30_000) unlinkSync(takeover);
      throw refuse(held);
    }
    try {
      if (readRaw(path) !== raw) continue; // changed under us: look again
      unlinkSync(path);
      if (createExclusive(path, content))
        return made(
          held
            ? `took over a stale lock of ${held.runbook} (pid ${held.pid} on ${held.hostname}, since ${held.startedAt}: process is gone)`
            : `took over an unreadable lock file ${path}`,
        );
    } finally {
      unlinkSync(takeover);
    }
  }
  throw refuse(readLock(path));
}
