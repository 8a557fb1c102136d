// Alerts of wharf watch through the stack's own notice channels (topology `notifications`, resolved
// as the notifier resolves them: notifyTargets), sent from where watch runs: the webhook as an HTTP
// POST with the notifier's JSON shape (Slack-compatible `text` + a `wharf` object, or plain JSON),
// e-mail with plain SMTP over node:net. Each channel is retried (bounded); the caller journals
// every attempt's outcome.
import { connect, type Socket } from 'node:net';
import { hostname } from 'node:os';
import type { Topology } from '../topology/model.ts';
import type { Inventory } from '../topology/inventory.ts';
import { notifyTargets } from '../render/notify.ts';

export interface AlertMessage {
  /** Event name (`main-down`, `failover-done`, …). */
  event: string;
  text: string;
  stack: string;
  at: string;
}

export interface AlertChannels {
  webhook?: { url: string; format: 'slack' | 'json'; secret: boolean };
  smtp?: { host: string; port: number; from: string; to: string[] };
}

/** The channels the topology (and inventory) configure; none when both are disabled. */
export function alertChannels(t: Topology, inv: Inventory): AlertChannels {
  const targets = notifyTargets(t, inv);
  const out: AlertChannels = {};
  if (targets.webhookUrl)
    out.webhook = {
      url: targets.webhookUrl,
      format: t.notifications.webhook.format,
      secret: targets.webhookSecret,
    };
  if (targets.smtpUrl) {
    const u = new URL(targets.smtpUrl);
    out.smtp = {
      host: u.hostname,
      port: Number(u.port) || 25,
      from: t.notifications.smtp.from,
      to: t.notifications.smtp.to,
    };
  }
  return out;
}

/** The webhook body: the notifier's shape (slack: text + username + wharf{}; json: the fields). Pure. */
export function webhookBody(m: AlertMessage, format: 'slack' | 'json'): string {
  const fields = { event: m.event, stack: m.stack, at: m.at, source: 'watch' };
  return JSON.stringify(
    format === 'slack'
      ? { text: `wharf ${m.stack}: ${m.text}`, username: 'wharf', wharf: fields }
      : { ...fields, text: m.text },
  );
}

/** The e-mail (CRLF lines, dot-stuffed for DATA, without the final "."). Pure. */
export function mailMessage(m: AlertMessage, from: string, to: string[], date = new Date(m.at)): string {
  const subject = `wharf ${m.stack}: ${m.text}`.replace(/[\r\n]+/g, ' ').slice(0, 200);
  const lines = [
    `From: ${from}`,
    `To: ${to.join(', ')}`,
    `Subject: ${subject}`,
    `Date: ${date.toUTCString().replace('GMT', '+0000')}`,
    `X-Wharf-Event: ${m.event}`,
    'Content-Type: text/plain; charset=utf-8',
    '',
    m.text,
    '',
    `event: ${m.event}`,
    `stack: ${m.stack}`,
    `at: ${m.at}`,
    `sent by: wharf watch on ${hostname()}`,
  ];
  return lines
    .flatMap((l) => l.split(/\r?\n/))
    .map((l) => (l.startsWith('.') ? '.' + l : l))
    .join('\r\n');
}

export async function postWebhook(url: string, body: string, timeoutMs = 10_000): Promise<void> {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (!r.ok) throw new Error(`webhook answered HTTP ${r.status}`);
}

