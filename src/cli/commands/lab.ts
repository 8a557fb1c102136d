// wharf lab up | status | ssh | graph | notices | down: the Docker lab (see src/lab/).
import { spawnSync } from 'node:child_process';
import { type Command, InvalidArgumentError } from 'commander';
import { InputError, RunError } from '../../core/errors.ts';
import { loadTopology } from '../../topology/load.ts';
import { endpointLines, labDown, labStatus, labUp } from '../../lab/lab.ts';
import { provisionLab } from '../../lab/provision.ts';
import { labGraph, labPlan } from '../../lab/plan.ts';
import { readState, sshNames } from '../../lab/state.ts';
import { $ } from '../../exec/index.ts';
import { topologyOption } from '../inputs.ts';
import { type Io, printJson, processIo } from '../io.ts';

const portArg = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError('expected a port 1..65535');
  return n;
};

export function registerLabCommands(program: Command, io: Io = processIo): void {
  const lab = program.command('lab').description('the Docker lab: a chain of real hosts reached over SSH');
  const log = (l: string) => io.err(`${l}\n`);

  topologyOption(
    lab
      .command('up')
      .description('build images (offline), create networks and nodes, wait until every node answers ssh')
      .option('--ssh-port <port>', 'bastion ssh port on 127.0.0.1 (wan-client gets the next one)', portArg)
      .option('--entry-port <port>', 'first WAN entry port on 127.0.0.1 (one per HAProxy frontend)', portArg)
      .option('--no-provision', 'stop at bare nodes (skip install → configure → verify)')
      .option('--json', 'print the status as JSON'),
  ).action(
    async (o: {
      config: string;
      sshPort?: number;
      entryPort?: number;
      json?: boolean;
      provision: boolean;
    }) => {
      const t = loadTopology(o.config);
      const r = await labUp(t, {
        topologyFile: o.config,
        ...(o.sshPort !== undefined ? { sshPort: o.sshPort } : {}),
        ...(o.entryPort !== undefined ? { entryPort: o.entryPort } : {}),
        log,
      });
      const p = o.provision ? await provisionLab(t, log) : undefined;
      const s = await labStatus(t);
      const provision = p && {
        durationMs: p.durationMs,
        runbooks: Object.fromEntries(
          p.results.map((x) => [x.runbook, { ok: x.ok, changes: x.changes, durationMs: x.durationMs }]),
        ),
      };
      if (o.json)
        printJson(io, {
          ...s,
          created: r.created,
          actions: r.actions,
          durationMs: r.durationMs,
          ...(provision ? { provision } : {}),
        });
      else {
        io.out(`${endpointLines(s).join('\n')}\n`);
        io.out(
          `lab up in ${(r.durationMs / 1000).toFixed(1)} s (${r.created.length ? `${r.created.length} node(s) created` : 'all nodes reused'})\n`,
        );
        if (p)
          io.out(
            `stack provisioned (install → configure → verify) in ${(p.durationMs / 1000).toFixed(1)} s\n`,
          );
      }
    },
  );

  topologyOption(
    lab
      .command('status')
      .description('endpoints, nodes and files of the running lab')
      .option('--json', 'JSON output'),
  ).action(async (o: { config: string; json?: boolean }) => {
    const s = await labStatus(loadTopology(o.config));
    if (o.json) printJson(io, s);
    else io.out(`${endpointLines(s).join('\n')}\n`);
  });

  topologyOption(
    lab
      .command('ssh')
      .description('ssh to a lab node through the bastion (ssh -F <state>/ssh_config NODE [cmd…])')
      .argument('<node>', 'node name as in `wharf lab status`')
      .argument('[cmd...]', 'command to run (after --)'),
  ).action((node: string, cmd: string[], o: { config: string }) => {
    const t = loadTopology(o.config);
    const plan = labPlan(t);
    if (!plan.nodes.some((n) => n.name === node)) {
      throw new InputError(`unknown lab node "${node}" (nodes: ${plan.nodes.map((n) => n.name).join(', ')})`);
    }
    if (!readState(plan.stack)) throw new RunError(`the lab "${plan.stack}" is not up; run: wharf lab up`);
    const f = sshNames(plan.stack);
    const r = spawnSync('ssh', ['-F', f.sshConfig, ...(cmd.length ? [] : ['-t']), node, ...cmd], {
      stdio: 'inherit',
    });
    if (r.status !== 0) throw new RunError(`ssh ${node} exited with ${r.status ?? r.signal}`);
  });

  topologyOption(
    lab.command('graph').description("the lab's nodes, networks and addresses as a Mermaid flowchart"),
  ).action((o: { config: string }) => {
    const plan = labPlan(loadTopology(o.config));
    io.out(labGraph(plan, readState(plan.stack)?.ports));
  });

  topologyOption(
    lab
      .command('notices')
      .description('messages received by the notify sink (SMTP + webhook), each an upload notice or an alert')
      .option('--category <upload|alert|other>', 'only messages of this category')
      .option('--json', 'JSON output'),
  ).action(async (o: { config: string; json?: boolean; category?: string }) => {
    if (o.category !== undefined && !['upload', 'alert', 'other'].includes(o.category))
      throw new InputError(`--category: expected upload, alert or other, got ${JSON.stringify(o.category)}`);
    const t = loadTopology(o.config);
    const plan = labPlan(t);
    if (!readState(plan.stack)) throw new RunError(`the lab "${plan.stack}" is not up; run: wharf lab up`);
    const sink = await import('../../lab/sink/index.ts');
    const sinkNode = plan.nodes.find((n) => n.kind === 'notify-sink');
    if (!sinkNode) throw new InputError('the topology has no notify-sink node');
    const r = await $({
      quiet: true,
      timeout: 30_000,
    })`ssh -F ${sshNames(plan.stack).sshConfig} ${sinkNode.name} ${`cat ${sink.SINK_MESSAGES_PATH} 2>/dev/null || true`}`;
    const notices = sink
      .readNotices(r.stdout)
      .map((n) => ({ ...n, category: n.category ?? sink.noticeCategory(n) }))
      .filter((n) => !o.category || n.category === o.category);
    if (o.json) printJson(io, notices);
    else io.out(`${sink.formatNotices(notices)}\n`);
  });

  topologyOption(
    lab.command('down').description('remove the lab: containers, networks, volumes (by label) and its state'),
  ).action(async (o: { config: string }) => {
    const t = loadTopology(o.config);
    const r = await labDown(t.name, log);
    io.out(
      `lab "${t.name}" removed: ${r.containers} container(s), ${r.networks} network(s), ${r.volumes} volume(s)\n`,
    );
  });
}
