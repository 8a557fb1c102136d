// Small helpers shared by the renderers: file records, headers, quoting, the check commands.
import type { CheckCommand, RenderedFile } from './types.ts';
import type { Topology } from '../topology/model.ts';
import { shQuote } from '../exec/quote.ts';

/** A header line saying who wrote the file, in the file's comment syntax. Deterministic. */
export function header(t: Topology, comment = '#'): string {
  return `${comment} Rendered by wharf for stack "${t.name}". Do not edit by hand: the next configure run overwrites it.\n`;
}

export function file(
  path: string,
  content: string,
  opts: Partial<Omit<RenderedFile, 'path' | 'content'>> = {},
): RenderedFile {
  return { path, content, mode: 0o644, owner: 'root', group: 'root', ...opts };
}

/** Join lines and end the text with exactly one newline. */
export const lines = (...xs: Array<string | false | undefined | null>): string =>
  xs.filter((x): x is string => typeof x === 'string').join('\n') + '\n';

/** POSIX shell single-quote: the exec layer's one quoter, under the renderers' short name. */
export const shq = shQuote;

/** A Lua string literal. */
export const luaStr = (s: string): string =>
  '"' +
  s.replace(
    /[\\"\n\r\t]/g,
    (c) => ({ '\\': '\\\\', '"': '\\"', '\n': '\\n', '\r': '\\r', '\t': '\\t' })[c]!,
  ) +
  '"';

/**
 * `systemd-analyze verify` needs the file under its unit name, so the check copies the candidate
 * (a temp name during an atomic write) into a private directory first. Units next to the candidate
 * (e.g. the service a timer starts) are found through SYSTEMD_UNIT_PATH. verify exits 0 on unknown
 * keys and unparsable values (it only warns "…, ignoring"): any warning about the file fails too.
 */
export function unitCheck(unitName: string): CheckCommand {
  const script = [
    'd=$(mktemp -d) || exit 1',
    `u="$d/${unitName}"`,
    'cp "$1" "$u" || { rm -rf "$d"; exit 1; }',
    'out=$(SYSTEMD_UNIT_PATH="$d:$(dirname "$1"):" systemd-analyze verify --man=no "$u" 2>&1)',
    'r=$?',
    'rm -rf "$d"',
    '[ -n "$out" ] && printf "%s\\n" "$out"',
    '[ $r -eq 0 ] || exit $r',
    'case "$out" in *"$u:"*) exit 1 ;; esac',
    'exit 0',
  ].join('; ');
  return { name: 'systemd-analyze verify', argv: ['sh', '-c', script, 'sh', '{}'] };
}

export const CHECKS = {
  haproxy: { name: 'haproxy -c', argv: ['haproxy', '-dW', '-c', '-f', '{}'] },
  sshd: { name: 'sshd -t', argv: ['sshd', '-t', '-f', '{}'] },
  nft: { name: 'nft -c', argv: ['nft', '-c', '-f', '{}'] },
  bash: { name: 'bash -n', argv: ['bash', '-n', '{}'] },
  visudo: { name: 'visudo -c', argv: ['visudo', '-c', '-f', '{}'] },
} satisfies Record<string, CheckCommand>;
