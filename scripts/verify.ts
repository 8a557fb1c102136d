// verify: the stack works end to end. HAProxy backends UP (runtime API), sshd config valid, chroot
// ownership right, lsyncd running, a probe file uploaded through the entry point appears on main
// and then on sub with the same checksum, and its upload notice is delivered.
import { createHash } from 'node:crypto';
import { Journal } from '../src/runbook/journal.ts';
import { shQuote } from '../src/transport/quote.ts';
import type { Transport } from '../src/transport/types.ts';
import { probeUser, putProbe, type Probe } from '../src/failover/probe.ts';
import { ensureStackSecrets } from '../src/stack/secrets.ts';
import { managedNodes } from '../src/stack/desired.ts';
import { durationMs, nodeOfKind, sftpNode } from '../src/topology/model.ts';
import type { Runbook, RunbookContext } from './runbook.ts';

export interface VerifyCheck {
  node: string;
  name: string;
  ok: boolean;
  detail: string;
  ms?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function sh(t: Transport, cmd: string, timeoutMs = 20_000) {
  return t.exec(cmd, { timeoutMs });
}

/** HAProxy `show stat` CSV → server rows (pxname, svname, status). Pure. */
export function parseShowStat(csv: string): { proxy: string; server: string; status: string }[] {
  const lines = csv.split('\n').filter((l) => l && !l.startsWith('#'));
  return lines
    .map((l) => l.split(','))
    .filter((f) => f[1] && f[1] !== 'FRONTEND' && f[1] !== 'BACKEND')
    .map((f) => ({ proxy: f[0]!, server: f[1]!, status: f[17] ?? '' }));
}

async function until<T>(timeoutMs: number, fn: () => Promise<T | undefined>): Promise<T | undefined> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) return undefined;
    await sleep(200);
  }
}

