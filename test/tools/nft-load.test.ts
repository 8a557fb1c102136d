// The rendered nftables rulesets are LOADED (not only checked) in a private network namespace
// (unshare -n: nothing on this host changes). Proves: loading twice is idempotent (the reload
// path), a foreign table (Docker's DNS rules live in `table ip nat`) survives, the service drop-in's
// stop removes only wharf's tables, and the routes unit's command installs the routes.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTopology } from '../../src/topology/load.ts';
import { labInventory } from '../../src/topology/inventory.ts';
import { renderStack } from '../../src/render/index.ts';

const t = loadTopology('configs/stack.yaml');
const inv = labInventory(t);
const stack = renderStack(t, inv);
const content = (node: string, path: string) => stack[node]!.files.find((f) => f.path === path)!.content;

/** Runs a shell script in a fresh network namespace; returns stdout (throws with stderr). */
function inNetns(script: string): string {
  const r = spawnSync('unshare', ['--net', 'sh', '-ec', script], { encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) throw new Error(`exit ${r.status}: ${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

describe.each(['router', 'firewall'])('%s ruleset loaded in a private netns', (node) => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-nft-'));
  const conf = join(dir, 'nftables.conf');
  const loader = join(dir, 'nft-load');
  writeFileSync(conf, content(node, '/etc/nftables.conf'));
  writeFileSync(loader, content(node, '/usr/local/lib/wharf/nft-load'));
  const stop = /^ExecStop=\/bin\/sh -c '(.*)'$/m.exec(
    content(node, '/etc/systemd/system/nftables.service.d/10-wharf.conf'),
  )![1]!;
  // the node's addresses on veth devices named against the networks' order (Docker's names are
  // not stable either): the loader must find each interface's device by its address
  const addrs = Object.values(inv.hosts[node]!.addresses);
  const devs = addrs
    .map((a, i) => {
      const d = `zz${addrs.length - i}`;
      return `ip link add ${d} type veth peer name p${d} && ip addr add ${a}/24 dev ${d} && ip link set ${d} up`;
    })
    .join('\n');

  it('loads (through nft-load), reloads idempotently, keeps foreign tables, and its stop removes only wharf tables', () => {
    try {
      const out = inNetns(`
        ${devs}
        nft add table ip nat
        nft add chain ip nat OUTPUT '{ type nat hook output priority -100; }'
        nft add rule ip nat OUTPUT ip daddr 127.0.0.11 udp dport 53 counter dnat to 127.0.0.11:40000
        sh ${loader} ${conf}
        nft list ruleset > ${dir}/first
        sh ${loader} ${conf}
        nft list ruleset > ${dir}/second
        cmp ${dir}/first ${dir}/second && echo IDEMPOTENT
        nft list table ip nat | grep -q 'dnat to 127.0.0.11:40000' && echo FOREIGN-KEPT
        nft list table inet wharf | grep -o 'iifname "[a-z0-9]*"' | sort -u
        sh -c '${stop}'
        nft list tables
      `);
      expect(out).toContain('IDEMPOTENT');
      expect(out).toContain('FOREIGN-KEPT');
      const tables = out.split('\n').filter((l) => l.startsWith('table '));
      expect(tables).toEqual(['table ip nat']);
      if (node === 'firewall') {
        // wan is the interface on transit: the device holding the firewall's transit address
        const transit = addrs.indexOf(inv.hosts[node]!.addresses.transit!);
        expect(out).toContain(`iifname "zz${addrs.length - transit}"`);
        expect(out).not.toMatch(/iifname "(wan|dmz|mgmt)"/);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  if (node === 'firewall')
    it('refuses to load when no device holds an interface address (exit 1 naming it)', () => {
      const d = mkdtempSync(join(tmpdir(), 'wharf-nft-'));
      try {
        writeFileSync(join(d, 'c'), content(node, '/etc/nftables.conf'));
        writeFileSync(join(d, 'l'), content(node, '/usr/local/lib/wharf/nft-load'));
        const r = spawnSync('unshare', ['--net', 'sh', '-c', `sh ${d}/l ${d}/c`], {
          encoding: 'utf8',
          timeout: 20_000,
        });
        expect(r.status).toBe(1);
        expect(r.stderr).toMatch(/nft-load: no device holds 10\.88\.1\.3 \(interface wan, network transit\)/);
      } finally {
        rmSync(d, { recursive: true, force: true });
      }
    });
});

describe('routes unit command', () => {
  it('installs the rendered routes (haproxy: WAN via the firewall dmz address), idempotently', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wharf-routes-'));
    try {
      const routesFile = join(dir, 'routes');
      writeFileSync(routesFile, content('haproxy-1', '/etc/wharf/routes'));
      const unit = content('haproxy-1', '/etc/systemd/system/wharf-routes.service');
      // systemd's ExecStart: one single-quoted argument to sh -c, with $$ meaning $.
      const cmd = /^ExecStart=\/bin\/sh -c '(.*)'$/m
        .exec(unit)![1]!
        .replace(/\$\$/g, '$')
        .replace('/etc/wharf/routes', routesFile);
      writeFileSync(join(dir, 'cmd.sh'), cmd);
      const dmz = inv.hosts['haproxy-1']!.addresses.dmz!;
      const out = inNetns(`
        ip link set lo up
        ip link add d0 type veth peer name d1
        ip link set d1 up
        ip addr add ${dmz}/24 dev d0
        ip link set d0 up
        sh ${dir}/cmd.sh
        sh ${dir}/cmd.sh
        ip -4 route show
      `);
      expect(out).toContain(`${t.networks.wan.subnet} via ${stack['haproxy-1']!.routes[0]!.via} dev d0`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
