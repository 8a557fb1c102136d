// Shared by the lab tests: a topology like configs/stack.yaml under another name and subnets
// (so a developer's running `seed` lab is left alone), and small probes run inside nodes.
import { $ } from '../../src/exec/index.ts';
import { dockerCall } from '../../src/lab/docker.ts';
import { labDown } from '../../src/lab/lab.ts';
import { variantTopology } from '../../src/lab/variant.ts';

export const REPO = new URL('../../', import.meta.url).pathname;

/** Write configs/stack.yaml with another name and a second octet for every subnet. */
export const testTopology = variantTopology;

/**
 * The same with one HAProxy node (`haproxy.pair.enabled: false`): the lab files that probe the
 * single `haproxy` node keep covering that shape; the pair is covered on the scenario lab (verify's
 * floating-address check, the haproxy-loss scenario).
 */
/**
 * The lab lab.test.ts builds bare and provisions (install → configure → verify) and runbooks.test.ts
 * then reuses, provisioned (one lab up and one provisioning fewer in `npm test`); run alone,
 * runbooks.test.ts brings it up and provisions it itself. The last of them takes it down; the lab
 * project's teardown (global-setup.ts) catches one left behind.
 */
export const FABRIC_LAB = { stack: 'labtest', octet: 89 } as const;

export const singleHaproxyTopology = (name: string, octet: number) =>
  variantTopology(name, octet, (d) => {
    d.haproxy = { ...(d.haproxy as Record<string, unknown>), pair: { enabled: false } };
  });

/** Run a command on a lab node through the generated ssh_config (strict host key checking). */
export async function onNode(
  sshConfig: string,
  node: string,
  cmd: string,
  timeoutMs = 20_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await $({
    nothrow: true,
    quiet: true,
    timeout: timeoutMs,
  })`ssh -F ${sshConfig} -o StrictHostKeyChecking=yes ${node} ${cmd}`;
  return { code: r.exitCode ?? 124, stdout: r.stdout, stderr: r.stderr };
}

/**
 * TCP probe from inside a node with bash's /dev/tcp: 'open' (connected; banner = first bytes),
 * 'refused' (a RST came back: something answered), 'timeout' (dropped on the way).
 */
export async function tcpProbe(
  sshConfig: string,
  from: string,
  host: string,
  port: number,
  seconds = 3,
): Promise<{ result: 'open' | 'refused' | 'timeout' | 'error'; banner: string; detail: string }> {
  const script =
    `timeout ${seconds} bash -c 'exec 3<>/dev/tcp/${host}/${port} || exit 7; echo CONNECTED; ` +
    `timeout 2 head -c 8 <&3 || true'; echo "rc=$?"`;
  const r = await onNode(sshConfig, from, script, (seconds + 15) * 1000);
  const out = r.stdout + r.stderr;
  const rc = /rc=(\d+)/.exec(out)?.[1];
  const banner =
    /CONNECTED\n?(.*)/s
      .exec(r.stdout)?.[1]
      ?.replace(/rc=\d+\s*$/, '')
      .trim() ?? '';
  if (out.includes('CONNECTED')) return { result: 'open', banner, detail: out };
  if (rc === '124') return { result: 'timeout', banner: '', detail: out };
  if (/Connection refused/.test(out)) return { result: 'refused', banner: '', detail: out };
  return { result: 'error', banner: '', detail: out };
}

export async function labelled(
  stack: string,
): Promise<{ containers: string[]; networks: string[]; volumes: string[] }> {
  const filters = { label: [`wharf.lab=${stack}`] };
  const [cs, ns, vs] = await Promise.all([
    dockerCall('ps -a', (d, abortSignal) => d.listContainers({ all: true, filters, abortSignal })),
    dockerCall('network ls', (d, abortSignal) => d.listNetworks({ filters, abortSignal })),
    dockerCall('volume ls', (d, abortSignal) => d.listVolumes({ filters, abortSignal })),
  ]);
  return {
    containers: cs.map((c) => (c.Names[0] ?? c.Id).replace(/^\//, '')).sort(),
    networks: ns.map((n) => n.Name).sort(),
    volumes: (vs.Volumes ?? []).map((v) => v.Name).sort(),
  };
}

/**
 * A lab project's teardown: `lab down` of `stack` when anything labelled with it is left (no engine
 * round trips beyond the listing when nothing is), unless WHARF_KEEP_LAB=1.
 */
export async function downLeftovers(stack: string): Promise<void> {
  if (process.env.WHARF_KEEP_LAB) return;
  const left = await labelled(stack);
  if (!left.containers.length && !left.networks.length && !left.volumes.length) return;
  process.stderr.write(`[lab teardown] lab ${stack}: lab down\n`);
  await labDown(stack);
}
