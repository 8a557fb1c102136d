// `lab up` as a pure diff: observed engine state + desired lab → typed actions with reasons.
// And the in-memory tar the lab uploads into nodes (checked by the real tar). No Docker needed.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeAction, diffLab, type DesiredLab, type ObservedLab } from '../../src/lab/diff.ts';
import { labPlan } from '../../src/lab/plan.ts';
import { filesToEntries, tarArchive } from '../../src/lab/tar.ts';
import { loadTopology } from '../../src/topology/load.ts';

const plan = labPlan(loadTopology('configs/stack.yaml'));
const desired: DesiredLab = {
  networks: plan.networks,
  nodes: plan.nodes.map((node) => ({ node, spec: `spec-${node.name}` })),
  volume: plan.volume,
};

/** What the engine has when the lab is fully up as desired. */
function upToDate(): ObservedLab {
  return {
    containers: plan.nodes.map((n) => ({
      name: n.container,
      node: n.name,
      running: true,
      spec: `spec-${n.name}`,
    })),
    networks: [
      ...plan.networks.map((n) => ({
        name: n.docker,
        subnets: [n.subnet],
        lab: 'seed',
        masquerade: n.masquerade,
      })),
      { name: 'bridge', subnets: ['172.17.0.0/16'], lab: null, masquerade: true },
    ],
    volumes: [plan.volume],
  };
}

const kinds = (d: ReturnType<typeof diffLab>) => d.actions.map((a) => a.kind);

describe('diffLab', () => {
  it('GIVEN nothing WHEN diffed THEN networks, the volume and every node are created, in that order', () => {
    const d = diffLab({ containers: [], networks: [], volumes: [] }, desired);
    expect(kinds(d)).toEqual([
      ...plan.networks.map(() => 'create-network'),
      'create-volume',
      ...plan.nodes.map(() => 'create-node'),
    ]);
    expect(d.kept).toEqual([]);
    expect(d.actions.every((a) => a.reason === 'missing' || a.reason.startsWith('missing'))).toBe(true);
    expect(describeAction(d.actions[0]!)).toBe('create network wharf-seed-net-wan (10.88.0.0/24): missing');
  });

  it('GIVEN a dmz network without the reserved floating address WHEN diffed THEN it is replaced, its containers with it', () => {
    const seen = upToDate();
    const dmz = plan.networks.find((n) => n.name === 'dmz')!;
    seen.networks = seen.networks.map((n) => (n.name === dmz.docker ? { ...n, reserved: {} } : n));
    const d = diffLab(seen, desired);
    expect(d.actions.find((a) => a.kind === 'remove-network')).toMatchObject({
      network: dmz.docker,
      reason: `reserved addresses none → wharf-vip=${dmz.reserved['wharf-vip']}`,
    });
    // observed with it: nothing to do
    const ok = upToDate();
    ok.networks = ok.networks.map((n) =>
      n.name === dmz.docker ? { ...n, reserved: { ...dmz.reserved } } : n,
    );
    expect(diffLab(ok, desired).actions).toEqual([]);
  });

  it('GIVEN the lab as desired WHEN diffed THEN nothing to do and every container kept', () => {
    const d = diffLab(upToDate(), desired);
    expect(d.actions).toEqual([]);
    expect(d.kept).toHaveLength(plan.nodes.length);
  });

  it('a stopped container, one with another spec and one not in the topology are removed, each with its reason', () => {
    const have = upToDate();
    have.containers[0]!.running = false;
    have.containers[1]!.spec = 'old';
    have.containers.push({ name: 'wharf-seed-gone', node: 'gone', running: true, spec: 'x' });
    const d = diffLab(have, desired);
    const c0 = plan.nodes[0]!;
    const c1 = plan.nodes[1]!;
    expect(d.actions).toEqual([
      {
        kind: 'remove-container',
        container: c0.container,
        reason: 'not running (stopped, or half-created by an interrupted run)',
      },
      {
        kind: 'remove-container',
        container: c1.container,
        reason: `spec differs (old → spec-${c1.name}): topology, image or files changed`,
      },
      { kind: 'remove-container', container: 'wharf-seed-gone', reason: 'not in the topology' },
      {
        kind: 'create-node',
        node: c0,
        spec: `spec-${c0.name}`,
        reason: 'recreated: not running (stopped, or half-created by an interrupted run)',
      },
      {
        kind: 'create-node',
        node: c1,
        spec: `spec-${c1.name}`,
        reason: `recreated: spec differs (old → spec-${c1.name}): topology, image or files changed`,
      },
    ]);
    expect(d.kept).toHaveLength(plan.nodes.length - 2);
  });

  it('a network whose subnet changed is replaced, and every container goes and comes back with it', () => {
    const have = upToDate();
    const lan = have.networks.find((n) => n.name === 'wharf-seed-net-lan')!;
    lan.subnets = ['10.55.3.0/24'];
    const d = diffLab(have, desired);
    const removes = d.actions.filter((a) => a.kind === 'remove-container');
    expect(removes).toHaveLength(plan.nodes.length);
    expect(removes[0]!.reason).toBe(
      'network wharf-seed-net-lan is replaced (subnet 10.55.3.0/24 → 10.88.3.0/24)',
    );
    const nets = d.actions.filter((a) => a.kind === 'remove-network' || a.kind === 'create-network');
    expect(nets.map(describeAction)).toEqual([
      'remove network wharf-seed-net-lan: subnet 10.55.3.0/24 → 10.88.3.0/24',
      'create network wharf-seed-net-lan (10.88.3.0/24): replaces the old one (subnet 10.55.3.0/24 → 10.88.3.0/24)',
    ]);
    // order: containers out before the network goes, nodes created after it is back
    const idx = (k: string) => kinds(d).indexOf(k as never);
    expect(kinds(d).lastIndexOf('remove-container')).toBeLessThan(idx('remove-network'));
    expect(idx('create-network')).toBeLessThan(idx('create-node'));
    expect(d.kept).toEqual([]);
  });

  it('a chain network that masquerades (made by hand or by an old wharf) is replaced', () => {
    const have = upToDate();
    have.networks.find((n) => n.name === 'wharf-seed-net-dmz')!.masquerade = true;
    const d = diffLab(have, desired);
    expect(d.actions.find((a) => a.kind === 'remove-network')).toEqual({
      kind: 'remove-network',
      network: 'wharf-seed-net-dmz',
      reason: 'masquerade true → false',
    });
  });

  it('a missing volume is created; containers stay', () => {
    const have = upToDate();
    have.volumes = [];
    const d = diffLab(have, desired);
    expect(d.actions).toEqual([
      { kind: 'create-volume', volume: 'wharf-seed-apt', reason: 'missing (shared apt pool)' },
    ]);
  });
});

