// Entry of the bundled OPNsense API emulation on the firewall node (/usr/local/lib/wharf-opnsense/
// opnsense.js). `node opnsense.js` serves the API; `node opnsense.js rollback REVISION` is what the
// box's own rollback timer runs (a systemd-run timer on the node, so it fires even when wharf and
// the API server are gone). One JSON line per event on stdout (journald keeps it).
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import type { OpnConfig } from './config.ts';
import type { NftOptions } from './nft.ts';
import { Emulator, readConfig, rollbackTo } from './server.ts';
import { renderEmulationNft } from './nft.ts';

export const ETC = '/etc/wharf-opnsense';
export const STATE = '/var/lib/wharf-opnsense';

interface Settings {
  version: string;
  apiKey: string;
  secretSha256: string;
  port: number;
  bind: string;
  rollbackSeconds: number;
  noForward: string[];
  antiLockout: Record<string, number[]>;
}

const log = (e: Record<string, unknown>) =>
  process.stdout.write(JSON.stringify({ time: new Date().toISOString(), ...e }) + '\n');

function run(
  cmd: string,
  args: string[],
  input?: string,
): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', (e) => resolve({ code: 127, out, err: e.message }));
    p.on('close', (code) => resolve({ code: code ?? 1, out, err }));
    if (p.stdin) {
      p.stdin.on('error', () => {}); // a command that exits without reading its input
      p.stdin.end(input);
    }
  });
}

async function loadNft(text: string): Promise<string | null> {
  const r = await run('nft', ['-f', '-'], text);
  return r.code === 0 ? null : `nft: ${r.err.trim() || `exit ${r.code}`}`;
}

/** Interface → device, by the interface's address on this node (device names are not stable here). */
async function devices(c: OpnConfig): Promise<Record<string, string>> {
  const r = await run('ip', ['-j', '-4', 'addr']);
  const byAddr = new Map<string, string>();
  try {
    for (const l of JSON.parse(r.out) as { ifname: string; addr_info?: { local: string }[] }[])
      for (const a of l.addr_info ?? []) byAddr.set(a.local, l.ifname);
  } catch {
    /* no ip -j: fall back to config.xml's <if> */
  }
  return Object.fromEntries(
    c.interfaces.map((i) => [i.name, byAddr.get(i.ipaddr) ?? i.if]).filter(([, d]) => d),
  );
}

const settings = (): Settings => JSON.parse(readFileSync(`${ETC}/emulation.json`, 'utf8')) as Settings;

function nftOptions(s: Settings) {
  return async (c: OpnConfig): Promise<NftOptions> => ({
    devices: await devices(c),
    noForward: s.noForward,
    antiLockout: s.antiLockout,
  });
}

const unitOf = (revision: string) => `wharf-opn-rollback-${revision.replace(/[^0-9]/g, '')}`;
const systemd = () => existsSync('/run/systemd/system');
const timers = new Map<string, NodeJS.Timeout>();

async function main(argv: string[]): Promise<void> {
  const s = settings();
  const load = async (c: OpnConfig) => loadNft(renderEmulationNft(c, await nftOptions(s)(c)));
  if (argv[0] === 'rollback') {
    const revision = argv[1] ?? '';
    const err = await rollbackTo(STATE, revision, load);
    log({ event: 'rollback', revision, error: err });
    process.exit(err ? 1 : 0);
  }
  const emu = new Emulator({
    dir: STATE,
    version: s.version,
    apiKey: s.apiKey,
    secretSha256: s.secretSha256,
    tls: { key: readFileSync(`${ETC}/tls.key`, 'utf8'), cert: readFileSync(`${ETC}/tls.crt`, 'utf8') },
    loadNft,
    nftOptions: nftOptions(s),
    rollbackSeconds: s.rollbackSeconds,
    log,
    async armRollback(revision, seconds, script) {
      if (systemd()) {
        const r = await run('systemd-run', [
          `--unit=${unitOf(revision)}`,
          `--on-active=${seconds}`,
          '--timer-property=AccuracySec=100ms',
          '/bin/sh',
          '-c',
          script,
        ]);
        log({
          event: 'rollback-armed',
          revision,
          seconds,
          via: 'systemd-run',
          code: r.code,
          err: r.err.trim(),
        });
        if (r.code === 0) return;
      }
      // no systemd (a bare container): the timer lives in this process, still on the node
      timers.set(
        revision,
        setTimeout(() => {
          timers.delete(revision);
          execFile('/bin/sh', ['-c', script], (e, out) =>
            log({ event: 'rollback-ran', revision, error: e?.message ?? null, out }),
          );
        }, seconds * 1000),
      );
      log({ event: 'rollback-armed', revision, seconds, via: 'process' });
    },
    async cancelRollback(revision) {
      const t = timers.get(revision);
      if (t) {
        clearTimeout(t);
        timers.delete(revision);
        return true;
      }
      if (!systemd()) return false;
      const r = await run('systemctl', ['stop', `${unitOf(revision)}.timer`]);
      return r.code === 0;
    },
  });
  // like a booting box: load what config.xml holds
  const err = await load(readConfig(STATE));
  if (err) log({ event: 'boot-load', error: err });
  const port = await emu.listen(s.port, s.bind);
  log({ event: 'listening', bind: s.bind, port, version: s.version, pid: process.pid });
  const stop = () => void emu.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main(process.argv.slice(2)).catch((e: unknown) => {
  console.error(`wharf-opnsense: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
