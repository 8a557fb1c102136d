// The OPNsense driver's pure parts (paths, version rules, the planner) and the emulation's request/
// response contract, called in-process (Emulator.handle: no TLS, no nft — the tools test runs the
// same emulation for real in a container and the driver against it over HTTPS).
//
// The shapes below are OPNsense's, read from opnsense/core (commit in brackets):
//   ApiMutableModelControllerBase addBase/setBase/delBase/toggleBase/searchBase/validate
//     src/opnsense/mvc/app/controllers/OPNsense/Base/ApiMutableModelControllerBase.php [044217f0]
//   FilterController (searchRule/getRule/addRule/setRule/delRule/toggleRule)
//     src/opnsense/mvc/app/controllers/OPNsense/Firewall/Api/FilterController.php [03aa2223]
//   FilterBaseController apply/savepoint/cancelRollback/revert (before their removal in 26.7)
//     src/opnsense/mvc/app/controllers/OPNsense/Firewall/Api/FilterBaseController.php [de81d017]
//   DNatController (26.1+; toggleRule sets *disabled*)
//     src/opnsense/mvc/app/controllers/OPNsense/Firewall/Api/DNatController.php [09356f3c]
//   AliasController (searchItem/addItem/setItem/delItem "Alias in use"/reconfigure)
//     src/opnsense/mvc/app/controllers/OPNsense/Firewall/Api/AliasController.php [00861186]
//   Router::parsePath (snake_case → camelCase) src/opnsense/mvc/app/library/OPNsense/Mvc/Router.php [961056aa]
//   Models: models/OPNsense/Firewall/{Filter.xml [02b1b473], DNat.xml [01a7c5a0], Alias.xml [936ab34a]}
// Request bodies follow the docs' samples (docs.opnsense.org/development/api/core/firewall.html,
// and the `{"rule": {...}}` / `{"alias": {...}}` bodies of the how-to): one object under the model key.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolvedFirewall } from '../../src/render/nftables.ts';
import { firewallResolveContext } from '../../src/topology/firewall.ts';
import { floatingAddresses } from '../../src/topology/model.ts';
import { labInventory } from '../../src/topology/inventory.ts';
import { topologyFromObject } from '../../src/topology/load.ts';
import { opnDesired } from '../../src/opnsense/desired.ts';
import {
  Emulator,
  writeConfig,
  emptyConfig,
  renderEmulationNft,
  evaluationOrder,
  parseConfig,
  configXml,
} from '../../src/lab/opnsense/index.ts';
import {
  apiPath,
  command,
  parseVersion,
  savepointSupport,
  versionFromStatus,
} from '../../src/opnsense/paths.ts';
import { formatOpnPlan, ownedAsDesired, planOpnsense } from '../../src/opnsense/plan.ts';
import type { OpnDesired, OpnFilterRule, OpnObserved } from '../../src/opnsense/types.ts';

const rule = (over: Partial<OpnFilterRule> = {}): OpnFilterRule => ({
  enabled: '1',
  action: 'pass',
  quick: '1',
  interface: 'wan',
  direction: 'in',
  ipprotocol: 'inet',
  protocol: 'TCP',
  source_net: 'any',
  source_not: '0',
  source_port: '',
  destination_net: 'wanip',
  destination_not: '0',
  destination_port: '22',
  log: '0',
  sequence: '10',
  description: 'wharf: allow sftp',
  ...over,
});

