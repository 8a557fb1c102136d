// Preflight: before any change anywhere, every host must be reachable, run privileged commands
// non-interactively, be Debian 12 and have enough free disk. One round trip per host (plus one for
// reachability without sudo).
import { shJoin } from '../exec/index.ts';
import { RunError } from '../core/errors.ts';
import type { Transport } from '../transport/types.ts';

export interface PreflightOptions {
  /** Required /etc/os-release ID and VERSION_ID. Default debian 12. */
  os?: { id: string; versionId: string };
  /** Minimum free space on each path, MiB. Default / ≥ 500 MiB. */
  minFreeMiB?: number;
  paths?: string[];
  timeoutMs?: number;
}

export interface PreflightResult {
  host: string;
  ok: boolean;
  problems: string[];
  durationMs: number;
}

/** Parse `/etc/os-release` (KEY=value, optionally quoted). Pure. */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!.replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1');
  }
  return out;
}

/** Free KiB per mount from `df -Pk` output (one line per path, header skipped). Pure. */
export function parseDf(text: string): Array<{ mount: string; availKiB: number }> {
  return text
    .split('\n')
    .slice(1)
    .filter((l) => l.trim())
    .map((l) => {
      const f = l.trim().split(/\s+/);
      return { mount: f[5] ?? '?', availKiB: Number(f[3]) };
    });
}

export async function preflightHost(t: Transport, o: PreflightOptions = {}): Promise<PreflightResult> {
  const t0 = Date.now();
  const timeoutMs = o.timeoutMs ?? 30_000;
  const problems: string[] = [];
  const done = () => ({ host: t.host, ok: problems.length === 0, problems, durationMs: Date.now() - t0 });
  try {
    const r = await t.exec('true', { sudo: false, timeoutMs });
    if (r.code !== 0)
      problems.push(`unreachable: a shell command failed (exit ${r.code}) ${r.stderr.trim()}`);
  } catch (e) {
    problems.push(`unreachable: ${(e as Error).message}`);
    return done();
  }
  if (problems.length) return done();
  const paths = o.paths ?? ['/'];
  const sep = '@@wharf-df';
  let r;
  try {
    r = await t.exec(`cat /etc/os-release; echo ${sep}; df -Pk ${shJoin(paths)}`, { timeoutMs });
  } catch (e) {
    problems.push(`privileged command failed: ${(e as Error).message}`);
    return done();
  }
  if (r.code !== 0 && !r.stdout.includes(sep)) {
    const s = r.stderr.trim();
    problems.push(
      /sudo|password/i.test(s)
        ? `sudo does not work non-interactively: ${s}`
        : `privileged command failed (exit ${r.code}): ${s}`,
    );
    return done();
  }
  const [osText, dfText = ''] = r.stdout.split(`${sep}\n`);
  const osr = parseOsRelease(osText ?? '');
  const want = o.os ?? { id: 'debian', versionId: '12' };
  if (osr.ID !== want.id || osr.VERSION_ID !== want.versionId)
    problems.push(
      `not ${want.id} ${want.versionId}: /etc/os-release says ${osr.PRETTY_NAME ?? `${osr.ID} ${osr.VERSION_ID}`}`,
    );
  const minKiB = (o.minFreeMiB ?? 500) * 1024;
  const df = parseDf(dfText);
  if (df.length < paths.length) problems.push(`df failed: ${r.stderr.trim()}`);
  for (const d of df)
    if (!(d.availKiB >= minKiB))
      problems.push(
        `low disk: ${Math.floor(d.availKiB / 1024)} MiB free on ${d.mount}, need ${o.minFreeMiB ?? 500} MiB`,
      );
  return done();
}

/** Preflight all hosts concurrently; throws RunError listing every failing host and reason. */
export async function preflight(
  transports: Iterable<Transport>,
  o: PreflightOptions = {},
): Promise<PreflightResult[]> {
  const results = await Promise.all([...transports].map((t) => preflightHost(t, o)));
  const bad = results.filter((r) => !r.ok);
  if (bad.length)
    throw new PreflightError(
      bad,
      `preflight failed, nothing was changed:\n${bad.map((b) => b.problems.map((p) => `  ${b.host}: ${p}`).join('\n')).join('\n')}`,
    );
  return results;
}

export class PreflightError extends RunError {
  constructor(
    readonly results: PreflightResult[],
    message: string,
  ) {
    super(message);
    this.name = 'PreflightError';
  }
}
