// A scenario: bring the lab to a known state → act → check invariants → record metrics.

/** A bound a metric should stay within (shown next to it in the report). */
export interface Target {
  op: '<=' | '>=';
  value: number;
}

export interface Metric {
  name: string;
  value: number;
  unit: string;
  target?: Target;
}

export interface CheckResult {
  scenario: string;
  name: string;
  ok: boolean;
  /** Measured numbers and why it failed, shown in TAP/JUnit. */
  detail?: string;
}

/** A value over time; `t` in seconds since the scenario started (the runner converts). */
export interface Series {
  name: string;
  unit: string;
  points: { t: number; v: number }[];
}

/**
 * Something that happened at `t` (seconds since the scenario started); with `until`, a span (a
 * fault: node dead, writes paused), drawn as a band over the series.
 */
export interface TimelineEvent {
  name: string;
  t: number;
  until?: number;
  detail?: string;
}

/** A set of measurements of one quantity (e.g. per-file replication lag), for a histogram/CDF. */
export interface SampleSet {
  name: string;
  unit: string;
  values: number[];
}

export interface ScenarioContext {
  /** Record one check (one TAP test point, one JUnit testcase). */
  check(name: string, ok: boolean, detail?: string): boolean;
  metric(name: string, value: number, unit: string, target?: Target): void;
  /** A time series; each point's `t` is an epoch time in ms (Date.now()). */
  series(name: string, points: { t: number; v: number }[], unit: string): void;
  /** An event at epoch ms `at`; with `until` (epoch ms) a span. */
  event(name: string, at: number, o?: { until?: number; detail?: string }): void;
  samples(name: string, values: number[], unit: string): void;
  log(message: string): void;
  signal: AbortSignal;
}

export interface Scenario {
  name: string;
  description: string;
  run(ctx: ScenarioContext): Promise<void>;
}
