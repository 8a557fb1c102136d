// wharf watch's decisions: a pure state machine. Every poll (HAProxy's `show stat` over SSH, a
// banner probe of main from the HAProxy node, the failover record) and every runbook result goes
// through nextWatch, which returns the next state and what to do (alerts, runbooks). No I/O here.
//
//   main not UP (and not in an operator's maintenance) for downForMs while sub is UP → failover
//   (once: not again while the failover is on record, while it runs, or after it failed until main
//   has been seen UP again) · failed over + main answers its checks → "waiting for failback" ·
//   --auto-failback: main answered for settleMs → failback (once per return of main).
// Each alert fires on a transition only: a state that persists alerts once.

/** How main looks in HAProxy, reduced over its backends. */
export type MainState = 'up' | 'maint' | 'down';

export interface Observation {
  kind: 'observation';
  /** HAProxy's stats socket answered over SSH. */
  haproxy: boolean;
  /** Why HAProxy could not be read (haproxy false). */
  error?: string;
  /** Main's status per backend (`{write: 'UP', sftp: 'UP'}`), from `show stat`. */
  main?: Record<string, string>;
  /** Sub's status per backend. */
  sub?: Record<string, string>;
  /**
   * Main answers its health check from the HAProxy node (SSH banner on its SFTP port). Probed only
   * when it matters (main in MAINT, or a failover on record); absent otherwise.
   */
  mainAnswers?: boolean;
  /** How long HAProxy has had main in its current non-UP status (lastchg, ms), when it is not UP. */
  mainOutForMs?: number;
  /** A completed failover is on record on the HAProxy node (/var/lib/wharf/failover.json, phase done). */
  failedOver?: boolean;
  /**
   * A failover record in phase `started`: one running now (a planned one keeps main alive and in
   * MAINT: left alone) or one interrupted (main dead: resumed like any outage).
   */
  failoverIncomplete?: boolean;
}

export interface RunbookOutcome {
  kind: 'runbook';
  runbook: 'failover' | 'failback';
  ok: boolean;
  error?: string;
}

export type WatchInput = Observation | RunbookOutcome;

export type AlertKind =
  | 'haproxy-unreachable'
  | 'haproxy-recovered'
  | 'main-down'
  | 'failover-done'
  | 'failover-failed'
  | 'main-back-waiting'
  | 'main-in-rotation'
  | 'failback-done'
  | 'failback-failed';

export interface Alert {
  kind: 'alert';
  alert: AlertKind;
  /** One line for a human (chat message, mail subject). */
  text: string;
}

export interface RunDecision {
  kind: 'run';
  runbook: 'failover' | 'failback';
  options: Record<string, unknown>;
  why: string;
}

export type Decision = Alert | RunDecision;

export interface WatchConfig {
  downForMs: number;
  autoFailback: boolean;
  settleMs: number;
  /** Node names, for the alert texts. */
  main: string;
  sub: string;
}

export interface WatchState {
  /** Last known HAProxy reachability (undefined before the first poll). */
  haproxy?: boolean;
  /** Main seen not UP (outside an operator's maintenance, no failover on record) since, epoch ms. */
  downSince?: number;
  /** "main down" alerted for the current outage. */
  downAlerted: boolean;
  /** A failover decision was made and its result is not in yet. */
  failoverRunning: boolean;
  /** The failover of the current outage failed: not retried until main is seen UP again. */
  failoverFailed: boolean;
  /** The last observation showed a failover on record. */
  failedOver: boolean;
  /** Failed over and main answers its checks since, epoch ms. */
  backSince?: number;
  /** "waiting for failback" alerted for this return of main. */
  backAlerted: boolean;
  failbackRunning: boolean;
  /** An automatic failback was tried for this return of main (not retried until main leaves again). */
  failbackTried: boolean;
}

export const initialWatchState = (): WatchState => ({
  downAlerted: false,
  failoverRunning: false,
  failoverFailed: false,
  failedOver: false,
  backAlerted: false,
  failbackRunning: false,
  failbackTried: false,
});

/**
 * Reduce main's per-backend statuses: up (every backend UP…), maint (any MAINT or DRAIN: an
 * administrative state), else down.
 */
export function mainStateOf(statuses: Record<string, string> | undefined): MainState {
  const v = Object.values(statuses ?? {});
  if (v.length && v.every((s) => s.startsWith('UP'))) return 'up';
  if (v.some((s) => s.startsWith('MAINT') || s.startsWith('DRAIN'))) return 'maint';
  return 'down';
}

/** Sub serves: UP in at least one of its backends. */
export const subUp = (statuses: Record<string, string> | undefined): boolean =>
  Object.values(statuses ?? {}).some((s) => s.startsWith('UP'));

const fmt = (r: Record<string, string> | undefined) =>
  Object.entries(r ?? {})
    .map(([b, s]) => `${b} ${s}`)
    .join(', ') || 'absent';

