// The OPNsense plan: desired objects (wharf's own) vs what the box's search grids return → the
// HTTP calls that make the box match, in an order the box accepts (aliases before the rules that
// name them; rules gone before the aliases they named). Ownership: only objects whose description
// starts with OWNER_PREFIX are changed or deleted; anything else is left alone, and a desired alias
// whose name is taken by someone else's alias is an error. Pure.
import { InputError } from '../core/errors.ts';
import { apiPath, hasDNatApi, parseVersion, savepointSupport } from './paths.ts';
import {
  OWNER_PREFIX,
  type CommandStyle,
  type GridRow,
  type HttpCall,
  type OpnAlias,
  type OpnDesired,
  type OpnDNatRule,
  type OpnFilterRule,
  type OpnObserved,
} from './types.ts';

export type OpnKind = 'alias' | 'rule' | 'nat';

export interface OpnChange {
  kind: OpnKind;
  action: 'add' | 'set' | 'del';
  /** Alias name, or the rule's description. */
  key: string;
  uuid?: string;
  /** For set: the fields that differ (observed → desired). */
  fields?: Record<string, { from: string; to: string }>;
}

export interface OpnPlan {
  version: string;
  /** What the box's filter savepoint can do (see savepointSupport). */
  savepoint: 'yes' | 'broken' | 'removed';
  changes: OpnChange[];
  /** The object calls, then reconfigure/apply. Empty when nothing changes. */
  calls: HttpCall[];
  warnings: string[];
}

export interface PlanOptions {
  style: CommandStyle;
}

export const isOwned = (description: unknown): boolean =>
  typeof description === 'string' && description.startsWith(OWNER_PREFIX);

const str = (v: unknown): string => (v === undefined || v === null ? '' : String(v));

/** The managed fields of a filter rule, flat. */
export function flatRule(r: OpnFilterRule): Record<string, string> {
  return { ...r } as unknown as Record<string, string>;
}

/** The managed fields of a port forward, flat as the search grid shows them (`destination.port`). */
export function flatNat(r: OpnDNatRule): Record<string, string> {
  const { source, destination, ...rest } = r;
  const out: Record<string, string> = { ...(rest as unknown as Record<string, string>) };
  for (const [k, v] of Object.entries(source)) out[`source.${k}`] = v;
  for (const [k, v] of Object.entries(destination)) out[`destination.${k}`] = v;
  return out;
}

/** Alias content compared as a set (the grid may join it with commas, the API posts newlines). */
export const aliasEntries = (content: unknown): string[] =>
  str(content)
    .split(/[\n,]/)
    .map((x) => x.trim())
    .filter(Boolean)
    .sort();

export function flatAlias(a: OpnAlias): Record<string, string> {
  return { ...a, content: aliasEntries(a.content).join('\n') } as unknown as Record<string, string>;
}

function diffFields(
  want: Record<string, string>,
  row: GridRow,
  norm: (k: string, v: unknown) => string = (_k, v) => str(v),
): Record<string, { from: string; to: string }> {
  const out: Record<string, { from: string; to: string }> = {};
  for (const [k, to] of Object.entries(want)) {
    const from = norm(k, row[k]);
    if (from !== to) out[k] = { from, to };
  }
  return out;
}

/** Rows → wharf's own, by key; two owned rows with one key: the later ones are deleted. */
function ownedByKey(rows: GridRow[], keyOf: (r: GridRow) => string, owned: (r: GridRow) => boolean) {
  const byKey = new Map<string, GridRow>();
  const dupes: GridRow[] = [];
  for (const r of rows) {
    if (!owned(r)) continue;
    const k = keyOf(r);
    if (byKey.has(k)) dupes.push(r);
    else byKey.set(k, r);
  }
  return { byKey, dupes };
}

function uniqueKeys<T>(items: T[], keyOf: (x: T) => string, what: string): void {
  const seen = new Set<string>();
  items.forEach((x, i) => {
    const k = keyOf(x);
    if (!k.startsWith(OWNER_PREFIX) && what !== 'alias')
      throw new InputError(`opnsense: ${what} ${i} "${k}": description must start with "${OWNER_PREFIX}"`);
    if (seen.has(k))
      throw new InputError(`opnsense: two ${what}s are both "${k}": descriptions must be unique`);
    seen.add(k);
  });
}

