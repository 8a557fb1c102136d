// The firewall's OPNsense rule model: normalisation, checks (errors name the rule), alias nesting,
// port ranges, keywords, and the nftables renderer's pure parts.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { topologyFromObject } from '../../src/topology/load.ts';
import { labInventory } from '../../src/topology/inventory.ts';
import {
  expandAlias,
  mergeRanges,
  networkValue,
  parsePort,
  type FirewallAlias,
} from '../../src/topology/firewall.ts';
import { filterRuleNft, pfOrder, resolvedFirewall, ruleChains } from '../../src/render/nftables.ts';
import { InputError } from '../../src/core/errors.ts';

const FILE = 'fw.yaml';
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- free-form edits of parsed YAML
const seed = () => parse(readFileSync('configs/stack.yaml', 'utf8')) as Record<string, any>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- free-form firewall sections
const withFirewall = (fw: Record<string, any>) => {
  const d = seed();
  d.firewall = { ...d.firewall, ...fw, aliases: [...d.firewall.aliases, ...(fw.aliases ?? [])] };
  return topologyFromObject(d, FILE);
};
const problemsOf = (f: () => unknown): string[] => {
  try {
    f();
  } catch (e) {
    if (e instanceof InputError) return e.problems;
    throw e;
  }
  return [];
};
const resolved = (fw: Record<string, unknown>) => {
  const t = withFirewall(fw);
  return resolvedFirewall(t, labInventory(t), 'firewall');
};

const A = (name: string, type: FirewallAlias['type'], content: string[]): FirewallAlias => ({
  name,
  type,
  content,
  enabled: true,
  description: '',
});

describe('ports', () => {
  it('single ports, ranges and service names', () => {
    expect(parsePort('22')).toEqual({ from: 22, to: 22 });
    expect(parsePort('2221-2222')).toEqual({ from: 2221, to: 2222 });
    expect(parsePort('ssh')).toEqual({ from: 22, to: 22 });
  });
  it('refuses what OPNsense refuses', () => {
    expect(parsePort('2222-2221')).toMatch(/must go up/);
    expect(parsePort('2221-2221')).toMatch(/must go up/);
    expect(parsePort('70000')).toMatch(/1\.\.65535/);
    expect(parsePort('22,23')).toMatch(/expected a port/);
  });
  it('merges overlapping and adjacent ranges (nftables refuses overlapping set elements)', () => {
    expect(
      mergeRanges([
        { from: 2222, to: 2222 },
        { from: 22, to: 22 },
        { from: 2221, to: 2221 },
      ]),
    ).toEqual([
      { from: 22, to: 22 },
      { from: 2221, to: 2222 },
    ]);
    expect(
      mergeRanges([
        { from: 10, to: 20 },
        { from: 15, to: 30 },
      ]),
    ).toEqual([{ from: 10, to: 30 }]);
  });
});