export function nextWatch(
  prev: WatchState,
  input: WatchInput,
  now: number,
  c: WatchConfig,
): { state: WatchState; decisions: Decision[] } {
  const s: WatchState = { ...prev };
  const out: Decision[] = [];
  const alert = (a: AlertKind, text: string) => out.push({ kind: 'alert', alert: a, text });

  if (input.kind === 'runbook') {
    if (input.runbook === 'failover') {
      s.failoverRunning = false;
      if (input.ok) {
        s.failedOver = true;
        alert('failover-done', `failover done: ${c.sub} serves writes, ${c.main} stays out until failback`);
      } else {
        s.failoverFailed = true;
        alert('failover-failed', `failover FAILED: ${input.error ?? 'unknown error'}`);
      }
    } else {
      s.failbackRunning = false;
      if (input.ok) alert('failback-done', `failback done: ${c.main} reconciled and back in rotation`);
      else alert('failback-failed', `failback FAILED: ${input.error ?? 'unknown error'}`);
    }
    return { state: s, decisions: out };
  }

  // HAProxy not answering: its own transition; nothing else can be judged (no failover blind).
  if (!input.haproxy) {
    if (prev.haproxy !== false)
      alert(
        'haproxy-unreachable',
        `haproxy unreachable: ${input.error ?? 'no answer from its stats socket'}`,
      );
    s.haproxy = false;
    return { state: s, decisions: out };
  }
  if (prev.haproxy === false) alert('haproxy-recovered', 'haproxy answers again');
  s.haproxy = true;

  const main = mainStateOf(input.main);
  const answers = Boolean(input.mainAnswers);
  const failedOver = Boolean(input.failedOver);

  // Back in rotation: main UP with no failover on record, after an outage or a failover.
  if (main === 'up' && !failedOver) {
    if (prev.downAlerted || prev.failedOver || prev.backAlerted || prev.failoverFailed)
      alert('main-in-rotation', `${c.main} back in rotation (${fmt(input.main)})`);
    s.downSince = undefined;
    s.downAlerted = false;
    s.failoverFailed = false;
    s.failedOver = false;
    s.backSince = undefined;
    s.backAlerted = false;
    s.failbackTried = false;
    return { state: s, decisions: out };
  }

  if (failedOver) {
    s.failedOver = true;
    s.downSince = undefined;
    if (answers) {
      s.backSince ??= now;
      if (!s.backAlerted) {
        s.backAlerted = true;
        alert(
          'main-back-waiting',
          `${c.main} back (answers its checks) and waiting for failback (${fmt(input.main)})` +
            (c.autoFailback ? `; automatic failback after ${c.settleMs / 1000} s` : ''),
        );
      }
      if (
        c.autoFailback &&
        !s.failbackRunning &&
        !s.failbackTried &&
        !s.failoverRunning &&
        now - s.backSince >= c.settleMs
      ) {
        s.failbackRunning = true;
        s.failbackTried = true;
        out.push({
          kind: 'run',
          runbook: 'failback',
          options: {},
          why: `${c.main} has answered its checks for ${Math.round((now - s.backSince) / 1000)} s (--auto-failback, settle ${c.settleMs / 1000} s)`,
        });
      }
    } else {
      // main left again: a later return alerts (and may fail back) again
      s.backSince = undefined;
      s.backAlerted = false;
      s.failbackTried = false;
    }
    return { state: s, decisions: out };
  }

  // Not failed over, main not UP. An operator's maintenance (MAINT while main still answers) is
  // left alone; MAINT of a main that does not answer is an outage like DOWN.
  if (main === 'maint' && answers) {
    s.downSince = undefined;
    return { state: s, decisions: out };
  }
  // the outage started when HAProxy changed main's status (lastchg), not when watch first saw it
  s.downSince ??= now - Math.max(0, input.mainOutForMs ?? 0);
  const downMs = now - s.downSince;
  if (downMs < c.downForMs || s.failoverRunning) return { state: s, decisions: out };
  const sub = subUp(input.sub);
  if (!s.downAlerted) {
    s.downAlerted = true;
    alert(
      'main-down',
      `${c.main} down for ${Math.round(downMs / 1000)} s (${fmt(input.main)}); ${c.sub}: ${fmt(input.sub)}` +
        (input.failoverIncomplete ? '; an incomplete failover is on record' : '') +
        (s.failoverFailed ? '' : sub ? ' → failover --unplanned' : ` → no failover: ${c.sub} is not UP`),
    );
  }
  if (sub && !s.failoverFailed) {
    s.failoverRunning = true;
    out.push({
      kind: 'run',
      runbook: 'failover',
      options: { unplanned: true },
      why: `${c.main} not UP for ${Math.round(downMs / 1000)} s (≥ --down-for ${c.downForMs / 1000} s) and ${c.sub} is UP`,
    });
  }
  return { state: s, decisions: out };
}
