// The SSH transport against a REAL OpenSSH server: a throwaway container of the lab's node image
// (testcontainers) running sshd, published on 127.0.0.1. Files are checked inside the container.
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/core/net.ts';
import { MASK } from '../../src/transport/mask.ts';
import { SshTransport } from '../../src/transport/ssh.ts';
import { CheckFailed, CommandFailed, TransportError } from '../../src/transport/types.ts';
import { startSshdContainer, type SshdFixture } from '../helpers/sshd-container.ts';

let sshd: SshdFixture;
let t: SshTransport;
/** A directory in the container. */
const dir = '/tmp/wharf-tr';
/** A directory on this host (known_hosts files of the client). */
let local: string;

/** A shell line run in the container (docker exec, not ssh); fails the test when it fails. */
const inNode = async (line: string): Promise<string> => {
  const r = await sshd.sh(line);
  if (r.exitCode !== 0) throw new Error(`in the container: ${line}: exit ${r.exitCode}: ${r.stderr}`);
  return r.stdout;
};

beforeAll(async () => {
  sshd = await startSshdContainer();
  t = new SshTransport('test-host', sshd.target, sshd.options);
  local = mkdtempSync('/tmp/wharf-tr-');
  await inNode(`mkdir -p ${dir}`);
}, 300_000);
const tempDirs: string[] = [];
/** A short temp dir (control sockets need short paths), removed after the tests. */
const shortTmp = (prefix: string) => {
  const d = mkdtempSync(prefix);
  tempDirs.push(d);
  return d;
};
afterAll(async () => {
  await t?.close();
  await sshd?.close();
  for (const d of [local, ...tempDirs]) if (d) rmSync(d, { recursive: true, force: true });
});

