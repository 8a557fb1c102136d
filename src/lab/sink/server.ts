// The lab's notify sink: a real SMTP server (smtp-server) and an HTTP webhook receiver that keep
// every message received, as JSON lines, so scenarios can assert on upload notices.
// Runs on the sink node under Node 18 as one bundled file (see index.ts): node builtins,
// smtp-server and ./notice.ts only.
//
// HTTP API (besides webhooks, which are any POST/PUT to another path, e.g. /hooks/upload):
//   GET /health            {"ok":true,...}
//   GET /messages[?kind=]  every notice received, oldest first
//   DELETE /messages       forget them all
//   GET|POST|DELETE /control  failure injection: {"webhookStatus":503,"webhookTimes":2} answers
//                          503 to the next 2 webhooks (or every one until reset when no times);
//                          {"smtpStatus":451} rejects mail at end of DATA; {"reset":true} or DELETE
//                          clears. A rejected request is counted, not stored.
import { randomUUID } from 'node:crypto';
import { mkdirSync, openSync, closeSync, fsyncSync } from 'node:fs';
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Server } from 'node:net';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { isJsonType, noticeCategory, parseMail, readNotices, type Notice } from './notice.ts';

export interface SinkConfig {
  smtpPort: number;
  httpPort: number;
  bind: string;
  dir: string;
  /** Largest accepted e-mail / webhook body, bytes. */
  maxMailBytes?: number;
  maxWebhookBytes?: number;
  log?: (event: Record<string, unknown>) => void;
}

export interface RunningSink {
  smtpPort: number;
  httpPort: number;
  messagesFile: string;
  close(): Promise<void>;
}

export const MESSAGES_FILE = 'messages.jsonl';

/** Appends notices durably (write + fsync before the sender gets its answer), one at a time. */
class MessageStore {
  private queue: Promise<unknown> = Promise.resolve();
  private constructor(
    readonly file: string,
    private handle: FileHandle,
  ) {}

  static async open(dir: string): Promise<MessageStore> {
    mkdirSync(dir, { recursive: true });
    const file = join(dir, MESSAGES_FILE);
    const handle = await open(file, 'a');
    const dirFd = openSync(dir, 'r'); // make the file's creation itself durable
    fsyncSync(dirFd);
    closeSync(dirFd);
    return new MessageStore(file, handle);
  }

  private serial<T>(job: () => Promise<T>): Promise<T> {
    const next = this.queue.then(job, job);
    this.queue = next.catch(() => undefined);
    return next;
  }

  append(n: Notice): Promise<void> {
    return this.serial(async () => {
      await this.handle.write(JSON.stringify(n) + '\n');
      await this.handle.sync();
    });
  }

  list(): Promise<Notice[]> {
    return this.serial(async () => readNotices(await readFile(this.file, 'utf8')));
  }

  clear(): Promise<number> {
    return this.serial(async () => {
      const count = readNotices(await readFile(this.file, 'utf8')).length;
      await this.handle.truncate(0);
      await this.handle.sync();
      return count;
    });
  }

  close(): Promise<void> {
    return this.serial(() => this.handle.close());
  }
}

interface Injection {
  status: number | null;
  /** Requests left to fail; null = until reset. */
  times: number | null;
  rejected: number;
}

/** Failure injection state, shared by both receivers. */
class Control {
  webhook: Injection = { status: null, times: null, rejected: 0 };
  smtp: Injection = { status: null, times: null, rejected: 0 };

  /** The status to fail this request with, or null to accept it; counts down `times`. */
  take(which: Injection): number | null {
    if (which.status === null) return null;
    const status = which.status;
    which.rejected++;
    if (which.times !== null && --which.times <= 0) {
      which.status = null;
      which.times = null;
    }
    return status;
  }

  reset(): void {
    this.webhook = { status: null, times: null, rejected: 0 };
    this.smtp = { status: null, times: null, rejected: 0 };
  }

