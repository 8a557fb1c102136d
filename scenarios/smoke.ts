// smoke: the stack's promise in well under a minute, all through the lab's WAN entry (the wan
// client's published ports → router → firewall → HAProxy). Known state → OpenSSH sftp uploads one
// file through each write port (22 and 2222) → both on main with their sha256 → replicated to sub →
// read back through the read port (2221) byte for byte → one upload notice per file on each channel
// at the notify sink (webhook and SMTP). Registered first: a broken stack fails here, fast.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sftpNode, type Topology } from '../src/topology/model.ts';
import { userRoot } from '../src/workload/remote.ts';
import { readNotices, SINK_MESSAGES_PATH, type Notice } from '../src/lab/sink/index.ts';
import type { Scenario } from '../src/scenario/types.ts';
import { ensureScenarioLab, type ScenarioLab } from './lab.ts';
import { until } from './outage.ts';
import { firstLines, pinnedKnownHosts, sftpBatch, sha256File } from './openssh.ts';

/** The lab's frontends as the internet sees them through the entry point: writers and readers. */
export function entryPorts(lab: ScenarioLab): {
  write: { name: string; port: number }[];
  read: { name: string; port: number }[];
} {
  const out = { write: [] as { name: string; port: number }[], read: [] as { name: string; port: number }[] };
  for (const [name, f] of Object.entries(lab.t.haproxy.frontends)) {
    const port = lab.status.ports[name];
    if (port === undefined) throw new Error(`frontend ${name}: no published entry port in lab ${lab.t.name}`);
    (lab.t.haproxy.backends[f.backend]?.readOnly ? out.read : out.write).push({ name, port });
  }
  return out;
}

/** sha256 of a file in the demo user's chroot on a node ('' when absent). */
export async function remoteSha(lab: ScenarioLab, node: string, rel: string): Promise<string> {
  const path = `${userRoot(lab.t, lab.status.demoUser.name, 'sftp')}/${rel}`;
  const r = await lab.sh(node, `sha256sum '${path}' 2>/dev/null`, 10_000);
  return r.stdout.split(' ')[0] ?? '';
}

/** Notices at the lab's sink that name `file`, by channel. */
export async function noticesFor(lab: ScenarioLab, file: string): Promise<Notice[]> {
  const sink = Object.values(lab.t.nodes).find((n) => n.kind === 'notify-sink');
  if (!sink) throw new Error(`topology ${lab.t.name} has no notify-sink node`);
  const r = await lab.sh(sink.name, `cat ${SINK_MESSAGES_PATH} 2>/dev/null || true`, 15_000);
  return readNotices(r.stdout).filter((n) => JSON.stringify(n).includes(file));
}

const channels = (t: Topology): Notice['kind'][] => [
  ...(t.notifications.webhook.enabled ? (['webhook'] as const) : []),
  ...(t.notifications.smtp.enabled ? (['smtp'] as const) : []),
];

export const smoke: Scenario = {
  name: 'smoke',
  description:
    'through the WAN entry: upload via each write port, on main, replicated to sub, read back via the read port, one notice per channel',
  async run(ctx) {
    const lab = await ensureScenarioLab(ctx.log);
    const t = lab.t;
    const main = sftpNode(t, 'main').name;
    const sub = t.replication.lsyncd.to;
    const host = lab.status.entrypoint.host;
    const dir = mkdtempSync(join(tmpdir(), 'wharf-smoke-'));
    try {
      const kh = pinnedKnownHosts(lab, dir);
      const ports = entryPorts(lab);
      const stamp = Date.now().toString(36);
      const files: { name: string; rel: string; sha: string; ackAt: number; via: string }[] = [];
      for (const w of ports.write) {
        const name = `smoke-${w.name}-${stamp}.bin`;
        const local = join(dir, name);
        writeFileSync(local, randomBytes(256 * 1024));
        const rel = `${t.sftp.uploadDir}/${name}`;
        const r = await sftpBatch(lab, {
          host,
          port: w.port,
          knownHosts: kh,
          commands: [`put ${local} ${rel}`],
        });
        ctx.check(
          `upload through the ${w.name} port (${t.haproxy.frontends[w.name]!.port})`,
          r.code === 0,
          r.code === 0 ? `256 KiB in ${r.ms} ms` : firstLines(r.stderr),
        );
        if (r.code === 0) files.push({ name, rel, sha: sha256File(local), ackAt: Date.now(), via: w.name });
      }
      if (!files.length) return;

      const onMain = await Promise.all(files.map(async (f) => (await remoteSha(lab, main, f.rel)) === f.sha));
      ctx.check(
        `every upload on ${main} with its sha256`,
        onMain.every(Boolean),
        files.map((f, i) => `${f.via}: ${onMain[i] ? 'ok' : 'missing or different'}`).join(', '),
      );

      const lags: number[] = [];
      await Promise.all(
        files.map(async (f) => {
          const ok = await until(
            (t.replication.lsyncd.delay + 20) * 1000,
            async () => (await remoteSha(lab, sub, f.rel)) === f.sha,
            100,
          );
          if (ok) lags.push(Date.now() - f.ackAt);
        }),
      );
      ctx.check(
        `replicated to ${sub}`,
        lags.length === files.length,
        `${lags.length}/${files.length} on ${sub} with their sha256${lags.length ? `, within ${Math.max(...lags)} ms of the ack` : ''}`,
      );
      if (lags.length) ctx.metric('main→sub replication (slowest of the uploads)', Math.max(...lags), 'ms');

      for (const rp of ports.read) {
        const back = join(dir, `read-${rp.name}`);
        const gets = files.map((f) => `get ${f.rel} ${back}-${f.name}`);
        const r = await sftpBatch(lab, { host, port: rp.port, knownHosts: kh, commands: gets });
        const same = files.filter((f) => {
          try {
            return sha256File(`${back}-${f.name}`) === f.sha;
          } catch {
            return false;
          }
        });
        ctx.check(
          `read back through the ${rp.name} port (${t.haproxy.frontends[rp.name]!.port}), byte for byte`,
          r.code === 0 && same.length === files.length,
          r.code === 0 ? `${same.length}/${files.length} identical, ${r.ms} ms` : firstLines(r.stderr),
        );
      }

      const want = channels(t);
      const got = new Map<string, Notice[]>();
      const t0 = Date.now();
      await until(
        30_000,
        async () => {
          for (const f of files) got.set(f.name, await noticesFor(lab, f.name));
          return files.every((f) => want.every((k) => got.get(f.name)!.some((n) => n.kind === k)));
        },
        500,
      );
      for (const f of files) {
        const ns = got.get(f.name) ?? [];
        const per = want.map((k) => `${k} ${ns.filter((n) => n.kind === k).length}`).join(', ');
        ctx.check(
          `one upload notice per channel for the ${f.via} upload`,
          want.every((k) => ns.filter((n) => n.kind === k).length === 1),
          `${per} (waited ${Date.now() - t0} ms)`,
        );
      }
      const last = Math.max(
        ...files.flatMap((f) => (got.get(f.name) ?? []).map((n) => Date.parse(n.receivedAt) - f.ackAt)),
      );
      if (Number.isFinite(last) && last > 0) ctx.metric('upload ack → last notice received', last, 'ms');
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await lab.close();
    }
  },
};
export default smoke;
