// security: what an attacker on the internet sees, proven from the lab's wan-client node (every
// command runs ON wan-client over the management ssh; traffic goes to lab addresses only, each
// named explicitly):
// - a TCP connect scan of the WAN entry (the router's WAN address only) over ports 1–1024 plus the
//   stack's known ports finds exactly the SFTP frontends open (each answers with an SSH banner);
// - every transit, dmz, lan and mgmt address of every node is unreachable from wan, while a node
//   inside reaches the same listeners (control: the ports are really open);
// - the SFTP user (key login through the entry): no shell, no TTY, no -L / -R / -D forwarding, no
//   way out of the chroot (`..`, absolute paths, symlinks created to point outside) and no write
//   outside its upload folder (control: a write inside works);
// - per-user lockout (pam_faillock, sftp.lockout): after N wrong passwords the right one is refused
//   too; `faillock --reset` unlocks; with a short unlock time rendered by wharf for the proof, the
//   lock lifts by itself after that time;
// - HAProxy's per-source connection-rate limit trips on a burst (client count vs HAProxy's own
//   denied-connection counter).
import { haproxyNodes, nodeOfKind, sftpNode } from '../src/topology/model.ts';
import { renderFaillockConf } from '../src/render/sshd.ts';
import { RATE_TABLE } from '../src/render/haproxy.ts';
import { AGENT_PORT } from '../src/render/agent.ts';
import { socatLine } from '../src/failover/index.ts';
import { shQuote } from '../src/transport/index.ts';
import type { Scenario, ScenarioContext } from '../src/scenario/types.ts';
import { activeHaproxyNode, ensureScenarioLab, type ScenarioLab } from './lab.ts';
import { sleep } from './outage.ts';
import { entryPort, installClientKey, onWan } from './wan.ts';

const WORK = '/tmp/wharf-sec';

/**
 * Non-blocking TCP connect to every HOST:PORT argument at once (perl-base is on every Debian node),
 * then one line per target: open (connected), refused (RST), timeout (nothing came back).
 */
const SCANNER = String.raw`
use strict; use Socket; use IO::Select; use Errno; use Fcntl;
my $wait = shift @ARGV; my @all = @ARGV; my @out;
while (my @chunk = splice(@all, 0, 2000)) {
  my %t; my $sel = IO::Select->new;
  for my $t (@chunk) {
    my ($h, $p) = split /:/, $t;
    socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
    my $fl = fcntl($s, F_GETFL, 0); fcntl($s, F_SETFL, $fl | O_NONBLOCK);
    if (connect($s, sockaddr_in($p, inet_aton($h)))) { push @out, "$t open"; close $s; next }
    if (!$!{EINPROGRESS}) { push @out, "$t " . ($!{ECONNREFUSED} ? 'refused' : "error $!"); close $s; next }
    $t{fileno $s} = [$s, $t]; $sel->add($s);
  }
  my $end = time + $wait;
  while ($sel->count && time < $end) {
    for my $s ($sel->can_write(0.2)) {
      my $err = unpack('i', getsockopt($s, SOL_SOCKET, SO_ERROR));
      my $t = $t{fileno $s}[1];
      push @out, "$t " . ($err == 0 ? 'open' : $err == 111 ? 'refused' : "error $err");
      $sel->remove($s); close $s;
    }
  }
  push @out, "$t{fileno $_}[1] timeout" for $sel->handles;
}
print "$_\n" for @out;
`;

type PortState = 'open' | 'refused' | 'timeout' | string;

/** Scan targets (host:port) from a node; every target gets a state. */
async function scan(lab: ScenarioLab, from: string, targets: string[], waitS = 3) {
  const r = await lab.transports
    .get(from)!
    .exec(
      [
        'sh',
        '-c',
        'ulimit -n 4096 2>/dev/null || ulimit -n 1024; exec perl -e "$@"',
        'sh',
        SCANNER,
        String(waitS),
        ...targets,
      ],
      {
        timeoutMs: (waitS * 3 + 30) * 1000,
      },
    );
  const out = new Map<string, PortState>();
  for (const line of r.stdout.split('\n')) {
    const [t, ...s] = line.trim().split(' ');
    if (t) out.set(t, s.join(' '));
  }
  const missing = targets.filter((t) => !out.has(t));
  if (r.code !== 0 || missing.length)
    throw new Error(
      `scan from ${from} failed (exit ${r.code}): ${r.stderr.trim() || `no answer for ${missing[0]}`}`,
    );
  return out;
}

