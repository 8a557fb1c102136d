// Every HAProxy of the stack as one transport, for the runbooks that change HAProxy's runtime state
// (failover, failback, restore's guard, watch): a server put in maint is put in maint on both nodes
// of a pair, the failover record and the "needs reconcile" mark are written on both.
import { shQuote } from '../exec/index.ts';
import type { Inventory } from '../topology/inventory.ts';
import { haproxyNodes, vipAddress, type Topology } from '../topology/model.ts';
import {
  TransportError,
  type ExecOptions,
  type ExecResult,
  type FileStat,
  type Transport,
  type WriteOptions,
} from '../transport/types.ts';

/**
 * The HAProxy node(s) as one Transport. One node: that node's transport itself. A pair:
 * - exec runs on every node; the first non-zero exit is the result (so `must` names that node),
 *   else the outputs joined in node order (`show stat` rows of both: sessions add up, a server's
 *   status is the first node's). A node that cannot be reached at all (ssh fails) is skipped and
 *   named in `skipped` as long as another node answered: an unplanned failover must not wait for
 *   a dead HAProxy node; its agent takes the outage from the peer's stick table when it returns.
 * - readFile / stat: the first node that has the file (a record on either node is a record).
 * - writeFileAtomic: on every reachable node.
 */
export interface HaproxyGroup extends Transport {
  readonly members: readonly Transport[];
  /** Nodes skipped because they could not be reached (ssh), with why. */
  readonly skipped: Map<string, string>;
}

export function haproxyGroup(
  t: Topology,
  get: (node: string) => Transport | undefined,
): HaproxyGroup | Transport {
  const members = haproxyNodes(t)
    .map((n) => get(n))
    .filter((x): x is Transport => !!x);
  if (members.length === 0) throw new Error('no HAProxy node in the inventory');
  if (members.length === 1) return members[0]!;
  return new Group(members);
}

class Group implements HaproxyGroup {
  readonly skipped = new Map<string, string>();
  readonly host: string;
  constructor(readonly members: readonly Transport[]) {
    this.host = members.map((m) => m.host).join('+');
  }

  /** Run on every member; unreachable ones are skipped unless none answered. */
  private async all<T>(f: (m: Transport) => Promise<T>): Promise<{ m: Transport; v: T }[]> {
    const rs = await Promise.allSettled(this.members.map((m) => f(m)));
    const ok: { m: Transport; v: T }[] = [];
    let firstErr: unknown;
    rs.forEach((r, i) => {
      const m = this.members[i]!;
      if (r.status === 'fulfilled') ok.push({ m, v: r.value });
      else if (r.reason instanceof TransportError && r.reason.name === 'TransportError') {
        this.skipped.set(m.host, (r.reason as Error).message);
        firstErr ??= r.reason;
      } else throw r.reason;
    });
    if (!ok.length) throw firstErr ?? new Error(`${this.host}: no HAProxy node answered`);
    return ok;
  }

  async exec(cmd: string | readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    const rs = await this.all((m) => m.exec(cmd, opts));
    // ssh's own failure (255) is "unreachable" too, when another node ran the command
    const ran = rs.filter((r) => r.v.code !== 255);
    for (const r of rs) if (r.v.code === 255 && ran.length) this.skipped.set(r.m.host, r.v.stderr.trim());
    const use = ran.length ? ran : rs;
    const failed = use.find((r) => r.v.code !== 0);
    if (failed) return failed.v;
    const stdout = use.map((r) => r.v.stdout).join(use.length > 1 ? '\n' : '');
    return {
      stdout,
      stderr: use.map((r) => r.v.stderr).join(''),
      code: 0,
      stdoutBuffer: Buffer.from(stdout),
    };
  }

  async readFile(path: string): Promise<Buffer | null> {
    const rs = await this.all((m) => m.readFile(path));
    return rs.find((r) => r.v !== null)?.v ?? null;
  }

  async stat(path: string): Promise<FileStat | null> {
    const rs = await this.all((m) => m.stat(path));
    return rs.find((r) => r.v !== null)?.v ?? null;
  }

  async writeFileAtomic(path: string, content: string | Buffer, opts: WriteOptions): Promise<void> {
    await this.all((m) => m.writeFileAtomic(path, content, opts));
  }

  async close(): Promise<void> {
    /* the members belong to the caller */
  }
}

/** The shell test that exits 0 on the node holding the floating address. */
export const holdsVipCommand = (vip: string): string =>
  `ip -o -4 addr show | awk -v a=${shQuote(vip)} '{ split($4, p, "/"); if (p[1] == a) f = 1 } END { exit f ? 0 : 1 }'`;

/**
 * Which HAProxy node holds the floating address now (the pair's VRRP master): `node` is undefined
 * when none answers that it does; `unreachable` names each node that could not be asked (and why),
 * so "nobody holds it" is never claimed about a node nobody reached. With one HAProxy (no pair):
 * that node.
 */
export async function activeHaproxy(
  t: Topology,
  inv: Inventory,
  get: (node: string) => Transport | undefined,
): Promise<{ node: string | undefined; holders: string[]; unreachable: string[] }> {
  const nodes = haproxyNodes(t);
  if (!t.haproxy.pair.enabled) return { node: nodes[0], holders: nodes.slice(0, 1), unreachable: [] };
  const vip = vipAddress(t, inv);
  const holders: string[] = [];
  const unreachable: string[] = [];
  await Promise.all(
    nodes.map(async (n) => {
      const tr = get(n);
      if (!tr) return void unreachable.push(`${n} (not in the inventory)`);
      try {
        const r = await tr.exec(holdsVipCommand(vip), { timeoutMs: 10_000 });
        if (r.code === 0) holders.push(n);
        else if (r.code === 255)
          unreachable.push(`${n} (ssh: ${r.stderr.trim().split('\n').pop() || 'exit 255'})`);
      } catch (e) {
        unreachable.push(`${n} (${(e as Error).message})`);
      }
    }),
  );
  holders.sort();
  unreachable.sort();
  return { node: holders[0], holders, unreachable };
}
