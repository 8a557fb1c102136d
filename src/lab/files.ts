// What the lab places on a node before its first boot (docker cp of a tar): management access
// (authorized_keys, host keys) and the network fabric rendered from the topology — the same files
// the renderers produce for real hosts — plus the lab-only pieces (internet edge, notify sink).
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { spawn } from 'node:child_process';
import { RunError } from '../core/errors.ts';
import type { Topology } from '../topology/model.ts';
import { labInventory } from '../topology/inventory.ts';
import type { NodeRender } from '../render/types.ts';
import { docker } from './docker.ts';
import { EDGE_PORT_BASE, type LabNode, type LabPlan } from './plan.ts';
import type { LabKeys } from './state.ts';

export interface NodeFile {
  path: string;
  content: string | Buffer;
  mode: number;
}

export interface NodeFiles {
  files: NodeFile[];
  /** systemd units to enable (unit file path → target whose .wants gets the symlink). */
  enable: { unit: string; unitPath: string; target: string }[];
}

/** Rendered files the lab installs for the fabric (the rest is the configure runbook's job). */
export const FABRIC_PATHS = [
  '/etc/ssh/sshd_config.d/00-wharf-mgmt.conf',
  '/etc/nftables.conf',
  '/etc/systemd/system/nftables.service.d/10-wharf.conf',
  '/etc/wharf/routes',
  '/etc/systemd/system/wharf-routes.service',
];

type RenderNode = (t: Topology, inv: ReturnType<typeof labInventory>, node: string) => NodeRender;
let renderNodeFn: RenderNode | undefined;

async function renderer(): Promise<RenderNode> {
  if (renderNodeFn) return renderNodeFn;
  try {
    const mod = (await import('../render/index.ts')) as { renderNode: RenderNode };
    renderNodeFn = mod.renderNode;
    return renderNodeFn;
  } catch (e) {
    throw new RunError(
      `the lab needs the renderers (src/render/index.ts renderNode): ${(e as Error).message}`,
    );
  }
}

const wantedBy = (unitText: string): string =>
  /^WantedBy=\s*(\S+)/m.exec(unitText)?.[1] ?? 'multi-user.target';

export function edgeFiles(plan: LabPlan, node: LabNode): NodeFile[] {
  const me = node.addresses.wan!;
  const dnat = Object.entries(plan.frontends)
    .map(
      ([name, port], i) =>
        `    ip daddr ${me} tcp dport ${EDGE_PORT_BASE + i} dnat to ${plan.routerWan}:${port} comment "${name}"`,
    )
    .join('\n');
  return [
    {
      path: '/etc/ssh/sshd_config.d/00-wharf-edge.conf',
      content: `# wharf lab: the internet client's sshd listens on its WAN address only.\nListenAddress ${me}\n`,
      mode: 0o644,
    },
    {
      path: '/etc/nftables.conf',
      content: `#!/usr/sbin/nft -f
# wharf lab: the internet edge. Ports published on the Linux host's 127.0.0.1 arrive here and are
# sent to the router's WAN address like any internet client's traffic (never flush the ruleset:
# Docker's embedded DNS lives in this container's own nat table).
table ip wharf_edge {}
delete table ip wharf_edge
table ip wharf_edge {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
${dnat}
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip daddr ${plan.routerWan} ct status dnat masquerade
  }
}
`,
      mode: 0o755,
    },
    {
      path: '/etc/systemd/system/wharf-edge-route.service',
      content: `[Unit]
Description=wharf lab: default route of the internet client via the router's WAN address
After=network.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/sbin/ip route replace default via ${plan.routerWan}

[Install]
WantedBy=multi-user.target
`,
      mode: 0o644,
    },
  ];
}

