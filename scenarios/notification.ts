// notification: one notice per complete upload on both channels (webhook + SMTP, received by the
// lab's notify sink), none for temp names or cut uploads, none lost and none doubled when the sink
// is down for a while or when sub took the uploads during an outage of main. Uploads are made with
// OpenSSH's sftp ON the wan-client node through the WAN entry, as a client on the internet would:
// - complete files, plus WinSCP's way (name.filepart → rename), rsync's way (.name.XXXXXX →
//   rename) and a file left as *.part: exactly one webhook and one mail per final name, nothing
//   for the temp names; delay upload → notice reported;
// - an upload cut mid-way (sftp throttled with -l, its ssh killed): the partial file is on main,
//   no notice for it;
// - the sink's service stopped, two uploads, started again: each delivered once, later;
// - `docker kill` of main, two uploads (taken by sub), main started, `failback`: each noticed once.
import { sftpNode } from '../src/topology/model.ts';
import { readNotices, SINK_MESSAGES_PATH, SINK_UNIT_NAME, type Notice } from '../src/lab/sink/index.ts';
import { NOTIFY_SPOOL } from '../src/render/notify.ts';
import { labNode } from '../src/lab/node.ts';
import { runRunbookByName } from '../src/stack/runbooks.ts';
import { shQuote } from '../src/transport/index.ts';
import type { Scenario, ScenarioContext } from '../src/scenario/types.ts';
import { ensureScenarioLab, startNode, type ScenarioLab } from './lab.ts';
import { median, sleep, until } from './outage.ts';
import { entryPort, installClientKey, onWan } from './wan.ts';

const WORK = '/tmp/wharf-notif';

/** The upload path a notice names (webhook JSON `wharf.path`, the mail's `Path:` line). */
function pathOf(n: Notice): string | undefined {
  if (n.kind === 'smtp') return /^Path: (.*?)\r?$/m.exec(n.body)?.[1];
  const b = n.body as { wharf?: { path?: unknown } } | null;
  return typeof b?.wharf?.path === 'string' ? b.wharf.path : undefined;
}

