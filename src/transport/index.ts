export * from './types.ts';
export { shQuote, shJoin } from './quote.ts';
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
export { checkArgv } from './shell.ts';
