// The stack drawn as a graph: internet → router → firewall → HAProxy frontends → backends → SFTP
// nodes, lsyncd main → sub, backup sub → backup, notices → sink. Pure: Topology → text.
import { specPorts } from './topology/firewall.ts';
import { isPairAddress, vipAddress, type Topology } from './topology/model.ts';

export const GRAPH_FORMATS = ['mermaid', 'dot'] as const;
export type GraphFormat = (typeof GRAPH_FORMATS)[number];

type Shape = 'circle' | 'box' | 'round' | 'cylinder';
type EdgeStyle = 'solid' | 'dashed' | 'thick';

export interface GraphNode {
  id: string;
  label: string;
  shape: Shape;
  /** Id of the group (subgraph / cluster) the node is drawn in. */
  group?: string;
}

export interface GraphEdge {
  from: string;
  to: string;
  label?: string;
  style: EdgeStyle;
}

export interface GraphModel {
  nodes: GraphNode[];
  edges: GraphEdge[];
  groups: { id: string; label: string }[];
}

const id = (kind: string, name: string) => `${kind}_${name.replace(/[^A-Za-z0-9]/g, '_')}`;
const nodeId = (name: string) => id('n', name);

/** Ports as "tcp 22, 2221" grouped by protocol. */
function portList(rules: { protocol: string; port: number; toPort?: number }[]): string {
  const byProto = new Map<string, string[]>();
  for (const r of rules) {
    const p = r.toPort && r.toPort !== r.port ? `${r.port}→${r.toPort}` : String(r.port);
    byProto.set(r.protocol, [...(byProto.get(r.protocol) ?? []), p]);
  }
  return [...byProto].map(([proto, ports]) => `${proto} ${ports.join(', ')}`).join(' · ');
}

const hostOfUrl = (url: string): string => {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
};

/** The format-neutral graph of a topology. */
export function graphModel(t: Topology): GraphModel {
  const nodes: GraphNode[] = [];
  const edges: GraphEdge[] = [];
  const groups: GraphModel['groups'] = [];
  const seen = new Set<string>();
  const addNode = (n: GraphNode) => {
    if (!seen.has(n.id)) nodes.push(n);
    seen.add(n.id);
  };
  const topoNode = (name: string) => {
    const n = t.nodes[name];
    const pass = t.firewall.filter.filter((r) => r.enabled && r.action === 'pass').length;
    const label =
      n?.kind === 'sftp'
        ? `${name}<br/>sftp ${n.role} :${t.sftp.port}`
        : n?.kind === 'firewall'
          ? `${name}<br/>${pass} pass rule(s), default deny`
          : name;
    addNode({ id: nodeId(name), label, shape: n?.kind === 'sftp' ? 'cylinder' : 'box' });
    return nodeId(name);
  };
  const haproxy = Object.values(t.nodes).find((n) => n.kind === 'haproxy');
  const router = Object.values(t.nodes).find((n) => n.kind === 'router');
  const firewall = Object.values(t.nodes).find((n) => n.kind === 'firewall');

  addNode({ id: 'internet', label: 'Internet', shape: 'circle' });

  // Router: the internet reaches it on the forwarded ports; it forwards them on.
  if (router) {
    topoNode(router.name);
    edges.push({
      from: 'internet',
      to: nodeId(router.name),
      label: portList(t.router.forwards),
      style: 'solid',
    });
    const byTarget = new Map<string, typeof t.router.forwards>();
    for (const f of t.router.forwards) byTarget.set(f.to, [...(byTarget.get(f.to) ?? []), f]);
    for (const [to, rules] of byTarget) {
      edges.push({
        from: nodeId(router.name),
        to: topoNode(to),
        label: `forward ${portList(rules)}`,
        style: 'solid',
      });
    }
  }

  // Firewall: NAT port forwards to the HAProxy frontends (or another node), default deny.
  const frontendByPort = new Map(Object.entries(t.haproxy.frontends).map(([n, f]) => [f.port, n]));
  if (firewall) {
    topoNode(firewall.name);
    for (const r of t.firewall.nat) {
      if (r.disabled) continue;
      // one edge per forwarded port (a range or an alias of up to 16 ports is drawn port by port)
      const ranges = specPorts(t.firewall, r.destination.port);
      const ports = ranges.flatMap((x) =>
        x.to - x.from < 16 ? Array.from({ length: x.to - x.from + 1 }, (_, i) => x.from + i) : [],
      );
      const local = r['local-port'] ? Number(r['local-port']) : undefined;
      for (const p of ports) {
        const port = local ?? p;
        const fe =
          r.target === haproxy?.name || isPairAddress(t, r.target) ? frontendByPort.get(port) : undefined;
        edges.push({
          from: nodeId(firewall.name),
          to: fe ? id('fe', fe) : topoNode(r.target),
          label: `NAT ${portList([{ protocol: r.protocol, port: p, ...(local ? { toPort: local } : {}) }])}`,
          style: 'solid',
        });
      }
    }
  }

  if (haproxy) {
    const pair = t.haproxy.pair;
    const gid = id('g', pair.enabled ? pair.name : haproxy.name);
    groups.push({
      id: gid,
      label: pair.enabled
        ? `${pair.nodes.join(' + ')}: HAProxy TCP, maxconn ${t.haproxy.maxconn}, keepalived ${vipAddress(t)}`
        : `${haproxy.name}: HAProxy TCP, maxconn ${t.haproxy.maxconn}`,
    });
    for (const [name, f] of Object.entries(t.haproxy.frontends)) {
      addNode({ id: id('fe', name), label: `frontend ${name} :${f.port}`, shape: 'round', group: gid });
      edges.push({ from: id('fe', name), to: id('be', f.backend), style: 'solid' });
    }
    for (const [name, b] of Object.entries(t.haproxy.backends)) {
      const how = [
        `balance ${b.balance}`,
        ...(b.stickOnSource ? ['stick on src'] : []),
        ...(b.readOnly ? ['read-only'] : []),
      ].join(', ');
      addNode({ id: id('be', name), label: `backend ${name}<br/>${how}`, shape: 'box', group: gid });
      for (const s of b.servers) {
        edges.push({
          from: id('be', name),
          to: topoNode(s.node),
          label: `:${b.readOnly ? t.sftp.readOnlyPort : t.sftp.port}${s.backup ? ' backup' : ''}`,
          style: s.backup ? 'dashed' : 'solid',
        });
      }
    }
  }
  // Replication and backup.
  const { lsyncd, backup } = t.replication;
  edges.push({
    from: topoNode(lsyncd.from),
    to: topoNode(lsyncd.to),
    label: `lsyncd, delay ${lsyncd.delay}s`,
    style: 'thick',
  });
  edges.push({
    from: topoNode(backup.from),
    to: topoNode(backup.to),
    label: `rsync snapshots '${backup.schedule}', keep ${backup.retention}`,
    style: 'dashed',
  });

  // Upload notices from the watching node(s) to their receivers.
  const watchers = Object.values(t.nodes).filter((n) => n.kind === 'sftp' && n.role === t.notifications.on);
  const { webhook, smtp } = t.notifications;
  const targets: { to: string; label: string }[] = [];
  if (webhook.enabled) {
    const to = webhook.node
      ? topoNode(webhook.node)
      : (addNode({ id: 'ext_webhook', label: `webhook ${hostOfUrl(webhook.url ?? '')}`, shape: 'round' }),
        'ext_webhook');
    targets.push({ to, label: `webhook ${webhook.format} :${webhook.port}${webhook.path}` });
  }
  if (smtp.enabled) {
    const to = smtp.node
      ? topoNode(smtp.node)
      : (addNode({ id: 'ext_smtp', label: `smtp ${smtp.host ?? ''}`, shape: 'round' }), 'ext_smtp');
    targets.push({ to, label: `smtp :${smtp.port}` });
  }
  for (const w of watchers) {
    for (const target of targets) {
      edges.push({
        from: topoNode(w.name),
        to: target.to,
        label: `notice: ${target.label}`,
        style: 'dashed',
      });
    }
  }
  return { nodes, edges, groups };
}

