// Commit-confirmed units in the runbook engine, on this machine (LocalTransport): a "box" script
// with the nft-confirm contract (apply arms a detached revert N s away, confirm cancels it, status
// prints `state armedAt timeout doneAt`). The engine must confirm only when the paths work, and
// otherwise leave the box alone, wait for its own revert and fail saying so; plus the pure parts.
import { afterAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalTransport } from '../../src/transport/local.ts';
import { runRunbook } from '../../src/runbook/run.ts';
import {
  brokenPaths,
  parseConfirmStatus,
  type ConfirmHooks,
  type PathCheck,
} from '../../src/runbook/apply.ts';
import type { DesiredState } from '../../src/runbook/resources.ts';
import { resourceUndo } from '../../src/runbook/resource-runbook.ts';
import { nftConfirmSpec } from '../../src/stack/desired.ts';
import { bannerProbeCommand, portsWithoutBanner } from '../../src/stack/confirm.ts';
import { getRunbook, parseRunbookOptions } from '../../src/runbook/registry.ts';
import { InputError } from '../../src/core/errors.ts';
import '../../scripts/index.ts';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A box with nft-confirm's contract; the "ruleset" is a copy of conf in $D/running. */
function box(): { dir: string; script: string; conf: string } {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-cc-'));
  dirs.push(dir);
  const script = join(dir, 'box.sh');
  const conf = join(dir, 'rules.conf');
  writeFileSync(conf, 'old\n');
  writeFileSync(join(dir, 'running'), 'old\n');
  writeFileSync(
    script,
    `#!/bin/sh
D=${dir}
now() { date +%s.%N | cut -c1-14; }
case "$1" in
apply) cp "$D/running" "$D/previous"; echo "armed $(now) $2 0" > "$D/state"
  setsid sh -c "sleep $2; $0 revert" </dev/null >/dev/null 2>&1 &
  cp ${conf} "$D/running" ;;
confirm) read -r s at to x < "$D/state"; [ "$s" = armed ] || exit 3; echo "confirmed $at $to $(now)" > "$D/state" ;;
revert) read -r s at to x < "$D/state"; [ "$s" = armed ] || exit 0; cp "$D/previous" "$D/running"; echo "reverted $at $to $(now)" > "$D/state" ;;
restore) cp ${conf} "$D/running"; echo "restored 0 0 $(now)" > "$D/state" ;;
status) cat "$D/state" ;;
esac
`,
  );
  chmodSync(script, 0o755);
  return { dir, script, conf };
}

function desired(b: ReturnType<typeof box>, timeoutMs: number): DesiredState {
  return {
    here: [
      {
        kind: 'file',
        path: b.conf,
        content: 'new\n',
        mode: 0o644,
        owner: 'root',
        group: 'root',
        notify: ['fw'],
      },
      {
        kind: 'unit',
        name: 'fw',
        systemd: false,
        apply: 'reload',
        reloadCommand: ['false'],
        confirm: {
          timeoutMs,
          apply: [b.script, 'apply', String(timeoutMs / 1000)],
          confirm: [b.script, 'confirm'],
          status: [b.script, 'status'],
          restore: [b.script, 'restore'],
        },
      },
    ],
  };
}

const hooks = (t: LocalTransport, paths: () => PathCheck[]): ConfirmHooks => ({
  probe: async () => paths(),
  freshExec: (_h, cmd, timeoutMs) => t.exec(cmd, { timeoutMs }),
});
const run = (b: ReturnType<typeof box>, confirm: ConfirmHooks, timeoutMs = 2000) => {
  const t = new LocalTransport('here');
  return runRunbook({
    stack: `cc-${Math.random().toString(36).slice(2, 8)}`,
    runbook: 'configure',
    desired: desired(b, timeoutMs),
    transports: new Map([['here', t]]),
    preflight: false,
    runsDir: join(b.dir, 'runs'),
    stateDir: join(b.dir, 'engine-state'),
    confirm,
    reporter: { step() {}, done() {}, line() {}, close() {} },
  });
};
const read = (b: ReturnType<typeof box>, f: string) => readFileSync(join(b.dir, f), 'utf8');

