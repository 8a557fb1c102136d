// Bulk observation and batched apply (issue 13): the few-process observation must see exactly what
// the per-resource snippets see (same observations, so the same plan and diff lines), and a batch
// script applies changes in order, stops at the first failure and says which ones were applied.
// Runs on this machine through LocalTransport (same scripts as over SSH), in temp folders.
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  existsSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { LocalTransport } from '../../src/transport/local.ts';
import { observeHost, observeHostEach, bulkObservable } from '../../src/runbook/observe.ts';
import { formatPlan, plan, planHost } from '../../src/runbook/plan.ts';
import { applyHost, ApplyError, batchScript, parseBatchOutput, batchable } from '../../src/runbook/apply.ts';
import type { Resource } from '../../src/runbook/resources.ts';
import { TransportError } from '../../src/transport/types.ts';
import { configureDesired } from '../../src/stack/desired.ts';
import { labInventory } from '../../src/topology/inventory.ts';
import { topologyFromObject } from '../../src/topology/load.ts';
import type { StackSecrets } from '../../src/stack/secrets.ts';
import { MemoryReporter } from '../../src/runbook/progress.ts';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'wharf-bulk-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const t = new LocalTransport('here');
const me = { owner: 'root', group: 'root' };
const file = (path: string, content: string, extra: Partial<Resource> = {}): Resource =>
  ({ kind: 'file', path, content, mode: 0o644, ...me, ...extra }) as Resource;
const dir = (path: string, mode = 0o755): Resource => ({ kind: 'directory', path, mode, ...me });

describe('bulk observation = per-resource observation', () => {
  it('files, folders, users, groups in every state: same observations, same plan text', async () => {
    const d = tmp();
    writeFileSync(join(d, 'same'), 'a\nb\n');
    writeFileSync(join(d, 'differs'), 'old\n');
    writeFileSync(join(d, 'empty'), '');
    writeFileSync(join(d, 'nonl'), 'no newline');
    writeFileSync(join(d, 'mode'), 'x\n', { mode: 0o600 });
    writeFileSync(join(d, 'gone'), 'delete me\n');
    mkdirSync(join(d, 'isdir'));
    mkdirSync(join(d, 'sub'), { mode: 0o700 });
    writeFileSync(join(d, 'fileasdir'), '');
    symlinkSync(join(d, 'same'), join(d, 'link'));
    symlinkSync(join(d, 'nowhere'), join(d, 'dangling'));
    writeFileSync(join(d, 'with|pipe'), 'p\n');
    const rs: Resource[] = [
      file(join(d, 'same'), 'a\nb\n'),
      file(join(d, 'differs'), 'new\n'),
      file(join(d, 'empty'), ''),
      file(join(d, 'nonl'), 'no newline\n'),
      file(join(d, 'mode'), 'x\n'),
      file(join(d, 'missing'), 'fresh\n'),
      file(join(d, 'gone'), '', { state: 'absent' }),
      file(join(d, 'isdir'), 'x\n'),
      file(join(d, 'link'), 'a\nb\n'),
      file(join(d, 'dangling'), 'x\n'),
      file(join(d, 'with|pipe'), 'p\n'),
      file(join(d, 'secret'), 'TOPSECRET\n', { secret: true }),
      file(join(d, "quote'd"), 'q\n'),
      dir(d, 0o700),
      dir(join(d, 'sub')),
      dir(join(d, 'nosuch')),
      dir(join(d, 'fileasdir')),
      { kind: 'user', name: 'root' },
      { kind: 'user', name: 'nobody', home: '/x', shell: '/bin/sh', groups: ['root'] },
      { kind: 'user', name: 'wharf-no-such-user', uid: 2001 },
      { kind: 'user', name: '0' }, // a number: its own snippet (getent would look up a uid)
      { kind: 'group', name: 'root' },
      { kind: 'group', name: 'nogroup', gid: 1 },
      { kind: 'group', name: 'wharf-no-such-group' },
      { kind: 'unit', name: 'ssh', enabled: true, active: true },
      { kind: 'unit', name: 'wharf-no-such-unit.service', enabled: true },
      { kind: 'unit', name: 'cron', active: true },
      { kind: 'unit', name: 'plain', systemd: false, reloadCommand: ['true'] },
      { kind: 'sysctl', key: 'kernel.hostname', value: 'x' },
      { kind: 'package', name: 'wharf-no-such-package' },
    ];
    expect(rs.filter(bulkObservable)).toHaveLength(rs.length - 4);
    const [each, bulk] = await Promise.all([observeHostEach(t, rs), observeHost(t, rs)]);
    expect(bulk).toEqual(each);
    const text = (o: typeof each) =>
      formatPlan(plan({ here: rs }, { here: o }), { diff: true, secrets: ['TOPSECRET'] });
    expect(text(bulk)).toBe(text(each));
    expect(text(bulk)).toContain(`~ update file ${join(d, 'differs')}: content differs (+1 −1 lines)`);
  });

  it('the whole configure state of an SFTP node with 150 users: identical observations and plan', async () => {
    const base = tmp();
    const doc = parse(readFileSync('configs/stack.yaml', 'utf8')) as { sftp: Record<string, unknown> };
    doc.sftp.chrootBase = base;
    doc.sftp.users = Array.from({ length: 150 }, (_, i) => ({
      name: `su${String(i + 1).padStart(3, '0')}`,
      authorizedKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests'],
    }));
    const topo = topologyFromObject(doc, 'configs/stack.yaml');
    const kp = (n: string) => ({ private: `-----PRIVATE ${n}-----\n`, public: `ssh-ed25519 AAAA${n}` });
    const secrets: StackSecrets = {
      dir: '/nonexistent',
      hostKeys: { ed25519: kp('ed'), rsa: kp('rsa'), ecdsa: kp('ec') },
      replication: kp('repl'),
    };
    const rs = configureDesired(topo, labInventory(topo), secrets, ['sftp-main'])['sftp-main']!;
    // a mixed state: a third of the chroots complete, a third with a wrong mode and old keys
    for (let i = 0; i < 100; i++) {
      const u = `${base}/su${String(i + 1).padStart(3, '0')}`;
      mkdirSync(`${u}/.ssh`, { recursive: true, mode: i < 50 ? 0o755 : 0o775 });
      writeFileSync(
        `${u}/.ssh/authorized_keys`,
        i < 50 ? 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests\n' : 'old\n',
      );
    }
    const [each, bulk] = await Promise.all([observeHostEach(t, rs), observeHost(t, rs)]);
    expect(bulk).toEqual(each);
    const a = planHost('sftp-main', rs, each);
    const b = planHost('sftp-main', rs, bulk);
    expect(formatPlan({ hosts: { 'sftp-main': b } }, { diff: true })).toBe(
      formatPlan({ hosts: { 'sftp-main': a } }, { diff: true }),
    );
    expect(b.length).toBeGreaterThan(300);
  }, 120_000);
});

