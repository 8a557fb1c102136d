// /etc/nftables.conf for the router and the firewall. Own tables only (never `flush ruleset`:
// Docker's embedded DNS lives in the container's `table ip nat`), matched by addresses, never by
// interface names (unstable in containers). Source addresses are preserved end to end: no masquerade.
import { isPairAddress, vipAddress, type Topology } from '../topology/model.ts';
import { NETWORKS, type FirewallRule, type NetworkName, type PortForwardRule } from '../topology/schema.ts';
import { addressOf, subnetOf, type Inventory } from '../topology/inventory.ts';
import { InputError } from '../core/errors.ts';
import type { RenderedFile } from './types.ts';
import { CHECKS, file, header, lines } from './util.ts';

export const NFT_CONF = '/etc/nftables.conf';
export const NFT_DROPIN = '/etc/systemd/system/nftables.service.d/10-wharf.conf';
export const MGMT_SSH_PORT = 22;

const comment = (s: string): string => `comment "${s.replace(/["\\]/g, "'").slice(0, 120)}"`;
const set = (xs: string[]): string => (xs.length === 1 ? xs[0]! : `{ ${xs.join(', ')} }`);

/** The node's addresses on data networks (mgmt is never a forwarding target). */
function dataAddresses(inv: Inventory, node: string): string[] {
  const a = inv.hosts[node]?.addresses ?? {};
  return NETWORKS.filter((n) => n !== 'mgmt' && a[n]).map((n) => a[n]!);
}

/** Replaces any previous wharf tables atomically without touching anyone else's. */
function preamble(t: Topology, what: string): string[] {
  return [
    '#!/usr/sbin/nft -f',
    header(t).trimEnd(),
    `# ${what}`,
    '# Only wharf tables are replaced (add-then-delete, as nft 1.0.6 lacks `destroy`); never flush',
    '# the whole ruleset: Docker keeps its embedded DNS rules in the table ip nat of lab containers.',
    'table inet wharf {}',
    'delete table inet wharf',
    'table ip wharf_nat {}',
    'delete table ip wharf_nat',
    '',
  ];
}

function inputChain(t: Topology, inv: Inventory, node: string): string[] {
  const mgmt = inv.hosts[node]?.addresses.mgmt;
  return [
    '  chain input {',
    '    type filter hook input priority filter; policy drop;',
    '    iif "lo" accept',
    '    ct state established,related accept',
    '    ct state invalid drop',
    '    meta l4proto { icmp, ipv6-icmp } accept',
    ...(mgmt
      ? [
          `    ip saddr ${subnetOf(t, inv, 'mgmt')} ip daddr ${mgmt} tcp dport ${MGMT_SSH_PORT} accept ${comment('management ssh')}`,
        ]
      : []),
    '  }',
  ];
}

function mgmtNeverForwarded(t: Topology, inv: Inventory): string[] {
  const m = subnetOf(t, inv, 'mgmt');
  return [
    `    ip saddr ${m} drop ${comment('the management network is never a path')}`,
    `    ip daddr ${m} drop ${comment('the management network is never a path')}`,
  ];
}

function dnat(rules: PortForwardRule[], daddr: string, target: (r: PortForwardRule) => string): string[] {
  return rules.map(
    (r) =>
      `    ip daddr ${daddr} ${r.protocol} dport ${r.port} dnat to ${target(r)}:${r.toPort ?? r.port}` +
      (r.description ? ` ${comment(r.description)}` : ''),
  );
}

function natTable(lines_: string[]): string[] {
  return [
    'table ip wharf_nat {',
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    ...lines_,
    '  }',
    '}',
  ];
}

/**
 * wharf's filter table: the node's input chain, and a forward chain that never forwards the
 * management network, passes established flows, drops invalid ones, then `forward` (default drop).
 */
function filterTable(t: Topology, inv: Inventory, node: string, forward: string[]): string[] {
  return [
    'table inet wharf {',
    ...inputChain(t, inv, node),
    '',
    '  chain forward {',
    '    type filter hook forward priority filter; policy drop;',
    ...mgmtNeverForwarded(t, inv),
    '    ct state established,related accept',
    '    ct state invalid drop',
    ...forward,
    '  }',
    '}',
  ];
}

export function renderRouterNft(t: Topology, inv: Inventory, node: string): RenderedFile {
  const wan = addressOf(inv, node, 'wan');
  const text = lines(
    ...preamble(t, `${node} (router): port forwards from ${wan} into the chain; forwards nothing else.`),
    ...natTable(dnat(t.router.forwards, wan, (r) => addressOf(inv, r.to, 'transit'))),
    '',
    ...filterTable(t, inv, node, [`    ct status dnat accept ${comment('port-forwarded flows only')}`]),
  );
  return file(NFT_CONF, text, { mode: 0o755, check: CHECKS.nft, notify: ['nftables'] });
}

