// OpenSSH's own `sftp` (the client most users have) as a scenario client: batch mode, the demo
// user's key, the stack's shared host key pinned (StrictHostKeyChecking=yes), one TCP connection
// per call. Asynchronous, bounded by a timeout.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ScenarioLab } from './lab.ts';

/** Every SFTP node presents the same host keys: one known_hosts line under one alias covers all ports. */
export const HOST_KEY_ALIAS = 'wharf-sftp';

export function pinnedKnownHosts(lab: ScenarioLab, dir: string): string {
  const f = join(dir, 'known_hosts');
  writeFileSync(f, `${HOST_KEY_ALIAS} ${lab.hostKey.split(/\s+/).slice(0, 2).join(' ')}\n`);
  return f;
}

export interface SftpRun {
  /** sftp's exit code (batch mode: 1 when a command not prefixed with `-` failed). */
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** One `sftp -b -` session to host:port running the batch commands. */
export function sftpBatch(
  lab: ScenarioLab,
  o: { host: string; port: number; knownHosts: string; commands: string[]; timeoutMs?: number },
): Promise<SftpRun> {
  const args = [
    '-b',
    '-',
    '-i',
    lab.status.demoUser.privateKey,
    '-P',
    String(o.port),
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    `UserKnownHostsFile=${o.knownHosts}`,
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    `HostKeyAlias=${HOST_KEY_ALIAS}`,
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    'ConnectTimeout=10',
    '-o',
    'LogLevel=ERROR',
    `${lab.status.demoUser.name}@${o.host}`,
  ];
  const t0 = Date.now();
  return new Promise((resolve) => {
    const p = spawn('sftp', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const timer = setTimeout(() => p.kill('SIGKILL'), o.timeoutMs ?? 60_000);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr: stderr.trim(), ms: Date.now() - t0 });
    });
    p.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr: `sftp: ${e.message}`, ms: Date.now() - t0 });
    });
    p.stdin.end(o.commands.join('\n') + '\n');
  });
}

/** File names a batch `ls -1 DIR` printed (the echoed `sftp>` lines left out), without the folder. */
export const listedNames = (stdout: string): string[] =>
  stdout
    .split('\n')
    .filter((l) => l && !l.startsWith('sftp>'))
    .map((l) => l.trim().replace(/^.*\//, ''))
    .filter(Boolean);

export const sha256File = (path: string): string =>
  createHash('sha256').update(readFileSync(path)).digest('hex');

/** The first stderr lines, for a check's detail. */
export const firstLines = (s: string, n = 3): string => s.split('\n').slice(0, n).join(' | ');