describe('aliases', () => {
  const leaf = (e: string, type: string) => (type === 'port' ? /^\d/.test(e) : /^\d/.test(e));
  it('flattens nesting', () => {
    const as = [A('all', 'port', ['web', '22']), A('web', 'port', ['80', 'tls']), A('tls', 'port', ['443'])];
    expect(expandAlias(as, 'all', leaf)).toEqual({ entries: ['80', '443', '22'] });
  });
  it('a cycle is an error naming the aliases on it', () => {
    const as = [A('a', 'host', ['10.0.0.1', 'b']), A('b', 'host', ['c']), A('c', 'host', ['a'])];
    expect(expandAlias(as, 'a', leaf)).toEqual({ error: 'alias nesting forms a cycle: a → b → c → a' });
  });
  it('a cycle in the topology names the alias by index and name', () => {
    expect(
      problemsOf(() =>
        withFirewall({
          aliases: [
            { name: 'ping', type: 'host', content: ['pong'] },
            { name: 'pong', type: 'host', content: ['ping'] },
          ],
        }),
      ),
    ).toEqual([
      `${FILE}: firewall.aliases.1 ("ping").content: alias nesting forms a cycle: ping → pong → ping`,
      `${FILE}: firewall.aliases.2 ("pong").content: alias nesting forms a cycle: pong → ping → pong`,
    ]);
  });
  it('resolves nested host/network aliases to addresses and node names to their address near the firewall', () => {
    const fw = resolved({
      aliases: [
        { name: 'admins', type: 'network', content: ['192.0.2.0/24', 'jump'] },
        { name: 'jump', type: 'host', content: ['198.51.100.7', 'haproxy'] },
      ],
      rules: [
        {
          description: 'admins to haproxy',
          interface: 'wan',
          action: 'pass',
          source: 'admins',
          destination: 'haproxy',
          destinationPort: 22,
        },
      ],
    });
    expect(fw.aliases.find((a) => a.name === 'admins')!.addresses).toEqual([
      '192.0.2.0/24',
      '198.51.100.7',
      '10.88.2.254',
    ]);
    expect(fw.rules[0]!.resolved.source.addresses).toEqual(['192.0.2.0/24', '198.51.100.7', '10.88.2.254']);
  });
  it('refuses a port alias where an address goes, and names clashing with nodes/keywords', () => {
    expect(
      problemsOf(() =>
        withFirewall({
          aliases: [{ name: 'haproxy', type: 'host', content: ['10.0.0.1'] }],
          rules: [{ description: 'x', interface: 'wan', action: 'pass', destination: 'sftp_ports' }],
        }),
      ),
    ).toEqual([
      `${FILE}: firewall.aliases.1 ("haproxy").name: "haproxy" is already a node name; choose another alias name`,
      `${FILE}: firewall.rules.0 ("x").destination: alias "sftp_ports" is a port alias, expected a host or network alias`,
    ]);
  });
});

describe('keywords', () => {
  const ifs = { wan: 'transit', dmz: 'dmz', mgmt: 'mgmt' } as const;
  it('display forms become OPNsense values', () => {
    expect(networkValue('WAN address', ifs)).toBe('wanip');
    expect(networkValue('dmz net', ifs)).toBe('dmz');
    expect(networkValue('This Firewall', ifs)).toBe('(self)');
    expect(networkValue('(self)', ifs)).toBe('(self)');
    expect(networkValue('transit', ifs)).toBe('wan');
    expect(networkValue('mgmtip', ifs)).toBe('mgmtip');
    expect(networkValue('10.1.2.0/24', ifs)).toBe('10.1.2.0/24');
  });
  it('resolve to the firewall’s addresses and subnets', () => {
    const fw = resolved({
      rules: [
        {
          description: 'a',
          interface: 'wan',
          action: 'pass',
          destination: 'WAN address',
          destinationPort: 22,
        },
        { description: 'b', interface: 'wan', action: 'block', destination: '(self)' },
        { description: 'c', interface: 'dmz', action: 'pass', source: 'dmz net', destination: 'any' },
      ],
    });
    expect(fw.rules.map((r) => r.destination_net)).toEqual(['wanip', '(self)', 'any']);
    expect(fw.rules[0]!.resolved.destination.addresses).toEqual(['10.88.1.3']);
    expect(fw.rules[1]!.resolved.destination.addresses).toEqual(['10.88.1.3', '10.88.2.3', '10.88.9.3']);
    expect(fw.rules[2]!.resolved.source.addresses).toEqual(['10.88.2.0/24']);
    // a rule to the firewall's own address filters the box itself, not routed traffic
    expect(ruleChains(fw, fw.rules[0]!)).toEqual({ input: true, forward: false });
    expect(ruleChains(fw, fw.rules[2]!)).toEqual({ input: true, forward: true });
  });
  it('an unknown name names the rule by index and description', () => {
    expect(
      problemsOf(() =>
        withFirewall({
          rules: [{ description: 'to the proxy', interface: 'wan', action: 'pass', destination: 'hapoxy' }],
        }),
      ),
    ).toEqual([
      `${FILE}: firewall.rules.0 ("to the proxy").destination: "hapoxy" is not any, (self), an interface (wan, dmz, mgmt) or its address (<if>ip, "<if> address"), an alias, a node, a network or an address`,
    ]);
    expect(
      problemsOf(() => withFirewall({ rules: [{ description: 'lan', interface: 'lan', action: 'pass' }] })),
    ).toEqual([
      `${FILE}: firewall.rules.0 ("lan").interface: "lan" is not an interface of the firewall (wan on transit, dmz on dmz, mgmt on mgmt)`,
    ]);
    expect(
      problemsOf(() =>
        withFirewall({
          rules: [{ description: 'two', interface: 'wan', action: 'pass', destinationPort: '22,23' }],
        }),
      ),
    ).toEqual([
      `${FILE}: firewall.rules.0 ("two").destinationPort: one port, range or alias per field (as OPNsense): put "22,23" in a port alias`,
    ]);
  });
});

