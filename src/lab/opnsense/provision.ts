// The lab's OPNsense box (firewall.kind: opnsense): the firewall node becomes an emulated OPNsense —
// the API emulation on its mgmt address, its interfaces from the topology, its own static routes
// (a real box has its gateways configured; wharf never ssh-es into it) — and the lab inventory gets
// `api: {url, keyFile, secretFile, caFile}` so wharf drives it like a real box. Credentials and the
// CA stay in the lab's state folder (mode 0600); the box keeps only the secret's hash.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { renderRoutes, routesOf } from '../../render/routes.ts';
import { resolvedFirewall } from '../../render/nftables.ts';
import type { Inventory } from '../../topology/inventory.ts';
import { nodeOfKind, type Topology } from '../../topology/model.ts';
import { labNode } from '../node.ts';
import { stateDir } from '../state.ts';
import { randomUUID } from 'node:crypto';
import { opnsenseDesired } from '../../opnsense/configure.ts';
import { ANTI_LOCKOUT_DESCRIPTION } from '../../opnsense/desired.ts';
import {
  installEmulation,
  newCredentials,
  OPN_DEFAULT_VERSION,
  OPN_PORT,
  type ApiCredentials,
} from './index.ts';

/** The box's own rollback window in the lab (OPNsense's is 60 s; the lab's is short for CI). */
export const LAB_ROLLBACK_S = Number(process.env.WHARF_OPNSENSE_ROLLBACK_S ?? 10);

export const opnsenseStateDir = (stack: string): string => join(stateDir(stack), 'opnsense');

function credentials(dir: string): ApiCredentials & { keyFile: string; secretFile: string } {
  const keyFile = join(dir, 'apikey');
  const secretFile = join(dir, 'apisecret');
  if (!existsSync(keyFile) || !existsSync(secretFile)) {
    const c = newCredentials();
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(keyFile, `key=${c.key}\n`, { mode: 0o600 });
    writeFileSync(secretFile, `secret=${c.secret}\n`, { mode: 0o600 });
  }
  const read = (f: string, k: string) =>
    new RegExp(`^${k}=(.*)$`, 'm').exec(readFileSync(f, 'utf8'))![1]!.trim();
  return { key: read(keyFile, 'key'), secret: read(secretFile, 'secret'), keyFile, secretFile };
}

/**
 * Install (or refresh) the emulation on the firewall node and point the lab inventory at its API.
 * Returns the inventory with `hosts.<firewall>.api` set.
 */
export async function provisionOpnsenseLab(
  t: Topology,
  inv: Inventory,
  inventoryFile: string,
  log: (l: string) => void,
): Promise<Inventory> {
  const fw = nodeOfKind(t, 'firewall').name;
  const resolved = resolvedFirewall(t, inv, fw);
  const mgmt = inv.hosts[fw]?.addresses.mgmt;
  if (!mgmt) throw new Error(`lab inventory: hosts.${fw}.addresses.mgmt is missing (the API listens there)`);
  const dir = opnsenseStateDir(t.name);
  const creds = credentials(dir);
  const node = labNode(t.name, fw);
  const exec = async (cmd: string[], input?: string) => {
    const r = await node.exec(cmd, { ...(input !== undefined ? { input } : {}), timeoutMs: 120_000 });
    return { code: r.code, stdout: r.stdout, stderr: r.stderr };
  };
  // the box's own routing (a real OPNsense has its gateways configured; wharf never manages them)
  for (const f of renderRoutes(t, routesOf(t, inv, fw))) {
    const r = await exec(['/bin/sh', '-c', `mkdir -p "$(dirname ${f.path})" && cat > ${f.path}`], f.content);
    if (r.code !== 0) throw new Error(`${fw}: writing ${f.path}: ${r.stderr.trim()}`);
  }
  const routes = await exec([
    '/bin/sh',
    '-c',
    'systemctl daemon-reload && systemctl enable --now wharf-routes.service >/dev/null 2>&1 && systemctl restart wharf-routes.service',
  ]);
  if (routes.code !== 0) throw new Error(`${fw}: wharf-routes: ${routes.stderr.trim()}`);
  const interfaces = Object.values(resolved.interfaces).map((i) => ({
    name: i.name,
    descr: i.name.toUpperCase(),
    if: '',
    ipaddr: i.address,
    subnet: Number(i.subnet.split('/')[1] ?? 24),
  }));
  const version = process.env.WHARF_OPNSENSE_VERSION ?? OPN_DEFAULT_VERSION;
  log(
    `${fw}: OPNsense ${version} API emulation on https://${mgmt}:${OPN_PORT} (rollback window ${LAB_ROLLBACK_S} s)`,
  );
  // a fresh box's way in: wharf's anti-lockout stand-in rules (see installEmulation)
  const firstRules = opnsenseDesired(t, inv, OPN_PORT)
    .rules.filter((r) => r.description.startsWith(ANTI_LOCKOUT_DESCRIPTION))
    .map((r) => ({ uuid: randomUUID(), f: { ...r } as Record<string, string> }));
  const cert = await installEmulation(exec, {
    firstRules,
    settings: {
      version,
      port: OPN_PORT,
      bind: mgmt,
      rollbackSeconds: LAB_ROLLBACK_S,
      noForward: Object.values(resolved.interfaces)
        .filter((i) => i.network === 'mgmt')
        .map((i) => i.name),
      // OPNsense's anti-lockout is a system setting outside the API subset: wharf's own first
      // rules stand in for it (src/opnsense/desired.ts), so a change can cut management here
      antiLockout: {},
    },
    credentials: creds,
    interfaces,
    addresses: [mgmt],
    systemd: true,
  });
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, cert, { mode: 0o600 });
  const api = {
    url: `https://${mgmt}:${OPN_PORT}`,
    keyFile: creds.keyFile,
    secretFile: creds.secretFile,
    caFile,
    commands: 'camel' as const,
    rollbackSeconds: LAB_ROLLBACK_S,
  };
  // the lab inventory says how to reach the box's API, as an operator's would
  const doc = parse(readFileSync(inventoryFile, 'utf8')) as {
    hosts: Record<string, Record<string, unknown>>;
  };
  doc.hosts[fw] = { ...doc.hosts[fw], api };
  const text = readFileSync(inventoryFile, 'utf8');
  const head = text
    .split('\n')
    .filter((l) => l.startsWith('#'))
    .join('\n');
  writeFileSync(inventoryFile, `${head}\n${stringify(doc)}`, { mode: 0o600 });
  return { ...inv, hosts: { ...inv.hosts, [fw]: { ...inv.hosts[fw]!, api } } };
}
