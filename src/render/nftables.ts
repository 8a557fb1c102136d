// /etc/nftables.conf for the router and the firewall. Own tables only (never `flush ruleset`:
// Docker's embedded DNS lives in the container's `table ip nat`), matched by addresses, never by
// interface names (unstable in containers). Source addresses are preserved end to end: no masquerade.
import { topologyFirewall, type Topology } from '../topology/model.ts';
import { type PortForwardRule } from '../topology/schema.ts';
import { addressOf, subnetOf, type Inventory } from '../topology/inventory.ts';
import {
  type FilterProtocol,
  type FilterRule,
  type PortRange,
  type ResolvedDNatRule,
  type ResolvedFilterRule,
  type ResolvedFirewall,
  type ResolvedInterface,
  type ResolvedNet,
  type ResolvedPorts,
} from '../topology/firewall.ts';
import { inSubnet } from '../topology/net.ts';
import { InputError } from '../core/errors.ts';
import type { CheckCommand, RenderedFile } from './types.ts';
import { CHECKS, file, header, lines } from './util.ts';

export const NFT_CONF = '/etc/nftables.conf';
export const NFT_DROPIN = '/etc/systemd/system/nftables.service.d/10-wharf.conf';
export const MGMT_SSH_PORT = 22;

const comment = (s: string): string => `comment "${s.replace(/["\\]/g, "'").slice(0, 120)}"`;

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

// ---------------------------------------------------------------------------------------------
// The firewall: OPNsense's rule model (src/topology/firewall.ts) rendered as nftables.
//
// Interfaces are matched by device name (`iifname $if_wan`), as OPNsense matches `on wan`. Device
// names are not stable (Docker attaches a container's networks in no fixed order; a VM's NICs can be
// renumbered), so the ruleset names no device: each interface is a variable, and the loader
// (NFT_LOAD, run by nftables.service at boot, on reload and by the revert) finds, at every load,
// the device that holds the firewall's own address on that interface's network (`ip -o -4 addr`)
// and passes it as `nft -D if_wan="eth1"`. A device that holds no such address stops the load.
//
// OPNsense (pf) semantics kept: port forwards translate first, filter rules then see the
// translated packet; `quick` rules win on their first match, otherwise the last matching rule
// wins (rendered as: quick rules in order, then the others in reverse order); direction `out`
// filters packets leaving an interface (a second forward hook after the `in` rules, and output);
// a rule applies to the firewall itself (input) and/or to routed traffic (forward) depending on
// its destination; default deny. Aliases are expanded (nesting flattened) into anonymous sets.

/** nft variable of a firewall interface. */
export const ifVar = (name: string): string => `if_${name}`;

const nftSet = (xs: string[]): string => (xs.length === 1 ? xs[0]! : `{ ${xs.join(', ')} }`);
const portsNft = (rs: PortRange[]): string =>
  nftSet(rs.map((r) => (r.from === r.to ? String(r.from) : `${r.from}-${r.to}`)));

/** `log prefix` for a rule: the interface, action and sequence, as OPNsense's log shows them. */
export function logPrefix(r: FilterRule, verb: string): string {
  const p = `wharf ${r.interface.join(',')} ${verb} ${r.sequence}: `;
  return `log prefix "${p.replace(/["\\]/g, '').slice(0, 60)}"`;
}

function l4(protocol: FilterProtocol, sp: ResolvedPorts, dp: ResolvedPorts): string {
  const ports = (kw: string) =>
    [sp.any ? '' : `${kw} sport ${portsNft(sp.ranges)}`, dp.any ? '' : `${kw} dport ${portsNft(dp.ranges)}`]
      .filter(Boolean)
      .join(' ');
  switch (protocol) {
    case 'any':
      return '';
    case 'ICMP':
      return 'meta l4proto icmp';
    case 'TCP':
      return ports('tcp') || 'meta l4proto tcp';
    case 'UDP':
      return ports('udp') || 'meta l4proto udp';
    case 'TCP/UDP':
      return ['meta l4proto { tcp, udp }', ports('th')].filter(Boolean).join(' ');
  }
}

