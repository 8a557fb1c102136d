import { describe, expect, it } from 'vitest';
import { check, checkNode, formatVerdict, parseSha256sum } from '../../src/workload/checker.ts';
import type { Ack } from '../../src/workload/ledger.ts';

const ack = (path: string, sha: string): Ack => ({
  path,
  sha256: sha,
  size: 1,
  ackAt: 0,
  client: 0,
  attempts: 1,
});
const A = 'a'.repeat(64);
const B = 'b'.repeat(64);

describe('checker', () => {
  it('classifies ok, lost, corrupt and unexpected files per node', () => {
    const v = checkNode(
      'sftp-sub',
      [ack('u/1', A), ack('u/2', A), ack('u/3', B)],
      [
        { path: 'u/1', sha256: A },
        { path: 'u/3', sha256: A },
        { path: 'u/9', sha256: B },
      ],
    );
    expect(v).toEqual({ node: 'sftp-sub', ok: 1, lost: ['u/2'], corrupt: ['u/3'], unexpected: ['u/9'] });
  });

  it('a path acknowledged twice must hold its last content', () => {
    const v = checkNode('n', [ack('p', A), ack('p', B)], [{ path: 'p', sha256: B }]);
    expect(v.ok).toBe(1);
    expect(v.corrupt).toEqual([]);
  });

  it('the verdict is invalid when any node lost an acknowledged upload', () => {
    const v = check([ack('x', A)], { main: [{ path: 'x', sha256: A }], sub: [] });
    expect(v.valid).toBe(false);
    expect(formatVerdict(v)).toContain('sub          ok 0  lost 1');
    expect(formatVerdict(v)).toContain('INVALID');
  });

  it('parses sha256sum output relative to a root', () => {
    const out = `${A}  /srv/sftp/demo/upload/a.bin\n${B} */srv/sftp/demo/upload/b c.bin\nnoise\n`;
    expect(parseSha256sum(out, '/srv/sftp/demo')).toEqual([
      { path: 'upload/a.bin', sha256: A },
      { path: 'upload/b c.bin', sha256: B },
    ]);
  });
});
