// The HAProxy pair as one transport (src/failover/pair.ts) and the pair-aware status reading: pure,
// with fake transports.
import { describe, expect, it } from 'vitest';
import { loadTopology } from '../../src/topology/load.ts';
import { activeHaproxy, haproxyGroup, holdsVipCommand, type HaproxyGroup } from '../../src/failover/pair.ts';
import { labInventory } from '../../src/topology/inventory.ts';
import { parseStat, statusOf } from '../../src/failover/haproxy.ts';
import { TransportError, type ExecResult, type Transport } from '../../src/transport/types.ts';
import { execFileSync } from 'node:child_process';

const t = loadTopology('configs/stack.yaml');
const res = (stdout: string, code = 0): ExecResult => ({
  stdout,
  stderr: code ? 'boom' : '',
  code,
  stdoutBuffer: Buffer.from(stdout),
});

function fake(
  host: string,
  o: { out?: string; code?: number; down?: boolean; files?: Record<string, string> },
) {
  const ran: string[] = [];
  const written: string[] = [];
  const tr: Transport = {
    host,
    async exec(cmd) {
      if (o.down) throw new TransportError(host, 'ssh: connect refused');
      ran.push(String(cmd));
      return res(o.out ?? '', o.code ?? 0);
    },
    async readFile(p) {
      if (o.down) throw new TransportError(host, 'ssh: connect refused');
      return o.files?.[p] !== undefined ? Buffer.from(o.files[p]!) : null;
    },
    async stat() {
      return null;
    },
    async writeFileAtomic(p) {
      if (o.down) throw new TransportError(host, 'ssh: connect refused');
      written.push(p);
    },
    async close() {},
  };
  return { tr, ran, written };
}

describe('haproxyGroup', () => {
  it('one transport per HAProxy node: a command runs on both, outputs joined in node order', async () => {
    const a = fake('haproxy-1', { out: 'one' });
    const b = fake('haproxy-2', { out: 'two' });
    const g = haproxyGroup(t, (n) => ({ 'haproxy-1': a.tr, 'haproxy-2': b.tr })[n]) as HaproxyGroup;
    expect(g.host).toBe('haproxy-1+haproxy-2');
    const r = await g.exec('set server write/sftp-main state maint');
    expect(r).toMatchObject({ code: 0, stdout: 'one\ntwo' });
    expect(a.ran).toEqual(['set server write/sftp-main state maint']);
    expect(b.ran).toEqual(['set server write/sftp-main state maint']);
    await g.writeFileAtomic('/var/lib/wharf/needs-reconcile', '{}', {
      mode: 0o644,
      owner: 'root',
      group: 'root',
    });
    expect([a.written, b.written]).toEqual([
      ['/var/lib/wharf/needs-reconcile'],
      ['/var/lib/wharf/needs-reconcile'],
    ]);
  });

  it('a failure on either node is the result (so `must` names it); a node unreachable over ssh is skipped and named', async () => {
    const a = fake('haproxy-1', { out: 'ok' });
    const b = fake('haproxy-2', { out: 'No such server.', code: 1 });
    const g = haproxyGroup(t, (n) => ({ 'haproxy-1': a.tr, 'haproxy-2': b.tr })[n])!;
    expect((await g.exec('x')).code).toBe(1);
    const down = fake('haproxy-2', { down: true });
    const g2 = haproxyGroup(t, (n) => ({ 'haproxy-1': a.tr, 'haproxy-2': down.tr })[n]) as HaproxyGroup;
    expect((await g2.exec('x')).stdout).toBe('ok');
    expect([...g2.skipped.keys()]).toEqual(['haproxy-2']);
    const both = haproxyGroup(t, () => fake('h', { down: true }).tr)!;
    await expect(both.exec('x')).rejects.toThrow(/connect refused/);
  });

  it('a record or a mark on either node is a record (first node that has the file)', async () => {
    const a = fake('haproxy-1', {});
    const b = fake('haproxy-2', { files: { '/var/lib/wharf/failover.json': '{"phase":"done"}' } });
    const g = haproxyGroup(t, (n) => ({ 'haproxy-1': a.tr, 'haproxy-2': b.tr })[n])!;
    expect((await g.readFile('/var/lib/wharf/failover.json'))?.toString()).toBe('{"phase":"done"}');
    expect(await g.readFile('/var/lib/wharf/needs-reconcile')).toBeNull();
  });

  it('without a pair: the one node’s own transport', () => {
    const t1 = { ...t, nodes: { ...t.nodes }, haproxy: { ...t.haproxy } };
    delete (t1.nodes as Record<string, unknown>)['haproxy-2'];
    const a = fake('haproxy-1', {});
    expect(haproxyGroup(t1, () => a.tr)).toBe(a.tr);
  });
});

describe('statusOf over both HAProxies', () => {
  const csv = (main: string) =>
    [
      '# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg',
      `write,sftp-main,0,0,0,0,,0,0,0,,0,,0,0,0,0,${main},1,1,0,0,0,5`,
    ].join('\n');
  it('one status when both agree; every distinct one, the not-UP first, when they differ', () => {
    expect(statusOf(parseStat(`${csv('MAINT')}\n${csv('MAINT')}`), t, 'sftp-main').write).toBe('MAINT');
    expect(statusOf(parseStat(`${csv('UP')}\n${csv('MAINT')}`), t, 'sftp-main').write).toBe('MAINT/UP');
  });
});

describe('holdsVipCommand', () => {
  it('exits 0 only when an address of the node is exactly the floating one', () => {
    const run = (addrs: string) => {
      try {
        execFileSync('sh', [
          '-c',
          holdsVipCommand('10.88.2.254').replace('ip -o -4 addr show', `printf '${addrs}'`),
        ]);
        return 0;
      } catch (e) {
        return (e as { status: number }).status;
      }
    };
    expect(
      run(
        '2: eth1    inet 10.88.2.4/24 brd x\\n2: eth1    inet 10.88.2.254/24 scope global secondary eth1\\n',
      ),
    ).toBe(0);
    expect(run('2: eth1    inet 10.88.2.4/24 brd x\\n')).toBe(1);
    expect(run('2: eth1    inet 10.88.2.25/24 brd x\\n')).toBe(1);
  });
});

describe('activeHaproxy', () => {
  const inv = labInventory(t);
  it('names the holder; a node that could not be asked is unreachable, never "not the holder"', async () => {
    const holder = fake('haproxy-1', { code: 0 });
    const down = fake('haproxy-2', { down: true });
    const get = (n: string) => ({ 'haproxy-1': holder.tr, 'haproxy-2': down.tr })[n];
    const a = await activeHaproxy(t, inv, get);
    expect(a.node).toBe('haproxy-1');
    expect(a.unreachable).toEqual(['haproxy-2 (haproxy-2: ssh: connect refused)']);
  });
  it('nobody holds it: node undefined; ssh exit 255 counts as unreachable, exit 1 as not holding', async () => {
    const no = fake('haproxy-1', { code: 1 });
    const ssh = fake('haproxy-2', { code: 255 });
    const get = (n: string) => ({ 'haproxy-1': no.tr, 'haproxy-2': ssh.tr })[n];
    const a = await activeHaproxy(t, inv, get);
    expect(a).toEqual({ node: undefined, holders: [], unreachable: ['haproxy-2 (ssh: boom)'] });
  });
});
