// The runbooks `wharf run <name>` knows. Each is a small program over the engine in src/runbook.
import { install } from './install.ts';
import { configure } from './configure.ts';
import { verify } from './verify.ts';
import { failover } from './failover.ts';
import { failback } from './failback.ts';
import type { Runbook } from './runbook.ts';

export const RUNBOOKS: Record<string, Runbook> = { install, configure, verify, failover, failback };
export type { Runbook, RunbookContext, RunbookResult } from './runbook.ts';
