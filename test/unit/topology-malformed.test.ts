// Malformed topologies and inventories: every case asserts the exact message (file, field path,
// expectation) and exit code 2. They run through the loader (YAML text → parse → schema → checks).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError, exitCodeOf } from '../../src/core/errors.ts';
import { labInventory, type Inventory } from '../../src/topology/inventory.ts';
import {
  inventoryFromObject,
  loadInventory,
  loadTopology,
  parseYaml,
  topologyFromObject,
} from '../../src/topology/load.ts';

const FILE = 'configs/x.yaml';

/** GIVEN a topology's YAML text WHEN it is loaded THEN the problems it reports (and its exit code). */
function problemsOf(load: () => unknown): { exitCode: number; problems: string[] } {
  try {
    load();
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    return { exitCode: exitCodeOf(err), problems: (err as InputError).problems };
  }
  throw new Error('expected the input to be rejected, it was accepted');
}
const topologyProblems = (yaml: string) => problemsOf(() => topologyFromObject(parseYaml(yaml, FILE), FILE));

/** A full nodes block with per-node overrides (`null` removes a node). */
function nodesYaml(over: Record<string, string | null> = {}): string {
  const base: Record<string, string | null> = {
    'wan-client': '{ kind: wan-client }',
    router: '{ kind: router }',
    firewall: '{ kind: firewall }',
    'haproxy-1': '{ kind: haproxy }',
    'haproxy-2': '{ kind: haproxy }',
    'sftp-main': '{ kind: sftp, role: main }',
    'sftp-sub': '{ kind: sftp, role: sub }',
    'sftp-backup': '{ kind: sftp, role: backup }',
    'notify-sink': '{ kind: notify-sink }',
    ...over,
  };
  return `nodes:\n${Object.entries(base)
    .filter(([, v]) => v !== null)
    .map(([k, v]) => `  ${k}: ${v}`)
    .join('\n')}\n`;
}

const CRON = 'expected a cron schedule (minute hour day-of-month month day-of-week)';