export const notification: Scenario = {
  name: 'notification',
  description:
    'one notice per complete upload on webhook and SMTP; none for temp names or cut uploads; exactly once after a sink outage and after an outage of main (failback)',
  async run(ctx) {
    const lab = await ensureScenarioLab(ctx.log);
    const t = lab.t;
    if (!t.notifications.webhook.enabled || !t.notifications.smtp.enabled || t.notifications.on !== 'main') {
      ctx.check('notices on main by webhook and SMTP (the default topology)', false, 'not configured so');
      return;
    }
    const sink = Object.values(t.nodes).find((n) => n.kind === 'notify-sink')?.name;
    if (!sink) {
      ctx.check('the lab has a notify sink', false);
      return;
    }
    const id = `nt-${Date.now().toString(36)}`;
    const user = lab.status.demoUser.name;
    const up = `${t.sftp.chrootBase}/${user}/${t.sftp.uploadDir}`;
    const full = (name: string) => `${up}/${name}`;
    const main = sftpNode(t, 'main').name;
    const entry = lab.status.direct.host;
    const port = entryPort(lab);
    const o = await installClientKey(lab, WORK);
    await onWan(
      lab,
      `head -c 65536 /dev/urandom > ${WORK}/small && head -c 4194304 /dev/urandom > ${WORK}/big`,
    );
    const sftp = (cmds: string[], extra = '') =>
      onWan(
        lab,
        // sftp's own exit code (255: no connection) must not look like the management ssh failing
        `printf '%s\\n' ${cmds.map(shQuote).join(' ')} | sftp -b - ${extra} ${o} -P ${port} ${user}@${entry} 2>&1; echo "sftp-exit=$?"`,
        120_000,
      ).then((r) => ({ ...r, code: Number(/sftp-exit=(\d+)\s*$/.exec(r.stdout)?.[1] ?? 1) }));
    const since = Date.now();
    const received = async (): Promise<Notice[]> => {
      const r = await lab.sh(sink, `cat ${SINK_MESSAGES_PATH} 2>/dev/null; true`);
      return readNotices(r.stdout).filter(
        (n) => Date.parse(n.receivedAt) >= since - 1000 && (pathOf(n) ?? '').includes(`/${id}-`),
      );
    };
    const tally = (ns: Notice[], path: string) => ({
      webhook: ns.filter((n) => n.kind === 'webhook' && pathOf(n) === path).length,
      smtp: ns.filter((n) => n.kind === 'smtp' && pathOf(n) === path).length,
    });
    /** Wait until every path has a notice on both channels (or the time is up). */
    const awaitNotices = async (paths: string[], ms: number) => {
      let ns: Notice[] = [];
      await until(
        ms,
        async () => {
          ns = await received();
          return paths.every((p) => {
            const c = tally(ns, p);
            return c.webhook >= 1 && c.smtp >= 1;
          });
        },
        300,
      );
      return ns;
    };
    const onceEach = (ns: Notice[], paths: string[]) =>
      paths.map((p) => ({ p, ...tally(ns, p) })).filter((c) => c.webhook !== 1 || c.smtp !== 1);
    const show = (bad: { p: string; webhook: number; smtp: number }[]) =>
      bad.map((b) => `${b.p.split('/').pop()}: webhook ${b.webhook}, smtp ${b.smtp}`).join('; ');

    try {
      // 1. complete uploads, temp names, and a cut upload
      const names = ['a.bin', 'b.bin', 'c.bin'].map((n) => `${id}-${n}`);
      const winscp = `${id}-w.csv`;
      const rsync = `${id}-r.txt`;
      const U = t.sftp.uploadDir;
      const t0 = Date.now();
      const batch = await sftp([
        ...names.map((n) => `put ${WORK}/small ${U}/${n}`),
        `put ${WORK}/small ${U}/${winscp}.filepart`,
        `rename ${U}/${winscp}.filepart ${U}/${winscp}`,
        `put ${WORK}/small ${U}/.${rsync}.Xy12Ab`,
        `rename ${U}/.${rsync}.Xy12Ab ${U}/${rsync}`,
        `put ${WORK}/small ${U}/${id}-left.part`,
      ]);
      const uploaded = Date.now();
      if (
        !ctx.check(
          'uploads through the entry (sftp batch from wan-client)',
          batch.code === 0,
          batch.stdout.trim().split('\n').slice(-1)[0],
        )
      )
        return;
      // cut: 4 MiB throttled to ~500 KB/s (~8 s), its ssh killed once main holds part of it (the
      // connection dies mid-file; a fixed sleep could kill it before the first byte under load)
      const cutName = `${id}-cut.bin`;
      await onWan(
        lab,
        [
          `printf 'put ${WORK}/big ${U}/${cutName}\\n' > ${WORK}/cut.batch`,
          `nohup sftp -b ${WORK}/cut.batch -l 4000 ${o} -P ${port} ${user}@${entry} >${WORK}/cut.log 2>&1 </dev/null &`,
          `echo $! > ${WORK}/cut.pid`,
        ].join('\n'),
      );
      const started = Date.now();
      let partBytes = 0;
      while (Date.now() - started < 20_000) {
        const r = await lab.sh(main, `stat -c %s ${shQuote(full(cutName))} 2>/dev/null || echo 0`);
        partBytes = Number(r.stdout.trim()) || 0;
        if (partBytes > 0) break;
        await sleep(200);
      }
      const cut = await onWan(
        lab,
        [
          `sp=$(cat ${WORK}/cut.pid)`,
          // the sftp client's ssh child first (by its parent's pid): the connection dies mid-file
          'pkill -9 -P "$sp"; kill -9 "$sp" 2>/dev/null',
          'for i in $(seq 50); do kill -0 "$sp" 2>/dev/null || break; sleep 0.1; done',
          'echo cut; tail -c 300 ' + `${WORK}/cut.log`,
        ].join('\n'),
      );
      const finals = [...names, winscp, rsync].map(full);
      const ns1 = await awaitNotices(finals, 30_000);
      const delays = finals
        .flatMap((p) => ns1.filter((n) => pathOf(n) === p))
        .map((n) => Date.parse(n.receivedAt) - uploaded);
      if (delays.length) {
        ctx.metric('notice delay p50 (after the batch ended)', median(delays), 'ms');
        ctx.metric('notice delay max', Math.max(...delays), 'ms');
      }
      const bad1 = onceEach(ns1, finals);
      ctx.check(
        `one webhook and one mail per complete upload (${finals.length} files: 3 plain, WinSCP .filepart → rename, rsync .name.XXXXXX → rename)`,
        bad1.length === 0,
        bad1.length
          ? show(bad1)
          : `${ns1.length} notices, delay p50 ${median(delays)} ms, max ${Math.max(...delays)} ms (batch took ${uploaded - t0} ms)`,
      );
      // the cut upload: a partial file on main, and (after the notifier had time) no notice
      const partial = await lab.sh(main, `stat -c %s ${shQuote(full(cutName))} 2>/dev/null || echo absent`);
      const size = Number(partial.stdout.trim());
      await sleep(5000);
      const ns2 = await received();
      const temps = ns2.filter((n) => /\.(filepart|part)$|\/\.[^/]*$/.test(pathOf(n) ?? ''));
      ctx.check(
        'no notice for temp names (.filepart, .name.XXXXXX, *.part)',
        temps.length === 0,
        temps.length ? `noticed: ${temps.map(pathOf).join(', ')}` : 'none',
      );
      const cutNotices = ns2.filter((n) => pathOf(n) === full(cutName));
      const log = await lab.sh(
        main,
        `journalctl -u wharf-notify -o cat --no-pager --since "@${Math.floor(t0 / 1000) - 2}" | grep -F ${shQuote(cutName)} | tail -1`,
      );
      ctx.check(
        'no notice for an upload cut mid-way (its partial file is on main)',
        cut.stdout.includes('cut') && size > 0 && size < 4194304 && cutNotices.length === 0,
        `cut at ${partBytes} bytes on main; partial file ${partial.stdout.trim()} of 4194304 bytes; ${cutNotices.length} notices; notifier: ${log.stdout.trim() || '(no line)'}${size > 0 ? '' : `; client: ${cut.stdout.replace(/\s+/g, ' ').trim()}`}`,
      );
      await outageOfSink(lab, ctx, { sftp, id, full, received, tally, onceEach, show, sink, awaitNotices });
      await outageOfMain(lab, ctx, { sftp, id, full, received, tally, onceEach, show, sink, awaitNotices });
    } finally {
      await lab.sh(sink, `systemctl start ${SINK_UNIT_NAME}`).catch(() => {});
      await onWan(lab, `rm -rf ${WORK}`).catch(() => {});
    }
  },
};

