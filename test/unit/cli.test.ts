// The wharf CLI: commands run in-process through runCli (fast), plus a few runs of the real
// binary (`node bin/wharf.mjs`, ~0.5 s each for tsx) for exit codes and messages end to end.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CommanderError } from 'commander';
import { describe, expect, it } from 'vitest';
import { InputError, RunError } from '../../src/core/errors.ts';
import { reportOf } from '../../src/cli/exit.ts';
import { runCli } from '../../src/cli/program.ts';
import { renderStack } from '../../src/render/index.ts';
import { labInventory } from '../../src/topology/inventory.ts';
import { loadTopology, parseYaml } from '../../src/topology/load.ts';

const BIN = resolve('bin/wharf.mjs');

async function wharf(...argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, { out: (s) => void (stdout += s), err: (s) => void (stderr += s) });
  return { code, stdout, stderr };
}

function tmp(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `wharf-${prefix}-`));
}

describe('exit codes (one mapping: exit.ts)', () => {
  it('maps errors: InputError 2, RunError 1, anything else 1, commander usage 2, help 0', () => {
    expect(reportOf(new InputError('a\nb', ['a', 'b']))).toEqual({ exitCode: 2, problems: ['a', 'b'] });
    expect(reportOf(new RunError('haproxy -c failed'))).toEqual({
      exitCode: 1,
      problems: ['haproxy -c failed'],
    });
    expect(reportOf(new TypeError('boom')).exitCode).toBe(1);
    expect(reportOf(new CommanderError(1, 'commander.unknownOption', 'x')).exitCode).toBe(2);
    expect(reportOf(new CommanderError(0, 'commander.helpDisplayed', 'x')).exitCode).toBe(0);
    expect(reportOf(new CommanderError(1, 'commander.help', 'x')).exitCode).toBe(2);
  });

  it('--help on every command exits 0 and shows its usage', async () => {
    for (const cmd of ['validate', 'render', 'graph', 'schema', 'demo']) {
      const r = await wharf(cmd, '--help');
      expect(r.code, cmd).toBe(0);
      expect(r.stdout).toContain(`Usage: wharf ${cmd}`);
    }
    const top = await wharf('--help');
    expect(top.code).toBe(0);
    expect(top.stdout).toContain('Exit codes: 0 ok, 1 failure, 2 bad input');
  });

  it.each([
    [['validate', '--bogus'], "error: unknown option '--bogus'"],
    [
      ['graph', '--format', 'svg'],
      "error: option '--format <format>' argument 'svg' is invalid. Allowed choices are mermaid, dot.",
    ],
    [['render'], "error: required option '-o, --out <dir>' not specified"],
    [['validate', '-c'], "error: option '-c, --config <file>' argument missing"],
    [['frobnicate'], "error: unknown command 'frobnicate'"],
    [['graph', 'extra'], "error: too many arguments for 'graph'. Expected 0 arguments but got 1."],
  ])('usage error %j → exit 2 with a clear message', async (argv, message) => {
    const r = await wharf(...argv);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stdout).toBe('');
  });

  it('no command at all → usage on stderr, exit 2', async () => {
    const r = await wharf();
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Usage: wharf');
  });
});