// ── Mermaid ──────────────────────────────────────────────────────────────────────────────
const mmText = (s: string) => s.replace(/"/g, '#quot;');
const mmShape: Record<Shape, (l: string) => string> = {
  circle: (l) => `(("${l}"))`,
  box: (l) => `["${l}"]`,
  round: (l) => `("${l}")`,
  cylinder: (l) => `[("${l}")]`,
};
const mmArrow: Record<EdgeStyle, string> = { solid: '-->', dashed: '-.->', thick: '==>' };

export function toMermaid(g: GraphModel): string {
  const out = ['flowchart LR'];
  const node = (n: GraphNode, indent: string) => `${indent}${n.id}${mmShape[n.shape](mmText(n.label))}`;
  for (const n of g.nodes.filter((x) => !x.group)) out.push(node(n, '  '));
  for (const grp of g.groups) {
    out.push(`  subgraph ${grp.id}["${mmText(grp.label)}"]`);
    for (const n of g.nodes.filter((x) => x.group === grp.id)) out.push(node(n, '    '));
    out.push('  end');
  }
  for (const e of g.edges) {
    const label = e.label ? `|"${mmText(e.label)}"|` : '';
    out.push(`  ${e.from} ${mmArrow[e.style]}${label} ${e.to}`);
  }
  return `${out.join('\n')}\n`;
}

// ── Graphviz dot ─────────────────────────────────────────────────────────────────────────
const dotText = (s: string) =>
  `"${s
    .replace(/\\/g, '\\\\')
    .replace(/"/g, '\\"')
    .replace(/<br\/>/g, '\\n')}"`;
const dotShape: Record<Shape, string> = {
  circle: 'ellipse',
  box: 'box',
  round: 'box, style=rounded',
  cylinder: 'cylinder',
};
const dotStyle: Record<EdgeStyle, string> = { solid: '', dashed: ', style=dashed', thick: ', penwidth=2' };

export function toDot(g: GraphModel): string {
  const out = ['digraph wharf {', '  rankdir=LR;', '  node [fontname="Helvetica"];'];
  const node = (n: GraphNode, indent: string) =>
    `${indent}${n.id} [label=${dotText(n.label)}, shape=${dotShape[n.shape]}];`;
  for (const n of g.nodes.filter((x) => !x.group)) out.push(node(n, '  '));
  for (const grp of g.groups) {
    out.push(`  subgraph cluster_${grp.id} {`, `    label=${dotText(grp.label)};`);
    for (const n of g.nodes.filter((x) => x.group === grp.id)) out.push(node(n, '    '));
    out.push('  }');
  }
  for (const e of g.edges) {
    const label = e.label ? `label=${dotText(e.label)}` : 'label=""';
    out.push(`  ${e.from} -> ${e.to} [${label}${dotStyle[e.style]}];`);
  }
  out.push('}');
  return `${out.join('\n')}\n`;
}

export function renderGraph(t: Topology, format: GraphFormat = 'mermaid'): string {
  const g = graphModel(t);
  return format === 'dot' ? toDot(g) : toMermaid(g);
}