const addrMatch = (dir: 'saddr' | 'daddr', n: ResolvedNet, only?: string[]): string => {
  if (n.any && !only) return n.not ? `ip ${dir} != 0.0.0.0/0` : '';
  const xs = only ?? n.addresses;
  return `ip ${dir} ${n.not ? '!= ' : ''}${nftSet(xs)}`;
};

/** Where a rule applies: the firewall itself (input), routed traffic (forward), or both. Pure. */
export function ruleChains(
  fw: ResolvedFirewall,
  r: ResolvedFilterRule,
): { input: boolean; forward: boolean } {
  const d = r.resolved.destination;
  if (d.any || d.not) return { input: true, forward: true };
  const self = new Set(fw.self);
  const input = d.addresses.some(
    (a) => self.has(a) || (a.includes('/') && fw.self.some((s) => inSubnet(s, a))),
  );
  const forward = d.addresses.some((a) => !self.has(a));
  return { input, forward };
}

/** One filter rule as nftables lines (disabled rules: a comment). Pure. */
export function filterRuleNft(r: ResolvedFilterRule): string[] {
  const c = comment(`${r.sequence} ${r.description}`);
  if (!r.enabled) return [`    # disabled: ${r.origin}`];
  const ifs = r.resolved.interfaces.map((i) => `$${ifVar(i.name)}`);
  const match = [
    `${r.direction === 'out' ? 'oifname' : 'iifname'} ${nftSet(ifs)}`,
    addrMatch('saddr', r.resolved.source),
    addrMatch('daddr', r.resolved.destination),
    l4(r.protocol, r.resolved.sourcePorts, r.resolved.destinationPorts),
  ]
    .filter(Boolean)
    .join(' ');
  const log = (verb: string) => (r.log ? `${logPrefix(r, verb)} ` : '');
  if (r.action === 'pass') return [`    ${match} ${log('pass')}accept ${c}`];
  if (r.action === 'block') return [`    ${match} ${log('block')}drop ${c}`];
  // reject: TCP gets a reset, everything else an ICMP "administratively prohibited".
  if (r.protocol === 'TCP') return [`    ${match} ${log('reject')}reject with tcp reset ${c}`];
  if (r.protocol === 'ICMP' || r.protocol === 'UDP')
    return [`    ${match} ${log('reject')}reject with icmpx type admin-prohibited ${c}`];
  return [
    `    ${match} meta l4proto tcp ${log('reject')}reject with tcp reset ${c}`,
    `    ${match} ${log('reject')}reject with icmpx type admin-prohibited ${c}`,
  ];
}

/** pf order: the first matching quick rule wins, else the last matching non-quick rule. Pure. */
export function pfOrder<T extends { quick: boolean }>(rules: T[]): T[] {
  return [...rules.filter((r) => r.quick), ...rules.filter((r) => !r.quick).reverse()];
}

/** Mark a port forward with associatedRule "pass" sets on its connection (pf's `rdr pass`). */
export const RDR_PASS_MARK = '0x00000001';

/** One port forward as nftables DNAT lines. Pure. */
export function dnatNft(n: ResolvedDNatRule): string[] {
  if (n.disabled) return [`    # disabled: ${n.origin}`];
  const r = n.resolved;
  const ifs = r.interfaces.map((i) => `$${ifVar(i.name)}`);
  const proto: FilterProtocol = n.protocol === 'tcp' ? 'TCP' : n.protocol === 'udp' ? 'UDP' : 'TCP/UDP';
  const head = (dp: ResolvedPorts) =>
    [
      `iifname ${nftSet(ifs)}`,
      addrMatch('saddr', r.source),
      addrMatch('daddr', r.destination),
      l4(proto, r.sourcePorts, dp),
      n.log ? `log prefix "wharf ${n.interface.join(',')} rdr ${n.sequence}: "` : '',
      n.associatedRule === 'pass' ? `ct mark set ${RDR_PASS_MARK}` : '',
    ]
      .filter(Boolean)
      .join(' ');
  const c = n.descr ? ` ${comment(n.descr)}` : '';
  if (r.localPort === undefined) return [`    ${head(r.destinationPorts)} dnat to ${r.target}${c}`];
  // a local port: the first destination port goes to it, the next to local port + 1 (OPNsense)
  const ports = r.destinationPorts.ranges.flatMap((x) =>
    Array.from({ length: x.to - x.from + 1 }, (_, i) => x.from + i),
  );
  if (ports.length > 256)
    throw new InputError(
      `${n.origin}.localPort: a local port with more than 256 forwarded ports is not supported`,
    );
  return ports.map(
    (p, i) =>
      `    ${head({ any: false, ranges: [{ from: p, to: p }] })} dnat to ${r.target}:${r.localPort! + i}${c}`,
  );
}

