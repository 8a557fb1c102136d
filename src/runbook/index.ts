// The runbook engine: resources → observe → plan → apply, with preflight, lock, journal, progress.
export * from './resources.ts';
export {
  observeHost,
  observeHostEach,
  bulkObserveScript,
  parseBulkObservation,
  bulkObservable,
  observeSnippet,
  parseObservation,
  pendingMarker,
  DEFAULT_STATE_DIR,
  type Observation,
} from './observe.ts';
export { unifiedDiff, diffLines, splitLines } from './diff.ts';
export {
  plan,
  planHost,
  formatPlan,
  planChangeCount,
  changeSummary,
  type Plan,
  type Change,
  type ChangeKind,
  type ObservedState,
} from './plan.ts';
export {
  applyPlan,
  applyHost,
  ApplyError,
  unitCommand,
  type ApplyOptions,
  type HealthHook,
  type HostResult,
} from './apply.ts';
export {
  preflight,
  preflightHost,
  PreflightError,
  parseOsRelease,
  parseDf,
  type PreflightOptions,
  type PreflightResult,
} from './preflight.ts';
export { acquireLock, pidAlive, type StackLock, type LockInfo } from './lock.ts';
export { Journal, whoAmI, type JournalEntry } from './journal.ts';
export {
  PlainReporter,
  TtyReporter,
  MemoryReporter,
  defaultReporter,
  isInteractive,
  type Reporter,
} from './progress.ts';
export { runRunbook, secretsOf, jsonSummary, type RunOptions, type RunSummary } from './run.ts';
export {
  executeSteps,
  runStepPlan,
  formatSteps,
  stepsJson,
  stepSummary,
  planChanges,
  type Step,
  type StepPlan,
  type StepSummary,
  type StepResult,
  type UndoSpec,
  type Guard,
} from './steps.ts';
export {
  defineRunbook,
  registerRunbook,
  getRunbook,
  listRunbooks,
  runbookNames,
  parseRunbookOptions,
  type Runbook,
  type RunbookContext,
  type RunbookResult,
} from './registry.ts';
export { booleanOption, durationOption, optionFlags } from './options.ts';
export { resourceSteps, runResourceRunbook } from './resource-runbook.ts';
