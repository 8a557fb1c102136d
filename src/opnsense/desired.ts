// The topology's firewall (src/topology/firewall.ts, already in OPNsense's terms) as the objects
// wharf owns on an OPNsense box. Values stay OPNsense's (`wanip`, `(self)`, interface nets, aliases,
// ranges, well-known ports); only what OPNsense cannot know is replaced: wharf node names (and wharf
// network names that are no interface) become addresses. Every description gets OWNER_PREFIX.
// The anti-lockout setting is a system setting outside the firewall API, so wharf stands in for it
// with its own first rule (management ssh and the API to the mgmt interface's address). Pure.
import { InputError } from '../core/errors.ts';
import { isAddress, type ResolveContext, type ResolvedFirewall } from '../topology/firewall.ts';
import { NETWORKS, type NetworkName } from '../topology/schema.ts';
import {
  OWNER_PREFIX,
  type OpnAlias,
  type OpnDesired,
  type OpnDNatRule,
  type OpnFilterRule,
} from './types.ts';

const b = (x: boolean): '0' | '1' => (x ? '1' : '0');
export const owned = (d: string): string => `${OWNER_PREFIX} ${d}`.trim();

export interface OpnDesiredOptions {
  /** The API's port on the box (the anti-lockout stand-in passes it). */
  apiPort: number;
}

export const ANTI_LOCKOUT_DESCRIPTION = owned('anti-lockout: management ssh and API');

export function opnDesired(fw: ResolvedFirewall, ctx: ResolveContext, o: OpnDesiredOptions): OpnDesired {
  const aliasNames = new Set(fw.aliases.map((a) => a.name));
  const ifNames = new Set(Object.keys(fw.interfaces));
  /** One network value → OPNsense's (node → address; a wharf network that is no interface → subnet). */
  const net = (v: string, at: string): string =>
    v
      .split(',')
      .map((x) => x.trim())
      .map((x) => {
        if (x === 'any' || x === '(self)' || isAddress(x) || aliasNames.has(x) || ifNames.has(x)) return x;
        if (/ip$/.test(x) && ifNames.has(x.slice(0, -2))) return x;
        const a = ctx.nodeAddress(x);
        if (a) return a;
        if ((NETWORKS as readonly string[]).includes(x)) return ctx.subnet(x as NetworkName);
        throw new InputError(`${at}: cannot express "${x}" for OPNsense`);
      })
      .join(',');

  const aliases: OpnAlias[] = fw.aliases.map((a, i) => ({
    enabled: b(a.enabled),
    name: a.name,
    type: a.type,
    content: a.content
      .map((e) =>
        a.type === 'port' || isAddress(e) || aliasNames.has(e) ? e : net(e, `firewall.aliases.${i}`),
      )
      .join('\n'),
    description: owned(a.description || a.name),
  }));

  const rules: OpnFilterRule[] = [];
  const mgmtIf = Object.values(fw.interfaces).find((i) => i.network === 'mgmt');
  if (fw.antiLockout && mgmtIf)
    for (const [k, port] of [
      ['ssh', '22'],
      ['api', String(o.apiPort)],
    ] as const)
      rules.push({
        enabled: '1',
        action: 'pass',
        quick: '1',
        interface: mgmtIf.name,
        direction: 'in',
        ipprotocol: 'inet',
        protocol: 'TCP',
        source_net: mgmtIf.name,
        source_not: '0',
        source_port: '',
        destination_net: `${mgmtIf.name}ip`,
        destination_not: '0',
        destination_port: port,
        log: '0',
        sequence: k === 'ssh' ? '1' : '2',
        description: `${ANTI_LOCKOUT_DESCRIPTION} (${k})`,
      });
  fw.rules.forEach((r, i) =>
    rules.push({
      enabled: b(r.enabled),
      action: r.action,
      quick: b(r.quick),
      interface: r.interface.join(','),
      direction: r.direction,
      ipprotocol: 'inet',
      protocol: r.protocol,
      source_net: net(r.source_net, `${r.origin}.source`),
      source_not: b(r.source_not),
      source_port: r.source_port,
      destination_net: net(r.destination_net, `${r.origin}.destination`),
      destination_not: b(r.destination_not),
      destination_port: r.destination_port,
      log: b(r.log),
      sequence: String(r.sequence > 0 ? r.sequence : (i + 1) * 10),
      description: owned(r.description),
    }),
  );

  const nat: OpnDNatRule[] = fw.nat.map((n, i) => ({
    disabled: b(n.disabled),
    interface: n.interface.join(','),
    ipprotocol: 'inet',
    protocol: n.protocol,
    source: {
      network: net(n.source.network, `${n.origin}.source`),
      port: n.source.port,
      not: b(n.source.not),
    },
    destination: {
      network: net(n.destination.network, `${n.origin}.destination`),
      port: n.destination.port,
      not: b(n.destination.not),
    },
    target: aliasNames.has(n.target) ? n.target : n.resolved.target,
    'local-port': n['local-port'],
    log: b(n.log),
    sequence: String(n.sequence > 0 ? n.sequence : i + 1),
    pass: n.pass,
    descr: owned(n.descr || `port forward ${i}`),
  }));
  return { aliases, rules, nat };
}
