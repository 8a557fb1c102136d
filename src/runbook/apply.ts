// apply(plan): the side effects. Per host, in plan order: packages → groups/users → directories →
// files (atomic, checked by the real tool) → sysctls → routes → units (enable, start, reload/restart
// the notified ones) → health checks. A failed check, reload or health check restores the files
// written on that host, reloads again, and stops that host with an error naming host, resource and
// reason. Hosts run concurrently; each host's changes run in order.
import { RunError } from '../core/errors.ts';
import { mask } from '../transport/mask.ts';
import { shJoin, shQuote } from '../exec/index.ts';
import { checkArgv, octal } from '../transport/shell.ts';
import { CheckFailed, type Transport } from '../transport/types.ts';
import type { Journal } from './journal.ts';
import { changeSummary, type Change, type Plan } from './plan.ts';
import type { Reporter } from './progress.ts';
import type { ConfirmSpec, UnitResource } from './resources.ts';
import type { ExecResult } from '../transport/types.ts';
import { DEFAULT_STATE_DIR, pendingMarker } from './observe.ts';
import { sleep } from '../exec/process.ts';
import { posix } from 'node:path';
import { randomBytes } from 'node:crypto';
import { observeHost } from './observe.ts';
import { planHost } from './plan.ts';

/** Extra health probe after a unit was reloaded/restarted: throw (or return a reason) if unhealthy. */
export type HealthHook = (
  host: string,
  unit: UnitResource,
  t: Transport,
) => Promise<void | string | undefined>;

/** One path a commit-confirmed change must keep working (management ssh, the SFTP entry…). */
export interface PathCheck {
  name: string;
  ok: boolean;
  detail: string;
  /** Must work after the change even if it did not before (management: the revert's only witness). */
  required?: boolean;
}

/** How the engine confirms a commit-confirmed unit (UnitResource.confirm) from the right sides. */
export interface ConfirmHooks {
  /** The paths, probed before the change (baseline) and after it until they work or time runs out. */
  probe(host: string): Promise<PathCheck[]>;
  /** Runs a command on the host over a NEW connection (a multiplexed one outlives a cut path). */
  freshExec(host: string, cmd: string[], timeoutMs: number): Promise<ExecResult>;
}

/** The paths that fail now and must not: required ones, and those that worked before. Pure. */
export function brokenPaths(now: PathCheck[], baseline: PathCheck[]): PathCheck[] {
  return now.filter((c) => !c.ok && (c.required || baseline.find((b) => b.name === c.name)?.ok));
}

/** `state armedAt timeoutS doneAt` (the host's status line) → fields. Pure. */
export function parseConfirmStatus(
  line: string,
): { state: string; armedAt: number; timeoutS: number; doneAt: number; firedAt?: number } | undefined {
  const m = /^(\w+) ([\d.]+) (\d+) ([\d.]+)(?: ([\d.]+))?/.exec(line.trim());
  if (!m) return undefined;
  const fired = m[5] !== undefined && Number(m[5]) > 0 ? { firedAt: Number(m[5]) } : {};
  return { state: m[1]!, armedAt: Number(m[2]), timeoutS: Number(m[3]), doneAt: Number(m[4]), ...fired };
}

export interface ApplyOptions {
  transports: ReadonlyMap<string, Transport>;
  /** Paths and fresh connections for commit-confirmed units; without it only the unit's health counts. */
  confirm?: ConfirmHooks;
  reporter?: Reporter;
  journal?: Journal;
  health?: HealthHook;
  /** How long a unit may take to become healthy (retried every 500 ms). Default 15 s. */
  healthTimeoutMs?: number;
  /** apt-get timeout. Default 15 min. */
  packageTimeoutMs?: number;
  secrets?: readonly string[];
  /** Host directory for wharf's state (pending-reload markers). Default /var/lib/wharf. */
  stateDir?: string;
}

export interface HostResult {
  host: string;
  ok: boolean;
  /** Changes made (and kept). */
  applied: number;
  error?: string;
  /** What the rollback did, when there was one. */
  rollback?: string[];
}

/** A host's apply failed: names the host, the resource and the reason. */
export class ApplyError extends RunError {
  constructor(
    readonly host: string,
    readonly resourceId: string,
    readonly reason: string,
    readonly rollback: string[] = [],
    /** Changes made before the failure and kept (packages, users, directories…). */
    readonly applied = 0,
  ) {
    super(
      `${host}: ${resourceId}: ${reason}${rollback.length ? `\n  rollback: ${rollback.join('; ')}` : ''}`,
    );
    this.name = 'ApplyError';
  }
}

