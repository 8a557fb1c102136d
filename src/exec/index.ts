// The exec layer: every process wharf starts goes through zx here.
// - `$`: zx's `$` for local commands (POSIX sh, wharf's quoter, quiet).
// - `runLine`: one finished shell line → how it ended (the transports build on it; swappable spawn).
// - `hostShell`: the `host.$` tagged template that SshTransport and LocalTransport expose.
// - `shQuote` / `shJoin` / `shCommand`: the one quoter.
export {
  $,
  runLine,
  sleep,
  ProcessOutput,
  type ProcessPromise,
  type Spawn,
  type LineResult,
} from './process.ts';
export { hostShell, HostCommand, type HostShell, type ShellOptions, type ShellResult } from './template.ts';
export { shQuote, shJoin, shCommand, type ShellArg } from './quote.ts';
