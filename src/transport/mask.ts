// Secrets (passwords, private keys, secret file contents) must never reach output, journal or
// errors. Everything shown to a person passes through `mask`. Pure.

export const MASK = '«secret»';

/**
 * Replace every occurrence of each secret in `text`. Multi-line secrets (keys) are also masked
 * line by line, so a diff or a partial echo of a key does not leak its lines either.
 */
export function mask(text: string, secrets: readonly (string | Buffer)[]): string {
  if (!text) return text;
  const needles = new Set<string>();
  for (const s of secrets) {
    const str = typeof s === 'string' ? s : s.toString('utf8');
    if (str.length < 4) continue; // masking tiny strings would garble every output
    needles.add(str);
    for (const line of str.split('\n')) if (line.trim().length >= 8) needles.add(line.trim());
  }
  let out = text;
  // Longest first so a whole key is masked as one piece before its lines are.
  for (const n of [...needles].sort((a, b) => b.length - a.length)) out = out.split(n).join(MASK);
  return out;
}