const count = (m: Map<string, PortState>, s: PortState) => [...m.values()].filter((v) => v === s).length;

export const security: Scenario = {
  name: 'security',
  description:
    'from the wan client: port scan finds only the SFTP ports, mgmt/lan unreachable, SFTP user jailed (no shell, TTY, forwarding, chroot escape), per-user lockout, connection-rate limit',
  async run(ctx) {
    const lab = await ensureScenarioLab(ctx.log);
    const wan = 'wan-client';
    if (!lab.transports.has(wan)) {
      ctx.check('wan-client is in the lab inventory', false, 'no transport to wan-client');
      return;
    }
    const sh = (cmd: string, timeoutMs = 60_000) => lab.sh(wan, cmd, timeoutMs);
    await sh(`rm -rf ${WORK} && mkdir -m 700 ${WORK}`);
    try {
      for (const [name, part] of [
        ['port scan', portScan],
        ['unreachable', unreachable],
        ['jail', jail],
        ['lockout', lockout],
        ['burst', burst],
      ] as const) {
        const t0 = Date.now();
        await part(lab, ctx);
        ctx.log(`${name}: ${Date.now() - t0} ms`);
      }
    } finally {
      await sh(`pkill -F ${WORK}/fwd.pid 2>/dev/null; rm -rf ${WORK}`).catch(() => {});
      await clearRate(lab).catch(() => {});
    }
  },
};

const wanAddr = (lab: ScenarioLab) => lab.status.nodes['wan-client']!.addresses.wan!;

/** Forget wan-client's connection rate in HAProxy (its table is shared by all frontends). */
async function clearRate(lab: ScenarioLab): Promise<void> {
  const t = lab.t;
  // on every HAProxy: a pair shares the table through peers
  for (const hap of haproxyNodes(t))
    await lab.sh(hap, socatLine(t.haproxy.stats.socket, [`clear table ${RATE_TABLE} key ${wanAddr(lab)}`]));
}

async function portScan(lab: ScenarioLab, ctx: ScenarioContext): Promise<void> {
  const t = lab.t;
  const entry = lab.status.direct.host;
  const frontends = [...new Set(Object.values(t.haproxy.frontends).map((f) => f.port))].sort((a, b) => a - b);
  const known = [
    ...frontends,
    ...(t.haproxy.stats.port ? [t.haproxy.stats.port] : []),
    AGENT_PORT,
    t.notifications.webhook.port,
    t.notifications.smtp.port,
    2221,
    2222,
    8404,
    9100,
    9090,
    8080,
    8443,
  ];
  const ports = [...new Set([...Array.from({ length: 1024 }, (_, i) => i + 1), ...known])];
  const t0 = Date.now();
  const res = await scan(
    lab,
    'wan-client',
    ports.map((p) => `${entry}:${p}`),
    2,
  );
  const open = [...res].filter(([, s]) => s === 'open').map(([k]) => Number(k.split(':')[1]));
  ctx.metric('port scan: ports probed', ports.length, 'ports');
  ctx.metric('port scan: time', Date.now() - t0, 'ms');
  ctx.check(
    `port scan of the WAN entry ${entry} (${ports.length} ports: 1–1024 + stack ports) finds only the SFTP frontends ${frontends.join(', ')}`,
    open.join(',') === frontends.join(','),
    `open: ${open.join(', ') || 'none'}; refused ${count(res, 'refused')}, no answer ${count(res, 'timeout')}`,
  );
  // each open port is SFTP: it answers with an SSH banner
  const banners = await onWan(
    lab,
    frontends
      .map(
        (p) =>
          `printf '%s ' ${p}; timeout 4 bash -c 'exec 3<>/dev/tcp/${entry}/${p} && timeout 3 head -c 8 <&3' 2>/dev/null | tr -dc 'A-Za-z0-9.-'; echo`,
      )
      .join('; '),
  );
  const notSsh = banners.stdout
    .trim()
    .split('\n')
    .filter((l) => !/ SSH-2\.0/.test(l));
  ctx.check(
    'every open port of the entry answers with an SSH banner',
    notSsh.length === 0,
    notSsh.length ? `no SSH banner: ${notSsh.join('; ')}` : banners.stdout.trim().replace(/\n/g, '; '),
  );
  await clearRate(lab);
}

