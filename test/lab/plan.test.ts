// The lab plan is pure: addresses, capabilities, docker names and the generated ssh files follow the
// topology. `lab graph` must parse with Mermaid itself. No containers needed.
import { createRequire } from 'node:module';
import { beforeAll, describe, expect, it } from 'vitest';
import { labGraph, labPlan, sshConfigText, knownHostsText, type LabPorts } from '../../src/lab/plan.ts';
import { loadTopology } from '../../src/topology/load.ts';
import { testTopology } from './helpers.ts';

type Jsdom = new (html: string, options?: object) => { window: Window & typeof globalThis };
const { JSDOM } = createRequire(import.meta.url)('jsdom') as { JSDOM: Jsdom };
type Mermaid = { parse(text: string): Promise<unknown>; initialize(c: object): void };
let mermaid: Mermaid;

beforeAll(async () => {
  const dom = new JSDOM('<!doctype html><html><body></body></html>', { pretendToBeVisual: true });
  Object.assign(globalThis, { window: dom.window, document: dom.window.document });
  mermaid = (await import('mermaid')).default as unknown as Mermaid;
  mermaid.initialize({ startOnLoad: false });
}, 30_000);

const ports: LabPorts = {
  bastion: 40100,
  wanClient: 40101,
  entry: { sftp: 40102, write: 40103, read: 40104 },
};
const names = { stateDir: '/s', identity: '/s/id', sshConfig: '/s/ssh_config', knownHosts: '/s/known_hosts' };

describe('lab plan', () => {
  it('derives networks, addresses and capabilities from the topology', () => {
    const plan = labPlan(loadTopology('configs/stack.yaml'));
    const node = (n: string) => plan.nodes.find((x) => x.name === n)!;
    expect(plan.networks.map((n) => [n.name, n.docker, n.masquerade])).toEqual([
      ['wan', 'wharf-seed-net-wan', false],
      ['transit', 'wharf-seed-net-transit', false],
      ['dmz', 'wharf-seed-net-dmz', false],
      ['lan', 'wharf-seed-net-lan', false],
      ['mgmt', 'wharf-seed-mgmt', true],
    ]);
    // docker picks the default gateway by network name: mgmt must sort before every chain network
    const sorted = plan.networks.map((n) => n.docker).sort();
    expect(sorted[0]).toBe('wharf-seed-mgmt');
    expect(node('router')).toMatchObject({
      networks: ['mgmt', 'wan', 'transit'],
      addresses: { wan: '10.88.0.2', transit: '10.88.1.2', mgmt: '10.88.9.2' },
      capAdd: ['SYS_ADMIN', 'NET_ADMIN'],
      sysctls: { 'net.ipv4.ip_forward': '1' },
    });
    expect(node('sftp-main')).toMatchObject({ capAdd: ['SYS_ADMIN'], sysctls: {}, role: 'main' });
    // keepalived in a container: VRRP's raw socket, HAProxy binding the floating address it may
    // not hold yet; never --privileged
    for (const n of ['haproxy-1', 'haproxy-2'])
      expect(node(n)).toMatchObject({
        capAdd: ['SYS_ADMIN', 'NET_ADMIN', 'NET_RAW'],
        sysctls: { 'net.ipv4.ip_nonlocal_bind': '1' },
      });
    expect(plan.networks.find((n) => n.name === 'dmz')!.reserved).toEqual({ 'wharf-vip': '10.88.2.254' });
    expect(plan.networks.find((n) => n.name === 'lan')!.reserved).toEqual({});
    expect(node('wan-client').networks).toEqual(['wan']);
    expect(node('bastion')).toMatchObject({ networks: ['mgmt'], addresses: { mgmt: '10.88.9.254' } });
    expect(plan.routerWan).toBe('10.88.0.2');
    expect(plan.frontends).toEqual({ sftp: 22, write: 2222, read: 2221 });
  });

  it('follows changed subnets', () => {
    const { t } = testTopology('moved', 77);
    const plan = labPlan(t);
    expect(plan.nodes.find((n) => n.name === 'haproxy-2')!.addresses).toEqual({
      mgmt: '10.77.9.5',
      dmz: '10.77.2.5',
      lan: '10.77.3.5',
    });
    // the pair's floating address moves with the dmz subnet, reserved from Docker's IPAM there
    expect(plan.networks.find((n) => n.name === 'dmz')!.reserved).toEqual({ 'wharf-vip': '10.77.2.254' });
    expect(plan.networks.find((n) => n.name === 'lan')).toMatchObject({
      subnet: '10.77.3.0/24',
      gateway: '10.77.3.1',
    });
  });

  it('writes one Host per node; nodes behind the bastion use ProxyJump and strict checking', () => {
    const plan = labPlan(loadTopology('configs/stack.yaml'));
    const text = sshConfigText(plan, ports, names);
    const hosts = [...text.matchAll(/^Host (\S+)$/gm)].map((m) => m[1]);
    expect(hosts.sort()).toEqual(
      [
        'bastion',
        'firewall',
        'haproxy-1',
        'haproxy-2',
        'monitor',
        'notify-sink',
        'router',
        'sftp-backup',
        'sftp-main',
        'sftp-sub',
        'wan-client',
      ].sort(),
    );
    const block = (h: string) => text.split(/\n(?=Host )/).find((b) => b.startsWith(`Host ${h}\n`))!;
    expect(block('sftp-main')).toContain('HostName 10.88.9.11');
    expect(block('sftp-main')).toContain('ProxyJump bastion');
    expect(block('bastion')).toContain('HostName 127.0.0.1\n  Port 40100');
    expect(block('bastion')).not.toContain('ProxyJump');
    expect(block('wan-client')).toContain('Port 40101');
    expect(text.match(/StrictHostKeyChecking yes/g)!.length).toBe(11);
    expect(text).toContain('ControlPath /tmp/wharf-%C');
    const keys = Object.fromEntries(plan.nodes.map((n) => [n.name, `ssh-ed25519 AAAA${n.name} c`]));
    const kh = knownHostsText(plan, ports, keys);
    expect(kh).toContain('[127.0.0.1]:40100 ssh-ed25519 AAAAbastion');
    expect(kh).toContain('10.88.9.11 ssh-ed25519 AAAAsftp-main');
  });

  it('`lab graph` is a Mermaid flowchart that Mermaid parses', async () => {
    const text = labGraph(labPlan(loadTopology('configs/stack.yaml')), ports);
    await expect(mermaid.parse(text)).resolves.toMatchObject({ diagramType: 'flowchart-v2' });
    expect(text).toContain('router ---|10.88.0.2| net_wan');
    expect(text).toContain('host -->|"ssh :40100"| bastion');
  });
});
