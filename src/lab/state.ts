// The lab's generated state, in a git-ignored folder `.wharf/lab/<stack>/`: the management key
// pair, pre-generated host keys (so known_hosts is written before any node boots), the demo user's
// credentials, ssh_config, known_hosts, inventory.yaml and state.json.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { acquireLock } from '../runbook/lock.ts';
import { ensureKeyPair } from '../stack/keys.ts';
import { randomBytes } from 'node:crypto';
import { $ } from '../exec/index.ts';
import type { LabPorts, SshNames } from './plan.ts';

export const REPO_ROOT = resolve(new URL('../../', import.meta.url).pathname);

export function stateDir(stack: string): string {
  const base = process.env.WHARF_LAB_STATE ?? join(REPO_ROOT, '.wharf', 'lab');
  return join(base, stack);
}

/** The stack's secrets folder for the lab (the shared SFTP host keys live here from the start). */
export const secretsDir = (stack: string) => join(stateDir(stack), 'secrets');

export function sshNames(stack: string): SshNames {
  const dir = stateDir(stack);
  return {
    stateDir: dir,
    identity: join(dir, 'id_ed25519'),
    sshConfig: join(dir, 'ssh_config'),
    knownHosts: join(dir, 'known_hosts'),
  };
}

export interface DemoUser {
  name: string;
  password: string;
  /** SHA-512 crypt of the password (what the configure runbook puts in /etc/shadow). */
  passwordHash: string;
  privateKey: string;
  publicKey: string;
}

export interface LabState {
  stack: string;
  topologyFile: string;
  createdAt: string;
  ports: LabPorts;
  routerWan: string;
  nodes: Record<string, { container: string; kind: string; role?: string }>;
  demoUser: DemoUser;
}

export const statePath = (stack: string) => join(stateDir(stack), 'state.json');

/**
 * One `lab up`/`lab down` per stack at a time: the runbook engine's stack lock (src/runbook/lock.ts)
 * on a file next to the state folder (it survives `down`). A lock whose process is dead (e.g.
 * `kill -9`) is taken over.
 */
export function lockLab(stack: string, command: 'lab up' | 'lab down'): () => void {
  const dir = stateDir(stack);
  const lock = acquireLock(dirname(dir), basename(dir), command);
  return () => lock.release();
}

export function readState(stack: string): LabState | null {
  try {
    return JSON.parse(readFileSync(statePath(stack), 'utf8')) as LabState;
  } catch {
    return null;
  }
}

export function writeFileMode(path: string, content: string, mode = 0o644): void {
  // Write then rename: a reader (or a `kill -9`) never sees half a file.
  writeFileSync(path + '.tmp', content, { mode });
  renameSync(path + '.tmp', path);
}

export function removeState(stack: string): void {
  rmSync(stateDir(stack), { recursive: true, force: true });
}

export interface LabKeys {
  /** The operator's key (root on every node). */
  identity: string;
  identityPub: string;
  /** node → directory with its ssh_host_*_key files. */
  hostKeyDirs: Record<string, string>;
  /** node → public host key line (ed25519). */
  hostKeys: Record<string, string>;
  demoUser: DemoUser;
}

/**
 * Keys are reused while the state folder exists (a warm `up` keeps known_hosts valid). The SFTP
 * nodes share one host key set (`secrets/`, the lab inventory's secretsDir): clients behind HAProxy
 * must see the same keys on every node, and the management known_hosts stays valid when the
 * configure runbook installs that same set into the topology's hostKeyDir.
 */
export async function ensureKeys(
  stack: string,
  nodes: { name: string; kind: string }[],
  demoName: string,
): Promise<LabKeys> {
  const f = sshNames(stack);
  mkdirSync(f.stateDir, { recursive: true, mode: 0o700 });
  ensureKeyPair(f.identity, 'ed25519', `wharf-lab-${stack}`);
  const hostKeyDirs: Record<string, string> = {};
  // Same names as src/stack/secrets.ts uses: the lab inventory's secretsDir points here.
  const shared = secretsDir(stack);
  mkdirSync(shared, { recursive: true });
  for (const t of ['ed25519', 'ecdsa', 'rsa'] as const) {
    ensureKeyPair(join(shared, `ssh_host_${t}_key`), t, `wharf-${stack}-sftp`);
  }
  for (const n of nodes) {
    if (n.kind === 'sftp') {
      hostKeyDirs[n.name] = shared;
      continue;
    }
    const dir = join(f.stateDir, 'hostkeys', n.name);
    mkdirSync(dir, { recursive: true });
    hostKeyDirs[n.name] = dir;
    ensureKeyPair(join(dir, 'ssh_host_ed25519_key'), 'ed25519', `wharf-${stack}-${n.name}`);
  }
  const demoKey = join(f.stateDir, `${demoName}_ed25519`);
  ensureKeyPair(demoKey, 'ed25519', `${demoName}@wharf-lab-${stack}`);

  const hostKeys: Record<string, string> = {};
  for (const n of nodes) {
    hostKeys[n.name] = readFileSync(join(hostKeyDirs[n.name]!, 'ssh_host_ed25519_key.pub'), 'utf8').trim();
  }
  const pwFile = join(f.stateDir, `${demoName}.password`);
  const hashFile = join(f.stateDir, `${demoName}.password-hash`);
  if (!existsSync(pwFile) || !existsSync(hashFile)) {
    const pw = randomBytes(12).toString('base64url');
    const hash = (await $({ quiet: true, input: pw + '\n' })`openssl passwd -6 -stdin`).stdout.trim();
    writeFileSync(pwFile, pw + '\n', { mode: 0o600 });
    writeFileSync(hashFile, hash + '\n', { mode: 0o600 });
  }
  return {
    identity: f.identity,
    identityPub: readFileSync(`${f.identity}.pub`, 'utf8').trim(),
    hostKeyDirs,
    hostKeys,
    demoUser: {
      name: demoName,
      password: readFileSync(pwFile, 'utf8').trim(),
      passwordHash: readFileSync(hashFile, 'utf8').trim(),
      privateKey: demoKey,
      publicKey: readFileSync(`${demoKey}.pub`, 'utf8').trim(),
    },
  };
}