describe('paths and versions', () => {
  it('spells commands camelCase or snake_case, as OPNsense routes both', () => {
    expect(command('camel', 'searchRule')).toBe('searchRule');
    expect(command('snake', 'searchRule')).toBe('search_rule');
    expect(command('snake', 'cancelRollback')).toBe('cancel_rollback');
    expect(apiPath('snake', 'firewall', 'd_nat', 'toggleRule', 'u-1', '1')).toBe(
      '/api/firewall/d_nat/toggle_rule/u-1/1',
    );
  });
  it('reads the version from firmware/status (26.x nests it under product)', () => {
    expect(versionFromStatus({ product: { product_version: '26.1.4' } })).toBe('26.1.4');
    expect(versionFromStatus({ product_version: '22.7.8' })).toBe('22.7.8');
    expect(versionFromStatus({ status: 'none' })).toBeNull();
  });
  it('knows where the savepoint works', () => {
    expect(savepointSupport(parseVersion('26.1.4')!)).toBe('yes');
    expect(savepointSupport(parseVersion('26.1.5')!)).toBe('broken');
    expect(savepointSupport(parseVersion('26.7')!)).toBe('removed');
  });
});

describe('planOpnsense (pure)', () => {
  const observed = (over: Partial<OpnObserved> = {}): OpnObserved => ({
    version: '26.1.4',
    aliases: [],
    rules: [],
    nat: [],
    ...over,
  });
  const desired = (over: Partial<OpnDesired> = {}): OpnDesired => ({
    aliases: [],
    rules: [rule()],
    nat: [],
    ...over,
  });

  it('adds what is missing, then applies', () => {
    const p = planOpnsense(desired(), observed(), { style: 'camel' });
    expect(p.calls.map((c) => `${c.method} ${c.path}`)).toEqual([
      'POST /api/firewall/filter/addRule',
      'POST /api/firewall/filter/apply',
    ]);
    expect(p.calls[0]!.body).toEqual({ rule: rule() });
  });

  it('changes only differing fields, keeps what matches, never touches rules that are not wharf’s', () => {
    const rows = [
      { uuid: 'a', ...rule({ destination_port: '2222' }) },
      { uuid: 'b', ...rule({ description: 'operator: allow dns', destination_port: '53' }) },
      { uuid: 'c', ...rule({ description: 'wharf: old rule' }) },
    ];
    const p = planOpnsense(desired(), observed({ rules: rows }), { style: 'snake' });
    expect(p.changes).toEqual([
      {
        kind: 'rule',
        action: 'set',
        key: 'wharf: allow sftp',
        uuid: 'a',
        fields: { destination_port: { from: '2222', to: '22' } },
      },
      { kind: 'rule', action: 'del', key: 'wharf: old rule', uuid: 'c' },
    ]);
    expect(p.calls.map((c) => c.path)).toEqual([
      '/api/firewall/filter/set_rule/a',
      '/api/firewall/filter/del_rule/c',
      '/api/firewall/filter/apply',
    ]);
    // idempotent: the same state again plans nothing
    const same = planOpnsense(desired(), observed({ rules: [{ uuid: 'a', ...rule() }, rows[1]!] }), {
      style: 'camel',
    });
    expect(same.calls).toEqual([]);
  });

  it('orders alias adds before rules and alias deletes after them, with reconfigure', () => {
    const p = planOpnsense(
      desired({
        aliases: [
          {
            enabled: '1',
            name: 'wharf_sftp',
            type: 'port',
            content: '22\n2221-2222',
            description: 'wharf: sftp ports',
          },
        ],
        rules: [rule({ destination_port: 'wharf_sftp' })],
      }),
      observed({
        aliases: [
          {
            uuid: 'x',
            name: 'wharf_old',
            type: 'host',
            content: '10.0.0.1',
            enabled: '1',
            description: 'wharf: old',
          },
        ],
      }),
      { style: 'camel' },
    );
    expect(p.calls.map((c) => c.path)).toEqual([
      '/api/firewall/alias/addItem',
      '/api/firewall/filter/addRule',
      '/api/firewall/alias/delItem/x',
      '/api/firewall/alias/reconfigure',
      '/api/firewall/filter/apply',
    ]);
  });

  it('refuses an alias name that someone else’s alias holds, naming it', () => {
    expect(() =>
      planOpnsense(
        desired({
          aliases: [
            { enabled: '1', name: 'web', type: 'host', content: '10.0.0.1', description: 'wharf: web' },
          ],
        }),
        observed({
          aliases: [
            {
              uuid: 'y',
              name: 'web',
              type: 'host',
              content: '10.0.0.9',
              enabled: '1',
              description: 'operator web',
            },
          ],
        }),
        { style: 'camel' },
      ),
    ).toThrow(/alias web exists on the box and is not wharf's/);
  });

  it('port forwards need 26.1: the error names the version', () => {
    const nat = [
      {
        disabled: '0' as const,
        interface: 'wan',
        ipprotocol: 'inet' as const,
        protocol: 'tcp',
        source: { network: 'any', port: '', not: '0' as const },
        destination: { network: 'wanip', port: '22', not: '0' as const },
        target: '10.0.2.4',
        'local-port': '22',
        log: '0' as const,
        sequence: '1',
        pass: 'pass' as const,
        descr: 'wharf: sftp to haproxy',
      },
    ];
    expect(() =>
      planOpnsense(desired({ nat }), observed({ version: '25.7.8', nat: null }), { style: 'camel' }),
    ).toThrow(/OPNsense 25\.7\.8.*26\.1 or later/);
    const p = planOpnsense(desired({ nat }), observed(), { style: 'snake' });
    expect(p.calls.map((c) => c.path)).toContain('/api/firewall/d_nat/add_rule');
  });

  it('turns observed wharf rows back into desired objects (what a revert re-applies)', () => {
    const o = observed({
      rules: [
        { uuid: 'a', ...rule() },
        { uuid: 'b', ...rule({ description: 'not ours' }) },
      ],
    });
    expect(ownedAsDesired(o).rules).toEqual([rule()]);
    expect(planOpnsense(ownedAsDesired(o), o, { style: 'camel' }).calls).toEqual([]);
  });

  it('shows the calls for --diff without anything secret', () => {
    const text = formatOpnPlan(planOpnsense(desired(), observed(), { style: 'camel' }), 'firewall');
    expect(text).toContain('POST /api/firewall/filter/addRule');
    expect(text).toContain('"destination_port": "22"');
  });

  it('warns when the box cannot roll back by itself', () => {
    expect(planOpnsense(desired(), observed({ version: '26.7' }), { style: 'camel' }).warnings[0]).toMatch(
      /PR #10411/,
    );
  });
});

describe('the emulation’s contract (in-process)', () => {
  let dir: string;
  let loaded: string[];
  let armed: [string, number, string][];
  const emu = (version = '26.1.4') =>
    new Emulator({
      dir,
      version,
      apiKey: 'k',
      secretSha256: '',
      tls: { key: '', cert: '' },
      loadNft: async (t) => (loaded.push(t), null),
      nftOptions: async () => ({ devices: { wan: 'eth1', lan: 'eth2' }, noForward: [], antiLockout: {} }),
      armRollback: async (r, s, script) => void armed.push([r, s, script]),
      cancelRollback: async () => true,
      rollbackSeconds: 60,
    });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'wharf-opn-'));
    loaded = [];
    armed = [];
    writeConfig(dir, {
      ...emptyConfig(),
      interfaces: [
        { name: 'wan', descr: 'WAN', if: '', ipaddr: '10.80.1.3', subnet: 24 },
        { name: 'lan', descr: 'LAN', if: '', ipaddr: '10.80.2.3', subnet: 24 },
      ],
    });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('filter: addRule → {result: saved, uuid}; search grid; setRule; toggleRule; delRule', async () => {
    const e = emu();
    const [s1, add] = await e.handle('POST', '/api/firewall/filter/addRule', { rule: rule() });
    expect(s1).toBe(200);
    expect(add).toEqual({ result: 'saved', uuid: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    const uuid = add.uuid as string;
    const [, grid] = await e.handle('POST', '/api/firewall/filter/search_rule', {
      current: 1,
      rowCount: -1,
      searchPhrase: '',
    });
    expect(grid).toMatchObject({
      total: 1,
      rowCount: 1,
      current: 1,
      rows: [{ uuid, description: 'wharf: allow sftp', destination_port: '22' }],
    });
    expect(
      await e.handle('POST', `/api/firewall/filter/setRule/${uuid}`, { rule: { destination_port: '2222' } }),
    ).toEqual([200, { result: 'saved' }]);
    expect(await e.handle('POST', `/api/firewall/filter/toggleRule/${uuid}/0`, {})).toEqual([
      200,
      { result: 'Disabled', changed: true },
    ]);
    const [, got] = await e.handle('GET', `/api/firewall/filter/getRule/${uuid}`, {});
    expect(got).toMatchObject({ rule: { destination_port: '2222', enabled: '0' } });
    expect(await e.handle('POST', `/api/firewall/filter/delRule/${uuid}`, {})).toEqual([
      200,
      { result: 'deleted' },
    ]);
    expect(await e.handle('POST', `/api/firewall/filter/delRule/${uuid}`, {})).toEqual([
      200,
      { result: 'not found' },
    ]);
    // config.xml holds the filter section as OPNsense's model mounts it
    expect(readFileSync(join(dir, 'config.xml'), 'utf8')).toMatch(
      /<OPNsense>\s*<Firewall>[\s\S]*<Filter version="1.0.4">/,
    );
  });

  it('validation failures: {result: failed, validations: {"rule.<field>": message}}', async () => {
    const [, r] = await emu().handle('POST', '/api/firewall/filter/addRule', {
      rule: rule({ destination_port: '99999', interface: 'opt9', action: 'allow' as never }),
    });
    expect(r).toEqual({
      result: 'failed',
      validations: {
        'rule.destination_port': 'Please specify a valid portnumber, name, alias or range.',
        'rule.interface': 'Option not in list.',
        'rule.action': 'Option not in list.',
      },
    });
  });

  it('GET on a mutating command fails like the base controller does', async () => {
    expect(await emu().handle('GET', '/api/firewall/filter/addRule', {})).toEqual([
      200,
      { result: 'failed' },
    ]);
    expect(await emu().handle('GET', '/api/firewall/filter/apply', {})).toEqual([200, { status: 'error' }]);
  });

  it('alias: addItem, reconfigure {status: ok}, delItem refused while a rule uses it', async () => {
    const e = emu();
    const [, a] = await e.handle('POST', '/api/firewall/alias/addItem', {
      alias: {
        enabled: '1',
        name: 'wharf_sftp',
        type: 'port',
        content: '22\n2221-2222',
        description: 'wharf: sftp ports',
      },
    });
    expect(a).toMatchObject({ result: 'saved' });
    await e.handle('POST', '/api/firewall/filter/addRule', {
      rule: rule({ destination_port: 'wharf_sftp' }),
    });
    expect(await e.handle('POST', '/api/firewall/alias/reconfigure', {})).toEqual([200, { status: 'ok' }]);
    expect(loaded.at(-1)).toContain('set alias_wharf_sftp');
    const [, del] = await e.handle('POST', `/api/firewall/alias/delItem/${a.uuid as string}`, {});
    expect(del).toMatchObject({ errorTitle: 'Alias in use' });
    const [, dup] = await e.handle('POST', '/api/firewall/alias/add_item', {
      alias: { name: 'wharf_sftp', type: 'port', content: '22' },
    });
    expect(dup).toEqual({
      result: 'failed',
      validations: { 'alias.name': 'An alias with this name already exists.' },
    });
  });

  it('d_nat: 26.1+ only; toggle_rule sets disabled', async () => {
    expect((await emu('25.7.8').handle('POST', '/api/firewall/d_nat/search_rule', {}))[0]).toBe(404);
    const e = emu();
    const body = {
      rule: {
        interface: 'wan',
        protocol: 'tcp',
        destination: { network: 'wanip', port: '22' },
        target: '10.80.2.4',
        'local-port': '22',
        pass: 'pass',
        descr: 'wharf: sftp',
      },
    };
    const [, add] = await e.handle('POST', '/api/firewall/d_nat/add_rule', body);
    expect(add).toMatchObject({ result: 'saved' });
    const [, grid] = await e.handle('POST', '/api/firewall/d_nat/search_rule', {});
    expect(grid.rows).toEqual([
      expect.objectContaining({ 'destination.network': 'wanip', 'destination.port': '22', disabled: '0' }),
    ]);
    expect(await e.handle('POST', `/api/firewall/d_nat/toggle_rule/${add.uuid as string}/1`, {})).toEqual([
      200,
      { result: 'Disabled' },
    ]);
    expect(readFileSync(join(dir, 'config.xml'), 'utf8')).toMatch(
      /<nat>\s*<rule uuid="[^"]+">[\s\S]*<destination>\s*<network>wanip<\/network>/,
    );
  });

  it('savepoint → apply/{revision} arms the rollback; cancelRollback; gone in 26.7', async () => {
    const e = emu();
    const [, sp] = await e.handle('POST', '/api/firewall/filter/savepoint', {});
    expect(sp).toEqual({
      status: 'ok',
      retention: expect.any(String),
      revision: expect.stringMatching(/^\d+\.\d+$/),
    });
    expect(await e.handle('POST', `/api/firewall/filter/apply/${sp.revision as string}`, {})).toEqual([
      200,
      { status: 'OK\n\n' },
    ]);
    expect(armed).toEqual([
      [sp.revision, 60, expect.stringContaining(`rollback/${sp.revision as string}.nft`)],
    ]);
    expect(
      await e.handle('POST', `/api/firewall/filter/cancel_rollback/${sp.revision as string}`, {}),
    ).toEqual([200, { status: 'OK' }]);
    expect((await emu('26.7').handle('POST', '/api/firewall/filter/savepoint', {}))[0]).toBe(404);
  });

  it('firmware/status carries the version where 26.x puts it', async () => {
    const [, st] = await emu().handle('GET', '/api/core/firmware/status', {});
    expect(versionFromStatus(st)).toBe('26.1.4');
    expect(st).toHaveProperty('product.product_version', '26.1.4');
  });
});

