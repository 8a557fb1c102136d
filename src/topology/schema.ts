// The topology file's schema. One zod schema is the source of truth for parsing, defaults,
// the TypeScript types and the JSON Schema that `wharf schema` prints for editors.
import { z } from 'zod';

const show = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : String(JSON.stringify(v)));

export const port = () =>
  z
    .number({ error: (i) => `expected an integer 1..65535, got ${show(i.input)}` })
    .int({ error: (i) => `expected an integer 1..65535, got ${show(i.input)}` })
    .min(1, { error: (i) => `expected an integer 1..65535, got ${show(i.input)}` })
    .max(65535, { error: (i) => `expected an integer 1..65535, got ${show(i.input)}` });

const intIn = (min: number, max: number) => {
  const error = (i: { input: unknown }) => `expected an integer ${min}..${max}, got ${show(i.input)}`;
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
};

/** HAProxy-style duration: 500ms, 2s, 1m, 1h, 1d (a bare number means ms). */
export const duration = () =>
  z
    .string({ error: (i) => `expected a duration like 500ms, 2s, 1h, got ${show(i.input)}` })
    .regex(/^\d+(us|ms|s|m|h|d)?$/, {
      error: (i) => `expected a duration like 500ms, 2s, 1h, got ${show(i.input)}`,
    });

const name = (what: string) =>
  z
    .string({ error: (i) => `expected a ${what} name, got ${show(i.input)}` })
    .regex(/^[a-z][a-z0-9_-]{0,30}$/, {
      error: (i) =>
        `expected a ${what} name (lowercase letters, digits, - and _, max 31), got ${show(i.input)}`,
    });

export const cidr = () =>
  z
    .string({ error: (i) => `expected an IPv4 subnet like 10.88.0.0/24, got ${show(i.input)}` })
    .regex(/^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}\/([89]|[12]\d|30)$/, {
      error: (i) => `expected an IPv4 subnet like 10.88.0.0/24 (prefix 8..30), got ${show(i.input)}`,
    });

/** An IPv4 address or CIDR (prefix 0..32): a source range, e.g. 203.0.113.0/24 or 198.51.100.7. */
export const sourceRange = () =>
  z
    .string({ error: (i) => `expected an IPv4 address or CIDR like 203.0.113.0/24, got ${show(i.input)}` })
    .regex(/^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}(\/([0-9]|[12]\d|3[0-2]))?$/, {
      error: (i) => `expected an IPv4 address or CIDR like 203.0.113.0/24, got ${show(i.input)}`,
    });

const ipv4 = () =>
  z
    .string({ error: (i) => `expected an IPv4 address, got ${show(i.input)}` })
    .regex(/^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/, {
      error: (i) => `expected an IPv4 address, got ${show(i.input)}`,
    });

const absPath = () =>
  z
    .string()
    .regex(/^\/[A-Za-z0-9._/-]*$/, { error: (i) => `expected an absolute path, got ${show(i.input)}` });

export const NETWORKS = ['wan', 'transit', 'dmz', 'lan', 'mgmt'] as const;
export type NetworkName = (typeof NETWORKS)[number];
export const NODE_KINDS = [
  'router',
  'firewall',
  'haproxy',
  'sftp',
  'notify-sink',
  'wan-client',
  'monitor',
] as const;
export type NodeKind = (typeof NODE_KINDS)[number];
export const SFTP_ROLES = ['main', 'sub', 'backup'] as const;
export type SftpRole = (typeof SFTP_ROLES)[number];

const networkName = () =>
  z.enum(NETWORKS, { error: (i) => `expected one of ${NETWORKS.join('|')}, got ${show(i.input)}` });

const Network = z.strictObject({
  subnet: cidr(),
  description: z.string().optional(),
});

const Node = z.strictObject({
  kind: z.enum(NODE_KINDS, { error: (i) => `expected one of ${NODE_KINDS.join('|')}, got ${show(i.input)}` }),
  role: z
    .enum(SFTP_ROLES, { error: (i) => `expected one of ${SFTP_ROLES.join('|')}, got ${show(i.input)}` })
    .optional(),
  /** Networks the node is attached to; defaults by kind. */
  networks: z.array(networkName()).optional(),
  /** Host number used for the node's address on every network in the lab (10.88.3.<hostId>). */
  hostId: intIn(2, 250).optional(),
  /** Lab-only nodes (the internet client, the notice sink) are not part of production. */
  labOnly: z.boolean().optional(),
});