/** The firewall's resolved model from the topology and the inventory (see firewall.ts). */
export function resolvedFirewall(t: Topology, inv: Inventory, node: string): ResolvedFirewall {
  return topologyFirewall(t, inv, node);
}

export function renderFirewallNft(t: Topology, inv: Inventory, node: string): RenderedFile {
  const fw = resolvedFirewall(t, inv, node);
  const mgmt = inv.hosts[node]?.addresses.mgmt;
  const enabled = fw.filter.filter((r) => r.enabled);
  const ins = pfOrder(enabled.filter((r) => r.direction === 'in'));
  const outs = pfOrder(enabled.filter((r) => r.direction === 'out'));
  const disabled = fw.filter.filter((r) => !r.enabled).flatMap(filterRuleNft);
  const inputRules = ins.filter((r) => ruleChains(fw, r).input).flatMap(filterRuleNft);
  const forwardRules = ins.filter((r) => ruleChains(fw, r).forward).flatMap(filterRuleNft);
  const rdrPass = fw.nat.some((n) => !n.disabled && n.associatedRule === 'pass');
  const ifaces = Object.values(fw.interfaces);
  const text = lines(
    ...preamble(
      t,
      `${node} (firewall): port forwards, then the filter rules (OPNsense semantics); default deny.`,
    ),
    '# Interfaces (matched by device name; the device is found by address at load time, see nft-load):',
    ...ifaces.map(
      (i) =>
        `#   ${i.name}: network ${i.network} (${i.subnet}), the firewall's address ${i.address} → $${ifVar(i.name)}`,
    ),
    '',
    ...natTable(fw.nat.flatMap(dnatNft)),
    '',
    'table inet wharf {',
    '  chain input {',
    '    type filter hook input priority filter; policy drop;',
    '    iif "lo" accept',
    '    ct state established,related accept',
    '    ct state invalid drop',
    '    meta l4proto { icmp, ipv6-icmp } accept',
    ...(mgmt && fw.antiLockout
      ? [
          `    ip saddr ${subnetOf(t, inv, 'mgmt')} ip daddr ${mgmt} tcp dport ${MGMT_SSH_PORT} accept ${comment('anti-lockout: management ssh (firewall.antiLockout)')}`,
        ]
      : []),
    ...inputRules,
    '  }',
    '',
    '  chain forward {',
    '    type filter hook forward priority filter; policy drop;',
    ...mgmtNeverForwarded(t, inv),
    '    ct state established,related accept',
    '    ct state invalid drop',
    ...(rdrPass
      ? [
          `    ct mark ${RDR_PASS_MARK} ct status dnat accept ${comment('port forwards with associatedRule: pass (rdr pass)')}`,
        ]
      : []),
    ...forwardRules,
    ...disabled,
    '  }',
    ...(outs.length
      ? [
          '',
          '  # direction out: packets leaving an interface (routed ones after the `in` rules passed them)',
          '  chain forward_out {',
          '    type filter hook forward priority filter + 10; policy accept;',
          '    ct state established,related accept',
          ...outs.flatMap(filterRuleNft),
          '  }',
          '',
          '  chain output {',
          '    type filter hook output priority filter; policy accept;',
          '    ct state established,related accept',
          ...outs.flatMap(filterRuleNft),
          '  }',
        ]
      : []),
    '}',
  );
  return file(NFT_CONF, text, {
    mode: 0o755,
    check: nftCheckWithInterfaces(Object.keys(fw.interfaces)),
    notify: ['nftables'],
  });
}

/** `nft -c` with every interface variable defined (placeholder device names: only syntax is checked). */
export function nftCheckWithInterfaces(names: string[]): CheckCommand {
  return {
    name: 'nft -c',
    argv: ['nft', '-c', ...names.flatMap((n) => ['-D', `${ifVar(n)}="${n.slice(0, 15)}"`]), '-f', '{}'],
  };
}

