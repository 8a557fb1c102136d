// The audit journal: one JSON line per event of a run, appended synchronously (a run killed with
// -9 keeps every line written before), in `<runsDir>/<stack>/<timestamp>-<runbook>.jsonl`.
import { appendFileSync, mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { mask } from '../transport/mask.ts';

export type JournalResult = 'started' | 'ok' | 'failed' | 'planned' | 'rolled-back' | 'skipped';

export interface JournalEntry {
  ts: string;
  runId: string;
  /** Who: the login user, and the user behind sudo when there is one (`alice (sudo from bob)`). */
  user: string;
  runbook: string;
  /** The step's id in the plan (`--check` shows the same ids). */
  id?: string;
  /** A node name, or `*` for run-wide steps (lock, preflight, plan, summary). */
  host: string;
  /** `run`, `preflight`, `observe`, `plan`, `apply`, `rollback`, `health`, `summary`. */
  step: string;
  change?: { id: string; kind: string; why: string };
  result: JournalResult;
  durationMs: number;
  error?: string;
  detail?: unknown;
}

export function whoAmI(env: NodeJS.ProcessEnv = process.env): string {
  let name: string;
  try {
    name = userInfo().username;
  } catch {
    name = env.USER ?? String(process.getuid?.() ?? '?');
  }
  return env.SUDO_USER && env.SUDO_USER !== name ? `${name} (sudo from ${env.SUDO_USER})` : name;
}

/** File-name timestamp: 2026-11-25T15-13-28Z (sortable, no colons). */
export function fileStamp(d: Date): string {
  return d
    .toISOString()
    .replace(/\.\d+Z$/, 'Z')
    .replace(/:/g, '-');
}

export class Journal {
  readonly runId: string;
  readonly path: string;
  readonly user: string;
  constructor(
    runsDir: string,
    readonly stack: string,
    readonly runbook: string,
    private readonly secrets: readonly string[] = [],
    now = new Date(),
  ) {
    this.runId = `${fileStamp(now)}-${randomBytes(3).toString('hex')}`;
    const dir = join(runsDir, stack);
    mkdirSync(dir, { recursive: true });
    this.path = join(dir, `${fileStamp(now)}-${runbook}.jsonl`);
    this.user = whoAmI();
  }

  write(e: Omit<JournalEntry, 'ts' | 'runId' | 'user' | 'runbook'>): JournalEntry {
    const entry: JournalEntry = {
      ts: new Date().toISOString(),
      runId: this.runId,
      user: this.user,
      runbook: this.runbook,
      ...e,
    };
    const line = JSON.stringify(entry, (_k, v: unknown) =>
      typeof v === 'string' ? mask(v, this.secrets) : v,
    );
    appendFileSync(this.path, line + '\n');
    return entry;
  }
}

/**
 * Ctrl-C / SIGTERM during a run: journal it, free the stack lock and exit 130/143. Every change a
 * run makes is re-runnable (atomic writes, idempotent steps), so the next run converges; kill -9
 * leaves a stale lock that the next run takes over (pid gone). Returns the function that removes
 * the handlers when the run ends.
 */
export function onInterrupt(journal: Journal, releaseLock: () => void, startedAt: number): () => void {
  const onSignal = (sig: NodeJS.Signals) => {
    journal.write({
      host: '*',
      step: 'run',
      result: 'failed',
      durationMs: Date.now() - startedAt,
      error: `interrupted by ${sig}`,
    });
    releaseLock();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}
