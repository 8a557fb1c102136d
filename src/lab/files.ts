// What the lab places on a node before its first boot (an archive upload into the created
// container): ONLY what the management path needs and the lab-only pieces — see LAB_PRESEED. The
// network fabric (nftables rulesets, routes, sysctls, the mgmt-only sshd drop-in) is laid down by
// the configure runbook, in the lab as on real hosts.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { RunError } from '../core/errors.ts';
import type { Topology } from '../topology/model.ts';
import { labInventory } from '../topology/inventory.ts';
import type { NodeRender } from '../render/types.ts';
import { EDGE_PORT_BASE, type LabNode, type LabPlan } from './plan.ts';
import type { LabKeys } from './state.ts';
import type { LabNodeHandle } from './node.ts';

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

/**
 * The one place that says what a lab node gets before its first boot, and why. Everything else a
 * real host would get from `configure` (nftables rulesets on router and firewall, routes, sysctl
 * files, the mgmt-only sshd listen drop-in, haproxy.cfg, sshd_config, …) it gets from configure in
 * the lab too: a fresh node has no wharf nftables table and no data-path routes.
 */
export const LAB_PRESEED: readonly { what: string; nodes: string; why: string }[] = [
  {
    what: '/root/.ssh/authorized_keys',
    nodes: 'every node',
    why: "the lab's management key: wharf reaches each node as root over ssh, like an operator's key on a new VM",
  },
  {
    what: '/etc/ssh/ssh_host_*_key{,.pub}',
    nodes: 'every node',
    why: 'pre-generated host keys, so known_hosts is written before any node boots (sftp nodes: the stack’s shared keys)',
  },
  {
    what: '/etc/ssh/sshd_config.d/10-wharf-bastion.conf',
    nodes: 'bastion (lab-only jump host)',
    why: 'every management session jumps through it: MaxStartups/MaxSessions for bursts',
  },
  {
    what: 'sshd WAN-only drop-in, edge nftables NAT, default route unit',
    nodes: 'wan-client (lab-only)',
    why: 'the internet edge: published 127.0.0.1 ports are DNATed to the router WAN address; configure never manages it',
  },
  {
    what: 'rendered /etc/ssh/sshd_config.d/00-wharf-mgmt.conf',
    nodes: 'other lab-only nodes (notify-sink)',
    why: 'configure does not manage lab-only nodes, so the lab gives them their mgmt-only sshd itself',
  },
  {
    what: 'the sink bundle and its unit',
    nodes: 'notify-sink (lab-only)',
    why: 'the lab’s SMTP + webhook receivers',
  },
];

/**
 * Settings that cannot be made from inside a container, so they are container settings at
 * create time (plan.ts) and not files: configure still renders their real-host form.
 */
export const LAB_CONTAINER_SETTINGS: readonly { what: string; nodes: string; why: string }[] = [
  {
    what: 'sysctl net.ipv4.ip_forward=1',
    nodes: 'router, firewall, wan-client',
    why: 'read-only inside a container: only `--sysctl` at create time sets it (configure still writes /etc/sysctl.d/60-wharf.conf)',
  },
  {
    what: 'capability NET_ADMIN',
    nodes: 'router, firewall, haproxy (both of a pair), wan-client',
    why: 'nftables and routes; keepalived adds the floating address',
  },
  {
    what: 'capability NET_RAW, sysctl net.ipv4.ip_nonlocal_bind=1, the floating address reserved on the dmz (IPAM aux-address)',
    nodes: 'haproxy-1, haproxy-2 (haproxy.pair on)',
    why: "keepalived's VRRP raw socket; HAProxy binds the floating address before it holds it; Docker never hands the address to a container",
  },
  {
    what: 'capability SYS_ADMIN, tmpfs /run and /run/lock, /sys/fs/cgroup read-only',
    nodes: 'every node',
    why: 'systemd as PID 1 (and units with systemd sandboxing)',
  },
  {
    what: 'fs.inotify.* (not namespaced)',
    nodes: 'the Linux host',
    why: "read-only inside containers: the lab raises the host's values (provision.ts), never lowers them",
  },
  {
    what: 'volume wharf-<stack>-apt at /var/cache/wharf-apt-pool',
    nodes: 'every node',
    why: 'the shared apt pool (lab/images/node/rootfs/etc/apt): install downloads each .deb once',
  },
];

const MGMT_DROPIN = '/etc/ssh/sshd_config.d/00-wharf-mgmt.conf';

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
  } else if (t.nodes[node.name]?.labOnly) {
    // A lab-only node (notify-sink): configure never touches it, so its mgmt-only sshd comes from here.
    const render = await renderer();
    const r = render(t, labInventory(t), node.name);
    for (const f of r.files) {
      if (f.path === MGMT_DROPIN) files.push({ path: f.path, content: f.content, mode: f.mode });
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

/** Copy the files into a created (not yet started) container: one archive upload, owned by root. */
export async function installFiles(node: LabNodeHandle, nf: NodeFiles): Promise<void> {
  const links = nf.enable.map((e) => ({
    path: `/etc/systemd/system/${e.target}.wants/${e.unit}`,
    target: e.unitPath,
  }));
  await node.putFiles(nf.files, links);
}
