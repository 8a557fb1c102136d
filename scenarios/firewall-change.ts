// firewall-change: commit-confirmed rule changes on the firewall, under a steady SFTP workload.
//   1. a harmless change (a logged block rule for an unused port), then its removal: each applied by
//      `configure`, confirmed after management ssh (a new connection) and the SFTP path (banner from
//      the wan client through the router) were checked; the rule is seen on the box; no upload lost;
//   2. a bad change that cuts management (OPNsense's anti-lockout rule off, no rule of its own for
//      management ssh): not confirmed, the box reverts it by itself within the confirm timeout;
//      configure exits 1 saying so;
//   3. the same bad change with wharf killed right after the revert was armed: the box still
//      reverts by itself; management works again.
// The time from each bad change (its revert armed, the new ruleset loaded) to the box's revert is
// reported. `firewallChangeScenario({ kind })` makes it for a firewall kind (nftables now; the
// opnsense driver's lab can register its own).
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import type { FirewallKind } from '../src/topology/firewall.ts';
import { topologyFromObject } from '../src/topology/load.ts';
import { nodeOfKind } from '../src/topology/model.ts';
import { NFT_CONFIRM } from '../src/render/nftables.ts';
import { OPN_STATE } from '../src/lab/opnsense/index.ts';
import { LAB_ROLLBACK_S } from '../src/lab/opnsense/provision.ts';
import { parseConfirmStatus } from '../src/runbook/apply.ts';
import { stackConfirmHooks } from '../src/stack/confirm.ts';
import { runRunbookByName } from '../src/stack/runbooks.ts';
import { REPO_ROOT } from '../src/lab/state.ts';
import { labNode } from '../src/lab/node.ts';
import type { Scenario } from '../src/scenario/types.ts';
import { formatVerdict } from '../src/workload/checker.ts';
import { ensureScenarioLab, scenarioTopology, type ScenarioLab } from './lab.ts';
import { checkEverywhere, sleep, startWorkload, until } from './outage.ts';

/** The confirm window in the scenario (CI's time budget): short, and still several probes long. */
export const SCENARIO_CONFIRM_S = 8;
const UNUSED_PORT = 2223;
/** How long after its timer the revert may take to complete (systemd, nft -f; a loaded machine). */
const REVERT_SLACK_S = 3;

type Doc = Record<string, unknown> & { firewall?: Record<string, unknown> };

/** Where each kind's box keeps what the scenario reads (over ssh, or docker exec while cut off). */
interface KindView {
  ruleset: string;
  logged: RegExp;
  status: string[];
  /** The box's revert timeout: the confirm window (nftables), the savepoint's window (opnsense). */
  timeoutS: number;
  conf: string;
}

export function kindView(kind: FirewallKind): KindView {
  return kind === 'opnsense'
    ? {
        ruleset: 'nft list table inet wharf_opn',
        logged: /tcp dport 2223 log prefix "opn [0-9a-f]+: " drop/,
        status: ['cat', `${OPN_STATE}/rollback.status`],
        timeoutS: LAB_ROLLBACK_S,
        conf: `${OPN_STATE}/config.xml`,
      }
    : {
        ruleset: 'nft list table inet wharf',
        logged: /tcp dport 2223 log prefix "wharf wan block \d+: " drop/,
        status: [NFT_CONFIRM, 'status'],
        timeoutS: SCENARIO_CONFIRM_S,
        conf: '/etc/nftables.conf',
      };
}