describe('the emulation’s nftables (pure)', () => {
  const cfg = () =>
    parseConfig(
      configXml({
        interfaces: [
          { name: 'wan', descr: 'WAN', if: '', ipaddr: '10.80.1.3', subnet: 24 },
          { name: 'mgmt', descr: 'MGMT', if: '', ipaddr: '10.80.9.3', subnet: 24 },
        ],
        aliases: [
          {
            uuid: 'a1',
            f: { enabled: '1', name: 'inner', type: 'network', content: '10.80.0.0/24', description: '' },
          },
          {
            uuid: 'a2',
            f: {
              enabled: '1',
              name: 'outer',
              type: 'network',
              content: 'inner\n10.80.5.0/24',
              description: '',
            },
          },
        ],
        rules: [
          {
            uuid: 'r1',
            f: { ...rule({ quick: '0', action: 'block', sequence: '1', description: 'late block' }) },
          },
          {
            uuid: 'r2',
            f: { ...rule({ sequence: '2', source_net: 'outer', destination_port: '2221-2222', log: '1' }) },
          },
          { uuid: 'r3', f: { ...rule({ sequence: '3', enabled: '0', description: 'off' }) } },
        ],
        nat: [],
      }),
    );
  it('survives config.xml round trips', () => {
    expect(parseConfig(configXml(cfg()))).toEqual(cfg());
  });
  it('pf order: quick rules first, non-quick last-match-wins, disabled ones out', () => {
    expect(evaluationOrder(cfg().rules).map((r) => r.uuid)).toEqual(['r2', 'r1']);
  });
  it('interfaces by device, keywords, nested aliases, ranges, log; own tables only', () => {
    const t = renderEmulationNft(cfg(), {
      devices: { wan: 'eth1', mgmt: 'eth0' },
      noForward: ['mgmt'],
      antiLockout: { mgmt: [22, 443] },
    });
    expect(t).not.toMatch(/flush ruleset/);
    expect(t).toContain('elements = { 10.80.0.0/24, 10.80.5.0/24 }');
    expect(t).toContain(
      'iifname "eth1" meta l4proto tcp ip saddr @alias_outer ip daddr 10.80.1.3 tcp dport 2221-2222 log prefix',
    );
    expect(t).toContain(
      'iifname "eth0" ip daddr 10.80.9.3 tcp dport { 22, 443 } accept comment "anti-lockout"',
    );
    expect(t).toContain('iifname "eth0" drop comment "never forwarded"');
    expect(t).not.toContain('"off"');
  });
});

