// wharf watch's alert senders against the lab's real receivers (the notify sink's smtp-server and
// HTTP webhook endpoint, started on loopback): delivery, retries after injected failures, and a
// channel that stays down reported as failed (never dropped silently).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSink, type RunningSink } from '../../src/lab/sink/server.ts';
import { readNotices, type Notice } from '../../src/lab/sink/notice.ts';
import { sendAlert, type AlertChannels } from '../../src/watch/alert.ts';

let dir: string;
let sink: RunningSink;
let ch: AlertChannels;
const base = () => `http://127.0.0.1:${sink.httpPort}`;
const control = (body: unknown) =>
  fetch(`${base()}/control`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
const received = (): Notice[] => readNotices(readFileSync(sink.messagesFile, 'utf8'));
const msg = (event: string) => ({
  event,
  text: `${event} happened`,
  stack: 'alerttest',
  at: new Date().toISOString(),
});

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wharf-watch-alert-'));
  sink = await startSink({ smtpPort: 0, httpPort: 0, bind: '127.0.0.1', dir });
  ch = {
    webhook: { url: `${base()}/hooks/upload`, format: 'slack', secret: false },
    smtp: {
      host: '127.0.0.1',
      port: sink.smtpPort,
      from: 'wharf@example.org',
      to: ['ops@example.org', 'b@example.org'],
    },
  };
});
afterAll(async () => {
  await sink?.close();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await fetch(`${base()}/messages`, { method: 'DELETE' });
  await fetch(`${base()}/control`, { method: 'DELETE' });
});

describe('watch alerts to real receivers', () => {
  it('delivers one webhook (Slack-compatible JSON) and one mail (both recipients) per alert', async () => {
    const r = await sendAlert(ch, msg('main-down'), { retryDelayMs: 50 });
    expect(r).toEqual([
      { channel: 'webhook', ok: true, attempts: 1 },
      { channel: 'smtp', ok: true, attempts: 1 },
    ]);
    const n = received();
    const hook = n.find((x) => x.kind === 'webhook');
    expect(hook).toMatchObject({
      path: '/hooks/upload',
      body: {
        text: 'wharf alerttest: main-down happened',
        username: 'wharf',
        wharf: { event: 'main-down', source: 'watch' },
      },
    });
    const mail = n.find((x) => x.kind === 'smtp');
    expect(mail).toMatchObject({
      subject: 'wharf alerttest: main-down happened',
      from: 'wharf@example.org',
      to: ['ops@example.org', 'b@example.org'],
    });
    expect(mail?.kind === 'smtp' && mail.headers['x-wharf-event']).toBe('main-down');
  });

  it('retries a webhook answered 503 and a mail rejected 451, then delivers each once', async () => {
    expect((await control({ webhookStatus: 503, webhookTimes: 2, smtpStatus: 451, smtpTimes: 1 })).ok).toBe(
      true,
    );
    const failures: string[] = [];
    const r = await sendAlert(ch, msg('failover-done'), {
      retryDelayMs: 50,
      onAttemptFailed: (c, e) => failures.push(`${c}: ${e}`),
    });
    expect(r).toEqual([
      { channel: 'webhook', ok: true, attempts: 3 },
      { channel: 'smtp', ok: true, attempts: 2 },
    ]);
    expect(failures.some((f) => f.includes('HTTP 503'))).toBe(true);
    expect(failures.some((f) => /smtp: .*451/.test(f))).toBe(true);
    expect(
      received()
        .map((x) => x.kind)
        .sort(),
    ).toEqual(['smtp', 'webhook']);
  });

  it('a channel that stays down is reported failed after the bounded attempts, with the reason', async () => {
    await control({ webhookStatus: 500 });
    const r = await sendAlert({ ...ch, smtp: { ...ch.smtp!, port: 1 } }, msg('main-back-waiting'), {
      attempts: 3,
      retryDelayMs: 20,
    });
    expect(r[0]).toEqual({ channel: 'webhook', ok: false, attempts: 3, error: 'webhook answered HTTP 500' });
    expect(r[1]).toMatchObject({
      channel: 'smtp',
      ok: false,
      attempts: 3,
      error: expect.stringMatching(/ECONNREFUSED/),
    });
    expect(received()).toEqual([]);
  });
});