class StepFailed extends Error {}

async function sh(
  t: Transport,
  cmd: string | string[],
  what: string,
  o: { timeoutMs?: number; secret?: boolean } = {},
) {
  const r = await t.exec(cmd, o);
  if (r.code !== 0)
    throw new StepFailed(
      `${what} failed (exit ${r.code})${r.stderr.trim() ? `: ${r.stderr.trim()}` : r.stdout.trim() ? `: ${r.stdout.trim()}` : ''}`,
    );
  return r;
}

export function unitCommand(u: UnitResource, what: 'reload' | 'restart'): string[] {
  const custom = what === 'reload' ? u.reloadCommand : u.restartCommand;
  if (custom) return custom;
  if (u.systemd === false)
    throw new StepFailed(`unit ${u.name} is not a systemd unit and has no ${what}Command`);
  return ['systemctl', what, u.name];
}

function healthCommand(u: UnitResource): string[] | undefined {
  if (u.healthCommand) return u.healthCommand;
  if (u.systemd === false || u.active === false) return undefined;
  return ['systemctl', 'is-active', '--quiet', u.name];
}

const aptEnv = 'DEBIAN_FRONTEND=noninteractive';

/**
 * Changes applied together, in plan order, by one generated script per host (one SSH exec for 150
 * users instead of 300): groups, users, directories and files (a checked file is written to a temp
 * file, checked by its tool, then renamed, inside the script). Packages, sysctls, routes and units
 * keep their own commands. Pure.
 */
export function batchable(c: Change): boolean {
  const k = c.resource.kind;
  return k === 'group' || k === 'user' || k === 'directory' || k === 'file';
}

/** The temp file of change `i` of a batch script tagged `tag` (next to the target). Pure. */
export function batchTempPath(path: string, tag: string, i: number): string {
  return `${posix.dirname(path)}/.wharf-tmp.${posix.basename(path)}.${tag.slice(-8)}${i}`;
}

/** At most this many changes per batch script (bounded script size and run time). */
export const BATCH_MAX = 400;

/** What a change does, as in its error: `create user failed (exit 9): …`. Pure. */
export function changeWhat(c: Change): string {
  const r = c.resource;
  switch (r.kind) {
    case 'group':
    case 'user':
      return `${c.kind} ${r.kind}`;
    case 'directory':
      return 'directory';
    case 'file':
      return c.kind === 'delete' ? 'delete file' : c.metadataOnly ? 'chown/chmod' : `write ${r.path}`;
    default:
      return `${c.kind} ${r.kind}`;
  }
}

/**
 * The shell commands of one batchable change (each must succeed, in order) and what to clean up
 * when one fails. The same commands the engine ran one by one before batching: groupadd/groupmod,
 * useradd/usermod (+ usermod -p), mkdir + chown + chmod, and for files an atomic write (temp file
 * next to the target → owner/mode → rename) with the content carried in the script. Pure.
 */
