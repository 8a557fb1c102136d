// wharf graph: the Mermaid text must parse with Mermaid itself (run under jsdom), and the graph
// must follow the topology (ports, backends, replication, notices), not a fixed picture.
import { createRequire } from 'node:module';
import { beforeAll, describe, expect, it } from 'vitest';
import { graphModel, renderGraph } from '../../src/graph.ts';
import { loadTopology, parseYaml, topologyFromObject } from '../../src/topology/load.ts';

// jsdom ships no types (and @types/jsdom is not installed): load it through require, typed here.
type Jsdom = new (html: string, options?: object) => { window: Window & typeof globalThis };
const { JSDOM } = createRequire(import.meta.url)('jsdom') as { JSDOM: Jsdom };

type Mermaid = { parse(text: string): Promise<unknown>; initialize(c: object): void };
let mermaid: Mermaid;

beforeAll(async () => {
  // Mermaid expects a browser: give it jsdom's window and document, then import it.
  const dom = new JSDOM('<!doctype html><html><body></body></html>', { pretendToBeVisual: true });
  Object.assign(globalThis, { window: dom.window, document: dom.window.document });
  mermaid = (await import('mermaid')).default as unknown as Mermaid;
  mermaid.initialize({ startOnLoad: false });
}, 30_000);

const seed = () => loadTopology('configs/stack.yaml');
const fromYaml = (yaml: string) => topologyFromObject(parseYaml(yaml, 'g.yaml'), 'g.yaml');

describe('wharf graph --format mermaid', () => {
  it('the seed stack parses as a Mermaid flowchart', async () => {
    const text = renderGraph(seed(), 'mermaid');
    expect(text.startsWith('flowchart LR\n')).toBe(true);
    await expect(mermaid.parse(text)).resolves.toMatchObject({ diagramType: 'flowchart-v2' });
  });

  it('Mermaid really rejects a broken diagram (the check can fail)', async () => {
    const text = renderGraph(seed(), 'mermaid');
    const broken = text.replace('|"lsyncd, delay 1s"|', '|"lsyncd, delay 1s"'); // unclosed edge label
    expect(broken).not.toBe(text);
    await expect(mermaid.parse(broken)).rejects.toThrow();
  });

  it('draws the chain with its ports: internet → router → firewall → frontends → backends → sftp', () => {
    const text = renderGraph(seed(), 'mermaid');
    for (const line of [
      'internet -->|"tcp 22, 2222, 2221"| n_router',
      'n_router -->|"forward tcp 22, 2222, 2221"| n_firewall',
      'n_firewall -->|"NAT tcp 2221"| fe_read',
      'fe_read --> be_read',
      'be_read -->|":2221"| n_sftp_sub',
      'be_read -->|":2221"| n_sftp_main',
      'be_write -.->|":22 backup"| n_sftp_sub',
      'n_sftp_main ==>|"lsyncd, delay 1s"| n_sftp_sub',
      `n_sftp_sub -.->|"rsync snapshots '*/15 * * * *', keep 96"| n_sftp_backup`,
      'n_sftp_main -.->|"notice: webhook slack :8080/hooks/upload"| n_notify_sink',
      'n_sftp_main -.->|"notice: smtp :2525"| n_notify_sink',
    ]) {
      expect(text).toContain(line);
    }
    expect(text).toContain(
      'subgraph g_haproxy["haproxy-1 + haproxy-2: HAProxy TCP, maxconn 2000, keepalived 10.88.2.254"]',
    );
  });

  it('follows the topology: other ports, an extra frontend, notices on backup, external webhook', async () => {
    const t = fromYaml(`
haproxy:
  maxconn: 500
  frontends:
    sftp: { port: 2022, backend: sftp }
    write: { port: 2222, backend: write }
    read: { port: 2221, backend: read }
    audit: { port: 2230, backend: read }
notifications:
  on: backup
  webhook: { url: "https://hooks.example.net/x?token=\\"secret\\"" }
  smtp: { enabled: false }
`);
    const text = renderGraph(t, 'mermaid');
    await expect(mermaid.parse(text)).resolves.toBeTruthy();
    expect(text).toContain('internet -->|"tcp 2022, 2222, 2221, 2230"| n_router');
    expect(text).toContain('n_firewall -->|"NAT tcp 2230"| fe_audit');
    expect(text).toContain('fe_audit --> be_read');
    expect(text).toContain('maxconn 500');
    expect(text).toContain('n_sftp_backup -.->|"notice: webhook slack :8080/hooks/upload"| ext_webhook');
    expect(text).toContain('ext_webhook("webhook hooks.example.net")');
    expect(text).not.toContain('secret'); // only the host of a URL is drawn
    expect(text).not.toContain('smtp :');
  });

  it('every edge joins two drawn nodes', () => {
    const g = graphModel(seed());
    const ids = new Set(g.nodes.map((n) => n.id));
    for (const e of g.edges) {
      expect(ids.has(e.from), e.from).toBe(true);
      expect(ids.has(e.to), e.to).toBe(true);
    }
  });
});

describe('wharf graph --format dot', () => {
  it('is a digraph with one statement per node and edge, labels quoted', () => {
    const g = graphModel(seed());
    const text = renderGraph(seed(), 'dot');
    expect(text.startsWith('digraph wharf {\n  rankdir=LR;')).toBe(true);
    expect(text.trimEnd().endsWith('}')).toBe(true);
    expect(text.match(/ -> /g)).toHaveLength(g.edges.length);
    expect(text).toContain('subgraph cluster_g_haproxy {');
    expect(text).toContain('n_sftp_main -> n_sftp_sub [label="lsyncd, delay 1s", penwidth=2];');
    // Balanced braces and quotes: a cheap syntax check (graphviz is not installed here).
    expect(text.split('{').length).toBe(text.split('}').length);
    for (const line of text.split('\n'))
      expect((line.replace(/\\"/g, '').match(/"/g) ?? []).length % 2).toBe(0);
  });
});
