// Secrets (passwords, private keys, secret file contents) must never reach output, journal or
// errors. Everything shown to a person passes through `mask`. Pure.

export const MASK = '«secret»';

/**
 * Replace every occurrence of each secret in `text`. Multi-line secrets (keys) are also masked
 * line by line, so a diff or a partial echo of a key does not leak its lines either.
 */
export function mask(text: string, secrets: readonly (string | Buffer)[]): string {
  if (!text) return text;
  let out = text;
  for (const n of needlesOf(secrets)) if (out.includes(n)) out = out.split(n).join(MASK);
  return out;
}

/**
 * The strings to mask, longest first (so a whole key is masked as one piece before its lines are),
 * computed once per secrets list: a run masks every journal line and progress line with the same
 * list (150 users' password hashes: 0.4 ms a line without the cache).
 */
const cache = new WeakMap<readonly (string | Buffer)[], { key: string; needles: string[] }>();
function needlesOf(secrets: readonly (string | Buffer)[]): string[] {
  // the key notices a list changed in place (pushed to, or an element replaced by one of another length)
  const key = `${secrets.length}:${secrets.reduce((n, s) => n + s.length, 0)}`;
  const hit = cache.get(secrets);
  if (hit && hit.key === key) return hit.needles;
  const set = new Set<string>();
  for (const s of secrets) {
    const str = typeof s === 'string' ? s : s.toString('utf8');
    if (str.length < 4) continue; // masking tiny strings would garble every output
    set.add(str);
    for (const line of str.split('\n')) if (line.trim().length >= 8) set.add(line.trim());
  }
  const needles = [...set].sort((a, b) => b.length - a.length);
  cache.set(secrets, { key, needles });
  return needles;
}
