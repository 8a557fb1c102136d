// The runbook engine end to end through the SSH transport against a REAL sshd on 127.0.0.1:
// resources under a temp root on this host; units are plain commands (no systemd here).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { JournalEntry } from '../../src/runbook/journal.ts';
import { MemoryReporter } from '../../src/runbook/progress.ts';
import type { Resource } from '../../src/runbook/resources.ts';
import { runRunbook, type RunOptions } from '../../src/runbook/run.ts';
import { observeHost } from '../../src/runbook/observe.ts';
import { plan, planChangeCount } from '../../src/runbook/plan.ts';
import { MASK } from '../../src/transport/mask.ts';
import { SshTransport } from '../../src/transport/ssh.ts';
import { freePort } from '../../src/core/net.ts';
import { startHostSshd, type HostSshd } from '../helpers/host-sshd.ts';
import type { Transport } from '../../src/transport/types.ts';

let sshd: HostSshd;
let alpha: SshTransport;
let beta: SshTransport;
let root: string;
let runsDir: string;
const ipForward = execFileSync('sysctl', ['-n', 'net.ipv4.ip_forward']).toString().trim();
const SECRET = 'super-secret-token-0123456789';

beforeAll(async () => {
  sshd = await startHostSshd();
  alpha = new SshTransport('alpha', sshd.target, sshd.options);
  beta = new SshTransport('beta', sshd.target, sshd.options);
});
afterAll(async () => {
  await alpha?.close();
  await sshd?.close();
});
afterEach(() => rmSync(root, { recursive: true, force: true }));
beforeEach(() => {
  root = mkdtempSync('/tmp/wharf-eng-');
  runsDir = join(root, 'runs');
});

/** A small "service": a config checked by `bash -n`, reloaded by a command that logs and checks it. */
function appState(host: string, o: { version: string; reloadOk?: string; health?: string[] }): Resource[] {
  const base = join(root, host);
  const conf = join(base, 'etc/app/app.sh');
  return [
    { kind: 'directory', path: join(base, 'etc/app'), mode: 0o755, owner: 'root', group: 'root' },
    { kind: 'directory', path: join(base, 'srv/data'), mode: 0o2750, owner: 'root', group: 'daemon' },
    {
      kind: 'file',
      path: conf,
      content: `# app config\nVERSION=${o.version}\necho "$VERSION"\n`,
      mode: 0o640,
      owner: 'root',
      group: 'daemon',
      check: { argv: ['bash', '-n', '{}'], name: 'bash -n' },
      notify: ['app'],
    },
    {
      kind: 'file',
      path: join(base, 'etc/app/token'),
      content: `${SECRET}\n`,
      mode: 0o600,
      owner: 'root',
      group: 'root',
      secret: true,
    },
    {
      kind: 'unit',
      name: 'app',
      systemd: false,
      reloadCommand: [
        'sh',
        '-c',
        `echo reload >> ${base}/reload.log; grep -q 'VERSION=${o.reloadOk ?? o.version}' ${conf}`,
      ],
      ...(o.health ? { healthCommand: o.health } : {}),
    },
    { kind: 'sysctl', key: 'net.ipv4.ip_forward', value: ipForward },
  ];
}

function opts(
  desired: Record<string, Resource[]>,
  extra: Partial<RunOptions> = {},
): RunOptions & { reporter: MemoryReporter } {
  const transports = new Map<string, Transport>([
    ['alpha', alpha],
    ['beta', beta],
  ]);
  return {
    stack: 'test',
    runbook: 'configure',
    desired,
    transports,
    runsDir,
    reporter: new MemoryReporter(),
    ...extra,
  } as RunOptions & {
    reporter: MemoryReporter;
  };
}

const journal = (path: string) =>
  readFileSync(path, 'utf8')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as JournalEntry);
const reloads = (host: string) =>
  existsSync(join(root, host, 'reload.log'))
    ? readFileSync(join(root, host, 'reload.log'), 'utf8').split('\n').length - 1
    : 0;

