// A scenario: bring the lab to a known state → act → check invariants → record metrics.

export interface Metric {
  name: string;
  value: number;
  unit: string;
}

export interface CheckResult {
  scenario: string;
  name: string;
  ok: boolean;
  /** Measured numbers and why it failed, shown in TAP/JUnit. */
  detail?: string;
}

export interface ScenarioContext {
  /** Record one check (one TAP test point, one JUnit testcase). */
  check(name: string, ok: boolean, detail?: string): boolean;
  metric(name: string, value: number, unit: string): void;
  log(message: string): void;
  signal: AbortSignal;
}

export interface Scenario {
  name: string;
  description: string;
  run(ctx: ScenarioContext): Promise<void>;
}
