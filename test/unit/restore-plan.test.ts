// The restore plan (src/restore/plan.ts): input checks naming their flag, listings, the plan's rules.
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/core/errors.ts';
import { loadTopology } from '../../src/topology/load.ts';
import {
  checkRestoreInput,
  chrootPath,
  describeRestorePlan,
  parentsOf,
  parseSnapshots,
  parseTree,
  planRestore,
  resolveSnapshot,
  undoCommand,
  type Entry,
  type TreeListing,
} from '../../src/restore/plan.ts';

const t = loadTopology('configs/stack.yaml');
const sha = (c: string) => c.repeat(64);
const tree = (entries: Record<string, Entry>, parents: Record<string, string> = {}): TreeListing => ({
  tree: new Map(Object.entries(entries)),
  parents: new Map(Object.entries(parents)),
});
const f = (c: string, size = 1): Entry => ({ kind: 'f', size, sha256: sha(c) });
const d: Entry = { kind: 'd', size: 4096 };

describe('restore input', () => {
  it('normalises a chroot path and refuses .. and the whole chroot', () => {
    expect(chrootPath('/upload//docs/./a.txt')).toEqual({ path: 'upload/docs/a.txt' });
    expect(chrootPath('upload/../../etc')).toEqual({
      problem: `"upload/../../etc" leaves the user's chroot (..)`,
    });
    expect(chrootPath('/')).toMatchObject({ problem: expect.stringContaining('whole chroot') });
    expect(chrootPath('a\nb')).toMatchObject({ problem: expect.stringContaining('control character') });
  });

  it('reports every bad flag at once, each named', () => {
    try {
      checkRestoreInput(t, { snapshot: 'yesterday', user: 'nobody', path: '../x' });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(InputError);
      expect((e as InputError).problems).toEqual([
        '--user: unknown user "nobody" (users of the topology: demo)',
        '--snapshot: "yesterday" is not a snapshot name (YYYYMMDDTHHMMSSZ, e.g. 20261130T045400Z) or latest',
        `--path: "../x" leaves the user's chroot (..)`,
      ]);
    }
    expect(checkRestoreInput(t, { snapshot: 'latest', user: 'demo', path: '/upload/a' })).toEqual({
      snapshot: 'latest',
      user: 'demo',
      path: 'upload/a',
    });
  });

  it('resolves latest and refuses an unknown snapshot, listing what exists', () => {
    const have = parseSnapshots('20261130T010000Z\n20261130T020000Z\nlatest=20261130T020000Z\n');
    expect(have).toEqual({ names: ['20261130T010000Z', '20261130T020000Z'], latest: '20261130T020000Z' });
    expect(resolveSnapshot('latest', have, 'sftp-backup')).toBe('20261130T020000Z');
    expect(resolveSnapshot('20261130T010000Z', have, 'sftp-backup')).toBe('20261130T010000Z');
    expect(() => resolveSnapshot('20261130T030000Z', have, 'sftp-backup')).toThrow(
      '--snapshot: no snapshot "20261130T030000Z" (snapshots on sftp-backup: 20261130T010000Z, 20261130T020000Z)',
    );
    expect(() => resolveSnapshot('latest', parseSnapshots('latest=\n'), 'b')).toThrow(
      '--snapshot: latest: b has no snapshot yet',
    );
  });
});

describe('restore listing and plan', () => {
  it('parses the NUL-separated listing (entries, parents, sums)', () => {
    const out =
      'A\td\t./upload\0' +
      'E\td\t4096\t\t./upload/docs\0E\tf\t3\t\t./upload/docs/a b.txt\0E\tl\t5\t/etc\t./upload/docs/ln\0' +
      `${sha('a')}  ./upload/docs/a b.txt\0`;
    const l = parseTree(out);
    expect([...l.parents]).toEqual([['upload', 'd']]);
    expect(l.tree.get('upload/docs/a b.txt')).toEqual({ kind: 'f', size: 3, sha256: sha('a') });
    expect(l.tree.get('upload/docs/ln')).toEqual({ kind: 'l', size: 5, target: '/etc' });
    expect(parentsOf('upload/docs/a')).toEqual(['upload', 'upload/docs']);
  });

  const snap = tree({
    'upload/docs': d,
    'upload/docs/a': f('a'),
    'upload/docs/b': f('b'),
    'upload/docs/s': d,
    'upload/docs/s/c': f('c'),
  });

  it('creates what main lacks, leaves equal files, names each conflict, deletes nothing', () => {
    const main = tree(
      { 'upload/docs': d, 'upload/docs/a': f('a'), 'upload/docs/b': f('x'), 'upload/docs/new': f('n') },
      { upload: 'd' },
    );
    const p = planRestore(snap, main, false);
    expect(p).toMatchObject({
      create: ['upload/docs/s/c'],
      overwrite: [],
      newDirs: ['upload/docs/s'],
      same: 2,
      extra: ['upload/docs/new'],
      blocked: [],
    });
    expect(p.conflicts.map((c) => c.path)).toEqual(['upload/docs/b']);
    expect(describeRestorePlan(p, false).join('\n')).toContain('conflict upload/docs/b: differs on main');
    // --force: the conflict becomes an overwrite
    const forced = planRestore(snap, main, true);
    expect(forced.overwrite).toEqual(['upload/docs/b']);
    expect(forced.conflicts).toEqual([]);
  });

  it('blocks a folder against a file and a parent that is a symlink, even with --force', () => {
    const main = tree({ 'upload/docs': d, 'upload/docs/s': f('z') }, { upload: 'l' });
    const p = planRestore(snap, main, true);
    expect(p.blocked.map((b) => b.path)).toEqual(['upload', 'upload/docs/s']);
  });

  it('undo removes what was created and puts kept versions back', () => {
    expect(
      undoCommand('/srv/sftp/demo', '/var/lib/wharf/restore-replaced/x/demo', {
        create: ['upload/a'],
        overwrite: ['upload/b'],
        newDirs: ['upload/s', 'upload/s/t'],
      }),
    ).toBe(
      'set -e; rm -f -- /srv/sftp/demo/upload/a; cp -a -- /var/lib/wharf/restore-replaced/x/demo/upload/b /srv/sftp/demo/upload/b; rmdir --ignore-fail-on-non-empty -- /srv/sftp/demo/upload/s/t 2>/dev/null || true; rmdir --ignore-fail-on-non-empty -- /srv/sftp/demo/upload/s 2>/dev/null || true',
    );
  });
});