describe('engine over SSH (real sshd)', () => {
  it('--check plans and changes nothing; apply converges; a second run makes 0 changes', async () => {
    const desired = { alpha: appState('alpha', { version: '1' }), beta: appState('beta', { version: '1' }) };
    const check = await runRunbook(opts(desired, { check: true, diff: true }));
    expect(check).toMatchObject({
      ok: true,
      check: true,
      changes: 10,
      exitCode: 0,
      hosts: { alpha: { changes: 5 }, beta: { changes: 5 } },
    });
    expect(existsSync(join(root, 'alpha'))).toBe(false);

    const t0 = Date.now();
    const first = await runRunbook(opts(desired));
    const firstMs = Date.now() - t0;
    expect(first.error).toBeUndefined();
    expect(first).toMatchObject({
      ok: true,
      changes: 10,
      hosts: { alpha: { changes: 5 }, beta: { changes: 5 } },
    });
    const conf = join(root, 'alpha/etc/app/app.sh');
    expect(readFileSync(conf, 'utf8')).toContain('VERSION=1');
    expect(execFileSync('stat', ['-c', '%a %U %G', conf]).toString().trim()).toBe('640 root daemon');
    expect(
      execFileSync('stat', ['-c', '%a %G', join(root, 'alpha/srv/data')])
        .toString()
        .trim(),
    ).toBe('2750 daemon');
    expect(reloads('alpha')).toBe(1);

    const t1 = Date.now();
    const second = await runRunbook(opts(desired));
    const secondMs = Date.now() - t1;
    console.log(`engine: 2 hosts × 6 resources: first apply ${firstMs} ms, no-op rerun ${secondMs} ms`);
    expect(second).toMatchObject({
      ok: true,
      changes: 0,
      hosts: { alpha: { changes: 0 }, beta: { changes: 0 } },
    });
    expect(reloads('alpha')).toBe(1); // nothing reloaded on a no-op run

    // A hand edit on one host: the plan says which resource on which host and why.
    writeFileSync(conf, readFileSync(conf, 'utf8') + 'echo hand-edit\n');
    const o = opts(desired, { check: true, diff: true });
    const drift = await runRunbook(o);
    expect(drift.hosts).toEqual({ alpha: { changes: 2 }, beta: { changes: 0 } });
    const shown = o.reporter.events.join('\n');
    expect(shown).toContain(`alpha: 2 changes\n  ~ update file ${conf}: content differs (+0 −1 lines)\n`);
    expect(shown).toContain('      -echo hand-edit');
    expect(shown).toContain('  ↻ reload unit app: notified by');
    expect(shown).toContain('beta: no changes');
  });

  it('prints the plan with diffs, secrets masked, and journals every change', async () => {
    const desired = { alpha: appState('alpha', { version: '1' }) };
    const o = opts(desired, { diff: true });
    const s = await runRunbook(o);
    expect(s.ok).toBe(true);
    const shown = o.reporter.events.join('\n');
    expect(shown).toContain(`alpha: 5 changes`);
    expect(shown).toContain(`  + create file ${join(root, 'alpha/etc/app/app.sh')}: absent (new, 3 lines)`);
    expect(shown).toContain('+VERSION=1');
    expect(shown).toContain('(secret content not shown)');
    expect(shown).not.toContain(SECRET);
    const entries = journal(s.journal);
    expect(readFileSync(s.journal, 'utf8')).not.toContain(SECRET);
    expect(entries[0]).toMatchObject({ step: 'run', result: 'started', host: '*', runbook: 'configure' });
    expect(
      entries
        .filter((e) => e.step === 'apply')
        .map((e) => `${e.host} ${e.change?.kind} ${e.change?.id} ${e.result}`),
    ).toEqual([
      `alpha create directory ${join(root, 'alpha/etc/app')} ok`,
      `alpha create directory ${join(root, 'alpha/srv/data')} ok`,
      `alpha create file ${join(root, 'alpha/etc/app/app.sh')} ok`,
      `alpha create file ${join(root, 'alpha/etc/app/token')} ok`,
      'alpha reload unit app ok',
    ]);
    expect(entries.at(-1)).toMatchObject({ step: 'summary', result: 'ok' });
    for (const e of entries) expect(e.runId).toBe(entries[0]!.runId);
  });

  it('a failed reload restores the previous file, reloads again, and names host, resource and reason', async () => {
    await runRunbook(opts({ alpha: appState('alpha', { version: '1' }) }));
    const conf = join(root, 'alpha/etc/app/app.sh');
    const before = readFileSync(conf, 'utf8');
    // v2 passes `bash -n` but the "daemon" only accepts v1 on reload.
    const s = await runRunbook(opts({ alpha: appState('alpha', { version: '2', reloadOk: '1' }) }));
    expect(s.ok).toBe(false);
    expect(s.exitCode).toBe(1);
    expect(s.error).toMatch(/alpha: unit app: reload \(sh -c .*\) failed \(exit 1\)/);
    expect(s.error).toContain(`rollback: file ${conf} restored; unit app reloaded with the restored files`);
    expect(readFileSync(conf, 'utf8')).toBe(before);
    expect(reloads('alpha')).toBe(3); // first apply, failed reload, reload after restore
    const entries = journal(s.journal);
    expect(entries.some((e) => e.step === 'rollback' && e.result === 'rolled-back')).toBe(true);
  });

  it('a failing check keeps the old file, restores files written before it, and reloads nothing', async () => {
    await runRunbook(opts({ alpha: appState('alpha', { version: '1' }) }));
    const first = join(root, 'alpha/etc/app/first.conf');
    const conf = join(root, 'alpha/etc/app/app.sh');
    const desired = appState('alpha', { version: '1' });
    const file = desired[2]! as Extract<Resource, { kind: 'file' }>;
    desired.splice(2, 0, {
      kind: 'file',
      path: first,
      content: 'new\n',
      mode: 0o644,
      owner: 'root',
      group: 'root',
      notify: ['app'],
    });
    file.content = 'if then (\n';
    const s = await runRunbook(opts({ alpha: desired }));
    expect(s.ok).toBe(false);
    expect(s.error).toContain(`alpha: file ${conf}: bash -n rejected it (old file kept)`);
    expect(s.error).toMatch(/syntax error/);
    expect(readFileSync(conf, 'utf8')).toContain('VERSION=1');
    expect(existsSync(first)).toBe(false); // created earlier in this run → removed by the rollback
    expect(reloads('alpha')).toBe(1);
  });

  it('a failed health check rolls back too', async () => {
    const marker = join(root, 'healthy');
    await runRunbook(opts({ alpha: appState('alpha', { version: '1' }) }));
    const s = await runRunbook(
      opts(
        { alpha: appState('alpha', { version: '2', health: ['test', '-e', marker] }) },
        { healthTimeoutMs: 1000 },
      ),
    );
    expect(s.ok).toBe(false);
    expect(s.error).toContain(`alpha: unit app: health check test -e ${marker} failed (exit 1)`);
    expect(readFileSync(join(root, 'alpha/etc/app/app.sh'), 'utf8')).toContain('VERSION=1');
  });

  it('preflight: one unreachable host → nothing changed anywhere, error names the host', async () => {
    const port = await freePort();
    const ghost = new SshTransport(
      'ghost',
      { ...sshd.target, port },
      { ...sshd.options, connectTimeoutS: 3 },
    );
    const o = opts({ alpha: appState('alpha', { version: '1' }), ghost: [] });
    (o.transports as Map<string, Transport>).set('ghost', ghost);
    const s = await runRunbook(o);
    expect(s.ok).toBe(false);
    expect(s.exitCode).toBe(1);
    expect(s.error).toMatch(
      /^preflight failed, nothing was changed:\n {2}ghost: unreachable: ghost: ssh root@127\.0\.0\.1:\d+ failed: .*Connection refused/,
    );
    expect(s.hosts.ghost?.failed).toMatch(/unreachable/);
    expect(existsSync(join(root, 'alpha'))).toBe(false);
  });

  it('preflight: wrong OS or too little disk → refused with the reason', async () => {
    const s = await runRunbook(
      opts(
        { alpha: appState('alpha', { version: '1' }) },
        { preflight: { os: { id: 'debian', versionId: '11' }, minFreeMiB: 1e9 } },
      ),
    );
    expect(s.error).toContain('alpha: not debian 11: /etc/os-release says Debian GNU/Linux 12 (bookworm)');
    expect(s.error).toMatch(/alpha: low disk: \d+ MiB free on \/, need 1000000000 MiB/);
    expect(existsSync(join(root, 'alpha'))).toBe(false);
  });

  it('a second concurrent run on the same stack is refused', async () => {
    const desired = appState('alpha', { version: '1' });
    const unit = desired.find((r) => r.kind === 'unit')!;
    if (unit.kind === 'unit') unit.reloadCommand = ['sleep', '2'];
    const first = runRunbook(opts({ alpha: desired }));
    await new Promise((r) => setTimeout(r, 300));
    await expect(runRunbook(opts({ beta: appState('beta', { version: '1' }) }))).rejects.toThrow(
      /stack test is locked by configure \(pid \d+/,
    );
    expect((await first).ok).toBe(true);
    expect(existsSync(join(runsDir, 'test.lock'))).toBe(false);
  });

  it('shows nothing secret in --json summary even when a secret file fails its check', async () => {
    const desired = appState('alpha', { version: '1' });
    const tok = desired[3]! as Extract<Resource, { kind: 'file' }>;
    tok.check = { argv: ['sh', '-c', 'cat "$1"; exit 3', 'x', '{}'], name: 'token check' };
    const o = opts({ alpha: desired });
    const s = await runRunbook(o);
    expect(s.ok).toBe(false);
    const { plan: _p, ...summary } = s;
    const json = JSON.stringify(summary);
    expect(json).not.toContain(SECRET);
    expect(json).toContain(MASK);
    expect(readFileSync(s.journal, 'utf8')).not.toContain(SECRET);
    expect(o.reporter.events.join('\n')).not.toContain(SECRET);
  });

  it('observes 400 resources of a host in one round trip', async () => {
    const files: Resource[] = [];
    for (let i = 0; i < 400; i++) {
      const path = join(root, `f${i}.conf`);
      writeFileSync(path, `value ${i}\n`, { mode: 0o644 });
      files.push({ kind: 'file', path, content: `value ${i}\n`, mode: 0o644, owner: 'root', group: 'root' });
    }
    let calls = 0;
    const counting = {
      host: 'alpha',
      exec: (...a: Parameters<SshTransport['exec']>) => (calls++, alpha.exec(...a)),
    };
    const t0 = Date.now();
    const observed = await observeHost(counting as unknown as Transport, files, join(root, 'state'));
    console.log(`observe 400 files: ${Date.now() - t0} ms`);
    expect(calls).toBe(1);
    expect(planChangeCount(plan({ alpha: files }, { alpha: observed }))).toBe(0);
    writeFileSync(join(root, 'f123.conf'), 'changed\n');
    const again = plan({ alpha: files }, { alpha: await observeHost(alpha, files, join(root, 'state')) });
    expect(again.hosts.alpha!.map((c) => `${c.kind} ${c.id}`)).toEqual([
      `update file ${join(root, 'f123.conf')}`,
    ]);
  });
});
