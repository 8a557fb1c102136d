// ssh-keygen in one place: the stack's shared SFTP host keys and replication key
// (src/stack/secrets.ts) and the lab's management keys (src/lab/state.ts). A pair appears whole or
// not at all: it is written under temp names, then renamed.
import { existsSync, renameSync, rmSync } from 'node:fs';
import { RunError } from '../core/errors.ts';
import { $ } from '../exec/index.ts';

export type KeyType = 'ed25519' | 'ecdsa' | 'rsa';

/** Generate FILE and FILE.pub (no passphrase) unless both exist. Idempotent. */
export function ensureKeyPair(file: string, type: KeyType, comment: string): void {
  if (existsSync(file) && existsSync(`${file}.pub`)) return;
  const tmp = `${file}.tmp`;
  rmSync(tmp, { force: true });
  rmSync(`${tmp}.pub`, { force: true });
  const bits = type === 'rsa' ? ['-b', '3072'] : [];
  const r = $({
    sync: true,
    nothrow: true,
  })`ssh-keygen -q -t ${type} ${bits} -N ${''} -C ${comment} -f ${tmp}`;
  if (r.exitCode !== 0)
    throw new RunError(`cannot generate a ${type} key ${file} with ssh-keygen: ${r.stderr.trim()}`);
  renameSync(`${tmp}.pub`, `${file}.pub`);
  renameSync(tmp, file);
}
