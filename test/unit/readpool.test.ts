// The read pool (port 2221): read-only sshd listener on the readers, main's heartbeat, each
// replica's read-lag agent. GIVEN the default stack WHEN rendered THEN who gets what; the lag agent
// script itself is run by /bin/sh against a stamp and keys file in a temp folder.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadTopology, topologyFromObject } from '../../src/topology/load.ts';
import { labInventory } from '../../src/topology/inventory.ts';
import { readPoolNodes, replicaReaders } from '../../src/topology/model.ts';
import { renderStack } from '../../src/render/index.ts';
import type { NodeRender } from '../../src/render/types.ts';
import {
  HEARTBEAT_SCRIPT,
  LAG_AGENT_SCRIPT,
  heartbeatStamp,
  renderLagAgentScript,
} from '../../src/render/readpool.ts';
import { excludedDirs } from '../../src/failover/remote.ts';

const t = loadTopology('configs/stack.yaml');
const inv = labInventory(t);
const stack = renderStack(t, inv);
const paths = (r: NodeRender) => r.files.map((f) => f.path);
const content = (r: NodeRender, path: string) => r.files.find((f) => f.path === path)!.content;

describe('read pool: who serves reads', () => {
  it('main and sub are the readers; backup (empty chroot) is not; only sub is a lag-checked replica', () => {
    expect(readPoolNodes(t)).toEqual(['sftp-main', 'sftp-sub']);
    expect(replicaReaders(t)).toEqual(['sftp-sub']);
  });

  it('the readers listen on the read-only port, with internal-sftp -R before the general SFTP block', () => {
    for (const n of ['sftp-main', 'sftp-sub']) {
      const cfg = content(stack[n]!, '/etc/ssh/sshd_config');
      const lan = inv.hosts[n]!.addresses.lan!;
      expect(cfg).toContain(`ListenAddress ${lan}:2221\n`);
      const ro = cfg.indexOf('Match LocalPort 2221 Group sftp_users');
      const others = cfg.indexOf('Match LocalPort 2221\n');
      const general = cfg.indexOf('Match Group sftp_users');
      expect(ro).toBeGreaterThan(0);
      // sshd keeps the first value a keyword gets from the Match blocks a connection satisfies
      expect(ro).toBeLessThan(others);
      expect(others).toBeLessThan(general);
      const block = cfg.slice(ro, others);
      expect(block).toContain('ForceCommand internal-sftp -R\n');
      expect(block).toContain('ChrootDirectory /srv/sftp/%u\n');
      expect(block).toContain('PubkeyAuthentication yes\n');
      expect(cfg.slice(others, general)).toMatch(
        /PubkeyAuthentication no\n[\s\S]*PasswordAuthentication no\n/,
      );
      expect(cfg.slice(general)).toContain('ForceCommand internal-sftp -l INFO\n');
    }
    const backup = content(stack['sftp-backup']!, '/etc/ssh/sshd_config');
    expect(backup).not.toContain('2221');
  });

  it('main writes the heartbeat; sub answers the lag agent on its lan address; backup neither', () => {
    expect(paths(stack['sftp-main']!)).toContain(HEARTBEAT_SCRIPT);
    expect(paths(stack['sftp-main']!)).not.toContain(LAG_AGENT_SCRIPT);
    expect(paths(stack['sftp-sub']!)).toContain(LAG_AGENT_SCRIPT);
    expect(paths(stack['sftp-sub']!)).not.toContain(HEARTBEAT_SCRIPT);
    for (const p of [HEARTBEAT_SCRIPT, LAG_AGENT_SCRIPT])
      expect(paths(stack['sftp-backup']!)).not.toContain(p);
    const hb = content(stack['sftp-main']!, HEARTBEAT_SCRIPT);
    expect(hb).toContain('STAMP=/srv/sftp/.wharf-heartbeat/stamp\n');
    expect(hb).toContain('sleep 5\n'); // configs/stack.yaml: readLag.heartbeat 5s
    const sock = content(stack['sftp-sub']!, '/etc/systemd/system/wharf-read-lag-agent.socket');
    expect(sock).toMatch(/^ListenStream=10\.88\.3\.12:9708$/m);
    expect(stack['sftp-sub']!.units).toContainEqual({
      name: 'wharf-read-lag-agent.socket',
      enable: true,
      apply: 'restart',
    });
  });

  it("the heartbeat lives outside every user's chroot and out of failback's comparison", () => {
    expect(heartbeatStamp(t).startsWith(`${t.sftp.chrootBase}/.`)).toBe(true);
    expect(t.sftp.users.every((u) => !heartbeatStamp(t).startsWith(`${t.sftp.chrootBase}/${u.name}/`))).toBe(
      true,
    );
    expect(excludedDirs(t)).toContain('.wharf-heartbeat');
  });

  it('no read-only backend: no read listener, no heartbeat (unless monitoring measures the lag), no agent', () => {
    const d = parse(readFileSync('configs/stack.yaml', 'utf8')) as Record<string, unknown>;
    d.monitoring = { ...(d.monitoring as object), enabled: false };
    d.haproxy = {
      ...(d.haproxy as object),
      frontends: { write: { port: 2222, backend: 'write' } },
      backends: { write: { balance: 'first', servers: ['sftp-main', { node: 'sftp-sub', backup: true }] } },
    };
    const t2 = topologyFromObject(d, 'x.yaml');
    const s2 = renderStack(t2, labInventory(t2));
    expect(content(s2['sftp-main']!, '/etc/ssh/sshd_config')).not.toContain('2221');
    expect(paths(s2['sftp-main']!)).not.toContain(HEARTBEAT_SCRIPT);
    expect(paths(s2['sftp-sub']!)).not.toContain(LAG_AGENT_SCRIPT);
    d.monitoring = { enabled: true };
    const t3 = topologyFromObject(d, 'x.yaml');
    const s3 = renderStack(t3, labInventory(t3));
    expect(paths(s3['sftp-main']!)).toContain(HEARTBEAT_SCRIPT);
    expect(paths(s3['sftp-sub']!)).not.toContain(LAG_AGENT_SCRIPT);
  });
});