/** Loads a ruleset with each firewall interface bound to its device (see the firewall's comment). */
export const NFT_LOAD = '/usr/local/lib/wharf/nft-load';
/** Commit-confirmed changes of the ruleset: apply (arm a revert on the box), confirm, revert, status. */
export const NFT_CONFIRM = '/usr/local/lib/wharf/nft-confirm';
/** Where the box keeps the ruleset to go back to, the last confirmed file, and the state. */
export const NFT_CONFIRM_DIR = '/var/lib/wharf/nft';
/** The transient systemd timer (and service) that reverts an unconfirmed change. */
export const REVERT_UNIT = 'wharf-fw-revert';

/**
 * The loader: `nft -D if_<name>="<device>" … -f FILE`, each device found by the address the node
 * holds on that interface's network (the router's ruleset has no interfaces: plain `nft -f`).
 */
export function renderNftLoader(t: Topology, interfaces: ResolvedInterface[]): RenderedFile {
  const body = interfaces.flatMap((i) => [
    `d=$(dev ${i.address})`,
    `[ -n "$d" ] || { echo "nft-load: no device holds ${i.address} (interface ${i.name}, network ${i.network}): not loading $f" >&2; exit 1; }`,
    `set -- "$@" -D "${ifVar(i.name)}=\\"$d\\""`,
  ]);
  return file(
    NFT_LOAD,
    lines(
      '#!/bin/sh',
      header(t).trimEnd(),
      '# Loads an nftables ruleset (default /etc/nftables.conf) with each firewall interface bound to',
      '# its device. Device names are not stable (Docker attaches networks in no fixed order, NICs can be',
      "# renumbered): the device of an interface is the one holding this node's address on that",
      "# interface's network, looked up at every load (boot, reload, commit-confirmed apply).",
      'set -eu',
      'f="${1:-/etc/nftables.conf}"',
      'dev() { ip -o -4 addr show | awk -v a="$1" \'{ split($4, p, "/"); if (p[1] == a) { sub(/@.*/, "", $2); print $2; exit } }\'; }',
      'set --',
      ...body,
      'exec nft "$@" -f "$f"',
    ),
    { mode: 0o755, check: CHECKS.bash },
  );
}

/**
 * Commit-confirmed changes on the box itself (router and firewall), in the shape of OPNsense's old
 * savepoint/apply/cancelRollback safety net (pitfall 17), but kept by wharf:
 *   apply SECONDS  save the running ruleset (wharf's tables) as the one to go back to, arm a revert
 *                  on this box (a transient systemd timer SECONDS from now), load the new ruleset.
 *                  From here on nothing from outside is needed: unconfirmed, the box reverts.
 *   confirm        cancel the armed revert and keep the new file as the confirmed one (exit 3 when
 *                  nothing is armed any more: the revert ran first).
 *   revert         the timer's job: restore the saved ruleset and the last confirmed file.
 *   restore        load /etc/nftables.conf unarmed and keep it as confirmed (a rollback by wharf).
 *   status         one line: state (armed|confirmed|reverted|restored) armed-at timeout done-at
 *                  fired-at (the revert's start), epoch seconds.
 * confirm and revert take one lock, so a late confirm never races the timer.
 */
