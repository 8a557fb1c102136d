// The one shell quoter. Every command wharf runs is a POSIX `sh` line: locally through zx's `$`
// (configured with this quoter) and remotely as ONE string handed to ssh. zx's own `quote` writes
// bash's `$'…'` form, which Debian's /bin/sh (dash) reads as a literal `$` followed by a string,
// so it cannot be used for commands run by `sh -c` or by `timeout … sh -c` on a host. Pure.

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** Quote one argument for a POSIX shell. Safe words are left as they are, for readable logs. */
export function shQuote(arg: string): string {
  if (arg === '') return "''";
  if (SAFE.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** Join argv into one shell command line. A string is taken as an already-written shell command. */
export function shJoin(cmd: string | readonly string[]): string {
  return typeof cmd === 'string' ? cmd : cmd.map(shQuote).join(' ');
}

/** What a template interpolation may be: a word, a number, or a list of words (several args). */
export type ShellArg = string | number | boolean | readonly (string | number | boolean)[];

/**
 * A tagged template's pieces and values as one command line, the way zx builds it: every value is
 * quoted, an array becomes several quoted arguments. The literal parts are shell syntax.
 */
export function shCommand(
  pieces: TemplateStringsArray | readonly string[],
  args: readonly ShellArg[],
): string {
  let cmd = pieces[0] ?? '';
  args.forEach((a, i) => {
    cmd +=
      (Array.isArray(a) ? a.map((x) => shQuote(String(x))).join(' ') : shQuote(String(a))) + pieces[i + 1];
  });
  return cmd;
}
