// When files reached a node, read in bulk: one `find -printf` over a tree gives every file's ctime
// (set when lsyncd's rsync renamed it into place: its arrival) and mtime (kept from the source by
// rsync -t: when it was written on main). Lab nodes share the host's kernel clock, so an arrival
// minus an upload's acknowledgement (taken on this host) is a replication lag without any polling.
import { shQuote } from '../src/exec/index.ts';
import type { ScenarioLab } from './lab.ts';

export interface FileTimes {
  /** Epoch ms of the file's last status change (its arrival on a replica). */
  ctimeMs: number;
  /** Epoch ms of its content's last change (kept from the source by rsync). */
  mtimeMs: number;
  size: number;
}

/** Shell: `ctime<TAB>mtime<TAB>size<TAB>path` for every file under root/rel (paths relative to root). */
export const fileTimesCommand = (root: string, rel: string, name = '*'): string =>
  `cd ${shQuote(root)} 2>/dev/null && [ -d ${shQuote(rel)} ] && find ${shQuote(rel)} -type f -name ${shQuote(name)} -printf '%C@\\t%T@\\t%s\\t%p\\n'; true`;

export function parseFileTimes(out: string): Map<string, FileTimes> {
  const m = new Map<string, FileTimes>();
  for (const line of out.split('\n')) {
    const [c, t, s, ...p] = line.split('\t');
    if (!p.length) continue;
    m.set(p.join('\t'), { ctimeMs: Number(c) * 1000, mtimeMs: Number(t) * 1000, size: Number(s) });
  }
  return m;
}

export async function fileTimes(
  lab: ScenarioLab,
  node: string,
  root: string,
  rel: string,
  name = '*',
): Promise<Map<string, FileTimes>> {
  const r = await lab.sh(node, fileTimesCommand(root, rel, name), 300_000);
  if (r.code !== 0) throw new Error(`listing ${root}/${rel} on ${node}: ${r.stderr.trim()}`);
  return parseFileTimes(r.stdout);
}