export function planOpnsense(desired: OpnDesired, observed: OpnObserved, o: PlanOptions): OpnPlan {
  const v = parseVersion(observed.version);
  if (!v) throw new InputError(`opnsense: cannot read the box's version from "${observed.version}"`);
  const warnings: string[] = [];
  if (desired.nat.length && (!hasDNatApi(v) || observed.nat === null))
    throw new InputError(
      `opnsense: the box runs OPNsense ${v.text}; port forwards (firewall NAT, ${desired.nat.length} rule(s)) ` +
        `need the /api/firewall/d_nat API of OPNsense 26.1 or later`,
    );
  uniqueKeys(desired.rules, (r) => r.description, 'rule');
  uniqueKeys(desired.nat, (r) => r.descr, 'port forward');
  uniqueKeys(desired.aliases, (a) => a.name, 'alias');
  for (const a of desired.aliases)
    if (!isOwned(a.description))
      throw new InputError(`opnsense: alias ${a.name}: description must start with "${OWNER_PREFIX}"`);

  const P = (ctl: string, cmd: string, ...params: string[]) =>
    apiPath(o.style, 'firewall', ctl, cmd, ...params);
  const changes: OpnChange[] = [];
  const first: HttpCall[] = []; // aliases added/changed
  const middle: HttpCall[] = []; // rules and forwards
  const last: HttpCall[] = []; // aliases deleted

  // aliases, by name
  const aliasRows = new Map(observed.aliases.map((r) => [str(r.name), r]));
  for (const a of desired.aliases) {
    const row = aliasRows.get(a.name);
    const body = { alias: { ...a, content: aliasEntries(a.content).join('\n') } };
    if (!row) {
      changes.push({ kind: 'alias', action: 'add', key: a.name });
      first.push({ method: 'POST', path: P('alias', 'addItem'), body, why: `add alias ${a.name}` });
      continue;
    }
    if (!isOwned(row.description))
      throw new InputError(
        `opnsense: alias ${a.name} exists on the box and is not wharf's (description ${JSON.stringify(str(row.description))}); ` +
          `wharf never changes it: rename wharf's alias or remove the box's`,
      );
    const fields = diffFields(flatAlias(a), row, (k, val) =>
      k === 'content' ? aliasEntries(val).join('\n') : str(val),
    );
    if (Object.keys(fields).length) {
      changes.push({ kind: 'alias', action: 'set', key: a.name, uuid: row.uuid, fields });
      first.push({
        method: 'POST',
        path: P('alias', 'setItem', row.uuid),
        body,
        why: `change alias ${a.name}`,
      });
    }
  }
  const wantAlias = new Set(desired.aliases.map((a) => a.name));
  for (const row of observed.aliases) {
    if (!isOwned(row.description) || wantAlias.has(str(row.name))) continue;
    changes.push({ kind: 'alias', action: 'del', key: str(row.name), uuid: row.uuid });
    last.push({
      method: 'POST',
      path: P('alias', 'delItem', row.uuid),
      why: `delete alias ${str(row.name)}`,
    });
  }

  // filter rules and port forwards, by description
  const objects = (
    kind: 'rule' | 'nat',
    ctl: string,
    want: { key: string; flat: Record<string, string>; body: Record<string, unknown> }[],
    rows: GridRow[],
    descField: string,
  ) => {
    const { byKey, dupes } = ownedByKey(
      rows,
      (r) => str(r[descField]),
      (r) => isOwned(r[descField]),
    );
    for (const w of want) {
      const row = byKey.get(w.key);
      if (!row) {
        changes.push({ kind, action: 'add', key: w.key });
        middle.push({ method: 'POST', path: P(ctl, 'addRule'), body: w.body, why: `add ${kind} "${w.key}"` });
        continue;
      }
      byKey.delete(w.key);
      const fields = diffFields(w.flat, row);
      if (Object.keys(fields).length) {
        changes.push({ kind, action: 'set', key: w.key, uuid: row.uuid, fields });
        middle.push({
          method: 'POST',
          path: P(ctl, 'setRule', row.uuid),
          body: w.body,
          why: `change ${kind} "${w.key}" (${Object.keys(fields).join(', ')})`,
        });
      }
    }
    for (const row of [...byKey.values(), ...dupes]) {
      const key = str(row[descField]);
      changes.push({ kind, action: 'del', key, uuid: row.uuid });
      middle.push({ method: 'POST', path: P(ctl, 'delRule', row.uuid), why: `delete ${kind} "${key}"` });
    }
  };
  objects(
    'rule',
    'filter',
    desired.rules.map((r) => ({ key: r.description, flat: flatRule(r), body: { rule: r } })),
    observed.rules,
    'description',
  );
  if (observed.nat !== null)
    objects(
      'nat',
      'd_nat',
      desired.nat.map((r) => ({ key: r.descr, flat: flatNat(r), body: { rule: r } })),
      observed.nat,
      'descr',
    );

  const calls = [...first, ...middle, ...last];
  if (calls.length) {
    if (changes.some((c) => c.kind === 'alias'))
      calls.push({ method: 'POST', path: P('alias', 'reconfigure'), why: 'load the changed aliases' });
    calls.push({
      method: 'POST',
      path: P('filter', 'apply'),
      why: 'load the changed rules and port forwards',
    });
  }
  const sp = savepointSupport(v);
  if (sp === 'broken')
    warnings.push(
      `OPNsense ${v.text}: the filter savepoint does not roll back (core issue #10721); only wharf's own revert protects this change`,
    );
  if (sp === 'removed')
    warnings.push(
      `OPNsense ${v.text}: the filter savepoint is gone (core PR #10411); only wharf's own revert protects this change`,
    );
  return { version: v.text, savepoint: sp, changes, calls, warnings };
}