// [case, YAML, the exact problems reported]
const cases: [string, string, string[]][] = [
  [
    'port out of range',
    'haproxy:\n  frontends:\n    read: { port: 70000, backend: read }\n',
    [`${FILE}: haproxy.frontends.read.port: expected an integer 1..65535, got 70000`],
  ],
  ['port zero', 'sftp: { port: 0 }', [`${FILE}: sftp.port: expected an integer 1..65535, got 0`]],
  [
    'port not an integer',
    'haproxy: { stats: { port: 80.5 } }',
    [`${FILE}: haproxy.stats.port: expected an integer 1..65535, got 80.5`],
  ],
  [
    'check error limit out of range',
    'haproxy: { check: { errorLimit: -1 } }',
    [`${FILE}: haproxy.check.errorLimit: expected an integer 0..100, got -1`],
  ],
  [
    'check error limit not an integer',
    'haproxy: { check: { errorLimit: 1.5 } }',
    [`${FILE}: haproxy.check.errorLimit: expected an integer 0..100, got 1.5`],
  ],
  ['unknown field', 'haproxy: { maxconnn: 3 }', [`${FILE}: haproxy.maxconnn: unknown field`]],
  ['unknown top-level field', 'hosts: {}', [`${FILE}: hosts: unknown field`]],
  [
    'wrong type: string for an integer',
    'haproxy: { maxconn: many }',
    [`${FILE}: haproxy.maxconn: expected an integer 1..1000000, got "many"`],
  ],
  [
    'wrong type: scalar for a list',
    'sftp: { users: yes }',
    [`${FILE}: sftp.users: expected a list, got "yes"`],
  ],
  [
    'wrong type: list for a mapping',
    'haproxy: { frontends: [22, 2222] }',
    [`${FILE}: haproxy.frontends: expected a mapping, got a list`],
  ],
  ['whole file not a mapping', 'just text', [`${FILE}: expected a mapping, got "just text"`]],
  [
    'bad enum: notifications.on',
    'notifications: { on: sub }',
    [`${FILE}: notifications.on: expected one of main|backup, got "sub"`],
  ],
  [
    'bad enum: balance',
    'haproxy: { backends: { read: { balance: random, servers: [sftp-sub] } } }',
    [
      `${FILE}: haproxy.backends.read.balance: expected one of roundrobin|leastconn|source|first, got "random"`,
    ],
  ],
  [
    'bad enum: node kind',
    nodesYaml({ 'sftp-backup': '{ kind: nas, role: backup }' }),
    [
      `${FILE}: nodes.sftp-backup.kind: expected one of router|firewall|haproxy|sftp|notify-sink|wan-client|monitor, got "nas"`,
    ],
  ],
  [
    'bad name',
    'name: Seed Stack',
    [`${FILE}: name: expected a stack name (lowercase letters, digits, - and _, max 31), got "Seed Stack"`],
  ],
  [
    'pair on with one haproxy node',
    nodesYaml({ 'haproxy-2': null }),
    [
      `${FILE}: haproxy.pair.enabled: the pair needs exactly two haproxy nodes, got 1 (haproxy-1); list two (e.g. haproxy-1, haproxy-2) or set haproxy.pair.enabled: false`,
    ],
  ],
  [
    'pair off with two haproxy nodes',
    'haproxy: { pair: { enabled: false } }\n' + nodesYaml(),
    [
      `${FILE}: nodes: expected exactly one haproxy node (haproxy.pair.enabled is false), got 2 (haproxy-1, haproxy-2)`,
    ],
  ],
  [
    'floating address outside the dmz',
    'haproxy: { pair: { vip: 10.88.3.200 } }',
    [`${FILE}: haproxy.pair.vip: 10.88.3.200 is not in the dmz subnet 10.88.2.0/24`],
  ],
  [
    "floating address on a node's address",
    'haproxy: { pair: { vip: 10.88.2.5 } }',
    [`${FILE}: haproxy.pair.vip: 10.88.2.5 is already node haproxy-2's address on the dmz`],
  ],
  [
    'floating address host id of a node',
    'haproxy: { pair: { vipHostId: 3 } }',
    [`${FILE}: haproxy.pair.vipHostId: 3 is already node firewall's host id on the dmz`],
  ],
  [
    'floating address does not fit the dmz subnet',
    'networks: { dmz: { subnet: 10.88.2.0/26 } }',
    [
      `${FILE}: haproxy.pair.vipHostId: 254 does not fit in the dmz subnet 10.88.2.0/26; set haproxy.pair.vip or a smaller vipHostId`,
    ],
  ],
  [
    'floating address named like a node',
    'haproxy: { pair: { name: router } }',
    [
      `${FILE}: haproxy.pair.name: "router" is also the name of a node; the floating address needs a name of its own`,
    ],
  ],
  [
    'vrid out of range',
    'haproxy: { pair: { vrid: 256 } }',
    [`${FILE}: haproxy.pair.vrid: expected an integer 1..255, got 256`],
  ],
  [
    'VRRP password too long',
    'haproxy: { pair: { auth: averylongsecret } }',
    [`${FILE}: haproxy.pair.auth: expected 1..8 letters, digits, . _ -, got "averylongsecret"`],
  ],
  [
    'duplicate node hostId',
    nodesYaml({ firewall: '{ kind: firewall, hostId: 2 }' }),
    [`${FILE}: nodes.firewall.hostId: 2 is already used by node router`],
  ],
  [
    'two mains',
    nodesYaml({ 'sftp-sub': '{ kind: sftp, role: main }' }),
    [`${FILE}: nodes: expected exactly one sftp node with role main, got 2 (sftp-main, sftp-sub)`],
  ],
  [
    'zero mains',
    nodesYaml({ 'sftp-main': '{ kind: sftp, role: sub }' }),
    [`${FILE}: nodes: expected exactly one sftp node with role main, got 0`],
  ],
  [
    'sftp node without a role',
    nodesYaml({ 'sftp-backup': '{ kind: sftp }' }),
    [`${FILE}: nodes.sftp-backup.role: expected one of main|sub|backup for an sftp node`],
  ],
  [
    'missing backend',
    'haproxy:\n  frontends:\n    sftp: { port: 22, backend: nope }\n',
    [`${FILE}: haproxy.frontends.sftp.backend: backend "nope" does not exist (backends: sftp, write, read)`],
  ],
  [
    'server referencing a missing node',
    'haproxy: { backends: { sftp: { servers: [sftp-main] }, write: { servers: [sftp-main] }, read: { servers: [sftp-nope] } } }',
    [
      `${FILE}: haproxy.backends.read.servers.0: node "sftp-nope" does not exist (nodes: wan-client, router, firewall, haproxy-1, haproxy-2, sftp-main, sftp-sub, sftp-backup, notify-sink, monitor)`,
    ],
  ],
  [
    'server referencing a non-sftp node',
    'haproxy: { backends: { sftp: { servers: [sftp-main] }, write: { servers: [sftp-main] }, read: { servers: [sftp-sub, { node: router }] } } }',
    [`${FILE}: haproxy.backends.read.servers.1: node "router" is a router node, expected an sftp node`],
  ],
  [
    'server neither a name nor a mapping',
    'haproxy: { backends: { read: { servers: [42] } } }',
    [
      `${FILE}: haproxy.backends.read.servers.0: expected a node name or a {node, backup, weight} mapping, got 42`,
    ],
  ],
  [
    'backend with only backup servers',
    'haproxy: { backends: { sftp: { servers: [sftp-main] }, write: { servers: [{ node: sftp-main, backup: true }] }, read: { servers: [sftp-sub] } } }',
    [`${FILE}: haproxy.backends.write.servers: every server is a backup; at least one must be active`],
  ],
  [
    'port clash on haproxy',
    'haproxy:\n  frontends:\n    sftp: { port: 22, backend: sftp }\n    write: { port: 22, backend: write }\n',
    [
      `${FILE}: haproxy.frontends.write.port: port 22 is already used by haproxy.frontends.sftp on the haproxy node`,
    ],
  ],
  [
    'stats port clashes with a frontend',
    'haproxy: { stats: { port: 2221 } }',
    [`${FILE}: haproxy.stats.port: port 2221 is already used by haproxy.frontends.read on the haproxy node`],
  ],
  [
    'overlapping subnets',
    'networks: { dmz: { subnet: 10.88.3.0/25 } }',
    [
      `${FILE}: networks.lan.subnet: 10.88.3.0/24 overlaps networks.dmz.subnet 10.88.3.0/25`,
      `${FILE}: haproxy.pair.vipHostId: 254 does not fit in the dmz subnet 10.88.3.0/25; set haproxy.pair.vip or a smaller vipHostId`,
    ],
  ],
  [
    'subnet with host bits',
    'networks: { lan: { subnet: 10.88.3.5/24 } }',
    [`${FILE}: networks.lan.subnet: 10.88.3.5/24 has host bits set`],
  ],
  [
    'subnet without a prefix',
    'networks: { wan: { subnet: 10.88.0.0 } }',
    [
      `${FILE}: networks.wan.subnet: expected an IPv4 subnet like 10.88.0.0/24 (prefix 8..30), got "10.88.0.0"`,
    ],
  ],
  [
    'schedule with 3 fields',
    "replication: { backup: { schedule: '* * *' } }",
    [`${FILE}: replication.backup.schedule: ${CRON}, got "* * *" (3 fields)`],
  ],
  [
    'schedule minute out of range',
    "replication: { backup: { schedule: '61 * * * *' } }",
    [`${FILE}: replication.backup.schedule: ${CRON}, got "61 * * * *" (minute: 61 is outside 0..59)`],
  ],
  [
    'schedule reversed range',
    "replication: { backup: { schedule: '0 5-2 * * *' } }",
    [`${FILE}: replication.backup.schedule: ${CRON}, got "0 5-2 * * *" (hour: range 5-2 is reversed)`],
  ],
  [
    'schedule unknown month name',
    "replication: { backup: { schedule: '0 3 * foo *' } }",
    [`${FILE}: replication.backup.schedule: ${CRON}, got "0 3 * foo *" (month: "foo" is not a number)`],
  ],
  [
    'schedule zero step',
    "replication: { backup: { schedule: '*/0 * * * *' } }",
    [`${FILE}: replication.backup.schedule: ${CRON}, got "*/0 * * * *" (minute: step must be ≥ 1)`],
  ],
  [
    'schedule restricting both day fields',
    "replication: { backup: { schedule: '0 3 1 * mon' } }",
    [
      `${FILE}: replication.backup.schedule: ${CRON}, got "0 3 1 * mon" (day-of-month and day-of-week both restricted: cron ORs them, systemd would AND them)`,
    ],
  ],
  [
    'duplicate users',
    'sftp: { users: [ { name: alice }, { name: bob }, { name: alice } ] }',
    [`${FILE}: sftp.users.2.name: user "alice" is defined twice`],
  ],
  [
    'reserved user name',
    'sftp: { users: [ { name: sync } ] }',
    [`${FILE}: sftp.users.0.name: "sync" is reserved (a system or replication account)`],
  ],
  [
    'user named like the replication account',
    'sftp: { users: [ { name: wharfsync } ] }',
    [`${FILE}: sftp.users.0.name: "wharfsync" is reserved (a system or replication account)`],
  ],
  [
    'clear-text password',
    'sftp: { users: [ { name: bob, passwordHash: hunter2 } ] }',
    [`${FILE}: sftp.users.0.passwordHash: expected a SHA-512 crypt hash starting with $6$`],
  ],
  [
    'client ≠ server timeout',
    'haproxy: { timeouts: { client: 1h, server: 30m } }',
    [
      `${FILE}: haproxy.timeouts.server: expected the same value as timeouts.client (1h) in TCP mode, got 30m`,
    ],
  ],
  [
    'clientAliveInterval ≥ timeout',
    'haproxy: { timeouts: { client: 60s, server: 60s } }\nsftp: { clientAliveInterval: 60 }',
    [`${FILE}: sftp.clientAliveInterval: expected less than haproxy.timeouts.client (60s), got 60s`],
  ],
  [
    'lsyncd from == to',
    'replication: { lsyncd: { from: sftp-main, to: sftp-main } }',
    [`${FILE}: replication.lsyncd.to: expected a node other than replication.lsyncd.from (sftp-main)`],
  ],
  [
    'lsyncd to a non-sftp node',
    'replication: { lsyncd: { to: haproxy-1 } }',
    [`${FILE}: replication.lsyncd.to: node "haproxy-1" is a haproxy node, expected an sftp node`],
  ],
  [
    'bad duration',
    'haproxy: { timeouts: { connect: 5 seconds } }',
    [`${FILE}: haproxy.timeouts.connect: expected a duration like 500ms, 2s, 1h, got "5 seconds"`],
  ],
  [
    'monitoring: bad duration',
    'monitoring: { scrapeInterval: fast }',
    [`${FILE}: monitoring.scrapeInterval: expected a duration like 500ms, 2s, 1h, got "fast"`],
  ],
  [
    'monitoring: a duration without a unit, a scrape interval under 1s, a bad percentage',
    'monitoring: { for: "30", evaluationInterval: 500ms, scrapeInterval: 200ms, diskFreeMin: 0 }',
    [`${FILE}: monitoring.diskFreeMin: expected an integer 1..99, got 0`],
  ],
  [
    'monitoring: cross-checked durations',
    'monitoring: { for: "30", scrapeInterval: 200ms }',
    [
      `${FILE}: monitoring.for: expected a duration with a unit (ms, s, m, h, d) like 15s, got 30`,
      `${FILE}: monitoring.scrapeInterval: expected at least 1s, got 200ms`,
    ],
  ],
  [
    'bad email (from)',
    'notifications: { smtp: { from: wharf-at-example } }',
    [`${FILE}: notifications.smtp.from: expected a valid email, got "wharf-at-example"`],
  ],
  [
    'bad email (one of to)',
    'notifications: { smtp: { to: [ops@example.org, nobody] } }',
    [`${FILE}: notifications.smtp.to.1: expected a valid email, got "nobody"`],
  ],
  [
    'notice target node missing',
    'notifications: { webhook: { node: slack-relay } }',
    [
      `${FILE}: notifications.webhook.node: node "slack-relay" does not exist (nodes: wan-client, router, firewall, haproxy-1, haproxy-2, sftp-main, sftp-sub, sftp-backup, notify-sink, monitor)`,
    ],
  ],
  [
    'firewall rule without a description',
    "firewall: { rules: [ { interface: transit, action: pass, port: 22, description: '' } ] }",
    [`${FILE}: firewall.rules.0.description: expected a non-empty description`],
  ],
  [
    'firewall rule with a bad action',
    'firewall: { rules: [ { interface: transit, action: allow, description: x } ] }',
    [`${FILE}: firewall.rules.0.action: expected one of pass|block|reject, got "allow"`],
  ],
  [
    'read pool: backup (empty chroot, data in snapshots) as a reader',
    'haproxy:\n  frontends: { read: { port: 2221, backend: read } }\n  backends: { read: { readOnly: true, servers: [sftp-sub, sftp-backup] } }\n',
    [
      `${FILE}: haproxy.backends.read.servers.1: node "sftp-backup" cannot serve reads: it holds no live copy of the uploads (a read-only backend may list only replication.lsyncd.from "sftp-main" and .to "sftp-sub")`,
    ],
  ],
  [
    "read pool: the read-only listener on sshd's own port",
    'sftp: { port: 2221 }',
    [`${FILE}: sftp.readOnlyPort: 2221 is already sshd's port (sftp.port); expected another port`],
  ],
  [
    'read pool: a lag threshold a healthy replica would exceed',
    'replication: { readLag: { heartbeat: 5s, max: 8s } }',
    [
      `${FILE}: replication.readLag.max: expected at least 2 × (heartbeat 5s + lsyncd.delay 1s) = 12s, or a healthy replica flaps out of the read pool, got 8s`,
    ],
  ],
  [
    'read pool: a heartbeat below a second',
    'replication: { readLag: { heartbeat: 500ms } }',
    [
      `${FILE}: replication.readLag.heartbeat: expected at least 1s (main writes its clock in whole seconds), got 500ms`,
    ],
  ],
  [
    'sftp lockout out of range, bad unlock time',
    'sftp:\n  lockout: { attempts: 1000, unlockAfter: ten minutes }\n',
    [
      `${FILE}: sftp.lockout.attempts: expected an integer 0..100, got 1000`,
      `${FILE}: sftp.lockout.unlockAfter: expected a duration like 500ms, 2s, 1h, got "ten minutes"`,
    ],
  ],
  [
    'YAML duplicate key',
    'name: a\nhaproxy: { maxconn: 10 }\nname: b\n',
    [`${FILE}:3:1: YAML syntax error: Map keys must be unique`],
  ],
  [
    'YAML syntax error',
    'haproxy:\n  maxconn: 10\n  timeouts: { client: 1h\n',
    [
      `${FILE}:4:1: YAML syntax error: Flow map in block collection must be sufficiently indented and end with a }`,
    ],
  ],
];