export function firewallChangeScenario(o: { kind: FirewallKind; name?: string }): Scenario {
  return {
    name: o.name ?? (o.kind === 'nftables' ? 'firewall-change' : `firewall-change-${o.kind}`),
    description: `commit-confirmed firewall changes (${o.kind}) under SFTP load: a harmless rule added and removed (confirmed, nothing lost); a change that cuts management reverted by the box itself within ${kindView(o.kind).timeoutS} s, also with wharf killed after arming`,
    async run(ctx) {
      const lab = await ensureScenarioLab(ctx.log);
      const fw = nodeOfKind(lab.t, 'firewall').name;
      const { file } = scenarioTopology();
      const base = parse(readFileSync(file, 'utf8')) as Doc;
      const variant = (change: (f: Record<string, unknown>) => void): Doc => {
        const d = structuredClone(base);
        d.firewall = { ...(d.firewall ?? {}), kind: o.kind };
        change(d.firewall);
        return d;
      };
      const good = variant(() => {});
      const logged = variant((f) => {
        f.rules = [
          ...((f.rules as unknown[]) ?? []),
          {
            description: `scenario: block unused port ${UNUSED_PORT} (logged)`,
            interface: 'wan',
            action: 'block',
            protocol: 'tcp',
            destinationPort: UNUSED_PORT,
            log: true,
          },
        ];
      });
      // the operator's classic: anti-lockout off, and no rule of their own for management ssh
      const bad = variant((f) => {
        f.antiLockout = false;
      });
      if (lab.t.firewall.kind !== o.kind) {
        ctx.check(`the lab's firewall is kind ${o.kind}`, false, `it is ${lab.t.firewall.kind}`);
        await lab.close();
        return;
      }

      const configure = (doc: Doc, what: string) =>
        runRunbookByName('configure', {
          topology: topologyFromObject(doc, `${what}.yaml`),
          inventory: lab.inventory,
          only: [fw],
          options: { confirmTimeout: `${SCENARIO_CONFIRM_S}s` },
          log: () => {},
        });
      const K = kindView(o.kind);
      const ruleset = async () => (await lab.sh(fw, K.ruleset, 20_000)).stdout;
      const mgmtOk = async () => {
        const checks = await stackConfirmHooks(lab.t, lab.inventory).probe(fw);
        return checks.find((c) => c.required)!;
      };

      const w = startWorkload(lab, {
        prefix: `fwc-${Date.now().toString(36)}`,
        clients: 2,
        size: 16 * 1024,
        pauseMs: 100,
      });
      try {
        await until(30_000, () => w.acks.length >= 5);
        // 1. harmless: add, then remove
        const t1 = Date.now();
        const add = await configure(logged, 'logged-rule');
        const have = await ruleset();
        ctx.check(
          `a logged block rule for unused port ${UNUSED_PORT} is applied and confirmed`,
          add.ok && K.logged.test(have),
          add.ok ? `${((Date.now() - t1) / 1000).toFixed(1)} s, confirmed` : (add.error ?? 'failed'),
        );
        ctx.event('logged rule added', t1, { until: Date.now() });
        const t2 = Date.now();
        const rm = await configure(good, 'good');
        ctx.check(
          'its removal is applied and confirmed',
          rm.ok && !(await ruleset()).includes('dport 2223'),
          rm.ok ? `${((Date.now() - t2) / 1000).toFixed(1)} s` : (rm.error ?? 'failed'),
        );
        ctx.event('logged rule removed', t2, { until: Date.now() });
        await sleep(1500); // uploads after the last change
        const r = await w.stop();
        const { verdict } = await checkEverywhere(lab, r.acks, w.prefix);
        ctx.log(formatVerdict(verdict));
        ctx.check(
          'no upload lost across the confirmed changes',
          verdict.valid && verdict.acknowledged >= 10,
          `${verdict.acknowledged} acknowledged; ` +
            verdict.nodes
              .map((n) => `${n.node}: lost ${n.lost.length}, corrupt ${n.corrupt.length}`)
              .join('; '),
        );
        ctx.metric('uploads acknowledged during the changes', verdict.acknowledged, 'uploads');
      } finally {
        await w.stop();
      }

      // 2. bad change, wharf alive: not confirmed, reverted by the box, configure fails saying so
      const b0 = Date.now();
      const res = await configure(bad, 'bad');
      const v1 = revertVerdict(parseConfirmStatus(await boxStatus(lab, fw, K)), K.timeoutS);
      ctx.check(
        'a change that cuts management is not confirmed: configure exits 1 naming the revert',
        !res.ok && res.exitCode === 1 && /reverted it by itself/.test(res.error ?? ''),
        (res.error ?? `ok=${res.ok}`).split('\n').slice(0, 2).join(' | '),
      );
      ctx.check(`the box reverted it by itself at the ${K.timeoutS} s timeout`, v1.ok, v1.detail);
      if (v1.took !== undefined)
        ctx.metric('bad change → revert (wharf alive)', Number(v1.took.toFixed(2)), 's', {
          op: '<=',
          value: K.timeoutS + REVERT_SLACK_S,
        });
      const m1 = await mgmtOk();
      ctx.check('management ssh works again after the revert', m1.ok, m1.detail);
      ctx.event('bad change (wharf alive)', b0, { until: Date.now() });

      // 3. bad change, wharf killed after arming: the box alone reverts it
      const b1 = Date.now();
      const killed = await badChangeKilled(lab, bad, fw, b1, K);
      ctx.check(
        'wharf killed after arming the revert: the box reverts the bad change by itself',
        killed.ok,
        killed.detail,
      );
      if (killed.took !== undefined)
        ctx.metric('bad change → revert (wharf killed)', Number(killed.took.toFixed(2)), 's', {
          op: '<=',
          value: K.timeoutS + REVERT_SLACK_S,
        });
      const m2 = await mgmtOk();
      const rs = m2.ok ? await ruleset() : '';
      ctx.check(
        'management ssh works again, with the confirmed ruleset (anti-lockout rule back)',
        m2.ok && rs.includes('anti-lockout'),
        m2.detail,
      );
      ctx.event('bad change (wharf killed)', b1, { until: Date.now() });
      // the killed run left the bad file on disk until the box's revert put the confirmed one back
      const conf = (await lab.sh(fw, `cat ${K.conf}`, 20_000)).stdout;
      ctx.check(
        `the box's ${K.conf} is the confirmed one again (a reboot loads it)`,
        conf.includes('anti-lockout'),
        conf.includes('anti-lockout') ? 'anti-lockout rule present' : 'the bad file is still in place',
      );
      await lab.close();
    },
  };
}