async function unreachable(lab: ScenarioLab, ctx: ScenarioContext): Promise<void> {
  const t = lab.t;
  const hap = nodeOfKind(t, 'haproxy').name;
  // every inside address of every node, with the ports that really listen there
  const targets: { what: string; addr: string; port: number }[] = [];
  for (const [name, n] of Object.entries(lab.status.nodes)) {
    for (const [net, addr] of Object.entries(n.addresses)) {
      if (!addr || net === 'wan') continue;
      const ports = new Set<number>([22]);
      const isHap = t.nodes[name]?.kind === 'haproxy';
      if (isHap && net === 'dmz') for (const f of Object.values(t.haproxy.frontends)) ports.add(f.port);
      if (isHap && net === 'mgmt' && t.haproxy.stats.port) ports.add(t.haproxy.stats.port);
      if (t.nodes[name]?.kind === 'notify-sink' && net === 'lan') {
        ports.add(t.notifications.webhook.port);
        ports.add(t.notifications.smtp.port);
      }
      for (const port of ports) targets.push({ what: `${name} ${net}`, addr, port });
    }
  }
  const list = targets.map((x) => `${x.addr}:${x.port}`);
  const fromWan = await scan(lab, 'wan-client', list, 2);
  const reached = targets.filter((x) => fromWan.get(`${x.addr}:${x.port}`) === 'open');
  const byNet = (net: string) => targets.filter((x) => x.what.endsWith(` ${net}`));
  for (const net of ['transit', 'dmz', 'lan', 'mgmt']) {
    const xs = byNet(net);
    if (!xs.length) continue;
    const open = xs.filter((x) => fromWan.get(`${x.addr}:${x.port}`) === 'open');
    ctx.check(
      `from wan: every ${net} address is unreachable (${[...new Set(xs.map((x) => x.addr))].join(', ')})`,
      open.length === 0,
      open.length
        ? `reached: ${open.map((x) => `${x.what} ${x.addr}:${x.port}`).join(', ')}`
        : `${xs.length} address:port pairs, ${xs.filter((x) => fromWan.get(`${x.addr}:${x.port}`) === 'timeout').length} dropped, ${xs.filter((x) => fromWan.get(`${x.addr}:${x.port}`) === 'refused').length} refused`,
    );
  }
  // control: from inside (the HAProxy node sits on dmz, lan and mgmt) the same listeners answer,
  // so "unreachable from wan" is the network's doing, not an empty port
  const inside = targets.filter((x) => lab.status.nodes[hap]!.addresses[x.what.split(' ')[1]!]);
  const fromHap = await scan(
    lab,
    hap,
    inside.map((x) => `${x.addr}:${x.port}`),
    1,
  );
  const openInside = inside.filter((x) => fromHap.get(`${x.addr}:${x.port}`) === 'open');
  ctx.check(
    `control: from ${hap} (inside) the same listeners answer`,
    openInside.length > 0 &&
      ['dmz', 'lan', 'mgmt'].every((n) => openInside.some((x) => x.what.endsWith(` ${n}`))),
    `${openInside.length}/${inside.length} open from ${hap}; from wan ${reached.length}`,
  );
}

