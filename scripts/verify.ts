#!/usr/bin/env -S npx tsx
// verify: the stack works end to end, every check a step with an expectation. HAProxy backends UP
// (runtime API), sshd config valid, chroot ownership right, shared host key served, lsyncd running,
// a probe file uploaded through the entry point appears on main and then on sub with the same
// checksum, and the notice of THAT upload is delivered. A failed check is recorded and the other
// checks still run; the run fails if one expectation is not met.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { sleep } from 'zx';
import { defineRunbook, registerRunbook, type RunbookContext } from '../src/runbook/registry.ts';
import { runStepPlan, type Step, type StepPlan } from '../src/runbook/steps.ts';
import { runAsScript } from '../src/cli/standalone.ts';
import { shell } from '../src/transport/shell.ts';
import type { Transport } from '../src/transport/types.ts';
import { probeUser, putProbe, type Probe } from '../src/failover/probe.ts';
import { parseStat, socatLine, type StatRow } from '../src/failover/haproxy.ts';
import { ensureStackSecrets } from '../src/stack/secrets.ts';
import { managedNodes } from '../src/stack/desired.ts';
import { durationMs, haproxyNodes, sftpNode, vipAddress } from '../src/topology/model.ts';
import { holdsVipCommand } from '../src/failover/pair.ts';
import { KEEPALIVED_METRIC, KEEPALIVED_PROM } from '../src/render/keepalived.ts';

export interface VerifyCheck {
  node: string;
  name: string;
  ok: boolean;
  detail: string;
  ms?: number;
}

/** `host.$` with verify's settings: a check reads the result, whatever the exit code, within 20 s. */
const on = (t: Transport) => shell(t)({ nothrow: true, timeoutMs: 20_000 });

async function until<T>(timeoutMs: number, fn: () => Promise<T | undefined>): Promise<T | undefined> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) return undefined;
    await sleep(200);
  }
}

const fail = (msg: string): never => {
  throw new Error(msg);
};

