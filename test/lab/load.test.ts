// `wharf load` (the real binary) against a provisioned lab: uploads through the entry point are
// acknowledged and the checker finds every one on main and on sub; when replication is stopped the
// checker sees the files missing on sub and the command exits 1.
// GIVEN one lab for the file (stack "loadtest", 10.97.x), provisioned (install → configure → verify).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labDown, labStatus, labUp, type LabStatus } from '../../src/lab/lab.ts';
import { provisionLab } from '../../src/lab/provision.ts';
import { REPO, onNode, testTopology } from './helpers.ts';

const { file, t } = testTopology('loadtest', 97);
let s: LabStatus;
const dir = mkdtempSync(join(tmpdir(), 'wharf-loadtest-'));

beforeAll(async () => {
  const log = (l: string) => process.stderr.write(`[loadtest] ${l}\n`);
  await labUp(t, { topologyFile: file, log });
  await provisionLab(t, log);
  s = await labStatus(t);
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  // WHARF_KEEP_LAB=1 keeps the lab for the next run (labUp is idempotent), lsyncd back on
  if (process.env.WHARF_KEEP_LAB) {
    if (s) await onNode(s.sshConfig, 'sftp-main', 'systemctl start lsyncd');
  } else await labDown(t.name);
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
