import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { mask, MASK } from '../../src/transport/mask.ts';
import { shJoin, shQuote } from '../../src/exec/index.ts';
import { remoteCommand, sshArgs } from '../../src/transport/ssh.ts';

const NASTY = [
  '',
  ' ',
  "it's",
  "''",
  '"double" and \\backslash\\',
  '$HOME `id` $(id) ${X:-y}',
  'a;b&&c||d|e>f<g',
  '*?[a-z]~',
  'new\nline\ttab',
  'mixed \' " ` $ \\ ! # %',
  '-n',
  'ünïcødé ☃',
];

/** What a POSIX shell makes of a command line: the argv it would run, via printf. */
const shellArgs = (line: string) =>
  execFileSync('sh', ['-c', `set -- ${line}; for a in "$@"; do printf '%s\\0' "$a"; done`]).toString();

describe('shQuote / shJoin', () => {
  it('leaves safe words bare and quotes everything else', () => {
    expect(shQuote('/etc/haproxy/haproxy.cfg')).toBe('/etc/haproxy/haproxy.cfg');
    expect(shQuote("it's")).toBe(`'it'\\''s'`);
    expect(shQuote('')).toBe("''");
  });

  it.each(NASTY)('a shell gets back exactly %j', (s) => {
    const out = shellArgs(shJoin(['x', s, 'y']));
    expect(out.split('\0').slice(0, 3)).toEqual(['x', s, 'y']);
  });

  it('survives two levels of quoting (timeout + sudo wrapper)', () => {
    const argv = ['printf', '%s|', ...NASTY];
    const line = remoteCommand(argv, { sudo: false, timeoutMs: 5000 });
    expect(line).toMatch(/^timeout -k 2 6 sh -c /);
    const out = execFileSync('sh', ['-c', line]).toString();
    expect(out).toBe(NASTY.map((s) => `${s}|`).join(''));
  });

  it('wraps with sudo -n only when asked', () => {
    expect(remoteCommand(['id', '-u'], { sudo: true })).toBe(`sudo -n -- sh -c 'id -u'`);
    expect(remoteCommand('id -u', { sudo: false })).toBe('id -u');
  });
});

describe('sshArgs', () => {
  const target = { host: 'h', port: 2222, user: 'ops', identityFile: '~/.ssh/id', sudo: true };
  it('always checks host keys strictly, in batch mode, multiplexed', () => {
    const a = sshArgs(target, { knownHosts: '/k', sshConfig: '/c' }).join(' ');
    expect(a).toContain('-o BatchMode=yes');
    expect(a).toContain('-o StrictHostKeyChecking=yes');
    expect(a).toContain('-o ControlMaster=auto');
    expect(a).toContain('-o ControlPath=/tmp/wharf-%C');
    expect(a).toContain('-o ControlPersist=60s');
    expect(a).toContain('-o UserKnownHostsFile=/k');
    expect(a).toMatch(/^-F \/c /);
    expect(a).toContain('-p 2222 -l ops');
    expect(a).toContain(`-i ${process.env.HOME}/.ssh/id`);
  });
  it('refuses a control path too long for a unix socket', () => {
    expect(() => sshArgs(target, { controlDir: '/tmp/' + 'x'.repeat(80) })).toThrow(/104 bytes/);
  });
});

describe('mask', () => {
  it('masks every occurrence, and the lines of a multi-line secret', () => {
    const key =
      '-----BEGIN KEY-----\nAAAAB3NzaC1yc2EAAAADAQAB\nQUJDREVGR0hJSktMTU5PUFFS\n-----END KEY-----\n';
    const text = `pw=hunter22 and again hunter22\nline: QUJDREVGR0hJSktMTU5PUFFS\n${key}`;
    const out = mask(text, ['hunter22', key]);
    expect(out).not.toContain('hunter22');
    expect(out).not.toContain('QUJDREVGR0hJSktMTU5PUFFS');
    expect(out).not.toContain('AAAAB3NzaC1yc2EAAAADAQAB');
    expect(out.split(MASK).length - 1).toBe(4);
  });
  it('ignores very short secrets (would garble output) and leaves text without secrets alone', () => {
    expect(mask('a b c', ['a'])).toBe('a b c');
    expect(mask('nothing here', ['hunter22'])).toBe('nothing here');
  });
});
