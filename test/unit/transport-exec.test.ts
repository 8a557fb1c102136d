// The exec layer without any sshd: the transports run on zx with a swappable spawn, so a test can
// see exactly what would be started (the local `sh -c 'ssh …'` line) and answer for the host.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { Spawn } from '../../src/exec/process.ts';
import { $ } from '../../src/exec/process.ts';
import { MASK } from '../../src/transport/mask.ts';
import { LocalTransport } from '../../src/transport/local.ts';
import { remoteCommand, SshTransport } from '../../src/transport/ssh.ts';
import { shell } from '../../src/transport/shell.ts';
import { CommandFailed, TransportError, type Transport } from '../../src/transport/types.ts';

interface Call {
  /** The shell the line was handed to (zx: spawn(line, [], {shell})). */
  shell: unknown;
  line: string;
  /** What a POSIX shell makes of the line: the argv of the program it starts. */
  argv: string[];
  stdin: Buffer;
}

type Answer = { stdout?: string | Buffer; stderr?: string; code?: number };

/** A spawn that starts nothing: it records the call and answers like a process would. */
function fakeSpawn(answer: (c: Call) => Answer) {
  const calls: Call[] = [];
  const spawn = ((line: string, _args: string[], opts: { shell?: unknown; stdio?: unknown }) => {
    const child = new EventEmitter() as ChildProcess;
    const stdin: Buffer[] = [];
    const stdinOpen = !Array.isArray(opts.stdio) || opts.stdio[0] !== 'ignore';
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const call: Call = { shell: opts.shell, line, argv: shellWords(line), stdin: Buffer.alloc(0) };
    calls.push(call);
    const finish = () => {
      call.stdin = Buffer.concat(stdin);
      const a = answer(call);
      stdout.end(a.stdout ?? '');
      stderr.end(a.stderr ?? '');
      setImmediate(() => {
        child.emit('exit', a.code ?? 0, null);
        child.emit('close', a.code ?? 0, null);
      });
    };
    Object.assign(child, {
      pid: 4242,
      stdout,
      stderr,
      stdin: stdinOpen
        ? new Writable({
            write: (b: Buffer, _e, cb) => (stdin.push(b), cb()),
            final: (cb) => (finish(), cb()),
          })
        : null,
    });
    if (!stdinOpen) setImmediate(finish);
    return child;
  }) as unknown as Spawn;
  return { spawn, calls };
}

const shellWords = (line: string): string[] =>
  execFileSync('sh', ['-c', `set -- ${line}; for a in "$@"; do printf '%s\\0' "$a"; done`])
    .toString()
    .split('\0')
    .slice(0, -1);

const target = { host: 'db1.example', port: 2222, user: 'ops', sudo: true };

