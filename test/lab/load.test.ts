// `wharf load` (the real binary) against a provisioned lab: uploads through the entry point are
// acknowledged and the checker finds every one on main and on sub; when replication is stopped the
// checker sees the files missing on sub and the command exits 1.
// GIVEN the shared scenario lab (scenarios/lab.ts: WHARF_SCENARIO_STACK, else stack "scen",
// 10.96.x), provisioned (install → configure → verify) once by the first lab file that needs it and
// reset to the known state before each test here; it comes down after every lab file
// (test/lab/global-setup.ts), never here.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { LabStatus } from '../../src/lab/lab.ts';
import {
  ensureScenarioLab,
  resetScenarioLab,
  scenarioTopology,
  type ScenarioLab,
} from '../../scenarios/lab.ts';
import { REPO, onNode } from './helpers.ts';

const { file } = scenarioTopology();
let lab: ScenarioLab;
let s: LabStatus;
const dir = mkdtempSync(join(tmpdir(), 'wharf-loadtest-'));

let fresh = false;
beforeAll(async () => {
  lab = await ensureScenarioLab((l) => process.stderr.write(`[scenario lab] ${l}\n`));
  s = lab.status;
  fresh = true;
});
// each test starts from the known state (lsyncd running, upload folders, notice spool and backup
// snapshots empty), whatever the one before left
beforeEach(async () => {
  if (!fresh) await resetScenarioLab(lab);
  fresh = false;
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  if (lab) await lab.close();
});

interface LoadJson {
  ok: boolean;
  acknowledged: number;
  throughputMBs: number;
  verdict: { nodes: { node: string; ok: number; lost: number; corrupt: number; lostPaths: string[] }[] };
}

const load = (...args: string[]) => {
  const r = spawnSync(
    process.execPath,
    [join(REPO, 'bin/wharf.mjs'), 'load', '-c', file, '--json', ...args],
    {
      encoding: 'utf8',
      timeout: 300_000,
    },
  );
  return { code: r.status, doc: JSON.parse(r.stdout) as LoadJson, stderr: r.stderr };
};

describe('wharf load on the lab', () => {
  it('4 clients through the entry point: acks > 0, none lost on main or sub, ledger written', () => {
    const ledger = join(dir, 'ledger.jsonl');
    const r = load('--clients', '4', '--files', '6', '--size', '256KiB', '--ledger', ledger);
    expect(r.code, r.stderr).toBe(0);
    expect(r.doc.ok).toBe(true);
    expect(r.doc.acknowledged).toBe(24);
    expect(r.doc.throughputMBs).toBeGreaterThan(0);
    const byNode = Object.fromEntries(r.doc.verdict.nodes.map((n) => [n.node, n]));
    for (const node of ['sftp-main', 'sftp-sub']) {
      expect(byNode[node], node).toMatchObject({ ok: 24, lost: 0, corrupt: 0 });
    }
    const lines = readFileSync(ledger, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(24);
    expect(JSON.parse(lines[0]!)).toMatchObject({
      size: 256 * 1024,
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
  });

  // Few files: every upload also queues a notice (webhook + SMTP), delivered at ~2–3 per second here.
  it('a time-bounded run straight to main, then checked on backup too', () => {
    const r = load(
      '--clients',
      '2',
      '--files',
      '4',
      '--duration',
      '20s',
      '--size',
      '16KiB',
      '--target',
      'main',
      '--backup',
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.doc.acknowledged).toBeGreaterThan(0);
    expect(r.doc.verdict.nodes.map((n) => [n.node, n.lost, n.corrupt])).toEqual([
      ['sftp-main', 0, 0],
      ['sftp-sub', 0, 0],
      ['sftp-backup (latest snapshot)', 0, 0],
    ]);
  });

  it('replication stopped: the files are lost on sub, the command says so and exits 1', async () => {
    expect((await onNode(s.sshConfig, 'sftp-main', 'systemctl stop lsyncd')).code).toBe(0);
    try {
      const r = load('--clients', '2', '--files', '3', '--size', '4KiB', '--replication-timeout', '3s');
      expect(r.code).toBe(1);
      expect(r.doc.ok).toBe(false);
      const [main, sub] = r.doc.verdict.nodes;
      expect(main).toMatchObject({ node: 'sftp-main', ok: 6, lost: 0 });
      expect(sub).toMatchObject({ node: 'sftp-sub', ok: 0, lost: 6 });
    } finally {
      await onNode(s.sshConfig, 'sftp-main', 'systemctl start lsyncd');
    }
  });
});