/**
 * The box's commit-confirmed state line, read from outside the box (docker exec, as the drill's
 * faults act): while management is cut no ssh reaches it. '' when it cannot be read.
 */
async function boxStatus(lab: ScenarioLab, node: string, K: KindView): Promise<string> {
  try {
    const r = await labNode(lab.t.name, node).exec(K.status, { timeoutMs: 10_000 });
    return r.code === 0 ? r.stdout.trim() : '';
  } catch {
    return '';
  }
}

/** Checks of one bad change's revert, from the box's own timestamps. Pure. */
export function revertVerdict(
  st: ReturnType<typeof parseConfirmStatus>,
  timeoutS: number,
): { ok: boolean; took?: number; detail: string } {
  if (!st || st.state !== 'reverted') return { ok: false, detail: `box status: ${JSON.stringify(st)}` };
  const took = st.doneAt - st.armedAt;
  const fired = st.firedAt !== undefined ? st.firedAt - st.armedAt : undefined;
  // the timer fires at the timeout (not before: a confirm was still possible), the revert follows
  const ok = fired !== undefined && fired >= timeoutS - 0.5 && took <= timeoutS + REVERT_SLACK_S;
  return {
    ok,
    took,
    detail: `bad change → revert ${took.toFixed(2)} s (the box's timer fired at ${fired?.toFixed(2) ?? '?'} s, timeout ${timeoutS} s)`,
  };
}

/**
 * `wharf run configure` of the bad change as its own process, SIGKILLed once the box reports the
 * revert armed; then the box's status is polled (new connections fail while management is cut).
 */
async function badChangeKilled(
  lab: ScenarioLab,
  bad: Doc,
  fw: string,
  since: number,
  K: KindView,
): Promise<{ ok: boolean; detail: string; took?: number }> {
  const file = join(REPO_ROOT, '.wharf', 'scenarios', `${lab.t.name}-firewall-bad.yaml`);
  writeFileSync(file, stringify(bad));
  const logFile = join(REPO_ROOT, '.wharf', 'scenarios', `${lab.t.name}-firewall-killed.log`);
  const out = openSync(logFile, 'w');
  const child = spawn(
    process.execPath,
    [
      join(REPO_ROOT, 'bin', 'wharf.mjs'),
      'run',
      'configure',
      '-c',
      file,
      '-i',
      lab.status.inventory,
      '--only',
      fw,
      '--confirm-timeout',
      `${SCENARIO_CONFIRM_S}s`,
    ],
    { cwd: REPO_ROOT, stdio: ['ignore', out, out] },
  );
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  let armedAt = 0;
  const armed = await until(
    90_000,
    async () => {
      const s = parseConfirmStatus(await boxStatus(lab, fw, K));
      if (s && s.state === 'armed' && s.armedAt * 1000 >= since - 1000) armedAt = s.armedAt;
      return armedAt > 0;
    },
    100,
  );
  child.kill('SIGKILL');
  const code = await exited;
  closeSync(out);
  const killedAt = Date.now() / 1000;
  if (!armed)
    return {
      ok: false,
      detail: `the run never armed a revert on the box (exit ${code}; its output: ${logFile})`,
    };
  let st: ReturnType<typeof parseConfirmStatus>;
  const seen = await until(
    (K.timeoutS + 30) * 1000,
    async () => {
      st = parseConfirmStatus(await boxStatus(lab, fw, K));
      return st?.state === 'reverted' && st.armedAt === armedAt;
    },
    250,
  );
  const killed = `wharf SIGKILLed ${(killedAt - armedAt).toFixed(1)} s after arming${code === null ? '' : ` (but it had exited ${code} already)`}`;
  if (!seen) return { ok: false, detail: `${killed}; no revert seen (status ${JSON.stringify(st!)})` };
  const v = revertVerdict(st!, K.timeoutS);
  return {
    ok: code === null && killedAt - armedAt < K.timeoutS && v.ok,
    ...(v.took !== undefined ? { took: v.took } : {}),
    detail: `${killed}, before it could confirm or roll back; ${v.detail}`,
  };
}

/**
 * The scenario for the lab's firewall kind: nftables (CI's shared lab), or with
 * WHARF_FIREWALL_KIND=opnsense (a scenario lab whose firewall is the OPNsense API emulation)
 * `firewall-change-opnsense`.
 */
export const firewallChange = firewallChangeScenario({
  kind: process.env.WHARF_FIREWALL_KIND === 'opnsense' ? 'opnsense' : 'nftables',
});
export default firewallChange;
