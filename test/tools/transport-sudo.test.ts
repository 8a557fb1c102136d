// sudo through the SSH transport against a real sshd in a throwaway node container: a non-root
// user with NOPASSWD sudo, then without it (preflight must say sudo does not work). The user and
// its sudoers entry live in the container only; this host's users are not touched.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { preflightHost } from '../../src/runbook/preflight.ts';
import { SshTransport } from '../../src/transport/ssh.ts';
import { startSshdContainer, type SshdFixture } from '../helpers/sshd-container.ts';

const user = 'wharfops';
const sudoers = `/etc/sudoers.d/${user}`;
let sshd: SshdFixture;

/** A shell line run in the container (docker exec, not ssh); fails the test when it fails. */
const inNode = async (line: string): Promise<string> => {
  const r = await sshd.sh(line);
  if (r.exitCode !== 0) throw new Error(`in the container: ${line}: exit ${r.exitCode}: ${r.stderr}`);
  return r.stdout;
};

beforeAll(async () => {
  sshd = await startSshdContainer();
  // '*': no password, not locked (key login works, sudo cannot ask for one)
  await inNode(`useradd -m -s /bin/sh -p '*' ${user}`);
  await inNode(`echo '${user} ALL=(ALL) NOPASSWD: ALL' > ${sudoers} && chmod 440 ${sudoers}`);
}, 300_000);
afterAll(async () => {
  await sshd?.close();
});

describe('sudo over SSH (real sshd in a container, non-root user)', () => {
  it('privileged commands run as root through sudo -n; sudo:false runs as the user', async () => {
    const t = new SshTransport('ops', { ...sshd.target, user, sudo: true }, sshd.options);
    expect((await t.exec(['id', '-un'])).stdout).toBe('root\n');
    expect((await t.exec(['id', '-un'], { sudo: false })).stdout).toBe(`${user}\n`);
    expect((await t.$({ sudo: false })`id -un`).stdout).toBe(`${user}\n`);
    expect((await t.exec(['printf', '%s', "it's $(id -u)"])).stdout).toBe("it's $(id -u)");

    // A root-only directory: only a privileged atomic write can place a root-owned 0600 file there.
    await inNode('mkdir -p /srv/rootonly && chmod 700 /srv/rootonly');
    const p = '/srv/rootonly/secret.conf';
    expect((await t.exec(['ls', '/srv/rootonly'], { sudo: false })).code).not.toBe(0);
    await t.writeFileAtomic(p, 'x=1\n', {
      mode: 0o600,
      owner: 'root',
      group: 'root',
      check: { argv: ['test', '-s', '{}'], name: 'test -s' },
    });
    expect(await inNode(`cat ${p}`)).toBe('x=1\n');
    expect(await inNode(`stat -c '%a %U' ${p}`)).toBe('600 root\n');
    expect((await t.readFile(p))?.toString()).toBe('x=1\n'); // read back through sudo

    expect(await preflightHost(t)).toMatchObject({ ok: true, problems: [] });
    await t.close();
  });

  it('without a sudoers entry, preflight reports that sudo does not work non-interactively', async () => {
    await inNode(`rm -f ${sudoers}`);
    const t = new SshTransport('ops', { ...sshd.target, user, sudo: true }, sshd.options);
    const r = await preflightHost(t);
    expect(r.ok).toBe(false);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatch(/^sudo does not work non-interactively: sudo: a password is required/);
    await t.close();
  });
});
