// What the lab's notify sink records, and the pure helpers around it: parse a raw e-mail into
// subject/body, read the JSON-lines store, and print a table for `wharf lab notices`.
// This file is bundled into the sink (Node 18, no npm packages there): node builtins only.

/** One e-mail received by the sink's SMTP server. `from`/`to` are the SMTP envelope. */
export interface SmtpNotice {
  kind: 'smtp';
  id: string;
  receivedAt: string;
  from: string;
  to: string[];
  subject: string;
  body: string;
  /** Message headers, names lower-cased; a repeated header keeps its last value. */
  headers: Record<string, string>;
  size: number;
  remote?: string;
  /** Stored by the sink since issue 11 (older records lack it: noticeCategory computes it). */
  category?: NoticeCategory;
}

/** One HTTP request received on a webhook path (any POST/PUT other than the sink's own API). */
export interface WebhookNotice {
  kind: 'webhook';
  id: string;
  receivedAt: string;
  method: string;
  path: string;
  headers: { 'content-type'?: string };
  /** Parsed JSON when the request said it was JSON, the raw text otherwise. */
  body: unknown;
  remote?: string;
  category?: NoticeCategory;
}

export type Notice = SmtpNotice | WebhookNotice;

/**
 * What a message is about: an upload notice (the notifier), an alert (Alertmanager, or a wharf
 * alert: backup-refused, wharf watch), or something else. The sink stores it with each message
 * (`category`), so scenarios and `wharf lab notices` tell them apart.
 */
export type NoticeCategory = 'upload' | 'alert' | 'other';

/** Alertmanager's Slack username (src/render/monitoring.ts ALERT_USERNAME; a unit test keeps them equal). */
export const ALERTMANAGER_USERNAME = 'wharf-alertmanager';

const obj = (v: unknown): Record<string, unknown> | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;

export function noticeCategory(n: Notice): NoticeCategory {
  if (n.kind === 'smtp') {
    if (n.headers['x-wharf-alert'] || n.headers['x-wharf-event']) return 'alert';
    return /^wharf: new upload\b/.test(n.subject) ? 'upload' : 'other';
  }
  const b = obj(n.body);
  if (!b) return 'other';
  if (b.username === ALERTMANAGER_USERNAME) return 'alert';
  const event = obj(b.wharf)?.event ?? b.event;
  if (event === 'upload') return 'upload';
  return typeof event === 'string' ? 'alert' : 'other';
}

/** An Alertmanager notification: its status and alert name (null for any other message). */
export function alertOf(n: Notice): { status: 'firing' | 'resolved'; alertname: string } | null {
  let status: string | undefined;
  let alertname: string | undefined;
  if (n.kind === 'smtp') {
    status = n.headers['x-wharf-alert'];
    alertname = n.headers['x-wharf-alertname'];
  } else {
    const b = obj(n.body);
    if (b?.username !== ALERTMANAGER_USERNAME) return null;
    const title = obj((b.attachments as unknown[] | undefined)?.[0])?.title;
    const m = typeof title === 'string' ? /\[(FIRING|RESOLVED)\]\s+(\S+)/.exec(title) : null;
    status = m?.[1]?.toLowerCase();
    alertname = m?.[2];
  }
  if ((status !== 'firing' && status !== 'resolved') || !alertname) return null;
  return { status, alertname };
}

export interface ParsedMail {
  headers: Record<string, string>;
  subject: string;
  body: string;
}

/**
 * Split a raw RFC 5322 message: headers until the first blank line (folded lines joined), the rest
 * is the body. Decodes RFC 2047 encoded words in the subject and a base64 / quoted-printable
 * single-part body; a multipart body is kept as it came.
 */