describe('SshTransport on a fake spawn (no sshd)', () => {
  it('host.$ quotes values like zx, arrays as several args, under timeout -k and sudo -n', async () => {
    const { spawn, calls } = fakeSpawn(() => ({ stdout: 'reloaded\n' }));
    const host = new SshTransport('db1', target, { controlDir: '/tmp', spawn });
    const unit = "haproxy's unit";
    const r = await host.$`systemctl reload ${unit} ${['a b', 'c']}`;
    expect(r).toEqual({ stdout: 'reloaded\n', stderr: '', code: 0, stdoutBuffer: Buffer.from('reloaded\n') });
    const [c] = calls;
    expect(c!.shell).toBe('/bin/sh');
    expect(c!.argv[0]).toBe('ssh');
    expect(c!.line).toContain('StrictHostKeyChecking=yes');
    expect(c!.argv.slice(-2)).toEqual([
      'db1.example',
      remoteCommand(`systemctl reload 'haproxy'\\''s unit' 'a b' c`, { sudo: true, timeoutMs: 120_000 }),
    ]);
    expect(c!.argv.at(-1)).toMatch(/^sudo -n -- sh -c 'timeout -k 2 121 sh -c /);
    // What the host's shell finally runs: the exact argv.
    const inner = shellWords(c!.argv.at(-1)!.replace(/^sudo -n -- /, ''));
    expect(inner.slice(0, 2)).toEqual(['sh', '-c']);
    expect(shellWords(shellWords(inner[2]!).slice(-1)[0]!)).toEqual([
      'systemctl',
      'reload',
      unit,
      'a b',
      'c',
    ]);
  });

  it('feeds input on stdin, sudo:false and timeoutMs reach the remote line; no input means /dev/null', async () => {
    const { spawn, calls } = fakeSpawn((c) => ({ stdout: c.stdin }));
    const host = new SshTransport('db1', target, { controlDir: '/tmp', spawn });
    const bytes = Buffer.from([0, 1, 255, 10]);
    const r = await host.$({ input: bytes, sudo: false, timeoutMs: 5000 })`cat`;
    expect(r.stdoutBuffer.equals(bytes)).toBe(true);
    expect(calls[0]!.argv.at(-1)).toBe(`timeout -k 2 6 sh -c cat`);
    await host.$`true`;
    expect(calls[1]!.stdin.length).toBe(0);
  });

  it('a non-zero exit throws CommandFailed naming host, masked command and stderr; nothrow returns it', async () => {
    const secret = 'hunter2-secret-password';
    const { spawn } = fakeSpawn(() => ({ stderr: `bad token ${secret}\n`, code: 3 }));
    const host = new SshTransport('db1', target, { controlDir: '/tmp', spawn, secrets: [secret] });
    const err = await host.$`login --token ${secret}`.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandFailed);
    expect((err as Error).message).toBe(`db1: \`login --token ${MASK}\` failed (exit 3): bad token ${MASK}`);
    expect((err as CommandFailed).code).toBe(3);
    const hidden = await host.$({ secret: true })`login --token ${secret}`.catch((e: unknown) => e);
    expect((hidden as Error).message).toBe(`db1: \`«secret command»\` failed (exit 3): bad token ${MASK}`);
    const r = await host.$({ nothrow: true })`login`;
    expect(r).toMatchObject({ code: 3, stderr: `bad token ${MASK}\n` });
    // exec keeps its contract: any exit code resolves.
    expect((await host.exec(['login'])).code).toBe(3);
  });

  it('modifiers like zx: .nothrow() and .timeout(ms) chained before the command starts', async () => {
    const { spawn, calls } = fakeSpawn(() => ({ stderr: 'inactive\n', code: 3 }));
    const host = new SshTransport('db1', { ...target, user: 'root' }, { controlDir: '/tmp', spawn });
    const r = await host.$`systemctl is-active ${'haproxy'}`.nothrow().timeout(9000);
    expect(r.code).toBe(3);
    expect(calls[0]!.argv.at(-1)).toBe(`timeout -k 2 10 sh -c 'systemctl is-active haproxy'`);
    await expect(host.$`systemctl is-active haproxy`).rejects.toBeInstanceOf(CommandFailed);
  });

  it('ssh exit 255 is a TransportError naming user, host and port', async () => {
    const { spawn } = fakeSpawn(() => ({ stderr: 'Host key verification failed.\n', code: 255 }));
    const host = new SshTransport('db1', target, { controlDir: '/tmp', spawn });
    const err = await host.exec('true').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect((err as Error).message).toBe(
      'db1: ssh ops@db1.example:2222 failed: Host key verification failed. (running: true)',
    );
  });

  it('readFile and stat are answered by the fake host (what planning observes)', async () => {
    const { spawn, calls } = fakeSpawn((c) => {
      const remote = c.argv.at(-1)!;
      if (remote.includes('exec stat')) return { stdout: '640|root|haproxy|6|regular file\n' };
      if (remote.includes('/etc/absent')) return { code: 44 };
      return { stdout: 'hello\n' };
    });
    const host = new SshTransport('db1', { ...target, user: 'root' }, { controlDir: '/tmp', spawn });
    expect(await host.stat('/etc/haproxy/haproxy.cfg')).toEqual({
      mode: 0o640,
      owner: 'root',
      group: 'haproxy',
      size: 6,
      type: 'file',
    });
    expect((await host.readFile('/etc/motd'))?.toString()).toBe('hello\n');
    expect(await host.readFile('/etc/absent')).toBeNull();
    expect(calls.map((c) => c.argv.at(-1)!.startsWith('sudo'))).toEqual([false, false, false]); // root
  });
});

describe('shell(t) and CommandFailed', () => {
  it('gives any Transport a host.$ over its exec; a long script is named by its first line', async () => {
    const calls: string[] = [];
    const plain: Transport = {
      host: 'fake',
      exec: async (cmd) => {
        calls.push(typeof cmd === 'string' ? cmd : cmd.join(' '));
        return { stdout: '', stderr: 'no such unit\n', code: 5, stdoutBuffer: Buffer.alloc(0) };
      },
      readFile: async () => null,
      stat: async () => null,
      writeFileAtomic: async () => {},
      close: async () => {},
    };
    const err = await shell(plain)`systemctl reload ${'my unit'}`.catch((e: unknown) => e);
    expect(calls).toEqual([`systemctl reload 'my unit'`]);
    expect((err as Error).message).toBe("fake: `systemctl reload 'my unit'` failed (exit 5): no such unit");
    const long = new CommandFailed('h', `cd /srv\n${'x'.repeat(50)}`, {
      stdout: '',
      stderr: '',
      code: 1,
      stdoutBuffer: Buffer.alloc(0),
    });
    expect(long.message).toBe('h: `cd /srv …` failed (exit 1)');
  });
});

describe('LocalTransport and $ on the same layer', () => {
  it('LocalTransport takes a fake spawn too', async () => {
    const { spawn, calls } = fakeSpawn(() => ({ stdout: 'ok\n' }));
    const t = new LocalTransport('here', { spawn });
    expect((await t.$`echo ${'a b'}`).stdout).toBe('ok\n');
    expect(calls[0]!.line).toBe(`echo 'a b'`);
  });

  it('$ runs sh with the one quoter (POSIX quotes that dash reads back exactly)', async () => {
    const nasty = ["it's", '$HOME `id`', 'new\nline', ''];
    const out = await $`printf '%s|' ${nasty}`;
    expect(out.stdout).toBe(nasty.map((s) => `${s}|`).join(''));
    const r = await $({ nothrow: true })`exit 3`;
    expect(r.exitCode).toBe(3);
  });
});
