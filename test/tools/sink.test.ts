// The notify sink as it runs on the sink node: the esbuild bundle, started with the host's `node`
// from a folder with no node_modules, fed by real clients (curl's SMTP and HTTP).
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildSinkBundle,
  readNotices,
  sinkFiles,
  SINK_BUNDLE_PATH,
  type Notice,
} from '../../src/lab/sink/index.ts';

const run = promisify(execFile);

interface Sink {
  proc: ChildProcess;
  smtpPort: number;
  httpPort: number;
  exited: Promise<number | null>;
}

let work: string;
let bundlePath: string;
let dataDir: string;
let sink: Sink | undefined;
/** The sink node runs Debian 12's Node 18; set SINK_TEST_NODE to such a binary to test with it. */
const nodeBin = process.env.SINK_TEST_NODE || 'node';

async function startSink(): Promise<Sink> {
  const proc = spawn(nodeBin, [bundlePath], {
    cwd: work,
    env: {
      PATH: process.env.PATH,
      SINK_SMTP_PORT: '0',
      SINK_HTTP_PORT: '0',
      SINK_BIND: '127.0.0.1',
      SINK_DIR: dataDir,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  let out = '';
  let err = '';
  proc.stderr!.on('data', (c: Buffer) => (err += c));
  const ready = await new Promise<{ smtpPort: number; httpPort: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sink not ready in 10 s: ${out} ${err}`)), 10_000);
    proc.stdout!.on('data', (c: Buffer) => {
      out += c;
      const line = out.split('\n').find((l) => l.includes('"event":"listening"'));
      if (line) {
        clearTimeout(timer);
        resolve(JSON.parse(line));
      }
    });
    proc.once('exit', (code) => reject(new Error(`sink exited ${code}: ${err}`)));
  });
  return { proc, exited, ...ready };
}

async function stopSink(s: Sink): Promise<number | null> {
  s.proc.kill('SIGTERM');
  return s.exited;
}

const api = (path: string, init?: RequestInit) => fetch(`http://127.0.0.1:${sink!.httpPort}${path}`, init);
const messages = async (): Promise<Notice[]> => (await api('/messages')).json() as Promise<Notice[]>;
const control = async (body: unknown) =>
  api('/control', {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
  });

/** A real SMTP client: curl sends the message file, exit code says whether the server took it. */
async function sendMail(file: string, from: string, to: string[]): Promise<number> {
  const rcpts = to.flatMap((t) => ['--mail-rcpt', t]);
  const args = ['-sS', `smtp://127.0.0.1:${sink!.smtpPort}`, '--mail-from', from, ...rcpts, '-T', file];
  return run('curl', args).then(
    () => 0,
    (e: { code: number }) => e.code,
  );
}

/** A real webhook POST with curl (`@FILE` sends a file); returns "status body". */
async function postHook(path: string, body: string, type = 'application/json'): Promise<string> {
  const url = `http://127.0.0.1:${sink!.httpPort}${path}`;
  const { stdout } = await run('curl', [
    '-sS',
    '-X',
    'POST',
    '-H',
    `content-type: ${type}`,
    '--data-binary',
    body,
    '-w',
    ' %{http_code}',
    url,
  ]);
  const cut = stdout.lastIndexOf(' ');
  return `${stdout.slice(cut + 1)} ${stdout.slice(0, cut)}`;
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'wharf-sink-'));
  bundlePath = join(work, 'sink.js');
  dataDir = join(work, 'state', 'wharf-sink');
  writeFileSync(bundlePath, await buildSinkBundle());
  writeFileSync(
    join(work, 'mail.txt'),
    'From: wharf@example.org\r\nTo: ops@example.org\r\nSubject: upload: alice/report.csv\r\n\r\n' +
      'alice uploaded report.csv\r\n.leading dot survives\r\n',
  );
  sink = await startSink();
});

afterAll(async () => {
  if (sink && sink.proc.exitCode === null) await stopSink(sink);
  rmSync(work, { recursive: true, force: true });
});

describe('notify sink bundle', () => {
  it('is one self-contained file for the sink node', async () => {
    const files = await sinkFiles();
    expect(files.map((f) => f.path)).toEqual([SINK_BUNDLE_PATH, '/etc/systemd/system/wharf-sink.service']);
    const bundle = files[0]!.content;
    // No npm package is left to resolve at run time (node builtins only).
    const requires = [...bundle.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]!);
    expect(requires.filter((r) => !r.startsWith('node:') && !builtinModules.includes(r))).toEqual([]);
    expect(requires).not.toContain('smtp-server');
    expect(bundle.length).toBeLessThan(1024 * 1024);
  });

  it('comes with a systemd unit that systemd-analyze accepts', async () => {
    const unit = (await sinkFiles({ smtpPort: 2525, httpPort: 8080 }))[1]!;
    const file = join(work, 'wharf-sink.service');
    writeFileSync(file, unit.content);
    const { stderr } = await run('systemd-analyze', ['verify', file]);
    // verify exits 0 even for unparsable settings: it only warns, naming the file.
    expect(stderr.split('\n').filter((l) => l.includes('wharf-sink'))).toEqual([]);
  });

  it('answers /health with its ports', async () => {
    const res = await api('/health');
    expect(res.status).toBe(200);
    const health = (await res.json()) as { node: string };
    expect(health).toMatchObject({ ok: true, smtpPort: sink!.smtpPort, httpPort: sink!.httpPort });
    if (process.env.SINK_TEST_NODE) console.log(`sink ran with node ${health.node}`);
  });

  it('stores a real e-mail and a real Slack-style webhook, and lists them', async () => {
    await api('/messages', { method: 'DELETE' });
    expect(
      await sendMail(join(work, 'mail.txt'), 'wharf@example.org', ['ops@example.org', 'oncall@example.org']),
    ).toBe(0);
    expect(await postHook('/hooks/upload', '{"text":"alice uploaded report.csv (12 bytes)"}')).toBe('200 ok');

    const list = await messages();
    expect(list).toHaveLength(2);
    expect(list[0]).toMatchObject({
      kind: 'smtp',
      from: 'wharf@example.org',
      to: ['ops@example.org', 'oncall@example.org'],
      subject: 'upload: alice/report.csv',
      body: 'alice uploaded report.csv\n.leading dot survives',
      remote: '127.0.0.1',
    });
    expect(list[1]).toMatchObject({
      kind: 'webhook',
      method: 'POST',
      path: '/hooks/upload',
      headers: { 'content-type': 'application/json' },
      body: { text: 'alice uploaded report.csv (12 bytes)' },
    });
    expect(Date.parse(list[0]!.receivedAt)).toBeGreaterThan(Date.now() - 60_000);
    // The store on disk says the same, one JSON line each.
    expect(readNotices(readFileSync(join(dataDir, 'messages.jsonl'), 'utf8'))).toEqual(list);
    expect((await (await api('/messages?kind=webhook')).json()) as Notice[]).toEqual([list[1]]);
  });

  it('keeps a non-JSON webhook as text; refuses JSON that is not JSON and oversized bodies', async () => {
    await api('/messages', { method: 'DELETE' });
    expect(await postHook('/hooks/plain', 'file=a.csv', 'text/plain')).toBe('200 ok');
    expect(await postHook('/hooks/upload', '{"text": broken', 'application/json')).toMatch(
      /^400 .*invalid_payload/,
    );
    const big = join(work, 'big.txt');
    writeFileSync(big, 'x'.repeat(1024 * 1024 + 1));
    expect(await postHook('/hooks/upload', `@${big}`, 'text/plain')).toMatch(/^413 /);
    const list = await messages();
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ path: '/hooks/plain', body: 'file=a.csv' });
  });

  it('answers the injected webhook status until reset, storing nothing meanwhile', async () => {
    await api('/messages', { method: 'DELETE' });
    expect((await control({ webhookStatus: 503 })).status).toBe(200);
    expect(await postHook('/hooks/upload', '{"text":"one"}')).toMatch(/^503 /);
    expect(await postHook('/hooks/upload', '{"text":"two"}')).toMatch(/^503 /);
    expect(await messages()).toEqual([]);
    expect(await (await api('/control')).json()).toMatchObject({ webhookStatus: 503, webhookRejected: 2 });

    await control({ webhookStatus: null });
    expect(await postHook('/hooks/upload', '{"text":"three"}')).toBe('200 ok');

    // Fail only the next N: a notifier that retries gets through on its own.
    await control({ webhookStatus: 500, webhookTimes: 1 });
    expect(await postHook('/hooks/upload', '{"text":"four"}')).toMatch(/^500 /);
    expect(await postHook('/hooks/upload', '{"text":"four"}')).toBe('200 ok');
    expect((await messages()).map((n) => (n.body as { text: string }).text)).toEqual(['three', 'four']);
    expect(await (await api('/control')).json()).toMatchObject({ webhookStatus: null, webhookRejected: 3 });

    await api('/control', { method: 'DELETE' });
    expect(await (await api('/control')).json()).toMatchObject({ webhookStatus: null, webhookRejected: 0 });
  });

  it('rejects mail with the injected SMTP status, then accepts it again', async () => {
    await api('/messages', { method: 'DELETE' });
    await control({ smtpStatus: 451, smtpTimes: 1 });
    expect(await sendMail(join(work, 'mail.txt'), 'a@x', ['b@y'])).not.toBe(0);
    expect(await messages()).toEqual([]);
    expect(await sendMail(join(work, 'mail.txt'), 'a@x', ['b@y'])).toBe(0);
    expect(await messages()).toHaveLength(1);
    expect(await (await api('/control')).json()).toMatchObject({ smtpStatus: null, smtpRejected: 1 });
  });

  it('refuses bad control requests', async () => {
    expect((await control({ webhookStatus: 42 })).status).toBe(400);
    expect((await control({ webhookstatus: 503 })).status).toBe(400);
    expect((await api('/control', { method: 'POST', body: 'nope' })).status).toBe(400);
    expect(await (await api('/control')).json()).toMatchObject({ webhookStatus: null, smtpStatus: null });
    expect((await api('/messages', { method: 'POST' })).status).toBe(405);
    expect((await api('/nothing')).status).toBe(404);
  });

  it('stores concurrent webhooks whole, one line each', async () => {
    await api('/messages', { method: 'DELETE' });
    const sent = Array.from({ length: 25 }, (_, i) => `file-${i}.bin`);
    const codes = await Promise.all(sent.map((f) => postHook('/hooks/upload', JSON.stringify({ text: f }))));
    expect(codes.every((c) => c === '200 ok')).toBe(true);
    const got = (await messages()).map((n) => (n.body as { text: string }).text);
    expect(got.sort()).toEqual([...sent].sort());
    expect(readFileSync(join(dataDir, 'messages.jsonl'), 'utf8').split('\n')).toHaveLength(26);
  });

  it('keeps messages across a restart; DELETE clears them; SIGTERM exits 0', async () => {
    await api('/messages', { method: 'DELETE' });
    expect(await postHook('/hooks/upload', '{"text":"before restart"}')).toBe('200 ok');
    expect(await stopSink(sink!)).toBe(0);
    sink = await startSink();
    expect((await messages()).map((n) => (n.body as { text: string }).text)).toEqual(['before restart']);

    expect(await (await api('/messages', { method: 'DELETE' })).json()).toEqual({ cleared: 1 });
    expect(await messages()).toEqual([]);
    expect(readFileSync(join(dataDir, 'messages.jsonl'), 'utf8')).toBe('');
    expect(await postHook('/hooks/upload', '{"text":"after clear"}')).toBe('200 ok');
    expect(await messages()).toHaveLength(1);
    expect(await stopSink(sink!)).toBe(0);
  });
});