interface Helpers {
  sftp: (cmds: string[], extra?: string) => Promise<{ code: number; stdout: string }>;
  id: string;
  full: (name: string) => string;
  received: () => Promise<Notice[]>;
  tally: (ns: Notice[], path: string) => { webhook: number; smtp: number };
  onceEach: (ns: Notice[], paths: string[]) => { p: string; webhook: number; smtp: number }[];
  show: (bad: { p: string; webhook: number; smtp: number }[]) => string;
  awaitNotices: (paths: string[], ms: number) => Promise<Notice[]>;
  sink: string;
}

/** The sink's service stopped: notices wait in main's spool and go out once it is back. */
async function outageOfSink(lab: ScenarioLab, ctx: ScenarioContext, h: Helpers): Promise<void> {
  const t = lab.t;
  const main = sftpNode(t, 'main').name;
  const U = t.sftp.uploadDir;
  const names = [`${h.id}-sink1.bin`, `${h.id}-sink2.bin`];
  await lab.sh(h.sink, `systemctl stop ${SINK_UNIT_NAME}`);
  let back = 0;
  try {
    const r = await h.sftp(names.map((n) => `put ${WORK}/small ${U}/${n}`));
    if (!ctx.check('uploads while the sink is down', r.code === 0, r.stdout.trim().split('\n').slice(-1)[0]))
      return;
    // the notifier tries, fails, keeps them spooled
    let spooled = 0;
    await until(
      15_000,
      async () => {
        const s = await lab.sh(
          main,
          `grep -lsF ${shQuote(h.id + '-sink')} ${NOTIFY_SPOOL}/*.notice | wc -l; journalctl -u wharf-notify -o cat --no-pager -n 50 | grep -c 'failed for .*${h.id}-sink' || true`,
        );
        const [n, failed] = s.stdout.trim().split('\n').map(Number);
        spooled = n ?? 0;
        return spooled === names.length && (failed ?? 0) > 0;
      },
      500,
    );
    ctx.check(
      'while the sink is down the notices stay spooled on main (delivery failed, retried)',
      spooled === names.length,
      `${spooled}/${names.length} in ${NOTIFY_SPOOL}`,
    );
  } finally {
    await lab.sh(h.sink, `systemctl start ${SINK_UNIT_NAME}`);
    back = Date.now();
  }
  const paths = names.map(h.full);
  const ns = await h.awaitNotices(paths, 45_000);
  const at = ns.filter((n) => paths.includes(pathOf(n) ?? '')).map((n) => Date.parse(n.receivedAt) - back);
  if (at.length) ctx.metric('delivered after the sink came back (max)', Math.max(...at), 'ms');
  await sleep(2000);
  const bad = h.onceEach(await h.received(), paths);
  ctx.check(
    'after the sink is back each notice arrives exactly once on each channel',
    bad.length === 0,
    bad.length
      ? h.show(bad)
      : `both files, webhook + mail once each, ${Math.max(...at)} ms after the sink came back`,
  );
}

