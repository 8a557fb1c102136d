// Upload notices: inotify on the upload tree → spool file per complete upload → a sender loop that
// delivers by webhook (Slack-compatible JSON) and SMTP with curl, deleting a notice only once every
// channel accepted it (pitfall 8: final names only, once per file; never lose a notice silently).
import type { Topology } from '../topology/model.ts';
import { sftpNode } from '../topology/model.ts';
import { addressOf, type Inventory } from '../topology/inventory.ts';
import { InputError } from '../core/errors.ts';
import type { RenderedFile } from './types.ts';
import { CHECKS, file, header, lines, unitCheck } from './util.ts';

export const NOTIFY_SCRIPT = '/usr/local/lib/wharf/notify.sh';
export const NOTIFY_ENV = '/etc/wharf/notify.env';
export const NOTIFY_UNIT = '/etc/systemd/system/wharf-notify.service';
export const NOTIFY_SPOOL = '/var/spool/wharf-notify';

/** The node that sends notices: the main SFTP node, or the backup node (notices per snapshot). */
export function notifierNode(t: Topology): string {
  return t.notifications.on === 'backup' ? t.replication.backup.to : sftpNode(t, 'main').name;
}

function nodeAddress(inv: Inventory, node: string, what: string): string {
  try {
    return addressOf(inv, node, 'lan');
  } catch {
    throw new InputError(
      `notifications.${what}.node: ${node} has no lan address in the inventory (set notifications in the inventory)`,
    );
  }
}

export interface NotifyTargets {
  webhookUrl?: string;
  /** The URL came from the inventory: a secret (Slack hook URLs carry a token). */
  webhookSecret: boolean;
  smtpUrl?: string;
}

export function notifyTargets(t: Topology, inv: Inventory): NotifyTargets {
  const n = t.notifications;
  const out: NotifyTargets = { webhookSecret: false };
  if (n.webhook.enabled) {
    if (inv.notifications?.webhookUrl) {
      out.webhookUrl = inv.notifications.webhookUrl;
      out.webhookSecret = true;
    } else if (n.webhook.url) out.webhookUrl = n.webhook.url;
    else if (n.webhook.node)
      out.webhookUrl = `http://${nodeAddress(inv, n.webhook.node, 'webhook')}:${n.webhook.port}${n.webhook.path}`;
  }
  if (n.smtp.enabled) {
    if (inv.notifications?.smtp)
      out.smtpUrl = `smtp://${inv.notifications.smtp.host}:${inv.notifications.smtp.port}`;
    else if (n.smtp.host) out.smtpUrl = `smtp://${n.smtp.host}:${n.smtp.port}`;
    else if (n.smtp.node) out.smtpUrl = `smtp://${nodeAddress(inv, n.smtp.node, 'smtp')}:${n.smtp.port}`;
  }
  return out;
}

/** systemd EnvironmentFile value: double-quoted, backslash and quote escaped. */
const envq = (s: string): string => `"${s.replace(/[\\"]/g, (c) => '\\' + c)}"`;

export function renderNotifyEnv(t: Topology, inv: Inventory, node: string): RenderedFile {
  const n = t.notifications;
  const targets = notifyTargets(t, inv);
  const text = lines(
    header(t).trimEnd(),
    `WHARF_NODE=${envq(node)}`,
    `WHARF_STACK=${envq(t.name)}`,
    '# Upload tree to watch; empty on the backup node (backup.sh queues one notice per new file).',
    `WATCH_DIR=${envq(n.on === 'main' ? t.sftp.chrootBase : '')}`,
    `IGNORE_DIR=${envq(t.replication.lsyncd.tempDir)}`,
    `SPOOL_DIR=${envq(NOTIFY_SPOOL)}`,
    `WEBHOOK_URL=${envq(targets.webhookUrl ?? '')}`,
    `WEBHOOK_FORMAT=${envq(n.webhook.format)}`,
    `SMTP_URL=${envq(targets.smtpUrl ?? '')}`,
    `SMTP_FROM=${envq(n.smtp.from)}`,
    `SMTP_TO=${envq(n.smtp.to.join(' '))}`,
    `RETRIES=${envq(String(n.retries))}`,
  );
  return file(NOTIFY_ENV, text, {
    mode: 0o600,
    ...(targets.webhookSecret ? { secret: true } : {}),
    notify: ['wharf-notify'],
  });
}

