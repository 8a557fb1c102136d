import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalTransport } from '../../src/transport/local.ts';
import { CheckFailed, TransportError } from '../../src/transport/types.ts';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'wharf-lt-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('LocalTransport (same file scripts as SSH, on this machine)', () => {
  const t = new LocalTransport('here');
  it('runs commands, feeds stdin, reports the exit code', async () => {
    expect(await t.exec(['sh', '-c', 'cat; echo e >&2; exit 4'], { input: 'in' })).toMatchObject({
      stdout: 'in',
      stderr: 'e\n',
      code: 4,
    });
  });
  it('kills the whole process group on timeout', async () => {
    const dir = tmp();
    const err = await t
      .exec(`(sleep 1.5; touch ${dir}/late) & wait`, { timeoutMs: 300 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    await new Promise((r) => setTimeout(r, 1800));
    expect(existsSync(join(dir, 'late'))).toBe(false);
  });
  it('atomic write: passing and failing check, stat and readFile', async () => {
    const dir = tmp();
    const p = join(dir, 'x.json');
    const check = {
      argv: ['node', '-e', 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))', '{}'],
      name: 'json',
    };
    await t.writeFileAtomic(p, '{"a":1}\n', { mode: 0o600, owner: 'root', group: 'root', check });
    expect(statSync(p).mode & 0o777).toBe(0o600);
    await expect(
      t.writeFileAtomic(p, '{broken', { mode: 0o644, owner: 'root', group: 'root', check }),
    ).rejects.toBeInstanceOf(CheckFailed);
    expect(readFileSync(p, 'utf8')).toBe('{"a":1}\n');
    expect(readdirSync(dir)).toEqual(['x.json']);
    expect(await t.stat(p)).toMatchObject({ mode: 0o600, type: 'file' });
    writeFileSync(join(dir, 'bin'), Buffer.from([0, 255, 10]));
    expect((await t.readFile(join(dir, 'bin')))?.equals(Buffer.from([0, 255, 10]))).toBe(true);
    expect(await t.readFile(join(dir, 'none'))).toBeNull();
  });
});
