// The stack's shared secrets, kept on the operator's machine (never in git, never printed):
// one set of SFTP host keys for every SFTP node (pitfall 11) and the replication key pair.
import { chmodSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ensureKeyPair } from './keys.ts';
import { expandHome } from '../transport/ssh.ts';
import type { Inventory } from '../topology/inventory.ts';
import type { Topology } from '../topology/model.ts';

export const HOST_KEY_TYPES = ['ed25519', 'rsa', 'ecdsa'] as const;

export interface KeyPair {
  private: string;
  public: string;
}

export interface StackSecrets {
  dir: string;
  hostKeys: Record<(typeof HOST_KEY_TYPES)[number], KeyPair>;
  /** lsyncd (main → sub) and the backup pull (backup ← sub) log in with this key as the sync user. */
  replication: KeyPair;
}

export const secretsDirOf = (t: Topology, inv: Inventory): string =>
  resolve(expandHome(inv.secretsDir ?? join('.wharf', 'secrets', t.name)));

const pair = (file: string): KeyPair => ({
  private: readFileSync(file, 'utf8'),
  public: readFileSync(`${file}.pub`, 'utf8').trim(),
});

/** Load the stack's secrets, generating the missing ones (idempotent; side effect on this machine). */
export function ensureStackSecrets(t: Topology, inv: Inventory): StackSecrets {
  const dir = secretsDirOf(t, inv);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  for (const type of HOST_KEY_TYPES)
    ensureKeyPair(join(dir, `ssh_host_${type}_key`), type, `wharf-${t.name}-sftp`);
  ensureKeyPair(join(dir, 'replication_ed25519'), 'ed25519', `wharf-${t.name}-replication`);
  return {
    dir,
    hostKeys: {
      ed25519: pair(join(dir, 'ssh_host_ed25519_key')),
      rsa: pair(join(dir, 'ssh_host_rsa_key')),
      ecdsa: pair(join(dir, 'ssh_host_ecdsa_key')),
    },
    replication: pair(join(dir, 'replication_ed25519')),
  };
}

/** known_hosts lines for the shared SFTP host keys at the given host[:port] names. */
export function sftpKnownHosts(s: StackSecrets, hosts: string[]): string {
  const lines: string[] = [];
  for (const h of hosts)
    for (const type of HOST_KEY_TYPES) {
      const [kt, data] = s.hostKeys[type].public.split(/\s+/);
      lines.push(`${h} ${kt} ${data}`);
    }
  return lines.join('\n') + '\n';
}