async function jail(lab: ScenarioLab, ctx: ScenarioContext): Promise<void> {
  const t = lab.t;
  const entry = lab.status.direct.host;
  const port = entryPort(lab);
  const user = lab.status.demoUser.name;
  const main = sftpNode(t, 'main').name;
  const mainLan = lab.status.nodes[main]!.addresses.lan!;
  const upload = `${t.sftp.chrootBase}/${user}/${t.sftp.uploadDir}`;
  const o = await installClientKey(lab, WORK);
  const dest = `-p ${port} ${user}@${entry}`;

  // control: the key login works at all (else every refusal below would prove nothing)
  const ok = await onWan(lab, `echo pwd | sftp ${o} -P ${port} ${user}@${entry} 2>&1; echo "exit=$?"`);
  if (
    !ctx.check(
      'control: the SFTP user logs in with its key from wan',
      /exit=0\s*$/.test(ok.stdout),
      ok.stdout.trim().split('\n').slice(-1)[0],
    )
  )
    return;

  // no shell, no TTY
  const shell = await onWan(
    lab,
    `timeout 15 ssh ${o} -tt ${dest} 'echo SHELL-$((6*7)); id' </dev/null 2>&1; echo "exit=$?"`,
  );
  const out = shell.stdout;
  ctx.check(
    'no shell: a command sent over ssh does not run',
    !/SHELL-42|uid=/.test(out),
    out.replace(/\s+/g, ' ').trim().slice(0, 160),
  );
  ctx.check(
    'no TTY: a pty request is refused',
    /PTY allocation request failed/.test(out),
    out.replace(/\s+/g, ' ').trim().slice(0, 160),
  );

  // -L: the local listener starts, but the server refuses to open the channel
  const fwdL = await onWan(
    lab,
    [
      `ssh ${o} -N -o ExitOnForwardFailure=yes -L 127.0.0.1:15022:${mainLan}:${t.sftp.port} ${dest} >${WORK}/fwdL.log 2>&1 </dev/null & echo $! > ${WORK}/fwd.pid`,
      // wait until the local listener is there (the ssh session is up)
      `for i in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/15022) 2>/dev/null && break; sleep 0.2; done`,
      `b=$(timeout 4 bash -c 'exec 3<>/dev/tcp/127.0.0.1/15022 && timeout 3 head -c 8 <&3' 2>/dev/null | tr -dc 'A-Za-z0-9.-')`,
      `sleep 0.3; kill $(cat ${WORK}/fwd.pid) 2>/dev/null; rm -f ${WORK}/fwd.pid`,
      `echo "banner=[$b]"; grep -m1 -i 'open failed\\|prohibited' ${WORK}/fwdL.log`,
    ].join('\n'),
  );
  ctx.check(
    `no -L forwarding: ${mainLan}:${t.sftp.port} through the session gives nothing`,
    /banner=\[\]/.test(fwdL.stdout) && /prohibited|open failed/i.test(fwdL.stdout),
    fwdL.stdout.replace(/\s+/g, ' ').trim().slice(0, 200),
  );

  // -R: the server refuses the remote listener, ssh exits (ExitOnForwardFailure)
  const fwdR = await onWan(
    lab,
    `timeout 15 ssh ${o} -N -o ExitOnForwardFailure=yes -R 127.0.0.1:15023:127.0.0.1:22 ${dest} </dev/null 2>&1; echo "exit=$?"`,
  );
  ctx.check(
    'no -R forwarding: the remote listener is refused',
    /remote port forwarding failed/i.test(fwdR.stdout) && !/exit=(0|124)\b/.test(fwdR.stdout),
    fwdR.stdout.replace(/\s+/g, ' ').trim().slice(0, 200),
  );

  // -D: a SOCKS4 CONNECT to main's lan sshd through the session is rejected (0x5b) or cut
  const ip = mainLan
    .split('.')
    .map((x) => `\\x${Number(x).toString(16).padStart(2, '0')}`)
    .join('');
  const pHex = `\\x${((t.sftp.port >> 8) & 255).toString(16).padStart(2, '0')}\\x${(t.sftp.port & 255).toString(16).padStart(2, '0')}`;
  const fwdD = await onWan(
    lab,
    [
      `ssh ${o} -N -D 127.0.0.1:15024 ${dest} >${WORK}/fwdD.log 2>&1 </dev/null & echo $! > ${WORK}/fwd.pid`,
      `for i in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/15024) 2>/dev/null && break; sleep 0.2; done`,
      `r=$(timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/15024 && printf "\\x04\\x01${pHex}${ip}x\\x00" >&3 && timeout 3 head -c 16 <&3' 2>/dev/null | od -An -tx1 | tr -d ' \\n')`,
      `sleep 0.3; kill $(cat ${WORK}/fwd.pid) 2>/dev/null; rm -f ${WORK}/fwd.pid`,
      `echo "reply=[$r]"; grep -m1 -i 'open failed\\|prohibited' ${WORK}/fwdD.log`,
    ].join('\n'),
  );
  const reply = /reply=\[([0-9a-f]*)\]/.exec(fwdD.stdout)?.[1] ?? '';
  ctx.check(
    `no -D forwarding: a SOCKS connect to ${mainLan}:${t.sftp.port} is refused`,
    !reply.startsWith('005a') && !reply.includes('5353482d') /* "SSH-" */,
    fwdD.stdout.replace(/\s+/g, ' ').trim().slice(0, 200),
  );

  // the chroot: `..`, absolute paths, symlinks pointing outside, writes outside the upload folder
  const batch = [
    'pwd',
    'cd ..',
    'cd ..',
    'pwd',
    'ls -1a /',
    `-get /etc/passwd ${WORK}/got-abs`,
    `-get ../../../../etc/passwd ${WORK}/got-dotdot`,
    `-get /etc/hostname ${WORK}/got-hostname`,
    `-symlink /etc/passwd ${t.sftp.uploadDir}/sec-link-abs`,
    `-symlink ../../../../../etc/hostname ${t.sftp.uploadDir}/sec-link-rel`,
    `-get ${t.sftp.uploadDir}/sec-link-abs ${WORK}/got-link-abs`,
    `-get ${t.sftp.uploadDir}/sec-link-rel ${WORK}/got-link-rel`,
    `-put ${WORK}/known_hosts /sec-outside`,
    `-put ${WORK}/known_hosts ../sec-outside-dotdot`,
    `-put ${WORK}/known_hosts /.ssh/authorized_keys`,
    `put ${WORK}/known_hosts ${t.sftp.uploadDir}/sec-inside`,
  ];
  const j = await onWan(
    lab,
    `printf '%s\\n' ${batch.map(shQuote).join(' ')} | sftp -b - ${o} -P ${port} ${user}@${entry} 2>&1; echo "exit=$?"; ls ${WORK}`,
  );
  const pwds = [...j.stdout.matchAll(/Remote working directory: (\S+)/g)].map((m) => m[1]);
  ctx.check(
    'no way up: `cd ..` from the chroot root stays at /',
    pwds.length === 2 && pwds.every((p) => p === '/'),
    `pwd: ${pwds.join(' → ')}`,
  );
  const got = j.stdout.split('\n').filter((l) => /^got-/.test(l.trim()));
  ctx.check(
    'no file outside the chroot can be read: /etc/passwd, ../../etc/passwd, /etc/hostname, symlinks to them',
    got.length === 0,
    got.length ? `fetched: ${got.join(', ')}` : '5 reads refused (not found inside the chroot)',
  );
  const q = (p: string) => shQuote(p);
  const home = `${t.sftp.chrootBase}/${user}`;
  const onMain = await lab.sh(
    main,
    [
      `for f in sec-link-abs sec-link-rel; do echo "link $f -> $(readlink ${q(upload)}/$f || echo absent)"; done`,
      `find ${q(t.sftp.chrootBase)} -maxdepth 3 -name 'sec-outside*' | sed 's/^/stray /'`,
      `test -f ${q(upload)}/sec-inside && echo inside`,
      `grep -c '^\\[' ${q(`${home}/.ssh/authorized_keys`)} | sed 's/^/keys-changed /'`,
    ].join('; '),
  );
  const links = onMain.stdout
    .split('\n')
    .filter((l) => l.startsWith('link '))
    .map((l) => l.slice(5));
  ctx.log(`on ${main}: ${links.join('; ')}`);
  const strays = onMain.stdout
    .split('\n')
    .filter((l) => l.startsWith('stray '))
    .map((l) => l.slice(6));
  const inside = /^inside$/m.test(onMain.stdout);
  const keysIntact = /^keys-changed 0$/m.test(onMain.stdout);
  ctx.check(
    "no write outside the upload folder (chroot root, `..`, the chroot's own authorized_keys); control: a write inside works",
    strays.length === 0 && keysIntact && inside,
    `outside: ${strays.join(', ') || 'none'}; authorized_keys ${keysIntact ? 'intact' : 'CHANGED'}; inside write ${inside ? 'ok' : 'FAILED'}; symlinks as stored: ${links.join(', ')} (they resolve inside the chroot)`,
  );
  // the symlinks themselves are inert data: remove them everywhere lsyncd may have copied them
  for (const n of Object.values(t.nodes).filter((n) => n.kind === 'sftp'))
    await lab.sh(n.name, `rm -f ${shQuote(upload)}/sec-*; true`);
}