describe('tarArchive', () => {
  it('is read back by tar(1) with paths, modes, root ownership, /root/.ssh 0700 and symlinks', () => {
    const long = `/etc/${'d'.repeat(60)}/${'e'.repeat(60)}/file.conf`;
    const tar = tarArchive(
      filesToEntries(
        [
          { path: '/root/.ssh/authorized_keys', content: 'ssh-ed25519 AAAA k\n', mode: 0o600 },
          { path: '/etc/nftables.conf', content: Buffer.from('#!/usr/sbin/nft -f\n'), mode: 0o755 },
          { path: long, content: 'x'.repeat(1000), mode: 0o644 },
        ],
        [
          {
            path: '/etc/systemd/system/multi-user.target.wants/a.service',
            target: '/etc/systemd/system/a.service',
          },
        ],
      ),
    );
    expect(tar.length % 512).toBe(0);
    const dir = mkdtempSync(join(tmpdir(), 'wharf-tar-'));
    writeFileSync(join(dir, 'a.tar'), tar);
    const listing = execFileSync('tar', ['-tvf', join(dir, 'a.tar')], { encoding: 'utf8' });
    expect(listing).toMatch(/^drwx------ root\/root +0 .* root\/\.ssh\/$/m);
    // no entry for other parents: the engine keeps an existing directory's mode (/tmp 1777)
    expect(listing).not.toMatch(/ etc\/$/m);
    expect(listing).toMatch(/^-rw------- root\/root +19 .* root\/\.ssh\/authorized_keys$/m);
    execFileSync('tar', ['-xf', join(dir, 'a.tar'), '-C', dir]);
    expect(readFileSync(join(dir, 'root/.ssh/authorized_keys'), 'utf8')).toBe('ssh-ed25519 AAAA k\n');
    expect(statSync(join(dir, 'etc/nftables.conf')).mode & 0o777).toBe(0o755);
    expect(readFileSync(join(dir, long), 'utf8')).toBe('x'.repeat(1000));
    expect(readlinkSync(join(dir, 'etc/systemd/system/multi-user.target.wants/a.service'))).toBe(
      '/etc/systemd/system/a.service',
    );
  });

  it('refuses a path that leaves the archive root', () => {
    expect(() => tarArchive([{ path: '../etc/passwd', type: 'file', mode: 0o644, content: '' }])).toThrow(
      'tar: path must be relative and stay inside: ../etc/passwd',
    );
  });
});
