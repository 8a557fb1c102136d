// Reading the report's input files: JSON, told apart by shape (a drill says kind "drill"; the bench
// has rows[]; a scenario run has results[]), validated with the field named in every problem.
import { readFileSync } from 'node:fs';
import { InputError } from '../core/errors.ts';
import { formatIssue } from '../topology/load.ts';
import { BenchSchema, DrillSchema, ScenarioRunSchema, type ReportInput } from './types.ts';

/** Which kind of result a parsed document is (undefined: none of them). */
export function kindOf(doc: unknown): ReportInput['kind'] | undefined {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return undefined;
  const o = doc as Record<string, unknown>;
  if (o.kind === 'drill') return 'drill';
  if (o.kind === 'bench' || Array.isArray(o.rows)) return 'bench';
  if (o.kind === 'scenarios' || Array.isArray(o.results)) return 'scenarios';
  return undefined;
}

/** A parsed document as a report input; problems name the file and field. */
export function reportInputFrom(doc: unknown, file: string): ReportInput {
  const kind = kindOf(doc);
  if (!kind)
    throw new InputError(
      `${file}: not a scenario run, drill or bench result (expected results[], kind "drill" or rows[])`,
    );
  const schema = kind === 'drill' ? DrillSchema : kind === 'bench' ? BenchSchema : ScenarioRunSchema;
  const res = schema.safeParse(doc, { reportInput: true });
  if (!res.success) {
    const problems = res.error.issues.flatMap((i) => formatIssue(i).split('\n')).map((m) => `${file}: ${m}`);
    throw new InputError(problems.join('\n'), problems);
  }
  return { kind, file, data: res.data } as ReportInput;
}

export function readReportInput(file: string): ReportInput {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new InputError(`${file}: cannot read: ${(e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new InputError(`${file}: not JSON: ${(e as Error).message}`);
  }
  return reportInputFrom(doc, file);
}