/** Observed wharf objects back as desired objects: what a revert re-applies. */
export function ownedAsDesired(observed: OpnObserved): OpnDesired {
  const pick = <T>(row: GridRow, keys: readonly string[]): T =>
    Object.fromEntries(keys.map((k) => [k, str(row[k])])) as T;
  const ruleKeys = [
    'enabled',
    'action',
    'quick',
    'interface',
    'direction',
    'ipprotocol',
    'protocol',
    'source_net',
    'source_not',
    'source_port',
    'destination_net',
    'destination_not',
    'destination_port',
    'log',
    'sequence',
    'description',
  ] as const;
  const natKeys = [
    'disabled',
    'interface',
    'ipprotocol',
    'protocol',
    'target',
    'local-port',
    'log',
    'sequence',
    'pass',
    'descr',
  ] as const;
  return {
    aliases: observed.aliases
      .filter((r) => isOwned(r.description))
      .map((r) => ({
        ...pick<OpnAlias>(r, ['enabled', 'name', 'type', 'description']),
        content: aliasEntries(r.content).join('\n'),
      })),
    rules: observed.rules.filter((r) => isOwned(r.description)).map((r) => pick<OpnFilterRule>(r, ruleKeys)),
    nat: (observed.nat ?? [])
      .filter((r) => isOwned(r.descr))
      .map((r) => ({
        ...pick<Omit<OpnDNatRule, 'source' | 'destination'>>(r, natKeys),
        source: {
          network: str(r['source.network']),
          port: str(r['source.port']),
          not: str(r['source.not']) as '0' | '1',
        },
        destination: {
          network: str(r['destination.network']),
          port: str(r['destination.port']),
          not: str(r['destination.not']) as '0' | '1',
        },
      })),
  };
}

/** The plan as text for --diff: one line per call, the body's fields under it (never a secret). */
export function formatOpnPlan(p: OpnPlan, host: string, o: { bodies?: boolean } = { bodies: true }): string {
  const out = [`${host}: OPNsense ${p.version} (API)`];
  for (const w of p.warnings) out.push(`  ! ${w}`);
  if (!p.calls.length) out.push('  no change');
  for (const c of p.calls) {
    out.push(`  ${c.method} ${c.path}    # ${c.why}`);
    if (c.body && o.bodies)
      out.push(
        ...JSON.stringify(c.body, null, 2)
          .split('\n')
          .map((l) => `      ${l}`),
      );
  }
  return out.join('\n');
}
