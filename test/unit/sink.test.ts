import { describe, expect, it } from 'vitest';
import {
  ALERTMANAGER_USERNAME,
  alertOf,
  formatNotices,
  noticeCategory,
  noticeText,
  parseMail,
  readNotices,
  sinkUnit,
  SINK_BUNDLE_PATH,
  type Notice,
} from '../../src/lab/sink/index.ts';
import { decodeWords, isJsonType } from '../../src/lab/sink/notice.ts';
import { ALERT_USERNAME } from '../../src/render/monitoring.ts';

const smtp: Notice = {
  kind: 'smtp',
  id: '1',
  receivedAt: '2026-11-25T10:00:00.123Z',
  from: 'wharf@example.org',
  to: ['ops@example.org'],
  subject: 'upload: alice/report.csv',
  body: 'alice uploaded report.csv (12 bytes)',
  headers: {},
  size: 80,
};
const hook: Notice = {
  kind: 'webhook',
  id: '2',
  receivedAt: '2026-11-25T10:00:01.000Z',
  method: 'POST',
  path: '/hooks/upload',
  headers: { 'content-type': 'application/json' },
  body: { text: 'alice uploaded report.csv' },
};

describe('parseMail', () => {
  it('splits headers from body at the first blank line, CRLF or LF', () => {
    const m = parseMail('From: a@x\r\nTo: b@y\r\nSubject: Upload done\r\n\r\nline 1\r\n\r\nline 3\r\n');
    expect(m.subject).toBe('Upload done');
    expect(m.headers).toEqual({ from: 'a@x', to: 'b@y', subject: 'Upload done' });
    expect(m.body).toBe('line 1\n\nline 3');
  });

  it('joins folded header lines and lower-cases header names', () => {
    const m = parseMail('SUBJECT: a long\n  folded subject\nX-Thing: 1\n\nbody');
    expect(m.subject).toBe('a long folded subject');
    expect(m.headers['x-thing']).toBe('1');
  });

  it('decodes encoded-word subjects and base64 / quoted-printable bodies', () => {
    const b64 = Buffer.from('fichier reçu: été.csv\n').toString('base64');
    const m = parseMail(
      `Subject: =?UTF-8?B?w6l0w6k=?= =?utf-8?Q?_re=C3=A7u?=\nContent-Transfer-Encoding: base64\n\n${b64}\n`,
    );
    expect(m.subject).toBe('été reçu');
    expect(m.body).toBe('fichier reçu: été.csv');
    const qp = parseMail(
      'Content-Transfer-Encoding: quoted-printable\n\nre=C3=A7u a very long=\n line=3D1\n',
    );
    expect(qp.body).toBe('reçu a very long line=1');
  });

  it('keeps a multipart body as it came, and copes with a message without body', () => {
    const raw =
      'Content-Type: multipart/mixed; boundary=X\nContent-Transfer-Encoding: base64\n\n--X\nhi\n--X--';
    expect(parseMail(raw).body).toBe('--X\nhi\n--X--');
    expect(parseMail('Subject: only headers')).toEqual({
      headers: { subject: 'only headers' },
      subject: 'only headers',
      body: '',
    });
  });

  it('leaves plain text alone', () => {
    expect(decodeWords('no = encoded ? words')).toBe('no = encoded ? words');
  });
});

describe('isJsonType', () => {
  it('recognises JSON media types only', () => {
    expect(isJsonType('application/json')).toBe(true);
    expect(isJsonType('application/json; charset=utf-8')).toBe(true);
    expect(isJsonType('application/vnd.slack+json')).toBe(true);
    expect(isJsonType('application/x-www-form-urlencoded')).toBe(false);
    expect(isJsonType('text/plain')).toBe(false);
    expect(isJsonType(undefined)).toBe(false);
  });
});

describe('readNotices', () => {
  const line = (n: Notice) => JSON.stringify(n) + '\n';

  it('reads one notice per line and skips blank lines', () => {
    expect(readNotices(line(smtp) + '\n' + line(hook))).toEqual([smtp, hook]);
    expect(readNotices('')).toEqual([]);
  });

  it('skips a last line cut short by a crash', () => {
    expect(readNotices(line(smtp) + line(hook).slice(0, 30))).toEqual([smtp]);
  });

  it('rejects a corrupt line in the middle, naming its line number', () => {
    expect(() => readNotices(line(smtp) + '{oops\n' + line(hook))).toThrow(/messages\.jsonl:2: not JSON/);
    expect(() => readNotices('{"kind":"fax","receivedAt":"x"}\n')).toThrow(/messages\.jsonl:1: not a notice/);
  });
});