describe('malformed topology → exact message, exit code 2', () => {
  it.each(cases)('%s', (_name, yaml, expected) => {
    const { exitCode, problems } = topologyProblems(yaml);
    expect(problems).toEqual(expected);
    expect(exitCode).toBe(2);
  });

  it('has at least 25 cases', () => expect(cases.length).toBeGreaterThanOrEqual(25));

  it('reports every problem of a file, not only the first', () => {
    const { problems } = topologyProblems(
      'haproxy: { maxconn: 0, timeouts: { check: soon } }\nsftp: { port: -1 }',
    );
    expect(problems).toEqual([
      `${FILE}: haproxy.maxconn: expected an integer 1..1000000, got 0`,
      `${FILE}: haproxy.timeouts.check: expected a duration like 500ms, 2s, 1h, got "soon"`,
      `${FILE}: sftp.port: expected an integer 1..65535, got -1`,
    ]);
  });
});

describe('files on disk', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-topo-'));
  const write = (name: string, text: string) => {
    const f = join(dir, name);
    writeFileSync(f, text);
    return f;
  };

  it('a YAML syntax error names file:line:col', () => {
    const f = write('syntax.yaml', 'name: seed\nsftp:\n  users:\n    - name: demo\n   bad: [\n');
    const { exitCode, problems } = problemsOf(() => loadTopology(f));
    expect(exitCode).toBe(2);
    expect(problems[0]).toMatch(
      new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:5:\\d+: YAML syntax error: `),
    );
  });

  it('a missing file', () => {
    const f = join(dir, 'absent.yaml');
    expect(problemsOf(() => loadTopology(f))).toEqual({
      exitCode: 2,
      problems: [`${f}: cannot read the file: no such file`],
    });
  });

  it('a folder instead of a file', () => {
    expect(problemsOf(() => loadTopology(dir))).toEqual({
      exitCode: 2,
      problems: [`${dir}: cannot read the file: is a directory, expected a YAML file`],
    });
  });

  it('configs/stack.yaml itself is valid', () => {
    const t = loadTopology('configs/stack.yaml');
    expect(t.name).toBe('seed');
    expect(Object.keys(t.nodes)).toHaveLength(10);
    expect(t.haproxy.pair.nodes).toEqual(['haproxy-1', 'haproxy-2']);
  });
});

describe('malformed inventory → exact message, exit code 2', () => {
  const t = loadTopology('configs/stack.yaml');
  const INV = 'configs/p.inventory.yaml';
  const inv = (edit: (i: Inventory) => void): Inventory => {
    const i = structuredClone(labInventory(t));
    edit(i);
    return i;
  };
  const inventoryProblems = (data: unknown) => problemsOf(() => inventoryFromObject(data, t, INV));

  it('the lab inventory and the production example are valid', () => {
    expect(() => inventoryFromObject(labInventory(t), t, INV)).not.toThrow();
    const prod = loadInventory('configs/production.example.inventory.yaml', t);
    expect(prod.hosts['sftp-main']?.addresses.lan).toBe('192.168.103.11');
  });

  it('missing a host', () => {
    expect(inventoryProblems(inv((i) => delete i.hosts['sftp-sub']))).toEqual({
      exitCode: 2,
      problems: [`${INV}: hosts.sftp-sub: missing (the topology has node sftp-sub)`],
    });
  });

  it('address outside its subnet', () => {
    expect(inventoryProblems(inv((i) => (i.hosts['haproxy-2']!.addresses.lan = '10.99.3.4')))).toEqual({
      exitCode: 2,
      problems: [`${INV}: hosts.haproxy-2.addresses.lan: 10.99.3.4 is not in the lan subnet 10.88.3.0/24`],
    });
  });

  it('address missing on a network the node is on', () => {
    expect(inventoryProblems(inv((i) => delete i.hosts['firewall']!.addresses.dmz))).toEqual({
      exitCode: 2,
      problems: [`${INV}: hosts.firewall.addresses.dmz: missing (node firewall is on dmz)`],
    });
  });

  it('unknown host', () => {
    const data = inv(
      (i) =>
        (i.hosts['sftp-extra'] = { ssh: { host: 'x', port: 22, user: 'root', sudo: false }, addresses: {} }),
    );
    expect(inventoryProblems(data)).toEqual({
      exitCode: 2,
      problems: [
        `${INV}: hosts.sftp-extra: not a node of the topology (wan-client, router, firewall, haproxy-1, haproxy-2, sftp-main, sftp-sub, sftp-backup, notify-sink, monitor)`,
      ],
    });
  });

  it('not an IPv4 address, bad ssh port, unknown field', () => {
    const data = inv((i) => {
      i.hosts['router']!.addresses.wan = '10.88.0.300';
      i.hosts['router']!.ssh.port = 70000;
      (i.hosts['router']!.ssh as Record<string, unknown>)['password'] = 'x';
    });
    expect(inventoryProblems(data).problems).toEqual([
      `${INV}: hosts.router.ssh.port: expected an integer 1..65535, got 70000`,
      `${INV}: hosts.router.ssh.password: unknown field`,
      `${INV}: hosts.router.addresses.wan: expected an IPv4 address, got "10.88.0.300"`,
    ]);
  });
});