export function changeCommands(
  c: Change,
  tmp: string,
): { cmds: string[]; cleanup?: string; check?: string; finish?: string } {
  const r = c.resource;
  switch (r.kind) {
    case 'group': {
      const a = [...(r.system ? ['-r'] : []), ...(r.gid !== undefined ? ['-g', String(r.gid)] : []), r.name];
      return {
        cmds: [shJoin(c.kind === 'create' ? ['groupadd', ...a] : ['groupmod', '-g', String(r.gid), r.name])],
      };
    }
    case 'user': {
      const a = [
        ...(r.uid !== undefined ? ['-u', String(r.uid)] : []),
        ...(r.group !== undefined ? ['-g', r.group] : []),
        ...(r.home !== undefined ? ['-d', r.home] : []),
        ...(r.shell !== undefined ? ['-s', r.shell] : []),
      ];
      const groups = r.groups?.length ? ['-G', r.groups.join(',')] : [];
      const cmd =
        c.kind === 'create'
          ? ['useradd', ...(r.system ? ['-r'] : []), '-M', ...a, ...groups, r.name]
          : ['usermod', ...a, ...(groups.length ? ['-a', ...groups] : []), r.name];
      return {
        cmds: [
          shJoin(cmd),
          ...(r.passwordHash !== undefined ? [shJoin(['usermod', '-p', r.passwordHash, r.name])] : []),
        ],
      };
    }
    case 'directory': {
      // one process (mkdir -p + chown + chmod were three: under load every process counts)
      const p = shQuote(r.path);
      return {
        cmds: [
          `if [ -e ${p} ] && [ ! -d ${p} ]; then echo ${shQuote(`${r.path} exists and is not a directory`)} >&2; false; fi`,
          `install -d -o ${shQuote(r.owner)} -g ${shQuote(r.group)} -m ${octal(r.mode)} -- ${p}`,
        ],
      };
    }
    case 'file': {
      const p = shQuote(r.path);
      if (c.kind === 'delete') return { cmds: [`rm -f -- ${p}`] };
      if (c.metadataOnly)
        return {
          cmds: [`chown -- ${shQuote(`${r.owner}:${r.group}`)} ${p}`, `chmod -- ${octal(r.mode)} ${p}`],
        };
      const q = shQuote(tmp);
      const dir = shQuote(posix.dirname(r.path));
      const mv = `mv -f -- ${q} ${p}`;
      // the temp file is made empty with its final owner and mode, then filled (printf is a shell
      // builtin; base64 only for content a shell word cannot hold), then renamed over the target
      const fill = r.content.includes('\0')
        ? `printf '%s' ${shQuote(Buffer.from(r.content, 'utf8').toString('base64'))} | base64 -d > ${q}`
        : `printf '%s' ${shQuote(r.content)} > ${q}`;
      return {
        cmds: [
          `{ [ -d ${dir} ] || mkdir -p -- ${dir}; }`,
          `install -o ${shQuote(r.owner)} -g ${shQuote(r.group)} -m ${octal(r.mode)} /dev/null ${q}`,
          fill,
          ...(r.check ? [] : [mv]),
        ],
        cleanup: `rm -f -- ${q}`,
        ...(r.check ? { check: shJoin(checkArgv(r.check, tmp)), finish: mv } : {}),
      };
    }
    default:
      throw new Error(`${c.id}: not batchable`);
  }
}

/**
 * One script applying `changes` in order; after each change it prints `<tag> ok <i>` on stdout, and
 * `<tag> <i>` on stderr before it (so a failure's own messages can be told apart). The first failing
 * change stops the script (`<tag> failed <i> <exit>`, or `<tag> rejected <i>` when a file's checker
 * refused the candidate; exit 1) after removing its temp file: every change before it was applied,
 * none after it was tried. Pure.
 */
export function batchScript(changes: Change[], tag: string): string {
  const out = ['set -e'];
  changes.forEach((c, i) => {
    const path = c.resource.kind === 'file' ? c.resource.path : '';
    const { cmds, cleanup, check, finish } = changeCommands(c, batchTempPath(path, tag, i));
    const failed = `{ rc=$?; ${cleanup ? `${cleanup}; ` : ''}echo "${tag} failed ${i} $rc"; exit 1; }`;
    out.push(`echo '${tag} ${i}' >&2`, `{ ${cmds.join(' && \\\n  ')}; } </dev/null 1>&2 || ${failed}`);
    if (check)
      out.push(
        `if ! ( ${check} ) </dev/null 1>&2; then ${cleanup}; echo "${tag} rejected ${i}"; exit 1; fi`,
        `${finish} 1>&2 || ${failed}`,
      );
    out.push(`echo '${tag} ok ${i}'`);
  });
  return out.join('\n') + '\n';
}

export interface BatchFailure {
  index: number;
  code: number;
  /** A file's checker refused the candidate (the old file is kept). */
  rejected?: boolean;
  /** What the failed change wrote on stderr. */
  stderr: string;
}

/** What a batch script's output says: how many changes were applied, which failed and why. Pure. */
export function parseBatchOutput(
  tag: string,
  n: number,
  stdout: string,
  stderr: string,
): { applied: number; failed?: BatchFailure } {
  let applied = 0;
  let failed: BatchFailure | undefined;
  for (const l of stdout.split('\n')) {
    if (!l.startsWith(`${tag} `)) continue;
    const [what, i, code] = l.slice(tag.length + 1).split(' ');
    if (what === 'ok' && Number(i) === applied) applied++;
    else if (what === 'failed') failed = { index: Number(i), code: Number(code), stderr: '' };
    else if (what === 'rejected') failed = { index: Number(i), code: 1, rejected: true, stderr: '' };
  }
  if (failed) {
    const marker = `${tag} ${failed.index}\n`;
    const at = stderr.lastIndexOf(marker);
    failed.stderr = (at >= 0 ? stderr.slice(at + marker.length) : stderr).trim();
  }
  return { applied: Math.min(applied, n), ...(failed ? { failed } : {}) };
}