/** main killed: uploads land on sub; after main is back and failed back, each is noticed once. */
async function outageOfMain(lab: ScenarioLab, ctx: ScenarioContext, h: Helpers): Promise<void> {
  const t = lab.t;
  const main = sftpNode(t, 'main').name;
  const sub = t.replication.lsyncd.to;
  const U = t.sftp.uploadDir;
  const names = [`${h.id}-sub1.bin`, `${h.id}-sub2.bin`];
  await labNode(t.name, main).kill();
  const killedAt = Date.now();
  // the entry sends the next connections to sub once HAProxy marks main down (a few failed tries)
  let r = { code: 1, stdout: '' };
  for (let i = 0; i < 30 && r.code !== 0; i++) {
    r = await h.sftp(names.map((n) => `put ${WORK}/small ${U}/${n}`));
    if (r.code !== 0) await sleep(500);
  }
  const onSub = await lab.sh(
    sub,
    names.map((n) => `test -f ${shQuote(h.full(n))}`).join(' && ') + ' && echo yes',
  );
  if (
    !ctx.check(
      `uploads while ${main} is dead land on ${sub}`,
      r.code === 0 && onSub.stdout.includes('yes'),
      `${Date.now() - killedAt} ms after the kill; ${r.stdout.trim().split('\n').slice(-1)[0]}`,
    )
  )
    return;
  await startNode(lab, main);
  const fbStart = Date.now();
  const fb = await runRunbookByName('failback', {
    topology: t,
    inventory: lab.inventory,
    transports: lab.transports,
    log: (l) => ctx.log(`[failback] ${l}`),
  });
  const backAt = Date.now();
  ctx.metric('failback', backAt - fbStart, 'ms');
  if (!ctx.check('failback after main is back', fb.ok, fb.ok ? `${backAt - fbStart} ms` : String(fb.error)))
    return;
  const paths = names.map(h.full);
  const ns = await h.awaitNotices(paths, 30_000);
  const at = ns.filter((n) => paths.includes(pathOf(n) ?? '')).map((n) => Date.parse(n.receivedAt) - fbStart);
  if (at.length) ctx.metric('noticed after failback started (max)', Math.max(...at), 'ms');
  await sleep(3000);
  const bad = h.onceEach(await h.received(), paths);
  ctx.check(
    `uploads ${sub} took during the outage are noticed exactly once (after failback)`,
    bad.length === 0,
    bad.length
      ? h.show(bad)
      : `both files, webhook + mail once each, ≤ ${Math.max(...at)} ms after failback started (it took ${backAt - fbStart} ms)`,
  );
}
