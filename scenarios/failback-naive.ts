// failback-naive: the seed's hazard (pitfall 1). The same outage as node-loss — uploads through the
// entry point, `docker kill` sftp-main, the clients carry on on sftp-sub — but when main comes back
// nobody runs wharf's failback: HAProxy takes main back by itself, and its lsyncd is simply
// restarted with lsyncd's default `delete = true`. Its startup sync (rsync --delete main → sub)
// wipes from sub every file uploaded there during the outage, and main never had them: the
// scenario asserts that they are LOST (the demonstration passes when the hazard shows), then
// repairs the lab (rendered lsyncd config back, configure) so the next scenario starts clean.
import { LSYNCD_CONF, renderLsyncdConf } from '../src/render/lsyncd.ts';
import { sftpNode } from '../src/topology/model.ts';
import type { Scenario } from '../src/scenario/types.ts';
import { observeUploads, userRoot } from '../src/workload/remote.ts';
import { ensureScenarioLab, resetScenarioLab, startNode } from './lab.ts';
import { killAndMeasureRto, sleep, startWorkload, until } from './outage.ts';

export const failbackNaive: Scenario = {
  name: 'failback-naive',
  description:
    "the seed's hazard: main returns and lsyncd restarts with delete = true — uploads made on sub during the outage are lost",
  async run(ctx) {
    const lab = await ensureScenarioLab(ctx.log);
    const t = lab.t;
    const main = sftpNode(t, 'main').name;
    const sub = t.replication.lsyncd.to;
    const root = userRoot(t, lab.status.demoUser.name, 'sftp');
    try {
      const w = startWorkload(lab, { prefix: `fn-${Date.now().toString(36)}` });
      let k: Awaited<ReturnType<typeof killAndMeasureRto>>;
      try {
        await until(30_000, () => w.acks.length >= 20);
        k = await killAndMeasureRto(lab, w);
        ctx.check(
          `uploads resume on ${sub} after docker kill ${main}`,
          k.rtoMs !== undefined,
          `RTO ${k.rtoMs ?? '—'} ms`,
        );
        await until(15_000, () => w.acks.filter((a) => a.ackAt > k.diedAt).length >= 30);
      } finally {
        await w.stop();
      }
      const outage = w.acks.filter((a) => a.ackAt > k.diedAt);
      const onSubBefore = new Set(
        (await observeUploads(lab.status, sub, root, t.sftp.uploadDir, w.prefix)).map((f) => f.path),
      );
      const there = outage.filter((a) => onSubBefore.has(a.path)).length;
      ctx.check(
        `uploads acknowledged during the outage are on ${sub}`,
        outage.length > 0 && there === outage.length,
        `${there} of ${outage.length}`,
      );

      // main comes back; nobody fails back. The seed's lsyncd: delete = true, restarted.
      await startNode(lab, main);
      // an upload cut by the kill may have been whole on main already (its retry went to sub): not lost
      const onMain = new Set(
        (await observeUploads(lab.status, main, root, t.sftp.uploadDir, w.prefix)).map((f) => f.path),
      );
      const mainLacked = outage.filter((a) => !onMain.has(a.path));
      const conf = (await lab.transports.get(main)!.readFile(LSYNCD_CONF))?.toString('utf8') ?? '';
      const naive = conf.replace(/delete\s*=\s*[^,\n]+,/, 'delete = true,');
      ctx.check('lsyncd config on main rewritten with delete = true', /delete = true,/.test(naive), '');
      await lab.transports
        .get(main)!
        .writeFileAtomic(LSYNCD_CONF, naive, { mode: 0o644, owner: 'root', group: 'root' });
      await lab.sh(main, 'systemctl restart lsyncd');
      // the startup sync (rsync --delete) runs now: wait until sub stops changing
      let gone = 0;
      await until(
        (t.replication.lsyncd.delay + 45) * 1000,
        async () => {
          const now = new Set(
            (await observeUploads(lab.status, sub, root, t.sftp.uploadDir, w.prefix)).map((f) => f.path),
          );
          gone = outage.filter((a) => !now.has(a.path)).length;
          return mainLacked.every((a) => !now.has(a.path));
        },
        1000,
      );
      await sleep(1000);
      const onSub = new Set(
        (await observeUploads(lab.status, sub, root, t.sftp.uploadDir, w.prefix)).map((f) => f.path),
      );
      const lost = mainLacked.filter((a) => !onSub.has(a.path)).length;
      ctx.metric('acknowledged uploads lost by the naive failback', lost, 'files');
      ctx.check(
        `hazard shown: acknowledged uploads lost (deleted from ${sub} by lsyncd delete = true, never on ${main})`,
        lost > 0 && lost === mainLacked.length,
        `${lost} lost of ${outage.length} acknowledged during the outage (${mainLacked.length} not on ${main}, ${gone} gone from ${sub})`,
      );
    } finally {
      // repair: the rendered lsyncd config (configure), main in rotation, empty upload folders
      try {
        await resetScenarioLab(lab);
        // read back what the reset left on main: the rendered config (never delete = true), running
        const have = (await lab.transports.get(main)!.readFile(LSYNCD_CONF))?.toString('utf8') ?? '';
        const rendered = have === renderLsyncdConf(t, lab.inventory).content;
        const deletes = /^\s*delete\s*=\s*true/m.test(have);
        const active = (await lab.sh(main, 'systemctl is-active lsyncd')).stdout.trim();
        ctx.check(
          'lab repaired (rendered lsyncd config, delete = false)',
          rendered && !deletes && active === 'active',
          `config on ${main} ${rendered ? 'as rendered' : 'differs from the rendered one'}, ${deletes ? 'delete = true' : 'no delete = true'}, lsyncd ${active}`,
        );
      } catch (e) {
        ctx.check('lab repaired (rendered lsyncd config, delete = false)', false, (e as Error).message);
      }
      await lab.close();
    }
  },
};
export default failbackNaive;