describe('wharf validate', () => {
  it('summarises the default stack', async () => {
    const r = await wharf('validate');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('configs/stack.yaml: ok (stack "seed")');
    expect(r.stdout).toContain('  read     :2221  → read: sftp-main, sftp-sub · stick on src · read-only');
    expect(r.stdout).toContain('OnCalendar=*-*-* *:00,15,30,45:00');
  });

  it('--json prints one JSON document with the lab or the given inventory addresses', async () => {
    const lab = JSON.parse((await wharf('validate', '--json')).stdout);
    expect(lab.ok).toBe(true);
    expect(lab.nodes['sftp-main']).toEqual({
      kind: 'sftp',
      role: 'main',
      labOnly: false,
      addresses: { lan: '10.88.3.11', mgmt: '10.88.9.11' },
    });
    expect(lab.frontends.write).toMatchObject({ port: 2222, backend: 'write' });
    const prod = await wharf('validate', '--json', '-i', 'configs/production.example.inventory.yaml');
    expect(JSON.parse(prod.stdout).nodes['haproxy-2'].addresses.dmz).toBe('192.168.102.5');
  });

  it('bad topology → every problem on stderr, exit 2, and with --json a JSON verdict on stdout', async () => {
    const dir = tmp('bad');
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'haproxy: { maxconn: 0 }\nsftp: { users: [ { name: root } ] }\n');
    const r = await wharf('validate', '-c', file);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`${file}: haproxy.maxconn: expected an integer 1..1000000, got 0\n`);
    const j = await wharf('validate', '-c', file, '--json');
    expect(j.code).toBe(2);
    expect(JSON.parse(j.stdout)).toEqual({
      ok: false,
      exitCode: 2,
      problems: [`${file}: haproxy.maxconn: expected an integer 1..1000000, got 0`],
    });
  });

  it('bad inventory → exit 2 naming the inventory file', async () => {
    const dir = tmp('inv');
    const file = join(dir, 'inv.yaml');
    writeFileSync(
      file,
      'hosts:\n  router: { ssh: { host: r1 }, addresses: { wan: 10.88.0.2, transit: 10.88.1.2 } }\n',
    );
    const r = await wharf('validate', '-i', file);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')).toContain(
      `${file}: hosts.firewall: missing (the topology has node firewall)`,
    );
  });
});

describe('wharf schema', () => {
  it('prints a JSON Schema that lists the topology fields and accepts configs/stack.yaml', async () => {
    const r = await wharf('schema');
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.stdout);
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.type).toBe('object');
    expect(schema.additionalProperties).toBe(false);
    expect(Object.keys(schema.properties)).toEqual(
      expect.arrayContaining([
        'name',
        'networks',
        'nodes',
        'router',
        'firewall',
        'haproxy',
        'sftp',
        'replication',
        'notifications',
      ]),
    );
    expect(schema.properties.haproxy.properties.frontends.additionalProperties.properties.port).toEqual({
      type: 'integer',
      minimum: 1,
      maximum: 65535,
    });
    const stack = parseYaml(readFileSync('configs/stack.yaml', 'utf8'), 'configs/stack.yaml');
    expect(validate(schema, stack)).toEqual([]);
    // …and rejects what the loader rejects at the schema level.
    expect(validate(schema, { haproxy: { frontends: { read: { port: 70000, backend: 'read' } } } })).toEqual([
      'haproxy.frontends.read.port: maximum 65535',
    ]);
    expect(validate(schema, { haproxy: { maxconnn: 3 } })).toEqual(['haproxy: unknown field maxconnn']);
    expect(validate(schema, { notifications: { on: 'sub' } })).toEqual([
      'notifications.on: not one of main,backup',
    ]);
  });
});