describe('the topology’s firewall as OPNsense objects (opnDesired)', () => {
  const seed = () => {
    const doc = parse(readFileSync('configs/stack.yaml', 'utf8')) as Record<string, Record<string, unknown>>;
    doc.firewall = { ...doc.firewall, kind: 'opnsense' };
    return topologyFromObject(doc, 'seed.yaml');
  };
  const desiredOf = (t: ReturnType<typeof seed>) => {
    const inv = labInventory(t);
    const ctx = firewallResolveContext(
      t.firewall,
      'firewall',
      (n) => t.nodes[n]?.networks,
      inv,
      (n) => t.networks[n].subnet,
      floatingAddresses(t, inv),
    );
    return opnDesired(resolvedFirewall(t, inv, 'firewall'), ctx, { apiPort: 443 });
  };

  it("the seed's port forward: WAN address, the sftp_ports alias, HAProxy's address, its associated rule registered", () => {
    const d = desiredOf(seed());
    expect(d.aliases).toEqual([
      {
        enabled: '1',
        name: 'sftp_ports',
        type: 'port',
        content: '22\n2221-2222',
        description: "wharf: HAProxy's SFTP frontends",
      },
    ]);
    expect(d.nat).toEqual([
      expect.objectContaining({
        interface: 'wan',
        protocol: 'tcp',
        destination: { network: 'wanip', port: 'sftp_ports', not: '0' },
        target: '10.88.2.254',
        pass: 'rule',
        descr: 'wharf: SFTP to HAProxy',
      }),
    ]);
  });

  it('anti-lockout stands in as wharf’s first rules on the mgmt interface; off, they are gone', () => {
    const on = desiredOf(seed());
    expect(on.rules.slice(0, 2).map((r) => [r.interface, r.destination_net, r.destination_port])).toEqual([
      ['mgmt', 'mgmtip', '22'],
      ['mgmt', 'mgmtip', '443'],
    ]);
    const doc = parse(readFileSync('configs/stack.yaml', 'utf8')) as Record<string, Record<string, unknown>>;
    doc.firewall = { ...doc.firewall, kind: 'opnsense', antiLockout: false };
    expect(
      desiredOf(topologyFromObject(doc, 'x.yaml')).rules.filter((r) => /anti-lockout/.test(r.description)),
    ).toEqual([]);
  });

  it('node names become addresses; OPNsense keywords stay as they are', () => {
    const doc = parse(readFileSync('configs/stack.yaml', 'utf8')) as Record<string, Record<string, unknown>>;
    doc.firewall = {
      ...doc.firewall,
      kind: 'opnsense',
      rules: [
        {
          description: 'to haproxy',
          interface: 'wan',
          action: 'pass',
          protocol: 'tcp',
          destination: 'haproxy',
          destinationPort: '2221-2222',
        },
        {
          description: 'to self',
          interface: 'dmz',
          action: 'block',
          protocol: 'tcp',
          destination: '(self)',
          destinationPort: 'ssh',
          log: true,
        },
      ],
    };
    const r = desiredOf(topologyFromObject(doc, 'x.yaml')).rules.filter(
      (x) => !/anti-lockout/.test(x.description),
    );
    expect(r.map((x) => [x.description, x.destination_net, x.destination_port, x.log, x.protocol])).toEqual([
      ['wharf: to haproxy', '10.88.2.254', '2221-2222', '0', 'TCP'],
      ['wharf: to self', '(self)', 'ssh', '1', 'TCP'],
    ]);
  });
});