/**
 * A firewall rule's `interface` is the network a packet arrives from (OPNsense semantics). Matched
 * by address: a packet arrives from the upstream side (transit: the router, the internet behind it)
 * unless its source lies in another network the firewall is attached to.
 */
function interfaceMatch(t: Topology, inv: Inventory, fw: string, net: NetworkName): string {
  const attached = t.nodes[fw]!.networks;
  if (net === 'transit' && attached.includes('transit')) {
    const others = attached.filter((n) => n !== 'transit').map((n) => subnetOf(t, inv, n));
    return others.length ? `ip saddr != ${set(others)}` : '';
  }
  return `ip saddr ${subnetOf(t, inv, net)}`;
}

function addressMatch(
  t: Topology,
  inv: Inventory,
  fw: string,
  value: string,
  where: string,
): string[] | null {
  if (value === 'any') return null;
  if ((NETWORKS as readonly string[]).includes(value)) return [subnetOf(t, inv, value as NetworkName)];
  if (isPairAddress(t, value)) return [vipAddress(t, inv)];
  if (t.nodes[value]) {
    // Prefer the node's addresses on networks this node is attached to (what it can route to).
    const all = dataAddresses(inv, value);
    const near = t.nodes[fw]!.networks.filter((n) => n !== 'mgmt')
      .map((n) => inv.hosts[value]?.addresses[n])
      .filter((x): x is string => !!x);
    const a = near.length ? near : all;
    if (!a.length)
      throw new InputError(`${where}: node ${value} has no data-network address in the inventory`);
    return a;
  }
  if (/^\d{1,3}(\.\d{1,3}){3}(\/\d{1,2})?$/.test(value)) return [value];
  throw new InputError(`${where}: expected any, a network, a node or an IPv4 address/subnet, got "${value}"`);
}

function protoMatch(r: FirewallRule): string {
  if (r.protocol === 'icmp') return 'meta l4proto icmp';
  if (r.protocol === 'any') return r.port ? `meta l4proto { tcp, udp } th dport ${r.port}` : '';
  return r.port ? `${r.protocol} dport ${r.port}` : `meta l4proto ${r.protocol}`;
}

export function firewallRule(t: Topology, inv: Inventory, fw: string, r: FirewallRule, i: number): string[] {
  const src = addressMatch(t, inv, fw, r.source, `firewall.rules.${i}.source`);
  const dst = addressMatch(t, inv, fw, r.destination, `firewall.rules.${i}.destination`);
  const match = [
    interfaceMatch(t, inv, fw, r.interface),
    src ? `ip saddr ${set(src)}` : '',
    dst ? `ip daddr ${set(dst)}` : '',
    protoMatch(r),
  ]
    .filter(Boolean)
    .join(' ');
  const c = comment(r.description);
  if (r.action === 'pass') return [`    ${match} accept ${c}`];
  if (r.action === 'block') return [`    ${match} drop ${c}`];
  // reject: TCP gets a reset, everything else an ICMP "administratively prohibited".
  if (r.protocol === 'tcp') return [`    ${match} reject with tcp reset ${c}`];
  if (r.protocol === 'any')
    return [
      `    ${match} meta l4proto tcp reject with tcp reset ${c}`,
      `    ${match} reject with icmpx type admin-prohibited ${c}`,
    ];
  return [`    ${match} reject with icmpx type admin-prohibited ${c}`];
}

export function renderFirewallNft(t: Topology, inv: Inventory, node: string): RenderedFile {
  const transit = addressOf(inv, node, 'transit');
  const text = lines(
    ...preamble(t, `${node} (firewall): NAT to HAProxy, then the rules in order; default deny.`),
    ...natTable(
      dnat(t.firewall.nat, transit, (r) =>
        isPairAddress(t, r.to) ? vipAddress(t, inv) : addressOf(inv, r.to, 'dmz'),
      ),
    ),
    '',
    ...filterTable(
      t,
      inv,
      node,
      t.firewall.rules.flatMap((r, i) => firewallRule(t, inv, node, r, i)),
    ),
  );
  return file(NFT_CONF, text, { mode: 0o755, check: CHECKS.nft, notify: ['nftables'] });
}

/** Debian's nftables.service runs `nft flush ruleset` on stop/restart: remove only wharf's tables. */
export function renderNftDropin(t: Topology): RenderedFile {
  return file(
    NFT_DROPIN,
    lines(
      header(t).trimEnd(),
      '[Service]',
      'ExecStop=',
      "ExecStop=/bin/sh -c 'nft delete table inet wharf; nft delete table ip wharf_nat; exit 0'",
    ),
    { notify: ['nftables'] },
  );
}