describe('read-lag agent script (run by /bin/sh)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-lag-agent-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const stamp = join(dir, 'stamp');
  const keys = join(dir, 'authorized_keys');
  // the rendered script with its two paths pointed into the temp folder
  const script = renderLagAgentScript(t, inv, 'sftp-sub')
    .content.replace(/^STAMP=.*$/m, `STAMP='${stamp}'`)
    .replace(/^KEYS=.*$/m, `KEYS='${keys}'`);
  const run = () => spawnSync('sh', ['-c', script], { encoding: 'utf8' }).stdout.trim();
  const now = () => Math.floor(Date.now() / 1000);

  it('fresh heartbeat → up, with the lag as the description', () => {
    writeFileSync(keys, 'from="10.88.3.11" ssh-ed25519 AAAA sync\n');
    writeFileSync(stamp, `${now() - 3}\n`);
    expect(run()).toMatch(/^up #behind sftp-main by [34]s$/);
  });

  it('older than readLag.max (15s) → down', () => {
    writeFileSync(stamp, `${now() - 42}\n`);
    expect(run()).toMatch(/^down #behind sftp-main by 4[23]s \(max 15s\)$/);
  });

  it('no heartbeat (or garbage) → down', () => {
    rmSync(stamp, { force: true });
    expect(run()).toBe(`down #no heartbeat from sftp-main in ${stamp}`);
    writeFileSync(stamp, 'not a number\n');
    expect(run()).toMatch(/^down #no heartbeat/);
  });

  it('failed over to sub (main fenced out of the replication account) → up whatever the stamp', () => {
    writeFileSync(stamp, `${now() - 3600}\n`);
    writeFileSync(keys, 'from="!10.88.3.11,10.88.3.11" ssh-ed25519 AAAA sync\n');
    expect(run()).toBe('up #failed over to sftp-sub: sftp-main fenced out, nothing is fresher');
    // another address fenced is not main
    writeFileSync(keys, 'from="!10.88.3.111,10.88.3.11" ssh-ed25519 AAAA sync\n');
    expect(run()).toMatch(/^down #behind/);
  });
});
