// wharf validate: load the topology (+ inventory), run every check, print a short summary.
import type { Command } from 'commander';
import { cronToOnCalendar } from '../../topology/cron.ts';
import { type Inputs, type InputOptions, inventoryOption, loadInputs, topologyOption } from '../inputs.ts';
import { type Io, printJson, printLines } from '../io.ts';

interface ValidateOptions extends InputOptions {
  json?: boolean;
}

export interface ValidateSummary {
  ok: true;
  topologyFile: string;
  inventoryFile: string | null;
  name: string;
  nodes: Record<
    string,
    { kind: string; role?: string; labOnly: boolean; addresses: Record<string, string | undefined> }
  >;
  frontends: Record<
    string,
    {
      port: number;
      backend: string;
      servers: { node: string; backup: boolean }[];
      stickOnSource: boolean;
      readOnly: boolean;
    }
  >;
  replication: {
    lsyncd: { from: string; to: string; delaySeconds: number };
    backup: { from: string; to: string; schedule: string; onCalendar: string; retention: number };
  };
  notifications: { on: string; webhook: string | null; smtp: string | null };
}

export function summarize({ topologyFile, inventoryFile, topology: t, inventory }: Inputs): ValidateSummary {
  const nodes: ValidateSummary['nodes'] = {};
  for (const n of Object.values(t.nodes)) {
    nodes[n.name] = {
      kind: n.kind,
      ...(n.role ? { role: n.role } : {}),
      labOnly: n.labOnly,
      addresses: { ...(inventory.hosts[n.name]?.addresses ?? {}) },
    };
  }
  const frontends: ValidateSummary['frontends'] = {};
  for (const [name, f] of Object.entries(t.haproxy.frontends)) {
    const b = t.haproxy.backends[f.backend]!;
    frontends[name] = {
      port: f.port,
      backend: f.backend,
      servers: b.servers.map((s) => ({ node: s.node, backup: s.backup })),
      stickOnSource: b.stickOnSource,
      readOnly: b.readOnly,
    };
  }
  const { lsyncd, backup } = t.replication;
  const { webhook, smtp } = t.notifications;
  return {
    ok: true,
    topologyFile,
    inventoryFile,
    name: t.name,
    nodes,
    frontends,
    replication: {
      lsyncd: { from: lsyncd.from, to: lsyncd.to, delaySeconds: lsyncd.delay },
      backup: {
        from: backup.from,
        to: backup.to,
        schedule: backup.schedule,
        onCalendar: cronToOnCalendar(backup.schedule),
        retention: backup.retention,
      },
    },
    notifications: {
      on: t.notifications.on,
      webhook: webhook.enabled ? `${webhook.node ?? webhook.url}:${webhook.port}${webhook.path}` : null,
      smtp: smtp.enabled ? `${smtp.node ?? smtp.host}:${smtp.port}` : null,
    },
  };
}

export function summaryLines(s: ValidateSummary): string[] {
  const node = (name: string, n: ValidateSummary['nodes'][string]) =>
    `  ${name.padEnd(12)} ${`${n.kind}${n.role ? ` (${n.role})` : ''}`.padEnd(14)} ${Object.entries(
      n.addresses,
    )
      .map(([net, a]) => `${net} ${a}`)
      .join(', ')}${n.labOnly ? '  [lab only]' : ''}`;
  const fe = (name: string, f: ValidateSummary['frontends'][string]) =>
    `  ${name.padEnd(8)} :${String(f.port).padEnd(5)} → ${f.backend}: ${f.servers
      .map((s) => (s.backup ? `${s.node} (backup)` : s.node))
      .join(', ')}${f.stickOnSource ? ' · stick on src' : ''}${f.readOnly ? ' · read-only' : ''}`;
  const r = s.replication;
  return [
    `${s.topologyFile}: ok (stack "${s.name}")`,
    `inventory: ${s.inventoryFile ?? 'lab addressing plan (no -i given)'}`,
    `nodes (${Object.keys(s.nodes).length}):`,
    ...Object.entries(s.nodes).map(([k, v]) => node(k, v)),
    `frontends (${Object.keys(s.frontends).length}):`,
    ...Object.entries(s.frontends).map(([k, v]) => fe(k, v)),
    `replication: lsyncd ${r.lsyncd.from} → ${r.lsyncd.to} (delay ${r.lsyncd.delaySeconds}s); ` +
      `backup ${r.backup.from} → ${r.backup.to} at "${r.backup.schedule}" (OnCalendar=${r.backup.onCalendar}), keep ${r.backup.retention}`,
    `notices on ${s.notifications.on}: webhook ${s.notifications.webhook ?? 'off'}, smtp ${s.notifications.smtp ?? 'off'}`,
  ];
}

export function registerValidate(program: Command, io: Io): void {
  const cmd = program
    .command('validate')
    .description('check a topology (and an inventory): schema, references, ports, subnets, schedules')
    .option('--json', 'print the summary as JSON');
  topologyOption(cmd);
  inventoryOption(cmd);
  cmd.action((opts: ValidateOptions) => {
    const summary = summarize(loadInputs(opts));
    if (opts.json) printJson(io, summary);
    else printLines(io, summaryLines(summary));
  });
}
