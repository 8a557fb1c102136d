// sudo through the SSH transport against a real sshd: a temporary non-root user (removed after)
// with NOPASSWD sudo, then without it (preflight must say sudo does not work).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { preflightHost } from '../../src/runbook/preflight.ts';
import { SshTransport } from '../../src/transport/ssh.ts';
import { startTestSshd, type TestSshd } from '../../src/transport/testing.ts';

const user = `wharft${randomBytes(3).toString('hex')}`;
const sudoers = `/etc/sudoers.d/${user}`;
let sshd: TestSshd;
let home: string;

beforeAll(async () => {
  sshd = await startTestSshd();
  home = mkdtempSync('/tmp/wharf-home-');
  execFileSync('useradd', ['-M', '-d', home, '-s', '/bin/sh', '-p', '*', user]); // '*': no password, not locked
  execFileSync('chown', [user, home]);
  writeFileSync(sudoers, `${user} ALL=(ALL) NOPASSWD: ALL\n`, { mode: 0o440 });
});
afterAll(async () => {
  rmSync(sudoers, { force: true });
  try {
    execFileSync('userdel', [user]);
  } catch {
    /* already gone */
  }
  rmSync(home, { recursive: true, force: true });
  await sshd?.stop();
});

describe('sudo over SSH (real sshd, temporary user)', () => {
  it('privileged commands run as root through sudo -n; sudo:false runs as the user', async () => {
    const t = new SshTransport('ops', { ...sshd.target, user, sudo: true }, sshd.options);
    expect((await t.exec(['id', '-un'])).stdout).toBe('root\n');
    expect((await t.exec(['id', '-un'], { sudo: false })).stdout).toBe(`${user}\n`);
    expect((await t.exec(['printf', '%s', "it's $(id -u)"])).stdout).toBe("it's $(id -u)");

    // A root-only directory: only a privileged atomic write can place a root-owned 0600 file there.
    const dir = mkdtempSync('/tmp/wharf-sudo-');
    chmodSync(dir, 0o755);
    const p = join(dir, 'secret.conf');
    await t.writeFileAtomic(p, 'x=1\n', {
      mode: 0o600,
      owner: 'root',
      group: 'root',
      check: { argv: ['test', '-s', '{}'], name: 'test -s' },
    });
    expect(readFileSync(p, 'utf8')).toBe('x=1\n');
    expect(statSync(p).mode & 0o777).toBe(0o600);
    expect((await t.readFile(p))?.toString()).toBe('x=1\n'); // read back through sudo

    expect(await preflightHost(t)).toMatchObject({ ok: true, problems: [] });
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('without a sudoers entry, preflight reports that sudo does not work non-interactively', async () => {
    rmSync(sudoers, { force: true });
    const t = new SshTransport('ops', { ...sshd.target, user, sudo: true }, sshd.options);
    const r = await preflightHost(t);
    expect(r.ok).toBe(false);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatch(/^sudo does not work non-interactively: sudo: a password is required/);
    await t.close();
  });
});