// The daemon. Bash + inotify-tools + curl: present on every node the runbook installs.
const SCRIPT = String.raw`#!/bin/bash
# wharf upload notices. Config: ${NOTIFY_ENV} (WATCH_DIR, SPOOL_DIR, WEBHOOK_URL, SMTP_URL, ...).
# The watcher writes one spool file per complete upload; the sender delivers and only then deletes.
set -uo pipefail

: "${'${'}SPOOL_DIR:?}" "${'${'}WHARF_NODE:?}"
mkdir -p "$SPOOL_DIR" "${'${'}SPOOL_DIR%/}.counters"
RETRIES=${'${'}RETRIES:-5}
PARALLEL=${'${'}PARALLEL:-8}

log() { printf 'wharf-notify: %s\n' "$*" >&2; }

json_escape() {
  local s=$1 out='' c i
  s=${'${'}s//\\/\\\\}
  s=${'${'}s//\"/\\\"}
  s=${'${'}s//$'\n'/\\n}
  s=${'${'}s//$'\r'/\\r}
  s=${'${'}s//$'\t'/\\t}
  for (( i = 0; i < ${'${'}#s}; i++ )); do
    c=${'${'}s:i:1}
    if [[ $c < ' ' ]]; then printf -v c '\\u%04x' "'$c"; fi
    out+=$c
  done
  printf '%s' "$out"
}

# queue SIZE EVENT PATH: write a notice atomically (temp name, then rename). EVENT is inotify's
# (CLOSE_WRITE,CLOSE or MOVED_TO); an old two-line notice (SIZE, PATH) is still understood.
queue() {
  local tmp="$SPOOL_DIR/.$$.$RANDOM.tmp"
  printf '%s\n%s\n%s' "$1" "$2" "$3" >"$tmp" && mv "$tmp" "$SPOOL_DIR/$(date +%s%N).$$.$RANDOM.notice" &&
    count queued
}

# count NAME: one byte appended (atomic, O_APPEND) per event; the file's size is a counter that
# wharf's metrics generator reports (uploads noticed, notices delivered)
# (next to the spool, not in it: the spool holds notices only)
count() { printf x >>"${'${'}SPOOL_DIR%/}.counters/$1"; }

# sftp_verdict USER REL SINCE: what the SFTP server logged last about the file REL (chroot-relative)
# of USER since SINCE (epoch s): "closed" (the client closed it after writing: complete), "forced"
# (the session ended with the file still open: a cut upload), or nothing (no record, e.g. not
# written over SFTP). A close after reading only ("written 0") says nothing about completeness.
sftp_verdict() {
  local uid
  uid=$(id -u -- "$1" 2>/dev/null) || return 0
  journalctl -q --no-pager -t internal-sftp "_UID=$uid" -o cat --since "@$3" 2>/dev/null |
    REL=$2 awk '
      # the name as the client sent it: absolute, or relative to the chroot root ("upload/x", "./x")
      function norm(p) { gsub(/\/(\.\/)+/, "/", p); sub(/^(\.?\/+)+/, "", p); gsub(/\/+/, "/", p); return p }
      BEGIN { rel = norm(ENVIRON["REL"]) }
      /^(forced )?close "/ {
        name = substr($0, index($0, "\"") + 1); sub(/" bytes read [0-9]+ written [0-9]+$/, "", name)
        if (norm(name) != rel) next
        if ($1 == "forced") v = "forced"; else if ($0 !~ / written 0$/) v = "closed"
      }
      END { print v }'
}

# Watch the upload tree: a file is complete when its writer closes it or when it is renamed into its
# final name (rsync and lsyncd write ".name.XXXXXX" or into the temp dir, then rename).
watch() {
  local path base
  local ev
  inotifywait -m -r -q -e close_write,moved_to --format '%e%w%f%0' --no-newline \
    --exclude "(^|/)(\.[^/]*|$IGNORE_DIR)(/|$)" "$WATCH_DIR" |
    while IFS= read -r -d '' path; do
      ev=${'${'}path%%/*}
      path=${'${'}path#"$ev"}
      base=${'${'}path##*/}
      # temp names: rsync's .name.XXXXXX, WinSCP's name.filepart, other clients' .part / .tmp
      case "$base" in .* | *.part | *.filepart | *.tmp) continue ;; esac
      [[ -f "$path" ]] || continue
      queue "$(stat -c %s -- "$path" 2>/dev/null || echo 0)" "$ev" "$path"
    done
  log "inotifywait ended"
  return 1
}

send_webhook() { # SIZE PATH USER
  local text body
  text="wharf: new upload on $WHARF_NODE: $2 ($1 bytes, user $3)"
  if [[ "$WEBHOOK_FORMAT" == slack ]]; then
    body=$(printf '{"text":"%s","username":"wharf","wharf":{"event":"upload","node":"%s","path":"%s","size":%s,"user":"%s"}}' \
      "$(json_escape "$text")" "$(json_escape "$WHARF_NODE")" "$(json_escape "$2")" "$1" "$(json_escape "$3")")
  else
    body=$(printf '{"event":"upload","node":"%s","path":"%s","size":%s,"user":"%s"}' \
      "$(json_escape "$WHARF_NODE")" "$(json_escape "$2")" "$1" "$(json_escape "$3")")
  fi
  # The URL may carry a token: pass it as curl config on stdin, not on the command line.
  curl -fsS -m 10 -o /dev/null -H 'Content-Type: application/json' --data-binary "$body" -K - \
    <<<"url = \"$WEBHOOK_URL\"" 2>&1 >/dev/null
}

send_mail() { # SIZE PATH USER
  local rcpt=() to msg
  for to in $SMTP_TO; do rcpt+=(--mail-rcpt "$to"); done
  msg=$(printf 'From: %s\r\nTo: %s\r\nSubject: wharf: new upload %s\r\nDate: %s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nNew upload on %s\r\nPath: %s\r\nSize: %s bytes\r\nUser: %s\r\n' \
    "$SMTP_FROM" "${'${'}SMTP_TO// /, }" "${'${'}2##*/}" "$(date -R)" "$WHARF_NODE" "$2" "$1" "$3")
  printf '%s' "$msg" | curl -fsS -m 20 --url "$SMTP_URL" --mail-from "$SMTP_FROM" "${'${'}rcpt[@]}" -T - 2>&1 >/dev/null
}

# deliver FILE: every configured channel once (a .sent-<channel> marker avoids duplicates on retry).
# Returns 0 delivered (or dropped: a cut upload), 1 a channel failed, 2 not yet (wait for the log).
deliver() {
  local f=$1 size ev path user rest ok=0 born verdict
  { IFS= read -r size; IFS= read -r ev; path=$(cat); } <"$f" || return 1
  if [[ "$ev" == /* ]]; then path=$ev${'${'}path:+$'\n'$path}; ev=; fi # old format: SIZE, PATH
  rest=${'${'}path#"${'${'}WATCH_DIR:-/}"/}
  user=${'${'}rest%%/*}
  # A file closed after a write: complete only if the SFTP client closed it. A cut upload (client
  # killed, connection lost) is closed by the server as its session ends: "forced close" in its log.
  if [[ "$ev" == CLOSE_WRITE* && -n "${'${'}WATCH_DIR:-}" ]]; then
    born=${'${'}f##*/}
    born=$(( ${'${'}born%%.*} / 1000000000 ))
    verdict=$(sftp_verdict "$user" "/${'${'}rest#*/}" $(( born - 30 )))
    if [[ "$verdict" == forced ]]; then
      rm -f "$f" "$f.sent-webhook" "$f.sent-smtp"
      log "not notified: $path is a partial upload (the SFTP session ended before the client closed it)"
      return 0
    fi
    # no record yet: the log line may still be on its way; after a few seconds go ahead (a file
    # written by something other than SFTP has no record at all)
    if [[ -z "$verdict" ]] && (( $(date +%s) - born < 3 )); then return 2; fi
  fi
  if [[ -n "$WEBHOOK_URL" && ! -e "$f.sent-webhook" ]]; then
    if out=$(send_webhook "$size" "$path" "$user"); then : >"$f.sent-webhook"; else log "webhook failed for $path: $out"; ok=1; fi
  fi
  if [[ -n "$SMTP_URL" && ! -e "$f.sent-smtp" ]]; then
    if out=$(send_mail "$size" "$path" "$user"); then : >"$f.sent-smtp"; else log "smtp failed for $path: $out"; ok=1; fi
  fi
  if (( ok == 0 )); then rm -f "$f" "$f.sent-webhook" "$f.sent-smtp"; count delivered; log "notified $path"; fi
  return $ok
}

# deliver_retrying FILE: deliver, backing off on failure (1, 2, 4 … 30 s). After RETRIES failures
# the notice stays in the spool (logged as an error) and is tried again on the next pass.
deliver_retrying() {
  local f=$1 attempt=0 delay=1
  while :; do
    deliver "$f"
    case $? in 0 | 2) return 0 ;; esac
    attempt=$(( attempt + 1 ))
    if (( attempt > RETRIES )); then log "ERROR: $f not delivered after $RETRIES retries; kept in spool"; return 1; fi
    sleep "$delay"; delay=$(( delay * 2 > 30 ? 30 : delay * 2 ))
  done
}

# Sender: each pass takes the spool oldest first, PARALLEL notices in flight at once (one at a time,
# a burst of uploads outran it: ~6 notices/s with a curl per channel each), and waits for all of
# them before the next pass, so no notice is ever sent by two jobs. Nothing is dropped.
sender() {
  local f running
  shopt -s nullglob
  while :; do
    running=0
    for f in "$SPOOL_DIR"/*.notice; do
      if (( running >= PARALLEL )); then wait -n; running=$(( running - 1 )); fi
      deliver_retrying "$f" &
      running=$(( running + 1 ))
    done
    wait
    sleep 1
  done
}

if [[ -n "${'${'}WATCH_DIR:-}" ]]; then
  watch &
  watcher=$!
  trap 'kill $watcher 2>/dev/null' EXIT
  sender &
  # Either loop ending is a failure: systemd restarts the service.
  wait -n
  exit 1
fi
sender
`;

export function renderNotifyScript(t: Topology): RenderedFile {
  const text = SCRIPT.replace('#!/bin/bash\n', '#!/bin/bash\n' + header(t));
  return file(NOTIFY_SCRIPT, text, { mode: 0o755, check: CHECKS.bash, notify: ['wharf-notify'] });
}

export function renderNotifyUnit(t: Topology): RenderedFile {
  const text = lines(
    header(t).trimEnd(),
    '[Unit]',
    'Description=wharf upload notices (inotify → spool → webhook/SMTP)',
    'After=network-online.target',
    'Wants=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    `EnvironmentFile=${NOTIFY_ENV}`,
    `ExecStart=${NOTIFY_SCRIPT}`,
    'Restart=always',
    'RestartSec=2',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
  );
  return file(NOTIFY_UNIT, text, { check: unitCheck('wharf-notify.service'), notify: ['wharf-notify'] });
}