describe('rules and port forwards', () => {
  it('the seed: the forward from the WAN address and its associated pass rule', () => {
    const fw = resolved({});
    expect(fw.nat).toHaveLength(1);
    const n = fw.nat[0]!;
    expect(n.destination.network).toBe('wanip');
    expect(n.pass).toBe('rule');
    expect(n.resolved.destination.addresses).toEqual(['10.88.1.3']);
    expect(n.resolved.destinationPorts.ranges).toEqual([
      { from: 22, to: 22 },
      { from: 2221, to: 2222 },
    ]);
    expect(n.resolved.target).toBe('10.88.2.254');
    expect(n.rule?.destination_net).toBe('haproxy');
    expect(n.rule?.destination_port).toBe('sftp_ports');
    expect(fw.filter.map((r) => r.description)).toEqual(['NAT SFTP to HAProxy']);
  });
  it('associatedRule none adds no rule; pass marks the forward', () => {
    const none = resolved({ nat: [{ ...seed().firewall.nat[0], associatedRule: 'none' }] });
    expect(none.filter).toEqual([]);
    const pass = resolved({ nat: [{ ...seed().firewall.nat[0], associatedRule: 'pass' }] });
    expect(pass.nat[0]!.pass).toBe('pass');
    expect(pass.filter).toEqual([]);
  });
  it('the old shape keeps working: port/to/toPort, interface by network name', () => {
    const fw = resolved({
      aliases: [],
      nat: [{ port: 2022, to: 'haproxy', toPort: 22, description: 'old' }],
      rules: [
        { interface: 'transit', action: 'pass', destination: 'haproxy', port: 22, description: 'old rule' },
      ],
    });
    expect(fw.nat[0]!.associatedRule).toBe('none');
    expect(fw.nat[0]!.resolved.localPort).toBe(22);
    expect(fw.rules[0]!.interface).toEqual(['wan']);
  });
  it('log, disabled, quick and direction', () => {
    const fw = resolved({
      rules: [
        { description: 'late', interface: 'wan', action: 'pass', quick: false, destinationPort: 9000 },
        { description: 'logged', interface: 'wan', action: 'block', log: true, destinationPort: '2223-2224' },
        { description: 'off', interface: 'wan', action: 'block', enabled: false },
        { description: 'leave', interface: 'dmz', direction: 'out', action: 'block', protocol: 'udp' },
      ],
    });
    const [late, logged, off, leave] = fw.rules;
    expect(filterRuleNft(logged!)).toEqual([
      '    iifname $if_wan tcp dport 2223-2224 log prefix "wharf wan block 20: " drop comment "20 logged"',
    ]);
    expect(filterRuleNft(off!)).toEqual(['    # disabled: firewall.rules.2 ("off")']);
    expect(filterRuleNft(leave!)[0]).toMatch(/^ {4}oifname \$if_dmz meta l4proto udp drop/);
    // pf: quick rules first (in order), then the others, last match first
    expect(pfOrder([late!, logged!]).map((r) => r.description)).toEqual(['logged', 'late']);
  });
});