describe('noticeText / formatNotices', () => {
  it('takes the Slack text, the subject, or the raw body', () => {
    expect(noticeText(hook)).toBe('alice uploaded report.csv');
    expect(noticeText(smtp)).toBe('upload: alice/report.csv');
    expect(noticeText({ ...hook, body: 'plain' })).toBe('plain');
    expect(noticeText({ ...hook, body: { file: 'a' } })).toBe('{"file":"a"}');
    expect(noticeText({ ...smtp, subject: '' })).toBe('alice uploaded report.csv (12 bytes)');
  });

  it('prints an aligned table, one row per notice', () => {
    const table = formatNotices([smtp, hook]).split('\n');
    expect(table).toHaveLength(4);
    expect(table[0]).toMatch(/^#\s+received\s+kind\s+category\s+from → to \/ request\s+text$/);
    expect(table[2]).toContain(
      '2026-11-25 10:00:00Z  smtp     other     wharf@example.org → ops@example.org',
    );
    expect(table[3]).toContain('webhook  other     POST /hooks/upload');
    expect(table[3]).toMatch(/alice uploaded report\.csv$/);
    const col = (table[0] as string).indexOf('text');
    expect((table[2] as string).slice(col)).toBe('upload: alice/report.csv');
  });

  it('shortens long text to one line', () => {
    const long = formatNotices([{ ...hook, body: { text: 'x'.repeat(200) + '\nsecond' } }]);
    expect(long.split('\n')).toHaveLength(3);
    expect(long).toMatch(/x…$/);
    expect(formatNotices([])).toBe('no notices received');
  });
});

describe('sinkUnit', () => {
  it('runs the bundle with the ports from the topology', () => {
    const unit = sinkUnit({ smtpPort: 25, httpPort: 9000 });
    expect(unit).toContain(`ExecStart=/usr/bin/node ${SINK_BUNDLE_PATH}`);
    expect(unit).toContain('Environment=SINK_SMTP_PORT=25\n');
    expect(unit).toContain('Environment=SINK_HTTP_PORT=9000\n');
    expect(unit).toMatch(/^Type=simple$/m);
    expect(unit).toMatch(/^Restart=always$/m);
    expect(unit).toMatch(/^StateDirectory=wharf-sink$/m);
  });
});

describe('noticeCategory / alertOf: alerts told apart from upload notices', () => {
  const am = (title: string): Notice => ({
    ...hook,
    body: { username: ALERTMANAGER_USERNAME, channel: '#wharf', attachments: [{ title, text: 'firing: x' }] },
  });
  it('Alertmanager by webhook (Slack username) and by mail (X-Wharf-Alert headers)', () => {
    expect(ALERTMANAGER_USERNAME).toBe(ALERT_USERNAME);
    const fired = am('wharf scen [FIRING] WharfBackendDown');
    expect(noticeCategory(fired)).toBe('alert');
    expect(alertOf(fired)).toEqual({ status: 'firing', alertname: 'WharfBackendDown' });
    expect(alertOf(am('wharf scen [RESOLVED] WharfLsyncdDown'))).toEqual({
      status: 'resolved',
      alertname: 'WharfLsyncdDown',
    });
    const mail: Notice = {
      ...smtp,
      headers: { 'x-wharf-alert': 'resolved', 'x-wharf-alertname': 'WharfBackupFailed' },
    };
    expect(noticeCategory(mail)).toBe('alert');
    expect(alertOf(mail)).toEqual({ status: 'resolved', alertname: 'WharfBackupFailed' });
    expect(noticeText(fired)).toBe('wharf scen [FIRING] WharfBackendDown: firing: x');
  });
  it('upload notices and wharf alerts (backup-refused) keep their own category', () => {
    const upload: Notice = { ...hook, body: { text: 'x', wharf: { event: 'upload', path: '/srv/a' } } };
    expect(noticeCategory(upload)).toBe('upload');
    expect(alertOf(upload)).toBeNull();
    expect(noticeCategory({ ...hook, body: { wharf: { event: 'backup-refused' } } })).toBe('alert');
    expect(noticeCategory({ ...smtp, subject: 'wharf: new upload a.bin' })).toBe('upload');
    expect(noticeCategory({ ...smtp, headers: { 'x-wharf-event': 'backup-refused' } })).toBe('alert');
    expect(noticeCategory(hook)).toBe('other');
  });
});