export async function nodeFiles(
  t: Topology,
  plan: LabPlan,
  node: LabNode,
  keys: LabKeys,
): Promise<NodeFiles> {
  const files: NodeFile[] = [
    { path: '/root/.ssh/authorized_keys', content: keys.identityPub + '\n', mode: 0o600 },
  ];
  const enable: NodeFiles['enable'] = [];
  const dir = keys.hostKeyDirs[node.name]!;
  for (const f of readdirSync(dir).filter((x) => x.startsWith('ssh_host_'))) {
    files.push({
      path: `/etc/ssh/${f}`,
      content: readFileSync(join(dir, f)),
      mode: f.endsWith('.pub') ? 0o644 : 0o600,
    });
  }

  if (node.kind === 'wan-client') {
    files.push(...edgeFiles(plan, node));
    enable.push({
      unit: 'nftables.service',
      unitPath: '/lib/systemd/system/nftables.service',
      target: 'sysinit.target',
    });
    enable.push({
      unit: 'wharf-edge-route.service',
      unitPath: '/etc/systemd/system/wharf-edge-route.service',
      target: 'multi-user.target',
    });
  } else if (node.kind === 'bastion') {
    // Every management session of the lab jumps through this one sshd: many start at once
    // (lab up waits on all nodes, runbooks open one master per host), so lift sshd's default
    // MaxStartups 10:30:100, which drops connections at random under that burst.
    files.push({
      path: '/etc/ssh/sshd_config.d/10-wharf-bastion.conf',
      content:
        '# wharf lab: the bastion takes bursts of ProxyJump connections.\nMaxStartups 200:30:400\nMaxSessions 200\n',
      mode: 0o644,
    });
  } else {
    const render = await renderer();
    const r = render(t, labInventory(t), node.name);
    for (const f of r.files) {
      if (!FABRIC_PATHS.includes(f.path)) continue;
      if (
        (f.path === '/etc/nftables.conf' || f.path.includes('/nftables.service.d/')) &&
        node.kind !== 'router' &&
        node.kind !== 'firewall'
      )
        continue;
      files.push({ path: f.path, content: f.content, mode: f.mode });
      if (f.path.startsWith('/etc/systemd/system/') && f.path.endsWith('.service')) {
        const unit = f.path.slice('/etc/systemd/system/'.length);
        enable.push({ unit, unitPath: f.path, target: wantedBy(f.content) });
      }
      if (f.path === '/etc/nftables.conf') {
        enable.push({
          unit: 'nftables.service',
          unitPath: '/lib/systemd/system/nftables.service',
          target: 'sysinit.target',
        });
      }
    }
  }

  if (node.kind === 'notify-sink') {
    const sink = (await import('./sink/index.ts')) as {
      sinkFiles(o?: { smtpPort?: number; httpPort?: number }): Promise<NodeFile[]>;
      SINK_UNIT_NAME: string;
      SINK_UNIT_PATH: string;
    };
    const sf = await sink.sinkFiles({
      smtpPort: t.notifications.smtp.port,
      httpPort: t.notifications.webhook.port,
    });
    files.push(...sf);
    const unit = sf.find((f) => f.path === sink.SINK_UNIT_PATH);
    enable.push({
      unit: sink.SINK_UNIT_NAME,
      unitPath: sink.SINK_UNIT_PATH,
      target: unit ? wantedBy(String(unit.content)) : 'multi-user.target',
    });
  }
  return { files, enable };
}

/** Copy the files into a created (not yet started) container, as one tar owned by root. */
export async function installFiles(container: string, nf: NodeFiles): Promise<void> {
  const stage = mkdtempSync(join(tmpdir(), 'wharf-node-'));
  try {
    chmodSync(stage, 0o755);
    const mkdir = (d: string) => {
      // Directories get the modes a Debian system has (tar carries them into the container).
      const parts = d.split('/').filter(Boolean);
      let cur = stage;
      for (const p of parts) {
        cur = join(cur, p);
        mkdirSync(cur, { recursive: true });
        chmodSync(cur, cur === join(stage, 'root') || cur === join(stage, 'root', '.ssh') ? 0o700 : 0o755);
      }
    };
    for (const f of nf.files) {
      mkdir(dirname(f.path));
      const p = join(stage, f.path);
      writeFileSync(p, f.content);
      chmodSync(p, f.mode);
    }
    for (const e of nf.enable) {
      const wants = `/etc/systemd/system/${e.target}.wants`;
      mkdir(wants);
      symlinkSync(e.unitPath, join(stage, wants, e.unit));
    }
    await new Promise<void>((resolve, reject) => {
      const tar = spawn('tar', ['-C', stage, '--owner=0', '--group=0', '--numeric-owner', '-cf', '-', '.'], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      docker(['cp', '-', `${container}:/`], { input: tar.stdout }).then(() => resolve(), reject);
    });
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}