/** A user with usable credentials for the probe upload (inventory: password or private key). */
export async function verifyStack(ctx: RunbookContext): Promise<VerifyCheck[]> {
  const { topology: t, inventory: inv } = ctx;
  const checks: VerifyCheck[] = [];
  const add = (c: VerifyCheck) => {
    checks.push(c);
    ctx.log(`${c.ok ? 'ok  ' : 'FAIL'} ${c.node}: ${c.name}${c.detail ? ` — ${c.detail}` : ''}`);
    return c.ok;
  };
  const tr = (node: string) => {
    const x = ctx.transports.get(node);
    if (!x) throw new Error(`${node}: not in the inventory`);
    return x;
  };
  const managed = new Set(managedNodes(t, inv, ctx.only).map((n) => n.name));
  const base = t.sftp.chrootBase;

  // HAProxy: every server of every backend UP, through the runtime API
  const hap = nodeOfKind(t, 'haproxy').name;
  if (managed.has(hap)) {
    // right after a reload the checks are still settling (rise/fall): wait until every server is UP
    const settle =
      (t.haproxy.check.rise + t.haproxy.check.fall + 2) * durationMs(t.haproxy.check.inter) + 5000;
    let r = await sh(tr(hap), `echo 'show stat' | socat stdio ${shQuote(t.haproxy.stats.socket)}`);
    let rows = parseShowStat(r.stdout);
    const end = Date.now() + settle;
    while (rows.some((x) => x.status !== 'UP') && Date.now() < end) {
      await sleep(250);
      r = await sh(tr(hap), `echo 'show stat' | socat stdio ${shQuote(t.haproxy.stats.socket)}`);
      rows = parseShowStat(r.stdout);
    }
    for (const [name, b] of Object.entries(t.haproxy.backends)) {
      for (const s of b.servers) {
        const row = rows.find((x) => x.proxy === name && x.server === s.node);
        add({
          node: hap,
          name: `backend ${name}/${s.node} UP`,
          ok: row?.status === 'UP',
          detail: row ? row.status : r.code !== 0 ? `stats socket: ${r.stderr.trim()}` : 'server not found',
        });
      }
    }
  }

  // SFTP nodes: sshd config valid, chroot ownership, host keys shared
  const secrets = ensureStackSecrets(t, inv);
  for (const n of Object.values(t.nodes)) {
    if (n.kind !== 'sftp' || !managed.has(n.name)) continue;
    const x = tr(n.name);
    const sshdT = await sh(x, 'sshd -t');
    add({ node: n.name, name: 'sshd -t', ok: sshdT.code === 0, detail: sshdT.stderr.trim() });
    for (const u of t.sftp.users) {
      const st = await sh(
        x,
        `stat -c '%n %U %a' ${shQuote(base)} ${shQuote(`${base}/${u.name}`)} ${shQuote(`${base}/${u.name}/${t.sftp.uploadDir}`)}`,
      );
      const rows = st.stdout
        .trim()
        .split('\n')
        .map((l) => l.split(' '));
      const bad = rows
        .slice(0, 2)
        .filter(([, owner, mode]) => owner !== 'root' || /[2367]/.test((mode ?? '').slice(-2)));
      const upload = rows[2];
      add({
        node: n.name,
        name: `chroot of ${u.name} root-owned, upload writable by the user`,
        ok: st.code === 0 && bad.length === 0 && upload?.[1] === u.name,
        detail: st.code === 0 ? rows.map((r) => r.join(' ')).join('; ') : st.stderr.trim(),
      });
    }
    const fp = await sh(x, `ssh-keygen -lf ${shQuote(`${t.sftp.hostKeyDir}/ssh_host_ed25519_key.pub`)}`);
    const want = createHash('sha256')
      .update(Buffer.from(secrets.hostKeys.ed25519.public.split(/\s+/)[1]!, 'base64'))
      .digest('base64')
      .replace(/=+$/, '');
    add({
      node: n.name,
      name: 'serves the shared host key',
      ok: fp.stdout.includes(want),
      detail: fp.stdout.trim().split(' ')[1] ?? fp.stderr.trim(),
    });
  }

  // lsyncd running on the replication source
  const from = t.replication.lsyncd.from;
  if (managed.has(from)) {
    const r = await sh(tr(from), 'systemctl is-active lsyncd');
    add({ node: from, name: 'lsyncd active', ok: r.stdout.trim() === 'active', detail: r.stdout.trim() });
  }

  // Probe upload through the entry point → main → sub, same checksum; then its notice
  const main = sftpNode(t, 'main').name;
  const sub = t.replication.lsyncd.to;
  const user = probeUser(t, inv);
  if (!inv.entrypoint || !user) {
    add({
      node: 'entrypoint',
      name: 'probe upload',
      ok: false,
      detail: 'the inventory has no entrypoint or no user credentials (users.<name>.password|privateKey)',
    });
    return checks;
  }
  if (!managed.has(main) || !managed.has(sub)) return checks;
  const t0 = Date.now();
  let probe: Probe;
  try {
    probe = await putProbe(t, inv, user, 64 * 1024);
    add({
      node: 'entrypoint',
      name: `probe upload as ${user.name} through ${inv.entrypoint.host}:${inv.entrypoint.port}`,
      ok: true,
      detail: `${probe.bytes} bytes`,
      ms: Date.now() - t0,
    });
  } catch (e) {
    add({ node: 'entrypoint', name: 'probe upload', ok: false, detail: (e as Error).message });
    return checks;
  }
  const { name, path, sha256: sha } = probe;
  const acked = Date.now();
  const sumOn = (node: string) => async () => {
    const r = await sh(tr(node), `sha256sum ${shQuote(path)} 2>/dev/null`);
    return r.stdout.startsWith(sha) ? Date.now() : undefined;
  };
  const onMain = await until(5_000, sumOn(main));
  add({
    node: main,
    name: 'probe on main, same sha256',
    ok: onMain !== undefined,
    detail: onMain ? `${onMain - acked} ms after ack` : 'not found within 5 s',
  });
  const lagBudget = (t.replication.lsyncd.delay + 15) * 1000;
  const onSub = await until(lagBudget, sumOn(sub));
  add({
    node: sub,
    name: 'probe replicated to sub, same sha256',
    ok: onSub !== undefined,
    detail: onSub ? `lag ${onSub - acked} ms` : `not found within ${lagBudget / 1000} s`,
    ...(onSub ? { ms: onSub - acked } : {}),
  });

  // notice: delivered by the notifier (spool drained), and received by the lab's sink if there is one
  const notifier = t.notifications.on === 'main' ? main : t.replication.backup.to;
  if (t.notifications.on === 'main' && managed.has(notifier)) {
    const sink = Object.values(t.nodes).find((n) => n.kind === 'notify-sink' && ctx.transports.has(n.name));
    const got = await until(20_000, async () => {
      if (sink) {
        const r = await sh(
          tr(sink.name),
          `grep -c ${shQuote(name)} /var/lib/wharf-sink/messages.jsonl 2>/dev/null || true`,
        );
        return Number(r.stdout.trim()) >=
          (t.notifications.webhook.enabled && t.notifications.smtp.enabled ? 2 : 1)
          ? 'sink'
          : undefined;
      }
      const r = await sh(
        tr(notifier),
        `grep -rl ${shQuote(name)} /var/spool/wharf-notify 2>/dev/null | wc -l`,
      );
      return r.stdout.trim() === '0' ? 'spool drained' : undefined;
    });
    add({
      node: notifier,
      name: 'upload notice delivered',
      ok: got !== undefined,
      detail: got ? `${got}, ${Date.now() - acked} ms after ack` : 'no notice within 20 s',
    });
  }

  // clean up the probe on every sftp node (delete is not replicated on purpose)
  await Promise.all(
    Object.values(t.nodes)
      .filter((n) => n.kind === 'sftp' && managed.has(n.name))
      .map((n) => sh(tr(n.name), `rm -f ${shQuote(path)}`).catch(() => undefined)),
  );
  return checks;
}