const PortForward = z.strictObject({
  port: port(),
  protocol: z.enum(['tcp', 'udp']).default('tcp'),
  to: name('node'),
  toPort: port().optional(),
  description: z.string().optional(),
});

// The firewall's rules in OPNsense's terms (src/topology/firewall.ts has the model and its checks).
const fwPortValue = () =>
  z.union([port(), z.string().min(1)], {
    error: (i) =>
      `expected a port, a range like 2221-2222, a service name or a port alias, got ${show(i.input)}`,
  });
const fwInterfaces = () =>
  z.union([z.string().min(1), z.array(z.string().min(1)).min(1)], {
    error: (i) => `expected an interface name or a list of them, got ${show(i.input)}`,
  });

const FirewallAlias = z.strictObject({
  name: z.string(),
  type: z.enum(['host', 'network', 'port'], {
    error: (i) => `expected one of host|network|port, got ${show(i.input)}`,
  }),
  /** Addresses, subnets, node names, ports, ranges, or other aliases (nesting). */
  content: z.array(z.union([z.string(), z.number()])).min(1, { error: 'expected at least one entry' }),
  enabled: z.boolean().optional(),
  description: z.string().optional(),
});

const FirewallRule = z.strictObject({
  description: z.string().min(1, { error: 'expected a non-empty description' }),
  enabled: z.boolean().optional(),
  /** Interface name(s) of `firewall.interfaces` (a network name one interface sits on works too). */
  interface: fwInterfaces(),
  direction: z
    .enum(['in', 'out'], { error: (i) => `expected one of in|out, got ${show(i.input)}` })
    .optional(),
  action: z.enum(['pass', 'block', 'reject'], {
    error: (i) => `expected one of pass|block|reject, got ${show(i.input)}`,
  }),
  /** OPNsense's "quick": the first matching quick rule wins; otherwise the last matching rule. */
  quick: z.boolean().optional(),
  protocol: z
    .enum(['tcp', 'udp', 'tcp/udp', 'icmp', 'any'], {
      error: (i) => `expected one of tcp|udp|tcp/udp|icmp|any, got ${show(i.input)}`,
    })
    .optional(),
  source: z.string().optional(),
  sourceNot: z.boolean().optional(),
  sourcePort: fwPortValue().optional(),
  destination: z.string().optional(),
  destinationNot: z.boolean().optional(),
  destinationPort: fwPortValue().optional(),
  /** The destination port (the field's name before the OPNsense model). */
  port: port().optional(),
  log: z.boolean().optional(),
});

const NatRule = z.strictObject({
  description: z.string().optional(),
  disabled: z.boolean().optional(),
  interface: fwInterfaces().optional(),
  protocol: z
    .enum(['tcp', 'udp', 'tcp/udp'], {
      error: (i) => `expected one of tcp|udp|tcp/udp, got ${show(i.input)}`,
    })
    .optional(),
  source: z.string().optional(),
  sourceNot: z.boolean().optional(),
  sourcePort: fwPortValue().optional(),
  /** Default: the interface's address (`wanip`, "WAN address"). */
  destination: z.string().optional(),
  destinationNot: z.boolean().optional(),
  destinationPort: fwPortValue().optional(),
  /** A node, an address or a host alias. */
  target: z.string().optional(),
  localPort: fwPortValue().optional(),
  /** OPNsense's filter rule association: add an associated pass rule, pass (rdr pass), or none. */
  associatedRule: z
    .enum(['add', 'pass', 'none'], { error: (i) => `expected one of add|pass|none, got ${show(i.input)}` })
    .optional(),
  log: z.boolean().optional(),
  /** The fields before the OPNsense model: destination port, target node, local port. */
  port: port().optional(),
  to: z.string().optional(),
  toPort: port().optional(),
});

const Server = z.union([
  name('node'),
  z.strictObject({
    node: name('node'),
    backup: z.boolean().default(false),
    weight: intIn(0, 256).optional(),
  }),
]);

const Frontend = z.strictObject({
  port: port(),
  backend: name('backend'),
  maxconn: intIn(1, 1_000_000).optional(),
  description: z.string().optional(),
});

const Backend = z.strictObject({
  balance: z.enum(['roundrobin', 'leastconn', 'source', 'first']).default('roundrobin'),
  /** `stick on src`: keep a client on one server (sticky sessions). */
  stickOnSource: z.boolean().default(false),
  /**
   * A read pool: its servers answer on `sftp.readOnlyPort`, where sshd runs `internal-sftp -R`
   * (every write refused with "Permission denied"), and a replica behind main by more than
   * `replication.readLag.max` leaves the pool (its HAProxy agent answers "down").
   */
  readOnly: z.boolean().default(false),
  servers: z.array(Server).min(1, { error: 'expected at least one server' }),
});

