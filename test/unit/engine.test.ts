import { describe, expect, it } from 'vitest';
import { pidFileVerdict } from '../../src/lab/engine.ts';

describe('pidFileVerdict (a daemon pid file while the engine does not answer)', () => {
  it('no process with that pid: stale', () => {
    expect(pidFileVerdict('dockerd', null, false)).toBe('stale');
  });
  it('the pid was taken again by another program (pids wrap): stale, not "dockerd is running"', () => {
    expect(pidFileVerdict('dockerd', 'ssh', true)).toBe('stale');
    expect(pidFileVerdict('containerd', 'node', true)).toBe('stale');
  });
  it('a hung dockerd that wharf started: restart it', () => {
    expect(pidFileVerdict('dockerd', 'dockerd', true)).toBe('restart');
  });
  it("a hung dockerd somebody else started: refuse, wharf does not kill another's daemon", () => {
    expect(pidFileVerdict('dockerd', 'dockerd', false)).toBe('refuse');
  });
});