export function renderNftConfirm(t: Topology): RenderedFile {
  const d = NFT_CONFIRM_DIR;
  return file(
    NFT_CONFIRM,
    lines(
      '#!/bin/sh',
      header(t).trimEnd(),
      '# Commit-confirmed nftables changes (wharf configure --confirm-timeout). Usage:',
      '#   nft-confirm apply SECONDS | confirm | revert | restore | status',
      'set -eu',
      `dir=${d}`,
      `unit=${REVERT_UNIT}`,
      `conf=${NFT_CONF}`,
      'mkdir -p "$dir"',
      'now() { date +%s.%N | cut -c1-14; }',
      'put_state() { printf "%s\\n" "$*" > "$dir/state.tmp" && mv "$dir/state.tmp" "$dir/state"; }',
      'get_state() { s=none; at=0; to=0; done_at=0; fired=0; [ -f "$dir/state" ] && read -r s at to done_at fired < "$dir/state" || true; }',
      'lock() { exec 9>"$dir/lock"; flock 9; }',
      'case "${1:-}" in',
      'apply)',
      '  to="${2:?usage: nft-confirm apply SECONDS}"',
      '  lock',
      '  systemctl stop "$unit.timer" "$unit.service" 2>/dev/null || true',
      '  systemctl reset-failed "$unit.timer" "$unit.service" 2>/dev/null || true',
      "  # the running ruleset (wharf's tables only) is the one to go back to",
      '  { echo "table inet wharf {}"; echo "delete table inet wharf"; echo "table ip wharf_nat {}"; echo "delete table ip wharf_nat"',
      '    nft list table inet wharf 2>/dev/null || true; nft list table ip wharf_nat 2>/dev/null || true; } > "$dir/previous.nft.tmp"',
      '  nft -c -f "$dir/previous.nft.tmp"',
      '  mv "$dir/previous.nft.tmp" "$dir/previous.nft"',
      '  [ -f "$dir/confirmed.conf" ] || cp "$dir/previous.nft" "$dir/confirmed.conf"',
      `  systemd-run --quiet --unit "$unit" --on-active="\${to}s" --timer-property=AccuracySec=100ms ${NFT_CONFIRM} revert`,
      '  put_state armed "$(now)" "$to"',
      '  exec 9>&-',
      '  if ! systemctl reload-or-restart nftables; then',
      `    ${NFT_CONFIRM} revert`,
      '    echo "nft-confirm: the new ruleset did not load: reverted to the saved one" >&2',
      '    exit 1',
      '  fi',
      '  ;;',
      'confirm)',
      '  lock',
      '  get_state',
      '  if [ "$s" != armed ]; then echo "nft-confirm: nothing armed to confirm (state: $s, at $done_at)" >&2; exit 3; fi',
      '  systemctl stop "$unit.timer"',
      '  cp "$conf" "$dir/confirmed.conf.tmp" && mv "$dir/confirmed.conf.tmp" "$dir/confirmed.conf"',
      '  put_state confirmed "$at" "$to" "$(now)"',
      '  ;;',
      'revert)',
      '  fired_at=$(now)',
      '  lock',
      '  get_state',
      '  [ "$s" = armed ] || { echo "nft-confirm: nothing armed (state: $s): no revert" >&2; exit 0; }',
      '  nft -f "$dir/previous.nft"',
      '  cp "$dir/confirmed.conf" "$conf.wharf-tmp" && mv "$conf.wharf-tmp" "$conf"',
      '  put_state reverted "$at" "$to" "$(now)" "$fired_at"',
      '  logger -t wharf "nftables change not confirmed within ${to}s: reverted to the saved ruleset" || true',
      '  ;;',
      'restore)',
      '  lock',
      '  systemctl stop "$unit.timer" 2>/dev/null || true',
      '  systemctl reload-or-restart nftables',
      '  cp "$conf" "$dir/confirmed.conf"',
      '  get_state',
      '  put_state restored "$at" "$to" "$(now)"',
      '  ;;',
      'status)',
      '  get_state',
      '  echo "$s ${at:-0} ${to:-0} ${done_at:-0} ${fired:-0}"',
      '  ;;',
      '*) echo "usage: nft-confirm apply SECONDS | confirm | revert | restore | status" >&2; exit 2 ;;',
      'esac',
    ),
    { mode: 0o755, check: CHECKS.bash },
  );
}

/**
 * nftables.service: loads through the loader (boot and reload), and Debian's `nft flush ruleset`
 * on stop/restart is replaced by removing only wharf's tables.
 */
export function renderNftDropin(t: Topology): RenderedFile {
  return file(
    NFT_DROPIN,
    lines(
      header(t).trimEnd(),
      '[Service]',
      'ExecStart=',
      `ExecStart=${NFT_LOAD} ${NFT_CONF}`,
      'ExecReload=',
      `ExecReload=${NFT_LOAD} ${NFT_CONF}`,
      'ExecStop=',
      "ExecStop=/bin/sh -c 'nft delete table inet wharf; nft delete table ip wharf_nat; exit 0'",
    ),
    { notify: ['nftables'] },
  );
}
