// The host's netfilter is kept out of the lab chain's bridged traffic.
//
// Docker turns on `net.bridge.bridge-nf-call-iptables=1` (and sets it again whenever it creates a
// network), so every packet one lab container sends to another on the same bridge — router →
// firewall (transit), firewall → HAProxy (dmz), HAProxy → main (lan), and every ACK back — also
// runs through the HOST's conntrack and its FORWARD chain, which Docker makes linear in the number
// of bridges on the machine (4 rules per network + the isolation chains; ~150 rules with 9 labs).
// Real VMs have none of that. Measured here (issue 10, 256 MiB OpenSSH aes128-gcm uploads through
// the chain, 3 alternating A/B pairs): host softirq 0.60–0.70 → 0.42–0.47 CPU-s per upload, HAProxy
// 0.23–0.26 → 0.14–0.21, the client 0.52–0.53 → 0.44–0.50, and every pair faster.
//
// The fix is scoped to this lab's own chain bridges and to traffic between two containers on the
// same bridge (source and destination in its subnet, the gateway — this host — excluded):
//   raw PREROUTING: NOTRACK (no host conntrack entry for it)
//   DOCKER-USER (first in FORWARD, the chain Docker leaves to users): ACCEPT when in = out bridge
// Docker's own rules ACCEPT that traffic anyway (inter-container traffic on a bridge is allowed),
// so no verdict changes, only the work. Tagged with a comment per stack; `lab down` removes them.
import { spawnSync } from 'node:child_process';

export interface ChainBridge {
  /** the Linux bridge device (`br-<first 12 of the network id>`, or the network's bridge.name) */
  bridge: string;
  subnet: string;
  gateway: string;
}

export const bypassComment = (stack: string): string => `wharf-lab:${stack}:chain-bypass`;

/** iptables argv (after `-t TABLE -I|-C|-D`) per rule: [table, chain, ...match and target]. */
export function bridgeBypassRules(stack: string, bridges: ChainBridge[]): string[][] {
  const tag = ['-m', 'comment', '--comment', bypassComment(stack)];
  return bridges.flatMap((b) => [
    // order in the chain (each is inserted at the top, so the last listed ends up first):
    ['raw', 'PREROUTING', '-i', b.bridge, '-s', b.subnet, '-d', b.subnet, ...tag, '-j', 'NOTRACK'],
    ['raw', 'PREROUTING', '-i', b.bridge, '-d', b.gateway, ...tag, '-j', 'RETURN'],
    ['filter', 'DOCKER-USER', '-i', b.bridge, '-o', b.bridge, ...tag, '-j', 'ACCEPT'],
  ]);
}

const iptables = (args: string[]) =>
  spawnSync('iptables', ['-w', '5', ...args], { encoding: 'utf8', timeout: 15_000 });

/**
 * Insert the rules that are not there yet. Best effort: without root or iptables the lab still
 * works (only slower through the chain): false, and the reason is logged.
 */
export function applyBridgeBypass(stack: string, bridges: ChainBridge[], log: (l: string) => void): boolean {
  for (const [table, chain, ...spec] of bridgeBypassRules(stack, bridges)) {
    if (iptables(['-t', table!, '-C', chain!, ...spec]).status === 0) continue;
    const r = iptables(['-t', table!, '-I', chain!, ...spec]);
    if (r.status !== 0) {
      log(
        `warning: host netfilter bypass for the chain bridges not set (${table} ${chain}): ${(r.stderr || r.error?.message || '').trim().split('\n')[0]} — the chain is slower than it needs to be`,
      );
      return false;
    }
  }
  return true;
}

/**
 * The delete commands for every rule `iptables -S` lists with this stack's comment (iptables-nft
 * prints the comment in double quotes; our tags have no spaces, so splitting on blanks is exact).
 */
export function bypassDeletes(stack: string, table: string, listing: string): string[][] {
  const tag = bypassComment(stack);
  return listing
    .split('\n')
    .map((l) =>
      l
        .trim()
        .split(/\s+/)
        .map((w) => w.replace(/^"(.*)"$/, '$1')),
    )
    .filter((w) => w[0] === '-A' && w.includes(tag))
    .map((w) => ['-t', table, '-D', ...w.slice(1)]);
}

/** Remove this stack's rules (lab down); nothing to do without iptables. */
export function removeBridgeBypass(stack: string, log: (l: string) => void): void {
  for (const table of ['raw', 'filter']) {
    const list = iptables(['-t', table, '-S']);
    if (list.status !== 0) return;
    for (const del of bypassDeletes(stack, table, list.stdout)) {
      const r = iptables(del);
      if (r.status !== 0) log(`warning: could not remove host rule ${del.join(' ')}: ${r.stderr.trim()}`);
    }
  }
}
