// HAProxy runtime API (stats socket, level admin): the commands failover and failback send, and a
// parser for `show stat`. Pure.
import type { Topology } from '../topology/model.ts';
import { shQuote } from '../exec/index.ts';

export type ServerAdminState = 'ready' | 'drain' | 'maint';

/** Backends that have `node` as a server. */
export function backendsOf(t: Topology, node: string): string[] {
  return Object.entries(t.haproxy.backends)
    .filter(([, b]) => b.servers.some((s) => s.node === node))
    .map(([name]) => name);
}

/** `set server <backend>/<node> state <state>` for every backend containing node. */
export function serverStateCommands(t: Topology, node: string, state: ServerAdminState): string[] {
  return backendsOf(t, node).map((b) => `set server ${b}/${node} state ${state}`);
}

/** Cut every session still open to node (after a bounded wait for them to end). */
export function shutdownSessionsCommands(t: Topology, node: string): string[] {
  return backendsOf(t, node).map((b) => `shutdown sessions server ${b}/${node}`);
}

export interface StatRow {
  proxy: string;
  server: string;
  /** Current sessions. */
  scur: number;
  /** UP, DOWN, MAINT, DRAIN, `UP 1/2`, `no check`… */
  status: string;
  /** Seconds since the last status change (lastchg). */
  lastchg: number;
}

/** `show stat` CSV → server rows (FRONTEND/BACKEND aggregate rows left out). */
export function parseStat(csv: string): StatRow[] {
  return csv
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(','))
    .filter((f) => f.length > 17 && f[1] !== 'FRONTEND' && f[1] !== 'BACKEND')
    .map((f) => ({
      proxy: f[0]!,
      server: f[1]!,
      scur: Number(f[4]) || 0,
      status: f[17] ?? '',
      lastchg: Number(f[23]) || 0,
    }));
}

/** Sessions still open to node, over all its backends. */
export function sessionsOf(rows: StatRow[], t: Topology, node: string): number {
  const bs = new Set(backendsOf(t, node));
  return rows.filter((r) => r.server === node && bs.has(r.proxy)).reduce((n, r) => n + r.scur, 0);
}

/**
 * When HAProxy noticed node was lost: now − lastchg for a DOWN server (its health checks failed),
 * else undefined. Epoch ms.
 */
export function lostAt(rows: StatRow[], t: Topology, node: string, now: number): number | undefined {
  const bs = new Set(backendsOf(t, node));
  const down = rows.filter((r) => r.server === node && bs.has(r.proxy) && r.status.startsWith('DOWN'));
  if (!down.length) return undefined;
  return now - Math.max(...down.map((r) => r.lastchg)) * 1000;
}

/** Status of node in every backend containing it ({backend: status}). */
export function statusOf(rows: StatRow[], t: Topology, node: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const b of backendsOf(t, node)) {
    // an HAProxy pair lists each server once per node: one status when they agree, else every
    // distinct one, the not-UP first (`MAINT/UP`: not in rotation everywhere, not yet maint everywhere)
    const st = [...new Set(rows.filter((r) => r.proxy === b && r.server === node).map((r) => r.status))];
    st.sort((x, y) => Number(x.startsWith('UP')) - Number(y.startsWith('UP')));
    out[b] = st.length ? st.join('/') : 'absent';
  }
  return out;
}

/**
 * The shell line that sends commands to the socket in one connection (`;`-separated). UNIX-CONNECT:
 * a bare path is socat's GOPEN, which on a missing socket creates a plain file, writes the commands
 * into it and exits 0: a runtime API call that never reached HAProxy would look done.
 */
export function socatLine(socket: string, commands: string[]): string {
  return `echo ${shQuote(commands.join('; '))} | socat -t 5 stdio UNIX-CONNECT:${shQuote(socket)}`;
}
