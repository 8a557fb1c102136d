// ssh2-sftp-client's default listeners print "Global close listener: close event raised" (and the
// end/error ones) on stdout/stderr when a connection ends outside a call. wharf hands the library its
// own listeners everywhere it makes a client: the events go to wharf's callback, nothing is printed.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import SftpClient from 'ssh2-sftp-client';
import { QUIET_LISTENERS, sftpListeners, type ConnEvent } from '../../src/workload/generator.ts';

const LINE = /Global (close|end|error) listener/;

/** Everything written to stdout/stderr (console included) while `fn` runs. */
function captured(fn: () => void): string {
  const out: string[] = [];
  const w = (chunk: unknown) => {
    out.push(String(chunk));
    return true;
  };
  const so = vi.spyOn(process.stdout, 'write').mockImplementation(w);
  const se = vi.spyOn(process.stderr, 'write').mockImplementation(w);
  const cl = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  const ce = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  try {
    fn();
  } finally {
    so.mockRestore();
    se.mockRestore();
    cl.mockRestore();
    ce.mockRestore();
  }
  return out.join('\n');
}

/** The library's ssh2 connection object, where its global listeners hang. */
const sshOf = (c: SftpClient) => (c as unknown as { client: NodeJS.EventEmitter }).client;

describe("ssh2-sftp-client's global events", () => {
  afterEach(() => vi.restoreAllMocks());

  it('with the default listeners the library prints its lines (what wharf must not do)', () => {
    const c = new SftpClient('t');
    const out = captured(() => {
      sshOf(c).emit('end');
      sshOf(c).emit('close');
    });
    expect(out).toMatch(LINE);
  });

  it("with wharf's listeners an end, close or error reaches the callback and nothing is printed", () => {
    const seen: ConnEvent[] = [];
    const c = new SftpClient(
      't',
      sftpListeners((e) => seen.push(e)),
    );
    const out = captured(() => {
      sshOf(c).emit('end');
      sshOf(c).emit('close');
      sshOf(c).emit('error', new Error('read ECONNRESET'));
    });
    expect(out).toBe('');
    expect(seen).toEqual([{ what: 'end' }, { what: 'close' }, { what: 'error', error: 'read ECONNRESET' }]);
    const q = new SftpClient('q', QUIET_LISTENERS);
    expect(
      captured(() => {
        sshOf(q).emit('close');
        sshOf(q).emit('error', new Error('x'));
      }),
    ).toBe('');
  });

  it('every SftpClient wharf makes (src, scenarios, bench, test) gets listeners', () => {
    const files: string[] = [];
    const walk = (d: string) => {
      for (const n of readdirSync(d)) {
        const p = join(d, n);
        if (statSync(p).isDirectory()) walk(p);
        else if (p.endsWith('.ts')) files.push(p);
      }
    };
    for (const d of ['src', 'scenarios', 'bench', 'test', 'scripts']) walk(d);
    const bare: string[] = [];
    for (const f of files) {
      if (f.endsWith('sftp-listeners.test.ts')) continue;
      const text = readFileSync(f, 'utf8');
      for (const m of text.matchAll(/new SftpClient\(([^)]*)\)/g))
        if (!m[1]!.includes(',')) bare.push(`${f}: ${m[0]}`);
    }
    expect(bare).toEqual([]);
  });
});