async function lockout(lab: ScenarioLab, ctx: ScenarioContext): Promise<void> {
  const t = lab.t;
  const lock = t.sftp.lockout;
  const main = sftpNode(t, 'main').name;
  const user = lab.status.demoUser.name;
  if (lock.attempts === 0) {
    ctx.check('per-user lockout configured (sftp.lockout.attempts > 0)', false, 'attempts: 0 (off)');
    return;
  }
  const wan = lab.transports.get('wan-client')!;
  const mainTr = lab.transports.get(main)!;
  const entry = lab.status.direct.host;
  const port = entryPort(lab);
  const own = { mode: 0o600, owner: 'root', group: 'root', secret: true };
  await wan.writeFileAtomic(`${WORK}/pw-right`, lab.status.demoUser.password + '\n', own);
  await wan.writeFileAtomic(`${WORK}/pw-wrong`, 'not-the-password-' + Date.now() + '\n', own);
  await wan.writeFileAtomic(`${WORK}/askpass`, '#!/bin/sh\nexec cat "$WHARF_PW"\n', { ...own, mode: 0o700 });
  // one password attempt per connection: exit 0 = logged in, else refused
  const attempt = (which: 'right' | 'wrong') =>
    `echo pwd | WHARF_PW=${WORK}/pw-${which} SSH_ASKPASS=${WORK}/askpass SSH_ASKPASS_REQUIRE=force DISPLAY=none ` +
    `timeout 20 sftp -o IdentitiesOnly=yes -o PubkeyAuthentication=no -o PreferredAuthentications=password ` +
    `-o NumberOfPasswordPrompts=1 -o StrictHostKeyChecking=yes -o UserKnownHostsFile=${WORK}/known_hosts ` +
    `-o GlobalKnownHostsFile=/dev/null -o ConnectTimeout=10 -P ${port} ${user}@${entry} >/dev/null 2>&1`;
  const right = async () => (await onWan(lab, `${attempt('right')}; echo $?`)).stdout.trim() === '0';
  // N wrong passwords at once (pam_unix waits ~2 s after each failure: in parallel, not 2 s × N)
  const wrongBurst = async () => {
    const r = await lab.sh(
      'wan-client',
      `for i in $(seq 1 ${lock.attempts}); do (${attempt('wrong')}; echo $? > ${WORK}/wrong.$i) & done; wait; cat ${WORK}/wrong.*; rm -f ${WORK}/wrong.*`,
    );
    return r.stdout
      .trim()
      .split('\n')
      .filter((c) => c.trim() === '0').length;
  };
  const records = async () =>
    (await lab.sh(main, `faillock --user ${shQuote(user)} | grep -c ' V$' || true`)).stdout.trim();
  const reset = () => lab.sh(main, `faillock --user ${shQuote(user)} --reset`);

  // The proof runs with a short unlock time (the same renderer, unlockAfter 5 s; the default is
  // minutes): lock → right password refused → lifts by itself → lock again → faillock --reset.
  const shortS = 5;
  const short = renderFaillockConf({
    ...t,
    sftp: { ...t.sftp, lockout: { ...lock, unlockAfter: `${shortS}s` } },
  });
  const normal = renderFaillockConf(t);
  const w = { mode: short.mode, owner: short.owner, group: short.group };
  let lap = Date.now();
  const tick = (what: string) => {
    ctx.log(`lockout: ${what} ${Date.now() - lap} ms`);
    lap = Date.now();
  };
  await clearRate(lab);
  try {
    await mainTr.writeFileAtomic(short.path, short.content, w);
    await reset();
    if (!ctx.check('control: the right password logs in (password path open)', await right())) return;
    tick('setup');
    const accepted = await wrongBurst();
    tick('wrong burst');
    const lockedAt = Date.now();
    const recs = await records();
    const refused = !(await right());
    tick('right refused');
    ctx.check(
      `after ${lock.attempts} wrong passwords the right one is refused too (${user} locked on ${main})`,
      accepted === 0 && refused,
      `wrong accepted ${accepted}; faillock records ${recs}; right password ${refused ? 'refused' : 'ACCEPTED'}`,
    );
    let unlockedAfter: number | undefined;
    const deadline = lockedAt + (shortS + 15) * 1000;
    await sleep(Math.max(0, lockedAt + shortS * 1000 - Date.now()));
    while (Date.now() < deadline) {
      if (await right()) {
        unlockedAfter = Date.now() - lockedAt;
        break;
      }
      await sleep(500);
    }
    tick('unlock wait');
    if (unlockedAfter !== undefined) ctx.metric('lockout lifted after', unlockedAfter, 'ms');
    ctx.check(
      `the lock lifts by itself after unlock_time (${shortS}s rendered for the proof; default ${lock.unlockAfter})`,
      refused && unlockedAfter !== undefined && unlockedAfter >= shortS * 1000,
      `accepted again ${unlockedAfter !== undefined ? `${unlockedAfter} ms after the last wrong password` : 'never (within 20 s)'}`,
    );
    await clearRate(lab);
    await wrongBurst();
    const before = Number(await records());
    await reset();
    const after = Number(await records());
    const back = await right();
    ctx.check(
      '`faillock --reset` unlocks at once: the right password logs in again',
      before >= lock.attempts && after === 0 && back,
      `failure records ${before} → ${after}; right password ${back ? 'accepted' : 'REFUSED'}`,
    );
  } finally {
    await mainTr.writeFileAtomic(normal.path, normal.content, w);
    await reset();
  }
}