describe('commit-confirmed units (engine, on this machine)', { timeout: 30_000 }, () => {
  it('paths ok → confirmed: the change stays, no revert later', async () => {
    const b = box();
    const t = new LocalTransport('here');
    const s = await run(
      b,
      hooks(t, () => [{ name: 'mgmt', ok: true, detail: 'ok', required: true }]),
    );
    expect(s.ok).toBe(true);
    expect(read(b, 'state')).toMatch(/^confirmed /);
    await new Promise((r) => setTimeout(r, 2500));
    expect(read(b, 'running')).toBe('new\n');
    expect(read(b, 'state')).toMatch(/^confirmed /);
  });

  it('management cut → not confirmed: the box reverts by itself, the run fails saying so, the file is restored', async () => {
    const b = box();
    const t = new LocalTransport('here');
    let n = 0;
    const s = await run(
      b,
      hooks(t, () => [{ name: 'mgmt', ok: n++ === 0, detail: n === 1 ? 'ok' : 'timed out', required: true }]),
    );
    expect(s.ok).toBe(false);
    expect(s.exitCode).toBe(1);
    expect(s.error).toMatch(
      /change not confirmed \(mgmt: timed out\); the host reverted it by itself [\d.]+ s after it was armed \(timeout 2 s\)/,
    );
    expect(read(b, 'state')).toMatch(/^reverted /); // the engine sent nothing: no confirm, no restore
    expect(read(b, 'running')).toBe('old\n');
    expect(readFileSync(b.conf, 'utf8')).toBe('old\n'); // the engine's rollback put the file back
    const st = parseConfirmStatus(read(b, 'state'))!;
    expect(st.doneAt - st.armedAt).toBeGreaterThanOrEqual(1.9);
    expect(st.doneAt - st.armedAt).toBeLessThan(3.5);
  });

  it('a path that did not work before the change does not block it (first provisioning)', async () => {
    const b = box();
    const t = new LocalTransport('here');
    const s = await run(
      b,
      hooks(t, () => [
        { name: 'mgmt', ok: true, detail: 'ok', required: true },
        { name: 'sftp', ok: false, detail: 'no banner' },
      ]),
    );
    expect(s.ok).toBe(true);
    expect(read(b, 'state')).toMatch(/^confirmed /);
  });
});

describe('pure parts', () => {
  it('brokenPaths: required ones, and those that worked before', () => {
    const before: PathCheck[] = [
      { name: 'a', ok: true, detail: '' },
      { name: 'b', ok: false, detail: '' },
    ];
    const now: PathCheck[] = [
      { name: 'a', ok: false, detail: '' },
      { name: 'b', ok: false, detail: '' },
      { name: 'm', ok: false, detail: '', required: true },
    ];
    expect(brokenPaths(now, before).map((c) => c.name)).toEqual(['a', 'm']);
  });
  it('status lines', () => {
    expect(parseConfirmStatus('reverted 1764490000.12 6 1764490006.20\n')).toEqual({
      state: 'reverted',
      armedAt: 1764490000.12,
      timeoutS: 6,
      doneAt: 1764490006.2,
    });
    expect(parseConfirmStatus('none 0 0 0')?.state).toBe('none');
    expect(parseConfirmStatus('armed 1764490000.12 8 0 0')).toMatchObject({ state: 'armed', timeoutS: 8 });
    expect(parseConfirmStatus('garbage')).toBeUndefined();
  });
  it('SFTP banner probe from the wan client', () => {
    expect(bannerProbeCommand('10.88.0.2', [22, 2222])).toContain('/dev/tcp/10.88.0.2/');
    expect(portsWithoutBanner('22 SSH-2.0-\n2222 FAIL\n', [22, 2222, 2221])).toEqual([2222, 2221]);
  });
  it('the nftables unit: nft-confirm commands, undo says who reverts', () => {
    const spec = nftConfirmSpec(60_000);
    expect(spec.apply).toEqual(['/usr/local/lib/wharf/nft-confirm', 'apply', '60']);
    const undo = resourceUndo({
      host: 'firewall',
      id: 'unit nftables',
      kind: 'reload',
      why: 'notified',
      resource: { kind: 'unit', name: 'nftables', confirm: spec },
    } as Parameters<typeof resourceUndo>[0]);
    expect(undo?.action).toMatch(/the host reverts by itself after 60 s/);
    expect(undo?.commands).toEqual(['/usr/local/lib/wharf/nft-confirm restore']);
  });
  it('configure --confirm-timeout is validated, naming the flag', () => {
    const rb = getRunbook('configure');
    expect(parseRunbookOptions(rb, { confirmTimeout: '30s' })).toEqual({ confirmTimeout: 30_000 });
    expect(parseRunbookOptions(rb, {})).toEqual({ confirmTimeout: 60_000 });
    for (const bad of ['2s', '2h', 'soon'])
      expect(() => parseRunbookOptions(rb, { confirmTimeout: bad })).toThrow(InputError);
    try {
      parseRunbookOptions(rb, { confirmTimeout: '2s' });
    } catch (e) {
      expect((e as InputError).message).toBe(
        '--confirm-timeout: expected a window of 5s..1h, like 30s or 2m, got "2s"',
      );
    }
  });
});