export const verify: Runbook = {
  name: 'verify',
  description:
    'check the running stack end to end (backends UP, sshd, chroots, lsyncd, probe upload main → sub, notice)',
  async run(ctx) {
    const t0 = Date.now();
    const journal = new Journal(ctx.runsDir ?? '.wharf/runs', ctx.topology.name, 'verify', []);
    let checks: VerifyCheck[] = [];
    let error: string | undefined;
    try {
      checks = await verifyStack(ctx);
    } catch (e) {
      error = (e as Error).message;
    }
    for (const c of checks) {
      journal.write({
        host: c.node,
        step: `verify: ${c.name}`,
        result: c.ok ? 'ok' : 'failed',
        durationMs: c.ms ?? 0,
        detail: c.detail,
      });
    }
    if (error)
      journal.write({ host: '*', step: 'verify', result: 'failed', durationMs: Date.now() - t0, error });
    const failed = checks.filter((c) => !c.ok);
    const hosts: Record<string, { changes: number; failed?: string }> = {};
    for (const c of checks) {
      const h = (hosts[c.node] ??= { changes: 0 });
      if (!c.ok && !h.failed) h.failed = `${c.name}: ${c.detail}`;
    }
    const ok = !error && failed.length === 0 && checks.length > 0;
    return {
      runbook: 'verify',
      ok,
      check: ctx.check,
      changes: 0,
      hosts,
      durationMs: Date.now() - t0,
      journal: journal.path,
      ...(error || failed.length
        ? { error: error ?? failed.map((c) => `${c.node}: ${c.name}: ${c.detail}`).join('\n') }
        : {}),
      exitCode: ok ? 0 : 1,
      details: { checks },
    };
  },
};
export default verify;
