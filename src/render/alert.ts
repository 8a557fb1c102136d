// Alerts from a node's own jobs (the backup job's empty-source guard) through the stack's notice
// channels: the targets wharf watch uses (notifyTargets), the same message shapes (webhook JSON as
// src/watch/alert.ts's webhookBody, an e-mail with an `X-Wharf-Event` header), sent with curl from
// the node. `alert.sh EVENT TEXT` tries every channel (4 attempts each, 1, 2, 4 s apart) and exits
// non-zero when one was not delivered, saying which: the caller logs it (never dropped silently).
import type { Topology } from '../topology/model.ts';
import type { Inventory } from '../topology/inventory.ts';
import type { RenderedFile } from './types.ts';
import { CHECKS, file, header, lines, shq } from './util.ts';
import { notifyTargets } from './notify.ts';

export const ALERT_SCRIPT = '/usr/local/lib/wharf/alert.sh';
export const ALERT_ENV = '/etc/wharf/alert.env';

/** Whether the topology has a notice channel at all (no channel: no alert files). */
export const alertsEnabled = (t: Topology): boolean =>
  t.notifications.webhook.enabled || t.notifications.smtp.enabled;

/** The channels as shell assignments (sourced by alert.sh only; values single-quoted). */
export function renderAlertEnv(t: Topology, inv: Inventory, node: string): RenderedFile {
  const n = t.notifications;
  const targets = notifyTargets(t, inv);
  const text = lines(
    header(t).trimEnd(),
    '# Read by alert.sh (bash `source`): single-quoted shell values.',
    `WHARF_NODE=${shq(node)}`,
    `WHARF_STACK=${shq(t.name)}`,
    `WEBHOOK_URL=${shq(targets.webhookUrl ?? '')}`,
    `WEBHOOK_FORMAT=${shq(n.webhook.format)}`,
    `SMTP_URL=${shq(targets.smtpUrl ?? '')}`,
    `SMTP_FROM=${shq(n.smtp.from)}`,
    `SMTP_TO=${shq(n.smtp.to.join(' '))}`,
  );
  return file(ALERT_ENV, text, { mode: 0o600, ...(targets.webhookSecret ? { secret: true } : {}) });
}

const SCRIPT = String.raw`#!/bin/bash
# wharf alert EVENT TEXT: one alert on every notice channel of ${ALERT_ENV}.
# WHARF_ALERT_ENV overrides the env file (tests). Exit 0: every channel accepted it.
set -uo pipefail
# shellcheck source=/dev/null
. "${'$'}{WHARF_ALERT_ENV:-${ALERT_ENV}}" || exit 1
event=${'$'}{1:?event}
text=${'$'}{2:?text}
at=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
source_=${'$'}{WHARF_ALERT_SOURCE:-$WHARF_NODE}

log() { printf 'wharf-alert: %s\n' "$*" >&2; }

json_escape() {
  local s=$1 out='' c i
  s=${'$'}{s//\\/\\\\}
  s=${'$'}{s//\"/\\\"}
  s=${'$'}{s//$'\n'/\\n}
  s=${'$'}{s//$'\r'/\\r}
  s=${'$'}{s//$'\t'/\\t}
  for (( i = 0; i < ${'$'}{#s}; i++ )); do
    c=${'$'}{s:i:1}
    if [[ $c < ' ' ]]; then printf -v c '\\u%04x' "'$c"; fi
    out+=$c
  done
  printf '%s' "$out"
}

fields=$(printf '"event":"%s","stack":"%s","at":"%s","source":"%s"' "$(json_escape "$event")" \
  "$(json_escape "$WHARF_STACK")" "$at" "$(json_escape "$source_")")
if [[ "$WEBHOOK_FORMAT" == slack ]]; then
  body=$(printf '{"text":"%s","username":"wharf","wharf":{%s}}' \
    "$(json_escape "wharf $WHARF_STACK: $text")" "$fields")
else
  body=$(printf '{%s,"text":"%s"}' "$fields" "$(json_escape "$text")")
fi

send_webhook() {
  # The URL may carry a token: curl reads it as config on stdin, not from the command line.
  curl -fsS -m 10 -o /dev/null -H 'Content-Type: application/json' --data-binary "$body" -K - \
    <<<"url = \"$WEBHOOK_URL\"" 2>&1 >/dev/null
}

send_mail() {
  local rcpt=() to subject
  for to in $SMTP_TO; do rcpt+=(--mail-rcpt "$to"); done
  subject="wharf $WHARF_STACK: ${'$'}{text//$'\n'/ }"
  printf 'From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nX-Wharf-Event: %s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n\r\nevent: %s\r\nstack: %s\r\nat: %s\r\nsent by: %s on %s\r\n' \
    "$SMTP_FROM" "${'$'}{SMTP_TO// /, }" "${'$'}{subject:0:200}" "$(date -R)" "$event" "$text" "$event" \
    "$WHARF_STACK" "$at" "$source_" "$WHARF_NODE" |
    curl -fsS -m 20 --url "$SMTP_URL" --mail-from "$SMTP_FROM" "${'$'}{rcpt[@]}" -T - 2>&1 >/dev/null
}

# retry CHANNEL: 4 attempts, 1, 2, 4 s apart
retry() {
  local delay=1 i out
  for i in 1 2 3 4; do
    if out=$("send_$1"); then log "$event sent by $1"; return 0; fi
    log "$1 attempt $i failed: $out"
    (( i < 4 )) && sleep "$delay" && delay=$(( delay * 2 ))
  done
  log "ERROR: alert $event NOT delivered by $1"
  return 1
}

rc=0
if [[ -n "$WEBHOOK_URL" ]]; then retry webhook || rc=1; fi
if [[ -n "$SMTP_URL" ]]; then retry mail || rc=1; fi
exit $rc
`;

export function renderAlertScript(t: Topology): RenderedFile {
  const text = SCRIPT.replace('#!/bin/bash\n', '#!/bin/bash\n' + header(t));
  return file(ALERT_SCRIPT, text, { mode: 0o755, check: CHECKS.bash });
}