async function burst(lab: ScenarioLab, ctx: ScenarioContext): Promise<void> {
  const t = lab.t;
  const hap = await activeHaproxyNode(lab);
  const port = entryPort(lab);
  const fe = Object.entries(t.haproxy.frontends).find(([, f]) => f.port === port)![0];
  const entry = lab.status.direct.host;
  const n = t.haproxy.rateLimit.connections * 2;
  const denied = async () => {
    const r = await lab.sh(hap, socatLine(t.haproxy.stats.socket, ['show stat']));
    const lines = r.stdout.split('\n');
    const head = lines[0]!.replace(/^# /, '').split(',');
    const row = lines.find((l) => l.startsWith(`${fe},FRONTEND,`))?.split(',') ?? [];
    return Number(row[head.indexOf('dcon')] ?? NaN);
  };
  await clearRate(lab);
  const before = await denied();
  const t0 = Date.now();
  // N new connections in a row (each reads the banner and closes: sshd's MaxStartups stays out of it)
  const r = await onWan(
    lab,
    `ok=0; no=0; for i in $(seq 1 ${n}); do if timeout 3 bash -c 'exec 3<>/dev/tcp/${entry}/${port} && timeout 2 head -c 7 <&3' 2>/dev/null | grep -q SSH-2.0; then ok=$((ok+1)); else no=$((no+1)); fi; done; echo "$ok $no"`,
    120_000,
  );
  const took = Date.now() - t0;
  const after = await denied();
  const [ok, no] = r.stdout.trim().split(' ').map(Number) as [number, number];
  ctx.metric('burst: connections', n, 'connections');
  ctx.metric('burst: accepted', ok, 'connections');
  ctx.metric('burst: rejected', no, 'connections');
  ctx.metric('burst: duration', took, 'ms');
  const limit = t.haproxy.rateLimit;
  ctx.check(
    `a burst of ${n} connections from one source trips the rate limit (${limit.connections} per ${limit.period})`,
    no > 0 && ok > 0 && ok <= limit.connections && after - before === no,
    `${ok} accepted, ${no} rejected in ${took} ms; HAProxy's ${fe} frontend denied ${after - before}`,
  );
  await clearRate(lab);
}