export function parseMail(raw: string): ParsedMail {
  const text = raw.replace(/\r\n/g, '\n');
  const blank = text.indexOf('\n\n');
  const head = blank === -1 ? text : text.slice(0, blank);
  let body = blank === -1 ? '' : text.slice(blank + 2);
  const headers: Record<string, string> = {};
  let last: string | undefined;
  for (const line of head.split('\n')) {
    if (/^[ \t]/.test(line) && last !== undefined) {
      headers[last] += ' ' + line.trim();
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    last = line.slice(0, colon).trim().toLowerCase();
    headers[last] = line.slice(colon + 1).trim();
  }
  // SMTP dot-stuffing is undone by the server; a trailing newline is transport, not content.
  const cte = (headers['content-transfer-encoding'] ?? '').toLowerCase();
  const multipart = /^multipart\//i.test(headers['content-type'] ?? '');
  if (!multipart && cte === 'base64') body = Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  else if (!multipart && cte === 'quoted-printable') body = decodeQuotedPrintable(body);
  return { headers, subject: decodeWords(headers['subject'] ?? ''), body: body.replace(/\n+$/, '') };
}

function decodeQuotedPrintable(s: string): string {
  const bytes: number[] = [];
  const soft = s.replace(/=\n/g, '');
  for (let i = 0; i < soft.length; i++) {
    const hex = soft.slice(i + 1, i + 3);
    if (soft[i] === '=' && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(soft[i] as string, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** RFC 2047 encoded words (`=?UTF-8?B?…?=` / `=?UTF-8?Q?…?=`); other charsets are read as UTF-8. */
export function decodeWords(s: string): string {
  return s
    .replace(/\?=\s+=\?/g, '?==?') // whitespace between adjacent encoded words is not content
    .replace(/=\?[^?]+\?([BbQq])\?([^?]*)\?=/g, (_m, enc: string, data: string) =>
      enc.toUpperCase() === 'B'
        ? Buffer.from(data, 'base64').toString('utf8')
        : decodeQuotedPrintable(data.replace(/_/g, ' ')),
    );
}

/** The content-type says JSON (`application/json`, `application/x+json`, …). */
export const isJsonType = (contentType: string | undefined): boolean =>
  /^application\/([\w.+-]+\+)?json\b/i.test((contentType ?? '').trim());

function isNotice(v: unknown): v is Notice {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  if (typeof o.receivedAt !== 'string') return false;
  if (o.kind === 'smtp')
    return (
      typeof o.from === 'string' &&
      Array.isArray(o.to) &&
      typeof o.subject === 'string' &&
      typeof o.body === 'string'
    );
  if (o.kind === 'webhook') return typeof o.path === 'string' && 'body' in o;
  return false;
}

/**
 * Parse the sink's store (one JSON object per line). A last line without its newline is a write
 * cut short by a crash and is skipped; any other bad line is an error naming its line number.
 */
export function readNotices(raw: string): Notice[] {
  const lines = raw.split('\n');
  const notices: Notice[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    const unterminated = i === lines.length - 1;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      if (unterminated) return;
      throw new Error(`messages.jsonl:${i + 1}: not JSON: ${line.slice(0, 80)}`);
    }
    if (!isNotice(value)) {
      if (unterminated) return;
      throw new Error(`messages.jsonl:${i + 1}: not a notice: ${line.slice(0, 80)}`);
    }
    notices.push(value);
  });
  return notices;
}

/** One line of text that says what a notice was about (Slack `text`, the mail subject, …). */
export function noticeText(n: Notice): string {
  if (n.kind === 'smtp') return n.subject || n.body.split('\n')[0] || '';
  const b = n.body;
  if (typeof b === 'string') return b;
  if (typeof b === 'object' && b !== null) {
    const o = b as Record<string, unknown>;
    for (const key of ['text', 'message', 'summary']) if (typeof o[key] === 'string') return o[key];
    const att = obj((o.attachments as unknown[] | undefined)?.[0]); // Slack attachments (Alertmanager)
    if (att && typeof att.title === 'string') return `${att.title}: ${String(att.text ?? '')}`;
  }
  return JSON.stringify(b);
}

const oneLine = (s: string, max: number): string => {
  const flat = s.replace(/\s+/g, ' ').trim();
  return flat.length > max ? flat.slice(0, max - 1) + '…' : flat;
};

/** A plain text table, newest last, for `wharf lab notices`. */
export function formatNotices(notices: readonly Notice[]): string {
  if (notices.length === 0) return 'no notices received';
  const rows = notices.map((n, i) => [
    String(i + 1),
    n.receivedAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
    n.kind,
    n.category ?? noticeCategory(n),
    oneLine(n.kind === 'smtp' ? `${n.from} → ${n.to.join(', ')}` : `${n.method} ${n.path}`, 48),
    oneLine(noticeText(n), 72),
  ]);
  const header = ['#', 'received', 'kind', 'category', 'from → to / request', 'text'];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] as string).length)));
  const fmt = (r: string[]) =>
    r
      .map((cell, c) => cell.padEnd(widths[c] as number))
      .join('  ')
      .trimEnd();
  return [fmt(header), fmt(widths.map((w) => '-'.repeat(w))), ...rows.map(fmt)].join('\n');
}
