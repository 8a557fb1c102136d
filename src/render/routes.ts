// Static routes so replies to WAN clients travel back through the chain (sources are preserved),
// as data (NodeRender.routes) and as a file + oneshot unit that re-applies them at boot.
import type { Topology } from '../topology/model.ts';
import { nodeOfKind } from '../topology/model.ts';
import { addressOf, subnetOf, type Inventory } from '../topology/inventory.ts';
import type { RenderedFile, Route } from './types.ts';
import { file, header, lines, unitCheck } from './util.ts';

export const ROUTES_FILE = '/etc/wharf/routes';
export const ROUTES_UNIT = '/etc/systemd/system/wharf-routes.service';

export function routesOf(t: Topology, inv: Inventory, node: string): Route[] {
  const kind = t.nodes[node]?.kind;
  const wan = subnetOf(t, inv, 'wan');
  if (kind === 'haproxy') return [{ to: wan, via: addressOf(inv, nodeOfKind(t, 'firewall').name, 'dmz') }];
  if (kind === 'firewall') return [{ to: wan, via: addressOf(inv, nodeOfKind(t, 'router').name, 'transit') }];
  return [];
}

export function renderRoutes(t: Topology, routes: Route[]): RenderedFile[] {
  const list = file(
    ROUTES_FILE,
    lines(header(t).trimEnd(), '# destination next-hop', ...routes.map((r) => `${r.to} ${r.via}`)),
    { notify: ['wharf-routes'] },
  );
  const unit = file(
    ROUTES_UNIT,
    lines(
      header(t).trimEnd(),
      '[Unit]',
      'Description=wharf static routes (replies travel back through the chain)',
      'After=network-online.target',
      'Wants=network-online.target',
      '',
      '[Service]',
      'Type=oneshot',
      'RemainAfterExit=yes',
      `ExecStart=/bin/sh -c 'sed -e "/^#/d" -e "/^ *$$/d" ${ROUTES_FILE} | while read -r to via; do ip route replace "$$to" via "$$via" || exit 1; done'`,
      '',
      '[Install]',
      'WantedBy=multi-user.target',
    ),
    { check: unitCheck('wharf-routes.service'), notify: ['wharf-routes'] },
  );
  return [list, unit];
}