const User = z.strictObject({
  name: name('user'),
  /** SHA-512 crypt hash (openssl passwd -6), never the clear text. */
  passwordHash: z
    .string()
    .regex(/^\$6\$/, { error: 'expected a SHA-512 crypt hash starting with $6$' })
    .optional(),
  authorizedKeys: z
    .array(
      z.string().regex(/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp\d+) [A-Za-z0-9+/=]+( .*)?$/, {
        error: (i) => `expected an OpenSSH public key line, got ${show(String(i.input).slice(0, 40))}`,
      }),
    )
    .default([]),
  uid: intIn(1000, 60000).optional(),
});

const cronField = z.string();

export const TopologySchema = z.strictObject({
  name: name('stack').default('wharf'),
  networks: z
    .strictObject({
      wan: Network.default({ subnet: '10.88.0.0/24', description: 'internet side' }),
      transit: Network.default({ subnet: '10.88.1.0/24', description: 'router ↔ firewall' }),
      dmz: Network.default({ subnet: '10.88.2.0/24', description: 'firewall ↔ haproxy' }),
      lan: Network.default({ subnet: '10.88.3.0/24', description: 'haproxy ↔ sftp nodes' }),
      mgmt: Network.default({ subnet: '10.88.9.0/24', description: 'management ssh only' }),
    })
    .prefault({}),
  nodes: z.record(name('node'), Node).optional(),
  router: z
    .strictObject({
      /** Port forwards on the WAN side; default: every HAProxy frontend port to the firewall. */
      forwards: z.array(PortForward).optional(),
    })
    .prefault({}),
  firewall: z
    .strictObject({
      /** nftables on the firewall node (default), or an OPNsense box driven over its REST API. */
      kind: z
        .enum(['nftables', 'opnsense'], {
          error: (i) => `expected one of nftables|opnsense, got ${show(i.input)}`,
        })
        .optional(),
      /** OPNsense's anti-lockout rule: management ssh to the firewall passes before every rule (default true). */
      antiLockout: z.boolean().optional(),
      /** OPNsense interface name → the network it is attached to; default: wan (upstream) + the others by name. */
      interfaces: z.record(z.string(), networkName()).optional(),
      aliases: z.array(FirewallAlias).optional(),
      /** OPNsense filter rules, in order; the default policy is always deny. */
      rules: z.array(FirewallRule).optional(),
      /** Port forwards (destination NAT); default: every HAProxy frontend port to the HAProxy node. */
      nat: z.array(NatRule).optional(),
    })
    .prefault({}),
  haproxy: z
    .strictObject({
      maxconn: intIn(1, 1_000_000).default(2000),
      timeouts: z
        .strictObject({
          connect: duration().default('1s'),
          /** client and server are inactivity timeouts and must be equal in TCP mode. */
          client: duration().default('1h'),
          server: duration().default('1h'),
          check: duration().default('1s'),
        })
        .prefault({}),
      check: z
        .strictObject({
          inter: duration().default('500ms'),
          fall: intIn(1, 100).default(2),
          rise: intIn(1, 100).default(2),
          /**
           * Passive health: `observe layer4 error-limit N on-error mark-down` on every server. N
           * consecutive failed real connections (connect timeout or error) mark the server down at
           * once and the pending connection is redispatched to the next server, instead of waiting
           * for `fall` failed checks. 0 turns it off.
           */
          errorLimit: intIn(0, 100).default(2),
          expect: z.string().min(1).default('SSH-2.0-'),
        })
        .prefault({}),
      /**
       * Per-source rate limit: a source may open `connections` new connections per `period`.
       * Only ACCEPTED connections count (HAProxy's sess_rate), so a client retrying against the
       * limit does not keep itself locked out. Sources in `limits.trusted` are exempt.
       */
      rateLimit: z
        .strictObject({
          connections: intIn(1, 100000).default(20),
          period: duration().default('10s'),
        })
        .prefault({}),
      /** Per-source caps on connections open at once, and the customer ranges exempt from the rate limit. */
      limits: z
        .strictObject({
          /** Connections one source may hold open at once. */
          concurrent: intIn(1, 1_000_000).default(50),
          /**
           * Known customer ranges (IPv4 address or CIDR), e.g. a fleet behind one NAT address: no
           * rate limit, and `trustedConcurrent` instead of `concurrent` per address.
           */
          trusted: z.array(sourceRange()).default([]),
          trustedConcurrent: intIn(1, 1_000_000).default(500),
        })
        .prefault({}),
      /**
       * Two HAProxy nodes (haproxy-1, haproxy-2 by default) with keepalived: VRRP with unicast
       * peers moves a floating address on the dmz to the node whose HAProxy answers (process and
       * stats socket); the firewall's NAT points at that address; both share their stick tables
       * (peers). Off: one node, `haproxy`.
       */
      pair: z
        .strictObject({
          enabled: z.boolean().default(true),
          /**
           * The name the floating address goes by in `firewall.nat[].to` and firewall rules (the
           * default NAT and rules use it); it must not be a node's name.
           */
          name: name('address').default('haproxy'),
          /** The floating address; default: host `vipHostId` of the dmz subnet. */
          vip: ipv4().optional(),
          vipHostId: intIn(2, 254).default(254),
          /** VRRP virtual router id (unique on the dmz segment). */
          vrid: intIn(1, 255).default(51),
          /** Seconds between VRRP adverts; a dead master is noticed after ~3 adverts. */
          advertInt: intIn(1, 255).default(1),
          /** VRRP PASS authentication (sent in clear by VRRPv2: a guard against mistakes, not attackers). */
          auth: z
            .string()
            .regex(/^[A-Za-z0-9._-]{1,8}$/, {
              error: (i) => `expected 1..8 letters, digits, . _ -, got ${show(i.input)}`,
            })
            .default('wharfvip'),
          /** TCP port of HAProxy's peers protocol (stick tables), on the dmz addresses. */
          peersPort: port().default(10000),
        })
        .prefault({}),
      stats: z
        .strictObject({
          socket: absPath().default('/run/haproxy/admin.sock'),
          port: port().optional(),
        })
        .prefault({}),
      frontends: z.record(name('frontend'), Frontend).default({
        sftp: { port: 22, backend: 'sftp', description: 'SFTP: main, sub takes over' },
        write: { port: 2222, backend: 'write', description: 'writes: main only, sub takes over' },
        read: {
          port: 2221,
          backend: 'read',
          description: 'reads: main + sub read-only, sticky, a lagging replica out',
        },
      }),
      backends: z.record(name('backend'), Backend).default({
        sftp: {
          balance: 'first',
          stickOnSource: false,
          readOnly: false,
          servers: ['sftp-main', { node: 'sftp-sub', backup: true }],
        },
        write: {
          balance: 'first',
          stickOnSource: false,
          readOnly: false,
          servers: ['sftp-main', { node: 'sftp-sub', backup: true }],
        },
        // backup is not a reader: its chroot is empty (its copies live in dated snapshots)
        read: {
          balance: 'roundrobin',
          stickOnSource: true,
          readOnly: true,
          servers: ['sftp-main', 'sftp-sub'],
        },
      }),
    })
    .prefault({}),
  sftp: z
    .strictObject({
      group: name('group').default('sftp_users'),
      chrootBase: absPath().default('/srv/sftp'),
      uploadDir: name('directory').default('upload'),
      port: port().default(22),
      /** sshd's read-only listener (`internal-sftp -R`) on the nodes of a read-only backend. */
      readOnlyPort: port().default(2221),
      passwordAuthentication: z.boolean().default(true),
      maxAuthTries: intIn(1, 20).default(3),
      /**
       * Per-user lockout of the password path (pam_faillock in sshd's PAM stack): after `attempts`
       * wrong passwords within `window` the user's password logins are refused, the right password
       * too, until `unlockAfter` has passed (or `faillock --user NAME --reset`). Per user, not per
       * source: sshd sees HAProxy's address, never the client's. Key logins are not affected.
       * `attempts: 0` turns it off.
       */
      lockout: z
        .strictObject({
          attempts: intIn(0, 100).default(5),
          unlockAfter: duration().default('10m'),
          window: duration().default('15m'),
        })
        .prefault({}),
      maxSessions: intIn(1, 1000).default(10),
      /** Must stay below HAProxy's client/server timeouts (seconds). */
      clientAliveInterval: intIn(0, 86400).default(60),
      clientAliveCountMax: intIn(0, 100).default(3),
      /** Where the shared host keys live on every SFTP node. */
      hostKeyDir: absPath().default('/etc/ssh/wharf'),
      users: z.array(User).default([{ name: 'demo', authorizedKeys: [] }]),
    })
    .prefault({}),
  replication: z
    .strictObject({
      lsyncd: z
        .strictObject({
          from: name('node').default('sftp-main'),
          to: name('node').default('sftp-sub'),
          delay: intIn(0, 3600).default(1),
          excludes: z.array(z.string()).default(['*.part', '*.tmp', '.~*']),
          /** rsync writes into this directory (relative to the target) and renames when whole. */
          tempDir: z
            .string()
            .regex(/^[A-Za-z0-9._-]+$/)
            .default('.wharf-partial'),
          /** false = never delete on the target (safe failback), true/startup/running = lsyncd's modes. */
          delete: z.union([z.boolean(), z.enum(['startup', 'running'])]).default(false),
          insist: z.boolean().default(true),
          user: name('user').default('wharfsync'),
        })
        .prefault({}),
      backup: z
        .strictObject({
          from: name('node').default('sftp-sub'),
          to: name('node').default('sftp-backup'),
          /** cron syntax: minute hour day-of-month month day-of-week. */
          schedule: cronField.default('*/15 * * * *'),
          snapshotDir: absPath().default('/srv/backup/snapshots'),
          retention: intIn(1, 10000).default(96),
          /** Refuse to run when the source has no marker file (unmounted/empty source). */
          guardFile: z
            .string()
            .regex(/^[A-Za-z0-9._-]+$/)
            .default('.wharf-source'),
        })
        .prefault({}),
      /**
       * How far behind main a replica may be and still serve reads. Main writes its clock into
       * `<chrootBase>/.wharf-heartbeat/stamp` every `heartbeat` (replicated like an upload, outside
       * every user's chroot); the replica's HAProxy agent compares it with its own clock.
       */
      readLag: z
        .strictObject({
          heartbeat: duration().default('5s'),
          max: duration().default('30s'),
        })
        .prefault({}),
    })
    .prefault({}),
  /**
   * Metrics and alerts (issue 11): node_exporter (textfile collector) on every SFTP and HAProxy
   * node, HAProxy's own Prometheus exporter, wharf's metrics generator; Prometheus + Alertmanager on
   * the `monitor` node (when the inventory names one) with rules rendered from the topology.
   */
  monitoring: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** Prometheus' scrape and rule evaluation intervals; wharf's metrics are refreshed as often. */
      scrapeInterval: duration().default('15s'),
      evaluationInterval: duration().default('15s'),
      /** How long a condition must hold before its alert fires (`for:` of every rule). */
      for: duration().default('1m'),
      /** Replication lag main → sub (heartbeat age on sub) above which ReplicationLag fires. */
      lagMax: duration().optional(),
      /** Oldest upload notice waiting in the spool: NoticeSpoolGrowing above this age. */
      spoolMaxAge: duration().default('10m'),
      /** DiskAlmostFull below this share of free space on the upload filesystem (percent). */
      diskFreeMin: intIn(1, 99).default(10),
      /** Alertmanager grouping (lab: seconds, production: minutes). */
      groupWait: duration().default('30s'),
      groupInterval: duration().default('5m'),
      repeatInterval: duration().default('4h'),
    })
    .prefault({}),
  notifications: z
    .strictObject({
      /** Which node watches its upload folders and sends notices. */
      on: z
        .enum(['main', 'backup'], { error: (i) => `expected one of main|backup, got ${show(i.input)}` })
        .default('main'),
      webhook: z
        .strictObject({
          enabled: z.boolean().default(true),
          /** A node of the topology (resolved via the inventory) or a full URL. */
          node: name('node').optional(),
          url: z.string().url().optional(),
          port: port().default(8080),
          path: z.string().regex(/^\//).default('/hooks/upload'),
          format: z.enum(['slack', 'json']).default('slack'),
        })
        .prefault({ node: 'notify-sink' }),
      smtp: z
        .strictObject({
          enabled: z.boolean().default(true),
          node: name('node').optional(),
          host: z.string().optional(),
          port: port().default(25),
          from: z.string().email().default('wharf@example.org'),
          to: z.array(z.string().email()).min(1).default(['ops@example.org']),
        })
        .prefault({ node: 'notify-sink' }),
      retries: intIn(0, 100).default(5),
    })
    .prefault({}),
});

export type TopologyInput = z.input<typeof TopologySchema>;
export type ParsedTopology = z.output<typeof TopologySchema>;
export type PortForwardRule = z.output<typeof PortForward>;
export type SftpUser = z.output<typeof User>;