/** The subset of JSON Schema that `wharf schema` uses (ajv is not installed): enough to check it. */
function validate(schema: Record<string, unknown>, data: unknown, path = ''): string[] {
  const s = schema as {
    type?: string | string[];
    properties?: Record<string, Record<string, unknown>>;
    additionalProperties?: boolean | Record<string, unknown>;
    required?: string[];
    enum?: unknown[];
    anyOf?: Record<string, unknown>[];
    items?: Record<string, unknown>;
    minItems?: number;
    minLength?: number;
    minimum?: number;
    maximum?: number;
    pattern?: string;
    propertyNames?: Record<string, unknown>;
  };
  const at = path || '(root)';
  if (s.anyOf)
    return s.anyOf.some((alt) => validate(alt, data, path).length === 0)
      ? []
      : [`${at}: matches no alternative`];
  if (s.enum && !s.enum.includes(data)) return [`${at}: not one of ${s.enum.join(',')}`];
  const typeOk: Record<string, (v: unknown) => boolean> = {
    object: (v) => typeof v === 'object' && v !== null && !Array.isArray(v),
    array: Array.isArray,
    string: (v) => typeof v === 'string',
    integer: Number.isInteger,
    number: (v) => typeof v === 'number',
    boolean: (v) => typeof v === 'boolean',
    null: (v) => v === null,
  };
  // JSON Schema's `type` may list several types (zod writes a union of primitives that way)
  const types = s.type === undefined ? [] : Array.isArray(s.type) ? s.type : [s.type];
  if (types.length && !types.some((ty) => typeOk[ty]?.(data))) return [`${at}: not ${types.join(',')}`];
  const problems: string[] = [];
  if (typeof data === 'number') {
    if (s.minimum !== undefined && data < s.minimum) problems.push(`${at}: minimum ${s.minimum}`);
    if (s.maximum !== undefined && data > s.maximum) problems.push(`${at}: maximum ${s.maximum}`);
  }
  if (typeof data === 'string') {
    if (s.pattern && !new RegExp(s.pattern).test(data)) problems.push(`${at}: does not match ${s.pattern}`);
    if (s.minLength !== undefined && data.length < s.minLength) problems.push(`${at}: too short`);
  }
  if (Array.isArray(data)) {
    if (s.minItems !== undefined && data.length < s.minItems) problems.push(`${at}: too few items`);
    if (s.items) data.forEach((v, i) => problems.push(...validate(s.items!, v, `${path}.${i}`)));
  }
  if (typeOk.object!(data)) {
    const obj = data as Record<string, unknown>;
    for (const r of s.required ?? []) if (!(r in obj)) problems.push(`${at}: missing ${r}`);
    for (const [k, v] of Object.entries(obj)) {
      const p = path ? `${path}.${k}` : k;
      if (s.propertyNames) problems.push(...validate(s.propertyNames, k, p));
      if (s.properties?.[k]) problems.push(...validate(s.properties[k], v, p));
      else if (s.additionalProperties === false) problems.push(`${at}: unknown field ${k}`);
      else if (typeof s.additionalProperties === 'object')
        problems.push(...validate(s.additionalProperties, v, p));
    }
  }
  return problems;
}

describe('wharf render --out', () => {
  it('writes every node’s files under DIR/<node>/<target path> with their modes, and a manifest', async () => {
    const out = tmp('render');
    const r = await wharf('render', '--out', out, '--json');
    expect(r.code).toBe(0);
    const manifest = JSON.parse(r.stdout);
    const t = loadTopology('configs/stack.yaml');
    const expected = renderStack(t, labInventory(t));
    expect(Object.keys(manifest.nodes).sort()).toEqual(Object.keys(expected).sort());
    let files = 0;
    for (const [node, nr] of Object.entries(expected)) {
      for (const f of nr.files) {
        const target = join(out, node, f.path);
        expect(readFileSync(target, 'utf8'), target).toBe(f.content);
        expect(statSync(target).mode & 0o7777, target).toBe(f.mode);
        files++;
      }
      expect(manifest.nodes[node].files.map((f: { path: string }) => f.path)).toEqual(
        nr.files.map((f) => f.path),
      );
    }
    expect(files).toBeGreaterThan(10);
    expect(existsSync(join(out, 'haproxy-1/etc/haproxy/haproxy.cfg'))).toBe(true);
    expect(existsSync(join(out, 'sftp-main/etc/ssh/sshd_config'))).toBe(true);
    expect(JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'))).toEqual(manifest);
  });

  it('a second render replaces a node folder (no stale files) and leaves other content of DIR alone', async () => {
    const out = tmp('rerender');
    mkdirSync(join(out, 'haproxy-1/etc'), { recursive: true });
    writeFileSync(join(out, 'haproxy-1/etc/stale.cfg'), 'old');
    writeFileSync(join(out, 'NOTES.txt'), 'mine');
    const r = await wharf('render', '-o', out);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^haproxy-1 \(\d+ files?\) → /m);
    expect(existsSync(join(out, 'haproxy-1/etc/stale.cfg'))).toBe(false);
    expect(readFileSync(join(out, 'NOTES.txt'), 'utf8')).toBe('mine');
  });
});

