export * from './types.ts';
export { shQuote, shJoin } from '../exec/index.ts';
export { mask, MASK } from './mask.ts';
export {
  SshTransport,
  sshTransports,
  sshArgs,
  remoteCommand,
  expandHome,
  closeAll,
  type SshOptions,
} from './ssh.ts';
export { LocalTransport } from './local.ts';
export { checkArgv, shell } from './shell.ts';
export type { HostShell, ShellOptions } from '../exec/template.ts';
