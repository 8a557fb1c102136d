// The paths a router or firewall change must keep working before wharf confirms it (commit-confirmed,
// src/runbook/apply.ts), each checked from the side it serves:
//   - management: a NEW ssh connection to the changed node, the operator's way (inventory: ProxyJump
//     over mgmt in the lab), never the multiplexed one (an established session outlives a cut path);
//   - SFTP: the SSH-2.0 banner of every router forward, read from the internet side: on the lab's
//     wan-client node (bash's /dev/tcp to the router's WAN address), else from this machine at the
//     inventory's entrypoint. The SFTP path counts only when it worked before the change (a first
//     provisioning has no HAProxy behind the firewall yet).
import { connect } from 'node:net';
import type { ConfirmHooks, PathCheck } from '../runbook/apply.ts';
import type { Inventory } from '../topology/inventory.ts';
import { nodeOfKind, type Topology } from '../topology/model.ts';
import { SshTransport } from '../transport/ssh.ts';
import { shQuote } from '../exec/index.ts';

const BANNER = 'SSH-2.0-';

/** The shell line that reads each port's first bytes on one line each (`PORT BANNER|FAIL`). Pure. */
export function bannerProbeCommand(address: string, ports: number[], timeoutS = 3): string {
  const one = `exec 3<>/dev/tcp/${address}/$p && head -c 8 <&3`;
  return `for p in ${ports.join(' ')}; do printf '%s ' "$p"; timeout ${timeoutS} bash -c ${shQuote(one.replace('$p', '"$0"'))} "$p" 2>/dev/null || printf FAIL; echo; done`;
}

/** `PORT BANNER|FAIL` lines → ports without an SSH banner. Pure. */
export function portsWithoutBanner(output: string, ports: number[]): number[] {
  const seen = new Map<number, string>();
  for (const l of output.split('\n')) {
    const m = /^(\d+) (.*)$/.exec(l.trim());
    if (m) seen.set(Number(m[1]), m[2]!);
  }
  return ports.filter((p) => !seen.get(p)?.startsWith(BANNER));
}

function banner(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    let buf = '';
    const done = (ok: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    s.on('data', (d) => {
      buf += d.toString('latin1');
      if (buf.length >= BANNER.length) done(buf.startsWith(BANNER));
    });
    s.on('error', () => done(false));
    s.on('close', () => done(buf.startsWith(BANNER)));
  });
}

export function stackConfirmHooks(t: Topology, inv: Inventory): ConfirmHooks {
  const sshOpts = { sshConfig: inv.sshConfig, knownHosts: inv.knownHosts };
  const fresh = (host: string) => {
    const h = inv.hosts[host];
    if (!h) throw new Error(`${host}: not in the inventory`);
    return new SshTransport(host, h.ssh, { ...sshOpts, fresh: true, connectTimeoutS: 4 });
  };
  const router = nodeOfKind(t, 'router').name;
  const ports = [...new Set(t.router.forwards.map((f) => f.port))];
  const wanClient = Object.values(t.nodes).find((n) => n.kind === 'wan-client' && inv.hosts[n.name]);
  const wanTransport = wanClient
    ? new SshTransport(wanClient.name, inv.hosts[wanClient.name]!.ssh, sshOpts)
    : undefined;

  const management = async (host: string): Promise<PathCheck> => {
    const name = 'management ssh (new connection)';
    const t0 = Date.now();
    try {
      const r = await fresh(host).exec(['true'], { timeoutMs: 8000, sudo: false });
      return {
        name,
        ok: r.code === 0,
        detail: `${r.code === 0 ? 'ok' : `exit ${r.code}`} in ${Date.now() - t0} ms`,
        required: true,
      };
    } catch (e) {
      return { name, ok: false, detail: (e as Error).message.split('\n')[0]!.slice(0, 200), required: true };
    }
  };

  const sftp = async (): Promise<PathCheck | undefined> => {
    const wan = inv.hosts[router]?.addresses.wan;
    if (wanTransport && wan && ports.length) {
      const name = `SFTP banner from ${wanTransport.host} via ${router} ${wan}:${ports.join(',')}`;
      try {
        const r = await wanTransport.exec(bannerProbeCommand(wan, ports), { timeoutMs: 15_000, sudo: false });
        const bad = portsWithoutBanner(r.stdout, ports);
        return {
          name,
          ok: bad.length === 0,
          detail: bad.length ? `no SSH banner on ${bad.join(', ')}` : 'SSH-2.0 on every port',
        };
      } catch (e) {
        return {
          name,
          ok: false,
          detail: `${wanTransport.host} unreachable: ${(e as Error).message.split('\n')[0]}`,
        };
      }
    }
    const ep = inv.entrypoint;
    if (ep) {
      const name = `SFTP banner at the entrypoint ${ep.host}:${ep.port} from this machine`;
      const ok = await banner(ep.host, ep.port, 3000);
      return { name, ok, detail: ok ? 'SSH-2.0' : 'no SSH banner' };
    }
    return undefined; // no side to check it from: not claimed
  };

  return {
    async probe(host) {
      const [m, s] = await Promise.all([management(host), sftp()]);
      return s ? [m, s] : [m];
    },
    freshExec: (host, cmd, timeoutMs) => fresh(host).exec(cmd, { timeoutMs }),
  };
}