describe('wharf demo', () => {
  it('validates, renders into --out and prints a Mermaid graph', async () => {
    const out = tmp('demo');
    const r = await wharf('demo', '--no-lab', '--out', out);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('configs/stack.yaml: ok (stack "seed")');
    expect(r.stdout).toContain(`── render → ${out}/`);
    expect(r.stdout).toMatch(/\nflowchart LR\n/);
    expect(existsSync(join(out, 'haproxy-1/etc/haproxy/haproxy.cfg'))).toBe(true);
  });
});

describe('the real binary (node bin/wharf.mjs)', () => {
  const run = (cwd: string, ...argv: string[]) =>
    spawnSync(process.execPath, [BIN, ...argv], { cwd, encoding: 'utf8', timeout: 30_000 });

  it('validate of the default stack exits 0', () => {
    const r = run(process.cwd(), 'validate');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('configs/stack.yaml: ok');
  });

  it('a port out of range: exact message and exit 2', () => {
    const dir = tmp('bin');
    mkdirSync(join(dir, 'configs'));
    writeFileSync(
      join(dir, 'configs/x.yaml'),
      'haproxy:\n  frontends:\n    read: { port: 70000, backend: read }\n',
    );
    const r = run(dir, 'validate', '-c', 'configs/x.yaml');
    expect(r.stderr).toBe(
      'configs/x.yaml: haproxy.frontends.read.port: expected an integer 1..65535, got 70000\n',
    );
    expect(r.stdout).toBe('');
    expect(r.status).toBe(2);
  });

  it('a YAML syntax error reports file:line:col and exit 2', () => {
    const dir = tmp('bin');
    writeFileSync(join(dir, 'x.yaml'), 'name: seed\nsftp:\n  port: 22\n  group: x: y\n');
    const r = run(dir, 'validate', '-c', 'x.yaml');
    expect(r.stderr).toBe(
      'x.yaml:4:10: YAML syntax error: Nested mappings are not allowed in compact mappings\n',
    );
    expect(r.status).toBe(2);
  });

  it('an unknown option exits 2 with commander’s message', () => {
    const r = run(process.cwd(), 'graph', '--format', 'png');
    expect(r.stderr).toContain("argument 'png' is invalid. Allowed choices are mermaid, dot.");
    expect(r.status).toBe(2);
  });
});

const PROD_INV = 'configs/production.example.inventory.yaml';