describe('SshTransport (real sshd)', () => {
  it('runs a command and returns stdout, stderr and the exit code', async () => {
    const r = await t.exec('echo out; echo err >&2; exit 7');
    expect(r).toMatchObject({ stdout: 'out\n', stderr: 'err\n', code: 7 });
    expect((await t.exec(['id', '-un'])).stdout).toBe('root\n');
  });

  it('passes nasty arguments through ssh unchanged', async () => {
    const nasty = ["it's", '$HOME `id` $(id)', 'a;b|c&&d', '"q" \\ \n\t*', '', '-n'];
    const r = await t.exec(['printf', '%s\\0', ...nasty]);
    expect(r.stdout.split('\0').slice(0, -1)).toEqual(nasty);
  });

  it('host.$: values quoted like zx (arrays as several args); a failure names host, command and stderr', async () => {
    const nasty = ["it's", '$HOME `id`', 'a;b', ''];
    expect((await t.$`printf '%s|' ${nasty}`).stdout).toBe("it's|$HOME `id`|a;b||");
    const err = await t.$`ls ${'/nope dir'}`.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandFailed);
    expect((err as Error).message).toMatch(
      /^test-host: `ls '\/nope dir'` failed \(exit 2\): ls: cannot access '\/nope dir': No such file/,
    );
    expect((await t.$({ nothrow: true })`exit 5`).code).toBe(5);
    expect((await t.$({ input: 'piped' })`cat`).stdout).toBe('piped');
  });

  it('feeds stdin (binary-safe) and reads binary stdout', async () => {
    const bytes = Buffer.from([0, 1, 2, 255, 10, 13, 0]);
    const r = await t.exec('cat', { input: bytes });
    expect(r.stdoutBuffer.equals(bytes)).toBe(true);
  });

  it('kills a command after its timeout with an error naming host and command', async () => {
    const t0 = Date.now();
    const err = await t.exec(['sleep', '41.37'], { timeoutMs: 800 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect((err as Error).message).toBe('test-host: timed out after 800 ms: sleep 41.37');
    expect(Date.now() - t0).toBeLessThan(5000);
    // The remote process does not outlive the timeout (session closed; remote `timeout` as a backstop).
    await new Promise((r) => setTimeout(r, 2500));
    expect((await t.exec('pgrep -fx "sleep 41.37" || true')).stdout.trim()).toBe('');
  });

  it('multiplexes: a control master runs and later commands are faster than the first connection', async () => {
    const fresh = new SshTransport('fresh', sshd.target, {
      ...sshd.options,
      controlDir: shortTmp('/tmp/wm-'),
    });
    const t0 = Date.now();
    await fresh.exec('true');
    const first = Date.now() - t0;
    expect(await fresh.controlRunning()).toBe(true);
    const sockets = readdirSync(fresh.options.controlDir!).filter((f) => f.startsWith('wharf-'));
    expect(sockets).toHaveLength(1);
    expect(statSync(join(fresh.options.controlDir!, sockets[0]!)).isSocket()).toBe(true);
    const t1 = Date.now();
    for (let i = 0; i < 5; i++) await fresh.exec('true');
    const next = (Date.now() - t1) / 5;
    console.log(`ssh first command ${first} ms, multiplexed ${next.toFixed(0)} ms/command`);
    expect(next).toBeLessThan(first);
    await fresh.close();
    expect(await fresh.controlRunning()).toBe(false);
  });

  it('works through an ssh_config Host alias (as the lab and operators use)', async () => {
    const alias = new SshTransport(
      'alias',
      { host: 'wharf-test', port: sshd.port, user: 'root', sudo: false },
      {
        sshConfig: sshd.sshConfig,
        controlDir: sshd.options.controlDir,
      },
    );
    expect((await alias.exec('echo via-alias')).stdout).toBe('via-alias\n');
    await alias.close();
  });

  it('refuses an unknown host key (strict checking, no TOFU)', async () => {
    const empty = join(local, 'empty_known_hosts');
    writeFileSync(empty, '');
    const strict = new SshTransport('strict', sshd.target, {
      ...sshd.options,
      knownHosts: empty,
      controlDir: shortTmp('/tmp/ws-'),
    });
    const err = await strict.exec('true').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect((err as Error).message).toMatch(
      /^strict: ssh root@127\.0\.0\.1:\d+ failed: .*Host key verification failed/s,
    );
    expect(readFileSync(empty, 'utf8')).toBe(''); // nothing learned
  });

  it('reports a connection failure naming host and port', async () => {
    const port = await freePort();
    const down = new SshTransport(
      'down',
      { ...sshd.target, port },
      { ...sshd.options, controlDir: shortTmp('/tmp/wd-') },
    );
    const err = await down.exec('true').catch((e: unknown) => e);
    expect((err as Error).message).toMatch(
      new RegExp(`^down: ssh root@127.0.0.1:${port} failed: .*Connection refused`, 's'),
    );
  });

  it('readFile and stat: content, owner, mode; null when absent', async () => {
    const p = join(dir, 'r.txt');
    await inNode(`printf 'hello\\n' > ${p} && chmod 640 ${p}`);
    expect((await t.readFile(p))?.toString()).toBe('hello\n');
    expect(await t.stat(p)).toEqual({ mode: 0o640, owner: 'root', group: 'root', size: 6, type: 'file' });
    expect(await t.stat(dir)).toMatchObject({ type: 'directory' });
    expect(await t.readFile(join(dir, 'nope'))).toBeNull();
    expect(await t.stat(join(dir, "it's absent"))).toBeNull();
  });

  it('writes atomically with owner and mode, and leaves no temp file', async () => {
    const p = join(dir, 'sub dir', 'a.sh');
    await t.writeFileAtomic(p, '#!/bin/sh\necho ok\n', {
      mode: 0o750,
      owner: 'root',
      group: 'daemon',
      check: { argv: ['bash', '-n', '{}'], name: 'bash -n' },
    });
    expect(await inNode(`cat '${p}'`)).toBe('#!/bin/sh\necho ok\n');
    expect(await inNode(`stat -c '%a %U %G' '${p}'`)).toBe('750 root daemon\n');
    expect(await inNode(`ls -A '${dir}/sub dir'`)).toBe('a.sh\n');
  });

  it('a failing check keeps the old file, removes the temp file and carries the checker output', async () => {
    const p = join(dir, 'b.sh');
    await inNode(`echo 'echo old' > ${p} && chmod 644 ${p}`);
    const err = await t
      .writeFileAtomic(p, 'if then fi (\n', {
        mode: 0o600,
        owner: 'root',
        group: 'root',
        check: { argv: ['bash', '-n', '{}'], name: 'bash -n' },
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckFailed);
    expect((err as CheckFailed).message).toContain(`bash -n rejected the new ${p} (old file kept)`);
    expect((err as CheckFailed).output).toMatch(/syntax error/);
    expect((err as CheckFailed).output).toContain(p); // temp path shown as the target's
    expect(await inNode(`cat ${p}`)).toBe('echo old\n');
    expect(await inNode(`stat -c %a ${p}`)).toBe('644\n');
    expect(await inNode(`ls -A ${dir} | grep -c wharf-tmp || true`)).toBe('0\n');
  });

  it('never shows a secret command or content in errors', async () => {
    const secret = 'hunter2-secret-password';
    const s = new SshTransport('sec', sshd.target, { ...sshd.options, secrets: [secret] });
    const e1 = await s
      .exec(['sh', '-c', `sleep 5 # ${secret}`], { secret: true, timeoutMs: 500 })
      .catch((e: unknown) => e);
    expect((e1 as Error).message).toBe('sec: timed out after 500 ms: «secret command»');
    const r = await s.exec(`echo "${secret}" >&2; exit 1`);
    expect(r.stderr).toBe(`${MASK}\n`);
    const p = join(dir, 'secret.conf');
    const e2 = await s
      .writeFileAtomic(p, `password=${secret}\n`, {
        mode: 0o600,
        owner: 'root',
        group: 'root',
        secret: true,
        check: { argv: ['sh', '-c', 'cat "$1"; exit 1', 'x', '{}'], name: 'cat' },
      })
      .catch((e: unknown) => e);
    expect(e2).toBeInstanceOf(CheckFailed);
    expect((e2 as Error).message).not.toContain(secret);
    expect((await sshd.sh(`test -e ${p}`)).exitCode).toBe(1);
  });
});
