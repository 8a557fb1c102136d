// Running clients ON the lab's wan-client node (the internet side): bash scripts over its
// management ssh, and the demo user's key + the shared host key installed there for OpenSSH's
// own ssh/sftp, which then connect to the WAN entry (the router's WAN address).
import { readFileSync } from 'node:fs';
import type { ScenarioLab } from './lab.ts';

export const WAN_CLIENT = 'wan-client';

/** A bash script on wan-client (the transport's own shell is sh: no /dev/tcp there). */
export const onWan = (lab: ScenarioLab, script: string, timeoutMs = 60_000) =>
  lab.transports.get(WAN_CLIENT)!.exec(['bash', '-c', script], { timeoutMs });

/** The frontend port clients upload through (write, else the first frontend). */
export function entryPort(lab: ScenarioLab): number {
  const t = lab.t;
  return t.haproxy.frontends.write?.port ?? Object.values(t.haproxy.frontends)[0]!.port;
}

/**
 * Put the demo user's key and a known_hosts pinning the shared host key for the entry into `dir`
 * on wan-client; returns the ssh/sftp options that use them (key only, host key checked).
 */
export async function installClientKey(lab: ScenarioLab, dir: string): Promise<string> {
  const wan = lab.transports.get(WAN_CLIENT)!;
  const own = { mode: 0o600, owner: 'root', group: 'root' };
  const entry = lab.status.direct.host;
  await onWan(lab, `mkdir -p -m 700 ${dir}`);
  await wan.writeFileAtomic(`${dir}/key`, readFileSync(lab.status.demoUser.privateKey), {
    ...own,
    secret: true,
  });
  await wan.writeFileAtomic(`${dir}/known_hosts`, `[${entry}]:${entryPort(lab)} ${lab.hostKey}\n`, own);
  return [
    `-i ${dir}/key`,
    '-o IdentitiesOnly=yes',
    '-o PasswordAuthentication=no',
    '-o KbdInteractiveAuthentication=no',
    '-o StrictHostKeyChecking=yes',
    `-o UserKnownHostsFile=${dir}/known_hosts`,
    '-o GlobalKnownHostsFile=/dev/null',
    '-o ConnectTimeout=10',
  ].join(' ');
}