/** Plain SMTP (no TLS, no auth: a relay on the management network): EHLO, MAIL, RCPT…, DATA, QUIT. */
export async function sendSmtp(
  o: { host: string; port: number; from: string; to: string[]; message: string },
  timeoutMs = 20_000,
): Promise<void> {
  const sock: Socket = connect({ host: o.host, port: o.port });
  sock.setEncoding('utf8');
  let buf = '';
  let waiting: { resolve: (r: string) => void; reject: (e: Error) => void } | undefined;
  let failed: Error | undefined;
  const fail = (e: Error) => {
    failed ??= e;
    waiting?.reject(e);
    waiting = undefined;
  };
  // one complete reply (multi-line: "250-…" lines then "250 …")
  const take = (): string | undefined => {
    const lines = buf.split('\r\n');
    for (let i = 0; i < lines.length - 1; i++) {
      if (/^\d{3}( |$)/.test(lines[i]!)) {
        const reply = lines.slice(0, i + 1).join('\n');
        buf = lines.slice(i + 1).join('\r\n');
        return reply;
      }
    }
    return undefined;
  };
  sock.on('data', (d: string) => {
    buf += d;
    if (waiting) {
      const r = take();
      if (r !== undefined) {
        const w = waiting;
        waiting = undefined;
        w.resolve(r);
      }
    }
  });
  sock.on('error', (e) => fail(e));
  sock.on('close', () => fail(new Error('connection closed by the SMTP server')));
  const timer = setTimeout(() => {
    fail(new Error(`SMTP ${o.host}:${o.port}: no answer within ${timeoutMs} ms`));
    sock.destroy();
  }, timeoutMs);
  const reply = (): Promise<string> => {
    const r = take();
    if (r !== undefined) return Promise.resolve(r);
    if (failed) return Promise.reject(failed);
    return new Promise((resolve, reject) => (waiting = { resolve, reject }));
  };
  const expect = async (what: string, ok: RegExp) => {
    const r = await reply();
    if (!ok.test(r)) throw new Error(`SMTP ${o.host}:${o.port} refused ${what}: ${r.replace(/\n/g, ' | ')}`);
  };
  const send = (line: string) => sock.write(line + '\r\n');
  try {
    await expect('the connection', /^220/);
    send(`EHLO ${hostname()}`);
    await expect('EHLO', /^250/);
    send(`MAIL FROM:<${o.from}>`);
    await expect('MAIL FROM', /^250/);
    for (const r of o.to) {
      send(`RCPT TO:<${r}>`);
      await expect(`RCPT TO ${r}`, /^25[01]/);
    }
    send('DATA');
    await expect('DATA', /^354/);
    send(`${o.message}\r\n.`);
    await expect('the message', /^250/);
    send('QUIT');
    await reply().catch(() => undefined);
  } finally {
    clearTimeout(timer);
    sock.destroy();
  }
}

export interface ChannelResult {
  channel: 'webhook' | 'smtp';
  ok: boolean;
  attempts: number;
  error?: string;
}

/**
 * Send one alert on every channel, each retried up to `attempts` times with a doubling pause.
 * Never throws: the result says per channel what happened (the caller journals failures).
 */
export async function sendAlert(
  ch: AlertChannels,
  m: AlertMessage,
  o: { attempts?: number; retryDelayMs?: number; onAttemptFailed?: (c: string, e: string) => void } = {},
): Promise<ChannelResult[]> {
  const attempts = o.attempts ?? 4;
  const retry = async (channel: 'webhook' | 'smtp', fn: () => Promise<void>): Promise<ChannelResult> => {
    let delay = o.retryDelayMs ?? 1000;
    let error = '';
    for (let i = 1; i <= attempts; i++) {
      try {
        await fn();
        return { channel, ok: true, attempts: i };
      } catch (e) {
        error = (e as Error).message;
        o.onAttemptFailed?.(channel, error);
        if (i < attempts) {
          await new Promise((r) => setTimeout(r, delay));
          delay *= 2;
        }
      }
    }
    return { channel, ok: false, attempts, error };
  };
  const jobs: Promise<ChannelResult>[] = [];
  const wh = ch.webhook;
  if (wh) jobs.push(retry('webhook', () => postWebhook(wh.url, webhookBody(m, wh.format))));
  const smtp = ch.smtp;
  if (smtp)
    jobs.push(retry('smtp', () => sendSmtp({ ...smtp, message: mailMessage(m, smtp.from, smtp.to) })));
  return Promise.all(jobs);
}
