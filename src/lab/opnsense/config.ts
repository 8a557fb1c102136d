// The emulation's configuration, kept as OPNsense keeps it: sections of config.xml.
//   <interfaces><wan><if/><descr/><ipaddr/><subnet/></wan>…</interfaces>
//   <OPNsense><Firewall><Alias version="1.0.0"><aliases><alias uuid="…">…   (Alias.xml, mount //OPNsense/Firewall/Alias)
//   <OPNsense><Firewall><Filter version="1.0.4"><rules><rule uuid="…">…      (Filter.xml, mount //OPNsense/Firewall/Filter)
//   <nat><rule uuid="…">…<source><network/>…</source>…                        (DNat.xml, mount /nat/rule+)
// Runs on the firewall node inside the bundled emulator (Node 18, builtins only). Pure functions
// plus a tiny XML reader/writer for the file this module itself writes.

export type Fields = Record<string, string>;

export interface Item {
  uuid: string;
  /** Flat fields; nested ones (DNat source/destination) as `source.network`. */
  f: Fields;
}

export interface Iface {
  /** OPNsense identifier: wan, lan, opt1, … */
  name: string;
  descr: string;
  /** Device name on the node (`eth1`); found by address when empty. */
  if: string;
  ipaddr: string;
  subnet: number;
}

export interface OpnConfig {
  interfaces: Iface[];
  aliases: Item[];
  rules: Item[];
  nat: Item[];
}

export const emptyConfig = (): OpnConfig => ({ interfaces: [], aliases: [], rules: [], nat: [] });

// ---- minimal XML ----------------------------------------------------------------------------

export interface XNode {
  tag: string;
  attrs: Record<string, string>;
  children: XNode[];
  text: string;
}

const esc = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const unesc = (s: string) =>
  s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');

export function parseXml(text: string): XNode {
  const root: XNode = { tag: '#root', attrs: {}, children: [], text: '' };
  const stack: XNode[] = [root];
  const re =
    /<\?[^>]*\?>|<!--[\s\S]*?-->|<(\/?)([A-Za-z_][\w.:-]*)((?:\s+[\w:-]+="[^"]*")*)\s*(\/?)>|([^<]+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text))) {
    const top = stack[stack.length - 1]!;
    if (m[5] !== undefined) {
      top.text += unesc(m[5]);
      continue;
    }
    if (!m[2]) continue; // declaration or comment
    if (m[1]) {
      if (top.tag !== m[2]) throw new Error(`config.xml: </${m[2]}> closes <${top.tag}>`);
      stack.pop();
      continue;
    }
    const attrs: Record<string, string> = {};
    for (const a of (m[3] ?? '').matchAll(/([\w:-]+)="([^"]*)"/g)) attrs[a[1]!] = unesc(a[2]!);
    const node: XNode = { tag: m[2], attrs, children: [], text: '' };
    top.children.push(node);
    if (!m[4]) stack.push(node);
  }
  if (stack.length !== 1) throw new Error(`config.xml: <${stack[stack.length - 1]!.tag}> is not closed`);
  return root;
}

function el(tag: string, children: XNode[] = [], text = '', attrs: Record<string, string> = {}): XNode {
  return { tag, attrs, children, text };
}

export function writeXml(n: XNode, indent = ''): string {
  const attrs = Object.entries(n.attrs)
    .map(([k, v]) => ` ${k}="${esc(v)}"`)
    .join('');
  if (!n.children.length) return `${indent}<${n.tag}${attrs}>${esc(n.text)}</${n.tag}>`;
  return [
    `${indent}<${n.tag}${attrs}>`,
    ...n.children.map((c) => writeXml(c, indent + '  ')),
    `${indent}</${n.tag}>`,
  ].join('\n');
}

const child = (n: XNode | undefined, tag: string): XNode | undefined =>
  n?.children.find((c) => c.tag === tag);
const path = (n: XNode | undefined, ...tags: string[]) =>
  tags.reduce<XNode | undefined>((x, t) => child(x, t), n);

/** Fields of one item element: leaves, and one level of nesting as `parent.leaf`. */
function itemOf(n: XNode): Item {
  const f: Fields = {};
  for (const c of n.children) {
    if (c.children.length) for (const g of c.children) f[`${c.tag}.${g.tag}`] = g.text;
    else f[c.tag] = c.text;
  }
  return { uuid: n.attrs.uuid ?? '', f };
}

function itemXml(tag: string, it: Item): XNode {
  const kids: XNode[] = [];
  const nested = new Map<string, XNode>();
  for (const [k, v] of Object.entries(it.f)) {
    const dot = k.indexOf('.');
    if (dot < 0) {
      kids.push(el(k, [], v));
      continue;
    }
    const parent = k.slice(0, dot);
    let p = nested.get(parent);
    if (!p) {
      p = el(parent);
      nested.set(parent, p);
      kids.push(p);
    }
    p.children.push(el(k.slice(dot + 1), [], v));
  }
  return el(tag, kids, '', { uuid: it.uuid });
}

export function parseConfig(text: string): OpnConfig {
  const doc = child(parseXml(text), 'opnsense');
  if (!doc) throw new Error('config.xml: no <opnsense> root');
  const interfaces = (child(doc, 'interfaces')?.children ?? []).map((n) => ({
    name: n.tag,
    descr: child(n, 'descr')?.text ?? n.tag.toUpperCase(),
    if: child(n, 'if')?.text ?? '',
    ipaddr: child(n, 'ipaddr')?.text ?? '',
    subnet: Number(child(n, 'subnet')?.text ?? '32'),
  }));
  const fw = path(doc, 'OPNsense', 'Firewall');
  return {
    interfaces,
    aliases: (path(fw, 'Alias', 'aliases')?.children ?? []).map(itemOf),
    rules: (path(fw, 'Filter', 'rules')?.children ?? []).map(itemOf),
    nat: (child(doc, 'nat')?.children ?? []).filter((n) => n.tag === 'rule').map(itemOf),
  };
}

export function configXml(c: OpnConfig): string {
  const doc = el('opnsense', [
    el(
      'interfaces',
      c.interfaces.map((i) =>
        el(i.name, [
          el('if', [], i.if),
          el('descr', [], i.descr),
          el('ipaddr', [], i.ipaddr),
          el('subnet', [], String(i.subnet)),
        ]),
      ),
    ),
    el('OPNsense', [
      el('Firewall', [
        el(
          'Alias',
          [
            el(
              'aliases',
              c.aliases.map((a) => itemXml('alias', a)),
            ),
          ],
          '',
          { version: '1.0.0' },
        ),
        el(
          'Filter',
          [
            el(
              'rules',
              c.rules.map((r) => itemXml('rule', r)),
            ),
          ],
          '',
          { version: '1.0.4' },
        ),
      ]),
    ]),
    el(
      'nat',
      c.nat.map((r) => itemXml('rule', r)),
    ),
  ]);
  return `<?xml version="1.0"?>\n${writeXml(doc)}\n`;
}
