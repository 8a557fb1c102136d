// POSIX shell quoting: every remote command is sent to ssh as ONE string, so each argument is
// wrapped in single quotes (a quote inside becomes '\''). Pure.

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
