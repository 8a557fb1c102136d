#!/bin/bash
# Rendered by wharf for stack "seed". Do not edit by hand: the next configure run overwrites it.
# wharf upload notices. Config: /etc/wharf/notify.env (WATCH_DIR, SPOOL_DIR, WEBHOOK_URL, SMTP_URL, ...).
# The watcher writes one spool file per complete upload; the sender delivers and only then deletes.
set -uo pipefail

: "${SPOOL_DIR:?}" "${WHARF_NODE:?}"
mkdir -p "$SPOOL_DIR"
RETRIES=${RETRIES:-5}

log() { printf 'wharf-notify: %s\n' "$*" >&2; }

json_escape() {
  local s=$1 out='' c i
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\r'/\\r}
  s=${s//$'\t'/\\t}
  for (( i = 0; i < ${#s}; i++ )); do
    c=${s:i:1}
    if [[ $c < ' ' ]]; then printf -v c '\\u%04x' "'$c"; fi
    out+=$c
  done
  printf '%s' "$out"
}

# queue SIZE PATH: write a notice atomically (temp name, then rename).
queue() {
  local tmp="$SPOOL_DIR/.$$.$RANDOM.tmp"
  printf '%s\n%s' "$1" "$2" >"$tmp" && mv "$tmp" "$SPOOL_DIR/$(date +%s%N).$$.$RANDOM.notice"
}

# Watch the upload tree: a file is complete when its writer closes it or when it is renamed into its
# final name (rsync and lsyncd write ".name.XXXXXX" or into the temp dir, then rename).
watch() {
  local path base
  inotifywait -m -r -q -e close_write,moved_to --format '%w%f%0' --no-newline \
    --exclude "(^|/)(\.[^/]*|$IGNORE_DIR)(/|$)" "$WATCH_DIR" |
    while IFS= read -r -d '' path; do
      base=${path##*/}
      case "$base" in .* | *.part | *.tmp) continue ;; esac
      [[ -f "$path" ]] || continue
      queue "$(stat -c %s -- "$path" 2>/dev/null || echo 0)" "$path"
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
    "$SMTP_FROM" "${SMTP_TO// /, }" "${2##*/}" "$(date -R)" "$WHARF_NODE" "$2" "$1" "$3")
  printf '%s' "$msg" | curl -fsS -m 20 --url "$SMTP_URL" --mail-from "$SMTP_FROM" "${rcpt[@]}" -T - 2>&1 >/dev/null
}

# deliver FILE: every configured channel once (a .sent-<channel> marker avoids duplicates on retry).
deliver() {
  local f=$1 size path user rest ok=0
  { IFS= read -r size; path=$(cat); } <"$f" || return 1
  rest=${path#"${WATCH_DIR:-/}"/}
  user=${rest%%/*}
  if [[ -n "$WEBHOOK_URL" && ! -e "$f.sent-webhook" ]]; then
    if out=$(send_webhook "$size" "$path" "$user"); then : >"$f.sent-webhook"; else log "webhook failed for $path: $out"; ok=1; fi
  fi
  if [[ -n "$SMTP_URL" && ! -e "$f.sent-smtp" ]]; then
    if out=$(send_mail "$size" "$path" "$user"); then : >"$f.sent-smtp"; else log "smtp failed for $path: $out"; ok=1; fi
  fi
  if (( ok == 0 )); then rm -f "$f" "$f.sent-webhook" "$f.sent-smtp"; log "notified $path"; fi
  return $ok
}

# Sender: oldest first; on failure back off (1, 2, 4 … 30 s). After RETRIES failures the notice stays
# in the spool (logged as an error) and is tried again on the next pass: nothing is dropped.
sender() {
  local f attempt delay
  shopt -s nullglob
  while :; do
    for f in "$SPOOL_DIR"/*.notice; do
      attempt=0 delay=1
      until deliver "$f"; do
        attempt=$(( attempt + 1 ))
        if (( attempt > RETRIES )); then log "ERROR: $f not delivered after $RETRIES retries; kept in spool"; break; fi
        sleep "$delay"; delay=$(( delay * 2 > 30 ? 30 : delay * 2 ))
      done
    done
    sleep 1
  done
}

if [[ -n "${WATCH_DIR:-}" ]]; then
  watch &
  watcher=$!
  trap 'kill $watcher 2>/dev/null' EXIT
  sender &
  # Either loop ending is a failure: systemd restarts the service.
  wait -n
  exit 1
fi
sender
