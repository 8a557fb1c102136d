// The lab's generated state, in a git-ignored folder `.wharf/lab/<stack>/`: the management key
// pair, pre-generated host keys (so known_hosts is written before any node boots), the demo user's
// credentials, ssh_config, known_hosts, inventory.yaml and state.json.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { RunError } from '../core/errors.ts';
import { randomBytes } from 'node:crypto';
import { $ } from 'zx';
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

/** Is the process alive? A zombie (killed, not yet reaped) counts as dead. */
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
};

/**
 * One `lab up`/`lab down` per stack at a time: an exclusive lock file next to the state folder
 * (it survives `down`). A lock whose process is dead (e.g. `kill -9`) is taken over.
 */
export function lockLab(stack: string): () => void {
  const file = `${stateDir(stack)}.lock`;
  mkdirSync(dirname(file), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx' });
      return () => rmSync(file, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number(readFileSync(file, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && alive(pid)) {
        throw new RunError(
          `another wharf lab command (pid ${pid}) is working on the lab "${stack}"; wait for it`,
        );
      }
      rmSync(file, { force: true }); // stale: its process is gone
    }
  }
  throw new RunError(`cannot take the lab lock ${file}`);
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

async function keygen(file: string, type: 'ed25519' | 'ecdsa' | 'rsa', comment: string): Promise<void> {
  if (existsSync(file) && existsSync(`${file}.pub`)) return;
  rmSync(file, { force: true });
  rmSync(`${file}.pub`, { force: true });
  const bits = type === 'rsa' ? ['-b', '3072'] : [];
  await $({ quiet: true })`ssh-keygen -q -t ${type} ${bits} -N ${''} -C ${comment} -f ${file}`;
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
  const jobs: Promise<void>[] = [keygen(f.identity, 'ed25519', `wharf-lab-${stack}`)];
  const hostKeyDirs: Record<string, string> = {};
  // Same names as src/stack/secrets.ts uses: the lab inventory's secretsDir points here.
  const shared = secretsDir(stack);
  mkdirSync(shared, { recursive: true });
  for (const t of ['ed25519', 'ecdsa', 'rsa'] as const) {
    jobs.push(keygen(join(shared, `ssh_host_${t}_key`), t, `wharf-${stack}-sftp`));
  }
  for (const n of nodes) {
    if (n.kind === 'sftp') {
      hostKeyDirs[n.name] = shared;
      continue;
    }
    const dir = join(f.stateDir, 'hostkeys', n.name);
    mkdirSync(dir, { recursive: true });
    hostKeyDirs[n.name] = dir;
    jobs.push(keygen(join(dir, 'ssh_host_ed25519_key'), 'ed25519', `wharf-${stack}-${n.name}`));
  }
  const demoKey = join(f.stateDir, `${demoName}_ed25519`);
  jobs.push(keygen(demoKey, 'ed25519', `${demoName}@wharf-lab-${stack}`));
  await Promise.all(jobs);

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