/** Apply one host's changes. Throws ApplyError after rolling back. */
export async function applyHost(
  host: string,
  changes: Change[],
  t: Transport,
  o: ApplyOptions,
): Promise<number> {
  const secrets = o.secrets ?? [];
  const written: Change[] = []; // files replaced on this host, for rollback
  const touched: UnitResource[] = []; // units reloaded/restarted/started
  // commit-confirmed units: when their revert was armed, the paths before, and whether the host reverted
  const armed = new Map<
    string,
    { at: number; baseline: PathCheck[]; reverted?: boolean; confirmed?: boolean }
  >();
  let applied = 0;
  let kept = 0;
  let packagesDone = false;
  const journal = (c: Change, step: string, result: 'ok' | 'failed', t0: number, error?: string) =>
    o.journal?.write({
      host,
      step,
      id: `${c.host}:${c.id}`,
      change: changeSummary(c),
      result,
      durationMs: Date.now() - t0,
      ...(error ? { error } : {}),
    });

  const doChange = async (c: Change) => {
    const r = c.resource;
    switch (r.kind) {
      case 'package': {
        if (packagesDone) return;
        packagesDone = true;
        const pk = changes.filter((x) => x.resource.kind === 'package');
        const install = pk
          .filter((x) => x.kind === 'create')
          .map((x) => (x.resource as { name: string }).name);
        const remove = pk
          .filter((x) => x.kind === 'delete')
          .map((x) => (x.resource as { name: string }).name);
        const timeoutMs = o.packageTimeoutMs ?? 900_000;
        if (install.length) {
          o.reporter?.step(host, `apt-get install ${install.join(' ')}`);
          await sh(t, `${aptEnv} apt-get update -qq`, 'apt-get update', { timeoutMs });
          await sh(
            t,
            `${aptEnv} apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold ${shJoin(install)}`,
            'apt-get install',
            { timeoutMs },
          );
        }
        if (remove.length)
          await sh(t, `${aptEnv} apt-get remove -y -qq ${shJoin(remove)}`, 'apt-get remove', {
            timeoutMs,
          });
        return;
      }
      case 'group':
      case 'user':
      case 'directory':
      case 'file':
        throw new Error(`${c.id}: applied in a batch`);
      case 'sysctl':
        await sh(t, ['sysctl', '-w', `${r.key}=${r.value}`], 'sysctl -w');
        return;
      case 'route':
        await sh(t, ['ip', 'route', 'replace', r.to, 'via', r.via], 'ip route replace');
        return;
      case 'unit': {
        if (c.kind === 'update') {
          await sh(
            t,
            ['systemctl', r.enabled === false ? 'disable' : 'enable', r.name],
            `systemctl ${r.enabled === false ? 'disable' : 'enable'}`,
          );
          return;
        }
        const what = c.kind === 'reload' ? 'reload' : 'restart';
        touched.push(r);
        if (r.confirm) {
          // commit-confirmed: the paths as they are, then save + arm the revert on the host + apply
          const baseline = o.confirm ? await o.confirm.probe(host) : [];
          const entry: { at: number; baseline: PathCheck[]; reverted?: boolean } = {
            at: Date.now(),
            baseline,
          };
          armed.set(r.name, entry);
          o.reporter?.step(
            host,
            `${what} ${r.name}: commit-confirmed, revert armed on the host in ${r.confirm.timeoutMs / 1000} s`,
          );
          o.journal?.write({
            host,
            step: 'arm',
            id: `${c.host}:${c.id}`,
            change: {
              id: `unit ${r.name}`,
              kind: 'arm',
              why: `revert in ${r.confirm.timeoutMs / 1000} s unless confirmed`,
            },
            result: 'ok',
            durationMs: 0,
            detail: { baseline },
          });
          try {
            await sh(t, r.confirm.apply, `commit-confirmed apply (${shJoin(r.confirm.apply)})`);
          } catch (e) {
            entry.reverted = true; // the apply script reverts at once when the new state does not load
            throw e;
          }
          return;
        }
        await sh(t, unitCommand(r, what), `${what} (${shJoin(unitCommand(r, what))})`);
        return;
      }
    }
  };

  const healthOf = async (u: UnitResource): Promise<string | undefined> => {
    const cmd = healthCommand(u);
    if (cmd) {
      // a probe that times out (a host too busy to answer in 10 s) is a failed probe: retried
      // until healthTimeoutMs like any other, not the end of the run
      let res;
      try {
        res = await t.exec(cmd, { timeoutMs: 10_000 });
      } catch (e) {
        return `health check ${shJoin(cmd)}: ${(e as Error).message}`;
      }
      if (res.code !== 0)
        return `health check ${shJoin(cmd)} failed (exit ${res.code})${res.stderr.trim() ? `: ${res.stderr.trim()}` : ''}`;
    }
    if (o.health) {
      try {
        const bad = await o.health(host, u, t);
        if (bad) return bad;
      } catch (e) {
        return (e as Error).message;
      }
    }
    return undefined;
  };

  const rollback = async (): Promise<string[]> => {
    const did: string[] = [];
    const rolled = (c: Change, t0: number, error?: string) =>
      o.journal?.write({
        host,
        step: 'rollback',
        id: `${c.host}:${c.id}`,
        change: changeSummary(c),
        result: error ? 'failed' : 'rolled-back',
        durationMs: Date.now() - t0,
        ...(error ? { error } : {}),
      });
    // files this run created: removed together (one command, however many)
    const created = [...written]
      .reverse()
      .filter((c) => c.resource.kind === 'file' && c.before?.kind === 'file' && !c.before.stat);
    for (let i = 0; i < created.length; i += BATCH_MAX) {
      const part = created.slice(i, i + BATCH_MAX);
      const t0 = Date.now();
      try {
        await sh(
          t,
          ['rm', '-f', '--', ...part.map((c) => (c.resource as { path: string }).path)],
          'remove new files',
        );
        for (const c of part) {
          did.push(`${c.id} removed`);
          rolled(c, t0);
        }
      } catch (e) {
        for (const c of part) {
          did.push(`${c.id} NOT removed: ${(e as Error).message}`);
          rolled(c, t0, (e as Error).message);
        }
      }
    }
    for (const c of [...written].reverse()) {
      const r = c.resource;
      const before = c.before;
      if (r.kind !== 'file' || before?.kind !== 'file' || !before.stat) continue;
      const t0 = Date.now();
      try {
        if (before.content === null) {
          did.push(`${c.id}: previous content unknown, left as is`);
          continue;
        } else
          await t.writeFileAtomic(r.path, before.content, {
            mode: before.stat.mode,
            owner: before.stat.owner,
            group: before.stat.group,
            ...(r.secret ? { secret: true } : {}),
          });
        did.push(`${c.id} restored`);
        rolled(c, t0);
      } catch (e) {
        did.push(`${c.id} NOT restored: ${(e as Error).message}`);
        rolled(c, t0, (e as Error).message);
      }
    }
    if (written.some(isUnitFile)) {
      await t.exec(['systemctl', 'daemon-reload']).catch(() => undefined);
    }
    for (const u of touched) {
      const what = u.apply === 'restart' ? 'restart' : 'reload';
      if (u.confirm) {
        const a = armed.get(u.name);
        if (a?.reverted) {
          did.push(`unit ${u.name}: the host reverted it by itself (nothing to reload)`);
          continue;
        }
        try {
          await sh(t, u.confirm.restore, `restore ${u.name}`);
          await clearMarkers([u.name]);
          did.push(`unit ${u.name} re-applied with the restored files (unarmed)`);
        } catch (e) {
          did.push(`unit ${u.name} restore FAILED: ${(e as Error).message}`);
        }
        continue;
      }
      try {
        await sh(t, unitCommand(u, what), `${what} ${u.name}`);
        await clearMarkers([u.name]);
        did.push(`unit ${u.name} ${what}ed with the restored files`);
      } catch (e) {
        did.push(`unit ${u.name} ${what} after restore FAILED: ${(e as Error).message}`);
      }
    }
    return did;
  };

  const fail = async (id: string, reason: string, secretContent?: string): Promise<never> => {
    const clean = mask(reason, secretContent ? [...secrets, secretContent] : secrets);
    const did = written.length || touched.length ? await rollback() : [];
    o.reporter?.done(host, false, `${id}: ${clean.split('\n')[0]}`);
    throw new ApplyError(host, id, clean, did, did.length ? kept : applied);
  };

  /** A host's status line over a new connection (or the multiplexed one without hooks). */
  const hostStatus = async (spec: ConfirmSpec): Promise<string> => {
    try {
      const r = o.confirm ? await o.confirm.freshExec(host, spec.status, 8000) : await t.exec(spec.status);
      return r.code === 0 ? r.stdout.trim() : `unreachable (exit ${r.code})`;
    } catch (e) {
      return `unreachable: ${(e as Error).message.split('\n')[0]}`;
    }
  };

  /**
   * Confirm a commit-confirmed unit: the paths must work (required ones, and every one that worked
   * before) within the window (the revert's timeout less a margin for the confirm itself); then the
   * revert is cancelled. Otherwise nothing is sent to the host: it reverts by itself, and the run
   * waits for that (seen over new connections) and reports it. Returns the failure, if any.
   */
  const confirmUnit = async (u: UnitResource, spec: ConfirmSpec): Promise<string | undefined> => {
    const a = armed.get(u.name);
    if (!a) return undefined; // started by something else than a notified change: nothing armed
    const t0 = Date.now();
    const deadline = a.at + spec.timeoutMs - Math.min(3000, spec.timeoutMs / 4);
    let broken: PathCheck[] = [];
    let checks: PathCheck[] = [];
    o.reporter?.step(host, `confirm unit ${u.name}: checking the paths`);
    for (;;) {
      checks = o.confirm ? await o.confirm.probe(host) : [];
      broken = brokenPaths(checks, a.baseline);
      if (!broken.length || Date.now() >= deadline) break;
      await sleep(500);
    }
    const paths = checks
      .map((c) => {
        const before = a.baseline.find((b) => b.name === c.name);
        const state = c.ok
          ? 'ok'
          : !c.required && !before?.ok
            ? 'not working before the change either'
            : 'FAILED';
        return `${c.name}: ${state} (${c.detail})`;
      })
      .join('; ');
    if (!broken.length) {
      const r = await t.exec(spec.confirm, { timeoutMs: 10_000 });
      if (r.code === 0) {
        a.confirmed = true;
        o.journal?.write({
          host,
          step: 'confirm',
          change: { id: `unit ${u.name}`, kind: 'confirm', why: 'paths checked' },
          result: 'ok',
          durationMs: Date.now() - t0,
          detail: { checks, armedMsAgo: Date.now() - a.at },
        });
        o.reporter?.line(
          `${host}: ${u.name} change confirmed ${((Date.now() - a.at) / 1000).toFixed(1)} s after it was armed: ${paths || 'no paths to check'}`,
        );
        return undefined;
      }
      broken = [
        {
          name: 'confirm',
          ok: false,
          // exit 3: the host had reverted already; paths that answer then prove nothing about the change
          detail: `${r.code === 3 ? 'too late, the host had reverted before the paths answered: ' : ''}${shJoin(spec.confirm)} exit ${r.code}: ${(r.stderr || r.stdout).trim()}`,
        },
      ];
    }
    // Not confirmed: leave the host alone (the path that was cut may be the one we would use) and
    // wait for its own revert, over new connections.
    const why = broken.map((c) => `${c.name}: ${c.detail}`).join('; ');
    o.reporter?.step(host, `${u.name} NOT confirmed (${why}): waiting for the host to revert by itself`);
    const until = a.at + spec.timeoutMs + 30_000;
    let last = '';
    for (;;) {
      last = await hostStatus(spec);
      const st = parseConfirmStatus(last);
      if (st && st.state === 'reverted' && st.armedAt * 1000 >= a.at - 5000) {
        a.reverted = true;
        const took = st.doneAt - st.armedAt;
        const fired = st.firedAt ? `, its timer fired at ${(st.firedAt - st.armedAt).toFixed(1)} s` : '';
        const msg = `change not confirmed (${why}); the host reverted it by itself ${took.toFixed(1)} s after it was armed (timeout ${st.timeoutS} s${fired})`;
        o.journal?.write({
          host,
          step: 'revert',
          change: { id: `unit ${u.name}`, kind: 'revert', why: 'not confirmed' },
          result: 'failed',
          durationMs: Date.now() - t0,
          error: msg,
          detail: { checks, armedAt: st.armedAt, revertedAt: st.doneAt, revertSeconds: took },
        });
        return msg;
      }
      if (Date.now() >= until) break;
      await sleep(1000);
    }
    const msg = `change not confirmed (${why}); the host's revert was NOT seen within ${(until - a.at) / 1000} s of arming (last status: ${last})`;
    o.journal?.write({
      host,
      step: 'revert',
      change: { id: `unit ${u.name}`, kind: 'revert', why: 'not confirmed' },
      result: 'failed',
      durationMs: Date.now() - t0,
      error: msg,
    });
    return msg;
  };

  // Record the reloads this run owes before touching any file: if the run is killed after a file
  // was replaced but before its unit was reloaded, the next run sees the marker and reloads.
  const stateDir = o.stateDir ?? DEFAULT_STATE_DIR;
  const owed = changes.filter(
    (c) => c.resource.kind === 'unit' && (c.kind === 'reload' || c.kind === 'restart'),
  );
  const markers = owed.map((c) => pendingMarker(stateDir, (c.resource as UnitResource).name));
  if (markers.length) {
    try {
      await sh(
        t,
        `mkdir -p -- ${shQuote(`${stateDir}/pending`)} && touch -- ${markers.map(shQuote).join(' ')}`,
        'recording pending reloads',
      );
    } catch (e) {
      o.reporter?.done(host, false, (e as Error).message);
      throw new ApplyError(host, `state ${stateDir}`, (e as Error).message);
    }
  }
  const clearMarkers = async (names: string[]) => {
    if (!names.length) return;
    await t.exec(['rm', '-f', '--', ...names.map((n) => pendingMarker(stateDir, n))]);
  };

  // systemd reads unit files at daemon-reload: after writing one, reload systemd before any unit step
  const isUnitFile = (c: Change) =>
    c.resource.kind === 'file' && /^\/(etc|lib|usr\/lib)\/systemd\/system\//.test(c.resource.path);
  let systemdStale = false;
  const daemonReload = async () => {
    if (!systemdStale) return;
    await sh(t, ['systemctl', 'daemon-reload'], 'systemctl daemon-reload');
    systemdStale = false;
  };
  const failMsg = (c: Change, e: unknown) =>
    e instanceof CheckFailed
      ? `${e.checker} rejected it (old file kept): ${e.output.trim()}`
      : (e as Error).message;
  const secretOf = (c: Change) =>
    c.resource.kind === 'file' && c.resource.secret ? c.resource.content : undefined;
  const done = (c: Change, t0: number, detail?: unknown) => {
    if (isUnitFile(c)) systemdStale = true;
    if (c.resource.kind === 'file') written.push(c);
    applied++;
    // Not undone by a rollback: everything but file writes and reloads/restarts.
    if (c.resource.kind !== 'file' && !(c.resource.kind === 'unit' && c.kind !== 'update')) kept++;
    o.journal?.write({
      host,
      step: 'apply',
      id: `${c.host}:${c.id}`,
      change: changeSummary(c),
      result: 'ok',
      durationMs: Date.now() - t0,
      ...(detail ? { detail } : {}),
    });
  };
  const failed = async (c: Change, t0: number, msg: string): Promise<never> => {
    const sc = secretOf(c);
    journal(c, 'apply', 'failed', t0, mask(msg, sc ? [...secrets, sc] : secrets));
    return fail(c.id, msg, sc);
  };

  /**
   * A batch: one script, one exec. Its output says which changes were applied; if the transport
   * itself failed (connection lost, timeout) the batch's resources are observed again and planned:
   * those with nothing left to do count as applied, the first other one as the failure.
   */
  const runBatch = async (batch: Change[]) => {
    const t0 = Date.now();
    const kinds = [...new Set(batch.map((c) => c.resource.kind))].join(', ');
    o.reporter?.step(
      host,
      batch.length === 1
        ? `${batch[0]!.kind} ${batch[0]!.id}`
        : `${batch.length} changes (${kinds}) in one script: ${batch[0]!.kind} ${batch[0]!.id} … ${batch.at(-1)!.kind} ${batch.at(-1)!.id}`,
    );
    const tag = `@@wharf-${randomBytes(6).toString('hex')}`;
    const secret = batch.some(
      (c) =>
        (c.resource.kind === 'file' && c.resource.secret) ||
        (c.resource.kind === 'user' && c.resource.passwordHash),
    );
    let res: { applied: number; failed?: BatchFailure } = { applied: 0 };
    let lost: string | undefined;
    try {
      const r = await t.exec('sh -s', {
        input: batchScript(batch, tag),
        secret,
        timeoutMs: 120_000 + 2_000 * batch.length,
      });
      res = parseBatchOutput(tag, batch.length, r.stdout, r.stderr);
      if (!res.failed && res.applied < batch.length)
        lost = `the batch script stopped after ${res.applied} of ${batch.length} changes (exit ${r.code}): ${r.stderr.trim().split('\n').pop() ?? ''}`;
    } catch (e) {
      lost = (e as Error).message;
      // a timeout here: the host's own `timeout` (a second later, then KILL after 2 s) ends the script
      if (/timed out/.test(lost)) await sleep(4_000);
    }
    if (lost !== undefined) {
      // what the script's output cannot tell: observe the batch's resources again and plan them
      try {
        const rs = batch.map((c) => c.resource);
        const left = new Set(
          planHost(host, rs, await observeHost(t, rs, stateDir), secrets)
            .filter((c) => c.resource.kind !== 'unit')
            .map((c) => c.id),
        );
        // plan order: applied up to the first change still planned
        res = { applied: 0 };
        while (res.applied < batch.length && !left.has(batch[res.applied]!.id)) res.applied++;
        lost += ` (observed again: ${res.applied} of ${batch.length} changes of this batch applied)`;
      } catch (e2) {
        lost += ` (observing again failed too: ${(e2 as Error).message}; changes from ${batch[res.applied]?.id ?? batch[0]!.id} on in this batch may or may not be applied)`;
      }
    }
    const ms = Date.now() - t0;
    for (const c of batch.slice(0, res.applied)) done(c, t0, { batch: batch.length, batchMs: ms });
    if (res.failed) {
      const c = batch[res.failed.index]!;
      const r = c.resource;
      const said = res.failed.stderr;
      if (res.failed.rejected && r.kind === 'file')
        await failed(
          c,
          t0,
          `${r.check?.name ?? 'check'} rejected it (old file kept): ${said.split(batchTempPath(r.path, tag, res.failed.index)).join(r.path)}`,
        );
      await failed(c, t0, `${changeWhat(c)} failed (exit ${res.failed.code})${said ? `: ${said}` : ''}`);
    }
    if (lost !== undefined && res.applied < batch.length) await failed(batch[res.applied]!, t0, lost);
  };

  for (let i = 0; i < changes.length;) {
    const c = changes[i]!;
    if (batchable(c)) {
      let j = i + 1;
      while (j < changes.length && j - i < BATCH_MAX && batchable(changes[j]!)) j++;
      await runBatch(changes.slice(i, j));
      i = j;
      continue;
    }
    i++;
    const t0 = Date.now();
    o.reporter?.step(host, `${c.kind} ${c.id}`);
    try {
      if (c.resource.kind === 'unit') await daemonReload();
      await doChange(c);
    } catch (e) {
      await failed(c, t0, failMsg(c, e));
    }
    done(c, t0);
  }

  try {
    await daemonReload();
  } catch (e) {
    await fail('systemd', (e as Error).message);
  }
  // Health: every unit reloaded/restarted/started must be healthy within the timeout.
  for (const u of touched) {
    const t0 = Date.now();
    o.reporter?.step(host, `health unit ${u.name}`);
    const deadline = Date.now() + (o.healthTimeoutMs ?? 15_000);
    let bad: string | undefined;
    for (;;) {
      bad = await healthOf(u);
      if (!bad || Date.now() >= deadline) break;
      await sleep(500);
    }
    o.journal?.write({
      host,
      step: 'health',
      change: { id: `unit ${u.name}`, kind: 'health', why: 'after reload/restart' },
      result: bad ? 'failed' : 'ok',
      durationMs: Date.now() - t0,
      ...(bad ? { error: bad } : {}),
    });
    if (!bad && u.confirm) bad = await confirmUnit(u, u.confirm);
    if (bad) await fail(`unit ${u.name}`, bad);
  }
  await clearMarkers(owed.map((c) => (c.resource as UnitResource).name));
  o.reporter?.done(
    host,
    true,
    applied ? `${applied} change${applied === 1 ? '' : 's'} applied` : 'no changes',
  );
  return applied;
}

/** Apply a plan on all its hosts (concurrently). Never throws for a host failure: see results. */
export async function applyPlan(plan: Plan, o: ApplyOptions): Promise<HostResult[]> {
  return Promise.all(
    Object.entries(plan.hosts).map(async ([host, changes]): Promise<HostResult> => {
      const t = o.transports.get(host);
      if (!t) return { host, ok: false, applied: 0, error: `${host}: no transport` };
      try {
        return { host, ok: true, applied: await applyHost(host, changes, t, o) };
      } catch (e) {
        if (e instanceof ApplyError)
          return { host, ok: false, applied: Math.max(0, e.applied), error: e.message, rollback: e.rollback };
        const msg = mask((e as Error).message, o.secrets ?? []);
        o.reporter?.done(host, false, msg);
        return { host, ok: false, applied: 0, error: msg.startsWith(`${host}:`) ? msg : `${host}: ${msg}` };
      }
    }),
  );
}