describe('wharf run: one sub-command per runbook, flags from its options schema', () => {
  it('run --help lists the runbooks; each runbook has its own help with its flags', async () => {
    const top = await wharf('run', '--help');
    expect(top.code).toBe(0);
    for (const n of ['install', 'configure', 'verify', 'failover', 'failback', 'restore'])
      expect(top.stdout).toContain(n);
    const fo = await wharf('run', 'failover', '--help');
    expect(fo.code).toBe(0);
    expect(fo.stdout).toContain('Usage: wharf run failover [options]');
    expect(fo.stdout).toMatch(/--unplanned\s/);
    expect(fo.stdout).toMatch(/--drain-timeout <DURATION>/);
    for (const common of ['-i, --inventory <file>', '--check', '--json', '-c, --config <file>'])
      expect(fo.stdout).toContain(common);
    // failover acts on main, sub and HAProxy together and has no file diffs: no --only, no --diff
    expect(fo.stdout).not.toMatch(/--only|--diff/);
    const cf = await wharf('run', 'configure', '--help');
    expect(cf.stdout).toContain('--diff');
    expect(cf.stdout).toContain('--only <nodes>');
    const fb = await wharf('run', 'failback', '--help');
    expect(fb.stdout).toMatch(/--force\s/);
    expect(fb.stdout).not.toContain('--unplanned');
  });

  it.each([
    [
      ['run', 'failover', '--drain-timeout', 'banana'],
      '--drain-timeout: expected a duration like 500ms, 30s, 2m, 1h, got "banana"',
    ],
    [['run', 'failback', '--unplanned'], "error: unknown option '--unplanned'"],
    [['run', 'configure', '--drain-timeout', '5s'], "error: unknown option '--drain-timeout'"],
    // flags a runbook would ignore are not accepted at all
    [['run', 'failover', '--only', 'sftp-main'], "error: unknown option '--only'"],
    [['run', 'failback', '--diff'], "error: unknown option '--diff'"],
    [['run', 'verify', '--diff'], "error: unknown option '--diff'"],
    [
      ['run', 'banana'],
      'unknown runbook "banana" (runbooks: install, configure, verify, failover, failback, restore)',
    ],
    // restore's input is checked before any host is asked: each problem names its flag
    [['run', 'restore', '--user', 'demo', '--path', 'upload/x'], '--snapshot: required'],
    [
      [
        'run',
        'restore',
        '-i',
        PROD_INV,
        '--snapshot',
        'latest',
        '--user',
        'demo',
        '--path',
        'upload/../../etc',
      ],
      `--path: "upload/../../etc" leaves the user's chroot (..)`,
    ],
    [
      ['run', 'restore', '-i', PROD_INV, '--snapshot', 'yesterday', '--user', 'nobody', '--path', 'upload'],
      '--user: unknown user "nobody" (users of the topology: demo)',
    ],
  ])('%j → exit 2 naming it', async (argv, message) => {
    const r = await wharf(...argv);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
  });

  it('a good flag passes the schema and the run goes on to read its inputs (no inventory here: exit 2 saying so)', async () => {
    const dir = tmp('run');
    const r = await wharf(
      'run',
      'failover',
      '--drain-timeout',
      '5s',
      '--unplanned',
      '-i',
      join(dir, 'none.yaml'),
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('none.yaml');
    expect(r.stderr).not.toContain('--drain-timeout');
  });

  it('a runbook file of scripts/ runs on its own, as `wharf run NAME` (shebang, executable)', () => {
    const script = resolve('scripts/failback.ts');
    expect(statSync(script).mode & 0o111).not.toBe(0);
    expect(readFileSync(script, 'utf8').split('\n')[0]).toBe('#!/usr/bin/env -S npx tsx');
    const r = spawnSync(script, ['--unplanned'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toContain("error: unknown option '--unplanned'");
    expect(r.status).toBe(2);
    const h = spawnSync(script, ['--help'], { encoding: 'utf8', timeout: 60_000 });
    expect(h.stdout).toContain('Usage: wharf run failback [options]');
    expect(h.status).toBe(0);
  });
});

describe('wharf drill: bad flags are refused before the lab is touched', () => {
  it.each([
    [['--faults', 'kill,meteor'], /--faults: unknown "meteor"/],
    [['--seed', '-1'], /--seed: expected an integer/],
    [['--clients', '65'], /--clients: expected 1…64/],
    [['--duration', 'soon'], /--duration/],
    [['--sabotage', 'boom'], /--sabotage: unknown "boom"/],
    [['--replay', '/nonexistent/drill'], /--replay: no \/nonexistent\/drill/],
  ])('%s → exit 2 naming the flag', async (args, message) => {
    // the seed topology's lab is not up here: a flag error must come first (exit 2, not "lab not up")
    const r = await wharf('drill', ...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('a broken schedule file names the file and the field', async () => {
    const dir = tmp('wharf-drill-');
    const f = join(dir, 'schedule.json');
    writeFileSync(
      f,
      JSON.stringify({
        version: 1,
        stack: 'seed',
        seed: 1,
        durationMs: 1000,
        faultKinds: [],
        targets: [],
        workload: { clients: 1, sizeSeed: 1, pauseMs: 0 },
        faults: [{ id: 'f01', kind: 'meteor', targets: ['x'], at: 0, holdMs: 1, params: {} }],
      }),
    );
    const r = await wharf('drill', '--replay', dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${f}: faults.0.kind`);
  });
});