/** The checks as steps (pure apart from the closures that run them). */
export function planVerify(ctx: RunbookContext<unknown>): StepPlan {
  const { topology: t, inventory: inv } = ctx;
  const tr = (node: string) => {
    const x = ctx.transports.get(node);
    if (!x) throw new Error(`${node}: not in the inventory`);
    return x;
  };
  const managed = new Set(managedNodes(t, inv, ctx.only).map((n) => n.name));
  const base = t.sftp.chrootBase;
  const steps: Step[] = [];
  const check = (s: Omit<Step, 'readOnly'> & { expect: string }) => steps.push({ ...s, readOnly: true });

  // HAProxy: every server of every backend UP, through the runtime API
  for (const hap of haproxyNodes(t)) {
    if (!managed.has(hap)) continue;
    // right after a reload the checks are still settling (rise/fall): wait until every server is UP
    const settle =
      (t.haproxy.check.rise + t.haproxy.check.fall + 2) * durationMs(t.haproxy.check.inter) + 5000;
    let rows: StatRow[] | undefined;
    let socketError = '';
    const stat = async () => {
      const r = await tr(hap).exec(socatLine(t.haproxy.stats.socket, ['show stat']), { timeoutMs: 20_000 });
      socketError = r.code !== 0 ? `stats socket: ${r.stderr.trim()}` : '';
      return parseStat(r.stdout);
    };
    check({
      id: `${hap}:stats`,
      host: hap,
      action: 'HAProxy runtime API answers, servers settled',
      why: `right after a reload the health checks settle (rise/fall); waits up to ${settle / 1000} s`,
      expect: 'the stats socket lists the servers',
      run: async () => {
        rows = await stat();
        const end = Date.now() + settle;
        while (rows.some((x) => x.status !== 'UP') && Date.now() < end) {
          await sleep(250);
          rows = await stat();
        }
        if (!rows.length) fail(socketError || 'no server listed');
        return `${rows.filter((x) => x.status === 'UP').length}/${rows.length} UP`;
      },
    });
    for (const [name, b] of Object.entries(t.haproxy.backends))
      for (const s of b.servers)
        check({
          id: `${hap}:backend ${name}/${s.node}`,
          host: hap,
          action: `backend ${name}/${s.node} UP`,
          why: 'HAProxy sends traffic only to servers its health checks pass',
          expect: 'status UP',
          run: async () => {
            const row = rows?.find((x) => x.proxy === name && x.server === s.node);
            if (row?.status !== 'UP') fail(row ? row.status : socketError || 'server not found');
            return row!.status;
          },
        });
  }

  // HAProxy pair: keepalived runs on both, exactly one holds the floating address, and it is the
  // one whose metric says MASTER
  const pair = t.haproxy.pair;
  if (pair.enabled && pair.nodes.every((n) => managed.has(n))) {
    const vip = vipAddress(t, inv);
    for (const n of pair.nodes)
      check({
        id: `${n}:keepalived`,
        host: n,
        action: 'keepalived active',
        why: 'VRRP moves the floating address to this node when the other HAProxy fails',
        expect: 'systemctl is-active keepalived: active',
        run: async () => {
          const r = await on(tr(n))`systemctl is-active keepalived`;
          if (r.stdout.trim() !== 'active') fail(r.stdout.trim() || r.stderr.trim());
          return 'active';
        },
      });
    check({
      id: `${pair.nodes.join('+')}:vip`,
      host: pair.nodes[0]!,
      action: `exactly one HAProxy holds ${vip}`,
      why: 'the firewall forwards to the floating address: nobody holding it is an outage, two a split brain',
      expect: `one holder, ${KEEPALIVED_METRIC} 1 there`,
      run: async () => {
        // VRRP settles within a few adverts after keepalived (re)starts
        const end = Date.now() + (4 * pair.advertInt + 10) * 1000;
        let holders: string[] = [];
        for (;;) {
          holders = [];
          for (const n of pair.nodes)
            if ((await tr(n).exec(holdsVipCommand(vip), { timeoutMs: 10_000 })).code === 0) holders.push(n);
          if (holders.length === 1 || Date.now() > end) break;
          await sleep(500);
        }
        if (holders.length !== 1)
          fail(holders.length ? `held by ${holders.join(' and ')}` : 'held by no node');
        const prom = (await tr(holders[0]!).readFile(KEEPALIVED_PROM))?.toString('utf8') ?? '';
        if (!new RegExp(`^${KEEPALIVED_METRIC}\\{vip="${vip.replace(/\./g, '\\.')}"\\} 1$`, 'm').test(prom))
          fail(`${holders[0]} holds it but ${KEEPALIVED_PROM} says: ${prom.trim() || 'nothing'}`);
        return `held by ${holders[0]}`;
      },
    });
  }

  // SFTP nodes: sshd config valid, chroot ownership, host keys shared
  const secrets = ensureStackSecrets(t, inv);
  for (const n of Object.values(t.nodes)) {
    if (n.kind !== 'sftp' || !managed.has(n.name)) continue;
    check({
      id: `${n.name}:sshd -t`,
      host: n.name,
      action: 'sshd -t',
      why: 'a config sshd refuses would lock every client out at the next restart',
      expect: 'exit 0',
      run: async () => {
        const r = await on(tr(n.name))`sshd -t`;
        if (r.code !== 0) fail(r.stderr.trim());
      },
    });
    for (const u of t.sftp.users)
      check({
        id: `${n.name}:chroot ${u.name}`,
        host: n.name,
        action: `chroot of ${u.name} root-owned, upload writable by the user`,
        why: 'sshd refuses a chroot that is not root-owned or is group/other-writable',
        expect: `${base} and ${base}/${u.name} root-owned, not group/other-writable; ${t.sftp.uploadDir} owned by ${u.name}`,
        run: async () => {
          const dirs = [base, `${base}/${u.name}`, `${base}/${u.name}/${t.sftp.uploadDir}`];
          const st = await on(tr(n.name))`stat -c ${'%n %U %a'} ${dirs}`;
          const rows = st.stdout
            .trim()
            .split('\n')
            .map((l) => l.split(' '));
          const bad = rows
            .slice(0, 2)
            .filter(([, owner, mode]) => owner !== 'root' || /[2367]/.test((mode ?? '').slice(-2)));
          const detail = st.code === 0 ? rows.map((r) => r.join(' ')).join('; ') : st.stderr.trim();
          if (st.code !== 0 || bad.length || rows[2]?.[1] !== u.name) fail(detail);
          return detail;
        },
      });
    check({
      id: `${n.name}:host key`,
      host: n.name,
      action: 'serves the shared host key',
      why: 'every node behind one address presents the same key, or clients fail after a failover',
      expect: "the ed25519 key's fingerprint is the stack's",
      run: async () => {
        const fp = await on(tr(n.name))`ssh-keygen -lf ${`${t.sftp.hostKeyDir}/ssh_host_ed25519_key.pub`}`;
        const want = createHash('sha256')
          .update(Buffer.from(secrets.hostKeys.ed25519.public.split(/\s+/)[1]!, 'base64'))
          .digest('base64')
          .replace(/=+$/, '');
        const got = fp.stdout.trim().split(' ')[1] ?? fp.stderr.trim();
        if (!fp.stdout.includes(want)) fail(`got ${got}, want SHA256:${want}`);
        return got;
      },
    });
  }

  // lsyncd running on the replication source
  const from = t.replication.lsyncd.from;
  if (managed.has(from))
    check({
      id: `${from}:lsyncd`,
      host: from,
      action: 'lsyncd active',
      why: 'replication main → sub',
      expect: 'systemctl is-active lsyncd: active',
      run: async () => {
        const r = await on(tr(from))`systemctl is-active lsyncd`;
        if (r.stdout.trim() !== 'active') fail(r.stdout.trim());
        return 'active';
      },
    });

  // Probe upload through the entry point → main → sub, same checksum; then its notice
  const main = sftpNode(t, 'main').name;
  const sub = t.replication.lsyncd.to;
  const user = probeUser(t, inv);
  if (!inv.entrypoint || !user) {
    check({
      id: 'entrypoint:probe',
      host: 'entrypoint',
      action: 'probe upload',
      why: 'the stack is proven end to end only by a real upload',
      expect: 'an entrypoint and a user with credentials in the inventory',
      run: async () =>
        fail('the inventory has no entrypoint or no user credentials (users.<name>.password|privateKey)'),
    });
    return { runbook: 'verify', steps };
  }
  if (!managed.has(main) || !managed.has(sub)) return { runbook: 'verify', steps };
  let probe: Probe | undefined;
  let acked = 0;
  const probed = { what: 'the probe was uploaded', check: async () => probe !== undefined || 'no probe' };
  const sumOn = (node: string) => async () => {
    const r = await on(tr(node))`sha256sum ${probe!.path} 2>/dev/null`;
    return r.stdout.startsWith(probe!.sha256) ? Date.now() : undefined;
  };
  check({
    id: 'entrypoint:probe',
    host: 'entrypoint',
    action: `probe upload as ${user.name} through ${inv.entrypoint.host}:${inv.entrypoint.port}`,
    why: 'the stack is proven end to end only by a real upload through the entry point',
    expect: 'the upload is acknowledged',
    run: async () => {
      probe = await putProbe(t, inv, user, 64 * 1024);
      acked = Date.now();
      return `${probe.bytes} bytes`;
    },
  });
  check({
    id: `${main}:probe`,
    host: main,
    action: 'probe on main, same sha256',
    why: 'writes go to main',
    expect: 'the probe on main within 5 s, same sha256',
    guard: probed,
    run: async () => {
      const at = await until(5_000, sumOn(main));
      if (at === undefined) fail('not found within 5 s');
      return `${at! - acked} ms after ack`;
    },
  });
  const lagBudget = (t.replication.lsyncd.delay + 15) * 1000;
  check({
    id: `${sub}:probe`,
    host: sub,
    action: 'probe replicated to sub, same sha256',
    why: 'lsyncd replicates main → sub',
    expect: `the probe on sub within ${lagBudget / 1000} s, same sha256`,
    guard: probed,
    run: async () => {
      const at = await until(lagBudget, sumOn(sub));
      if (at === undefined) fail(`not found within ${lagBudget / 1000} s`);
      return `lag ${at! - acked} ms`;
    },
  });

  // notice of this very probe: received by the lab's sink if there is one, else the notifier's own
  // log says it delivered it ("notified <path>", written only once every channel accepted it)
  const notifier = t.notifications.on === 'main' ? main : t.replication.backup.to;
  if (t.notifications.on === 'main' && managed.has(notifier)) {
    const sink = Object.values(t.nodes).find((n) => n.kind === 'notify-sink' && ctx.transports.has(n.name));
    const want = t.notifications.webhook.enabled && t.notifications.smtp.enabled ? 2 : 1;
    check({
      id: `${notifier}:notice`,
      host: notifier,
      action: 'upload notice of the probe delivered',
      why: 'every complete upload is notified',
      expect: sink
        ? `${sink.name} received ${want} notice(s) naming the probe`
        : `the notifier logged "notified <probe path>" (delivered to every channel)`,
      guard: probed,
      run: async () => {
        const got = await until(20_000, async () => {
          if (sink) {
            const r = await on(
              tr(sink.name),
            )`grep -c ${probe!.name} /var/lib/wharf-sink/messages.jsonl 2>/dev/null || true`;
            return Number(r.stdout.trim()) >= want ? `${sink.name} received it` : undefined;
          }
          const since = `@${Math.floor(acked / 1000) - 5}`;
          const r = await on(
            tr(notifier),
          )`journalctl -u wharf-notify -o cat --no-pager --since ${since} | grep -cF -- ${`notified ${probe!.path}`} || true`;
          return Number(r.stdout.trim()) >= 1 ? 'the notifier logged its delivery' : undefined;
        });
        if (!got) fail('no notice of the probe within 20 s');
        return `${got}, ${Date.now() - acked} ms after ack`;
      },
    });
  }

  // clean up the probe on every sftp node (delete is not replicated on purpose)
  steps.push({
    id: '*:probe cleanup',
    host: '*',
    action: 'remove the probe from every sftp node',
    why: 'the probe is not data',
    readOnly: true,
    run: async () => {
      if (!probe) return { skipped: 'no probe' };
      const nodes = Object.values(t.nodes).filter((n) => n.kind === 'sftp' && managed.has(n.name));
      const r = await Promise.all(nodes.map((n) => on(tr(n.name))`rm -f -- ${probe!.path}`));
      const bad = nodes.filter((_, i) => r[i]!.code !== 0).map((n) => n.name);
      if (bad.length) fail(`could not remove ${probe.path} on ${bad.join(', ')}`);
      return `${nodes.length} node(s)`;
    },
  });
  return { runbook: 'verify', steps };
}

/** The checks of a finished run (scenarios and tests read them). */
export function verifyChecks(
  steps: {
    host: string;
    action: string;
    result?: string;
    detail?: string;
    error?: string;
    durationMs?: number;
    expect?: string;
  }[],
): VerifyCheck[] {
  return steps
    .filter((s) => s.expect && s.result && s.result !== 'not-run')
    .map((s) => ({
      node: s.host,
      name: s.action,
      ok: s.result === 'ok',
      detail: s.error ?? s.detail ?? '',
      ...(s.durationMs !== undefined ? { ms: s.durationMs } : {}),
    }));
}

export const verify = defineRunbook({
  name: 'verify',
  description:
    'check the running stack end to end (backends UP, sshd, chroots, lsyncd, probe upload main → sub, its notice)',
  honours: { only: true },
  options: z.object({}),
  async run(ctx) {
    const r = await runStepPlan(ctx, 'verify', async () => planVerify(ctx));
    const checks = verifyChecks(r.steps);
    const ok = r.ok && (r.check || checks.length > 0);
    return { ...r, ok, exitCode: ok ? 0 : 1, changes: 0, details: { checks } };
  },
});
registerRunbook(verify);
export default verify;
await runAsScript(import.meta.url, 'verify');