describe('batched apply', () => {
  it('one script: changes applied in order; the first failure stops it and names the change', async () => {
    const d = tmp();
    writeFileSync(join(d, 'blocker'), 'a file where a folder must go\n');
    const rs: Resource[] = [dir(join(d, 'a')), dir(join(d, 'blocker')), dir(join(d, 'c'))];
    const changes = planHost('here', rs, await observeHost(t, rs));
    expect(changes.every(batchable)).toBe(true);
    const tag = '@@wharf-test0001';
    const r = await t.exec('sh -s', { input: batchScript(changes, tag) });
    const out = parseBatchOutput(tag, changes.length, r.stdout, r.stderr);
    expect(r.code).toBe(1);
    expect(out.applied).toBe(1);
    expect(out.failed).toMatchObject({
      index: 1,
      stderr: `${join(d, 'blocker')} exists and is not a directory`,
    });
    expect(existsSync(join(d, 'a'))).toBe(true);
    expect(existsSync(join(d, 'c'))).toBe(false);
  });

  it('a failing batch: ApplyError names host, resource and reason; files it wrote are removed again', async () => {
    const d = tmp();
    writeFileSync(join(d, 'f2'), 'old\n');
    writeFileSync(join(d, 'plain'), ''); // a file where f3's folder must be: mkdir fails
    const rs: Resource[] = [
      file(join(d, 'f1'), 'one\n'),
      file(join(d, 'f2'), 'two\n'),
      file(join(d, 'plain/f3'), 'three\n'),
      file(join(d, 'f4'), 'four\n'),
    ];
    const changes = planHost('here', rs, await observeHost(t, rs));
    expect(changes.map((c) => c.kind)).toEqual(['create', 'update', 'create', 'create']);
    const reporter = new MemoryReporter();
    const err = (await applyHost('here', changes, t, {
      transports: new Map([['here', t]]),
      reporter,
      stateDir: join(d, 'state'),
    }).catch((e: unknown) => e)) as ApplyError;
    expect(err).toBeInstanceOf(ApplyError);
    expect(err.resourceId).toBe(`file ${join(d, 'plain/f3')}`);
    expect(err.reason).toMatch(/^write .*f3 failed \(exit 1\): mkdir: .*plain/);
    expect(err.applied).toBe(0); // the two files written before it were rolled back
    // the two files written before are rolled back: f1 removed, f2 back to its old content
    expect(err.rollback).toEqual([`file ${join(d, 'f1')} removed`, `file ${join(d, 'f2')} restored`]);
    expect(existsSync(join(d, 'f1'))).toBe(false);
    expect(readFileSync(join(d, 'f2'), 'utf8')).toBe('old\n');
    expect(existsSync(join(d, 'f4'))).toBe(false);
    // no temp file left behind
    expect((await t.exec(['sh', '-c', `ls -A ${d} | grep -c wharf-tmp || true`])).stdout.trim()).toBe('0');
    expect(reporter.events.join('\n')).toContain('4 changes (file) in one script');
  });

  it('a checked file in a batch: its tool refuses the candidate → old file kept, named with the real path', async () => {
    const d = tmp();
    writeFileSync(join(d, 'app.conf'), 'ok = 1\n');
    const check = {
      argv: ['sh', '-c', 'grep -q "^ok" "$1" || { echo "bad line in $1" >&2; exit 3; }', 'x', '{}'],
      name: 'app -t',
    };
    const rs: Resource[] = [
      dir(join(d, 'etc')),
      file(join(d, 'etc/good.conf'), 'ok = 2\n', { check } as Partial<Resource>),
      file(join(d, 'app.conf'), 'broken\n', { check } as Partial<Resource>),
    ];
    const changes = planHost('here', rs, await observeHost(t, rs));
    const err = (await applyHost('here', changes, t, {
      transports: new Map([['here', t]]),
      stateDir: join(d, 'state'),
    }).catch((e: unknown) => e)) as ApplyError;
    expect(err).toBeInstanceOf(ApplyError);
    expect(err.resourceId).toBe(`file ${join(d, 'app.conf')}`);
    expect(err.reason).toBe(`app -t rejected it (old file kept): bad line in ${join(d, 'app.conf')}`);
    expect(readFileSync(join(d, 'app.conf'), 'utf8')).toBe('ok = 1\n');
    expect(existsSync(join(d, 'etc/good.conf'))).toBe(false); // written, then rolled back
    expect(existsSync(join(d, 'etc'))).toBe(true); // folders are kept (no undo), as before
    expect((await t.exec(['sh', '-c', `ls -A ${d} | grep -c wharf-tmp || true`])).stdout.trim()).toBe('0');
  });

  it('the connection drops mid-batch: the batch is observed again and exactly the applied changes are reported', async () => {
    const d = tmp();
    const rs: Resource[] = [0, 1, 2, 3, 4].map((i) => dir(join(d, `u${i}`)));
    const changes = planHost('here', rs, await observeHost(t, rs));
    // a transport that runs the batch script only up to its third change, then loses the connection
    const flaky = Object.assign(Object.create(t) as LocalTransport, {
      exec: async (cmd: string | readonly string[], o: Parameters<LocalTransport['exec']>[1] = {}) => {
        const input = String(o.input ?? '');
        if (!input.startsWith('set -e')) return t.exec(cmd, o);
        const cut = input.split('\n');
        const stop = cut.findIndex((l) => / ok 2'$/.test(l));
        await t.exec(cmd, { ...o, input: cut.slice(0, stop + 1).join('\n') + '\n' });
        throw new TransportError('here', 'ssh: connection lost');
      },
    });
    const journal = { entries: [] as { id?: string; result: string; error?: string }[] };
    const err = (await applyHost('here', changes, flaky, {
      transports: new Map([['here', flaky]]),
      stateDir: join(d, 'state'),
      journal: { write: (e: { id?: string; result: string }) => journal.entries.push(e) } as never,
    }).catch((e: unknown) => e)) as ApplyError;
    expect(err).toBeInstanceOf(ApplyError);
    expect(err.resourceId).toBe(`directory ${join(d, 'u3')}`);
    expect(err.reason).toContain('connection lost (observed again: 3 of 5 changes of this batch applied)');
    expect(err.applied).toBe(3);
    expect(journal.entries.map((e) => `${e.id} ${e.result}`)).toEqual([
      `here:directory ${join(d, 'u0')} ok`,
      `here:directory ${join(d, 'u1')} ok`,
      `here:directory ${join(d, 'u2')} ok`,
      `here:directory ${join(d, 'u3')} failed`,
    ]);
  });

  it('a successful batch converges: a second plan is empty', async () => {
    const d = tmp();
    const rs: Resource[] = [
      dir(join(d, 'x')),
      dir(join(d, 'x/y'), 0o750),
      file(join(d, 'x/y/k'), 'key\n', { mode: 0o600 }),
      file(join(d, 'x/s'), 'S3CRET-VALUE\n', { secret: true }),
    ];
    const applied = await applyHost('here', planHost('here', rs, await observeHost(t, rs)), t, {
      transports: new Map([['here', t]]),
      stateDir: join(d, 'state'),
    });
    expect(applied).toBe(4);
    expect(planHost('here', rs, await observeHost(t, rs))).toEqual([]);
  });
});