  view() {
    return {
      webhookStatus: this.webhook.status,
      webhookTimes: this.webhook.times,
      webhookRejected: this.webhook.rejected,
      smtpStatus: this.smtp.status,
      smtpTimes: this.smtp.times,
      smtpRejected: this.smtp.rejected,
    };
  }

  /** Apply a POST /control body; returns an error text for bad input. */
  update(body: unknown): string | null {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'expected a JSON object';
    const b = body as Record<string, unknown>;
    const known = ['reset', 'webhookStatus', 'webhookTimes', 'smtpStatus', 'smtpTimes'];
    const unknown = Object.keys(b).filter((k) => !known.includes(k));
    if (unknown.length) return `unknown field(s): ${unknown.join(', ')}; expected ${known.join(', ')}`;
    const status = (k: string, lo: number, hi: number): number | null | undefined | string => {
      const v = b[k];
      if (v === undefined || v === null) return v;
      return Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi
        ? (v as number)
        : `${k}: expected an integer ${lo}..${hi} or null, got ${JSON.stringify(v)}`;
    };
    const times = (k: string): number | null | undefined | string => {
      const v = b[k];
      if (v === undefined || v === null) return v;
      return Number.isInteger(v) && (v as number) >= 1 ? (v as number) : `${k}: expected an integer >= 1`;
    };
    const ws = status('webhookStatus', 100, 599);
    const wt = times('webhookTimes');
    const ss = status('smtpStatus', 400, 599);
    const st = times('smtpTimes');
    for (const v of [ws, wt, ss, st]) if (typeof v === 'string') return v;
    if (b.reset === true) this.reset();
    if (ws !== undefined) this.webhook = { ...this.webhook, status: ws as number | null, times: null };
    if (wt !== undefined) this.webhook.times = wt as number | null;
    if (ss !== undefined) this.smtp = { ...this.smtp, status: ss as number | null, times: null };
    if (st !== undefined) this.smtp.times = st as number | null;
    return null;
  }
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        // Stop keeping it but drain it, so the client still reads the 413.
        req.removeAllListeners('data');
        req.resume();
        reject(new HttpError(413, `body larger than ${max} bytes`));
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    'content-type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (e) => reject(e));
    server.once('listening', () => resolve());
    server.listen(port, host);
  });
}

/** Start both receivers; resolves once both listen (ports are the real ones when 0 was asked). */
export async function startSink(config: SinkConfig): Promise<RunningSink> {
  const log = config.log ?? (() => undefined);
  const maxMail = config.maxMailBytes ?? 10 * 1024 * 1024;
  const maxWebhook = config.maxWebhookBytes ?? 1024 * 1024;
  const store = await MessageStore.open(config.dir);
  const control = new Control();

  const smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    banner: 'wharf notify sink',
    size: maxMail,
    logger: false,
    closeTimeout: 2000,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => {
        if (!stream.sizeExceeded) chunks.push(c);
      });
      stream.on('error', (e) => callback(e));
      stream.on('end', () => {
        const fail = (code: number, text: string) =>
          callback(Object.assign(new Error(text), { responseCode: code }));
        if (stream.sizeExceeded) return fail(552, `message exceeds ${maxMail} bytes`);
        const injected = control.take(control.smtp);
        if (injected !== null) {
          log({ event: 'smtp-rejected', status: injected });
          return fail(injected, 'rejected by the sink (failure injection)');
        }
        const raw = Buffer.concat(chunks).toString('utf8');
        const mail = parseMail(raw);
        const env = session.envelope;
        const notice: Notice = {
          kind: 'smtp',
          id: randomUUID(),
          receivedAt: new Date().toISOString(),
          from: env.mailFrom ? env.mailFrom.address : '',
          to: env.rcptTo.map((r) => r.address),
          subject: mail.subject,
          body: mail.body,
          headers: mail.headers,
          size: Buffer.byteLength(raw),
          remote: session.remoteAddress,
        };
        notice.category = noticeCategory(notice);
        store.append(notice).then(
          () => {
            log({ event: 'smtp', from: notice.from, to: notice.to, subject: notice.subject });
            callback(null, `queued as ${notice.id}`);
          },
          (e: Error) => fail(451, `sink could not store the message: ${e.message}`),
        );
      });
    },
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sink');
    const route = `${req.method} ${url.pathname}`;
    if (route === 'GET /health') {
      return send(res, 200, {
        ok: true,
        node: process.version,
        smtpPort: smtpPort(),
        httpPort: httpPort(),
        ...control.view(),
      });
    }
    if (route === 'GET /messages') {
      const kind = url.searchParams.get('kind');
      const category = url.searchParams.get('category');
      const all = await store.list();
      return send(
        res,
        200,
        all.filter(
          (n) => (!kind || n.kind === kind) && (!category || (n.category ?? noticeCategory(n)) === category),
        ),
      );
    }
    if (route === 'DELETE /messages') return send(res, 200, { cleared: await store.clear() });
    if (route === 'GET /control') return send(res, 200, control.view());
    if (route === 'DELETE /control') {
      control.reset();
      return send(res, 200, control.view());
    }
    if (route === 'POST /control') {
      let body: unknown;
      try {
        body = JSON.parse((await readBody(req, 64 * 1024)).toString('utf8'));
      } catch {
        throw new HttpError(400, 'control: body is not JSON');
      }
      const error = control.update(body);
      if (error) throw new HttpError(400, `control: ${error}`);
      log({ event: 'control', ...control.view() });
      return send(res, 200, control.view());
    }
    if (['/health', '/messages', '/control'].includes(url.pathname))
      throw new HttpError(405, 'method not allowed');
    if (req.method !== 'POST' && req.method !== 'PUT') throw new HttpError(404, 'not found');

    // A webhook.
    const raw = await readBody(req, maxWebhook);
    const injected = control.take(control.webhook);
    if (injected !== null) {
      log({ event: 'webhook-rejected', path: url.pathname, status: injected });
      return send(res, injected, 'rejected by the sink (failure injection)');
    }
    const contentType = req.headers['content-type'];
    let body: unknown = raw.toString('utf8');
    if (isJsonType(contentType)) {
      try {
        body = JSON.parse(body as string);
      } catch {
        throw new HttpError(400, 'invalid_payload: content-type says JSON but the body is not JSON');
      }
    }
    const notice: Notice = {
      kind: 'webhook',
      id: randomUUID(),
      receivedAt: new Date().toISOString(),
      method: req.method,
      path: url.pathname,
      headers: contentType === undefined ? {} : { 'content-type': contentType },
      body,
      remote: req.socket.remoteAddress,
    };
    notice.category = noticeCategory(notice);
    await store.append(notice);
    log({ event: 'webhook', path: notice.path });
    return send(res, 200, 'ok'); // what Slack answers
  }

  const http = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      const status = e instanceof HttpError ? e.status : 500;
      if (!res.headersSent) send(res, status, { error: e instanceof Error ? e.message : String(e) });
      else res.destroy();
    });
  });

  const port = (s: Server) => (s.address() as AddressInfo | null)?.port ?? 0;
  const smtpPort = () => port(smtp.server);
  const httpPort = () => port(http);

  // smtp-server re-emits its socket errors on itself: without a listener they would crash the sink.
  smtp.on('error', (e) => log({ event: 'smtp-error', error: e.message }));
  try {
    await listen(smtp.server, config.smtpPort, config.bind);
    await listen(http, config.httpPort, config.bind);
  } catch (e) {
    smtp.server.close();
    http.close();
    await store.close();
    throw e;
  }

  return {
    smtpPort: smtpPort(),
    httpPort: httpPort(),
    messagesFile: store.file,
    async close() {
      http.closeAllConnections();
      await Promise.all([
        new Promise<void>((r) => smtp.close(() => r())),
        new Promise<void>((r) => http.close(() => r())),
      ]);
      await store.close();
    },
  };
}
