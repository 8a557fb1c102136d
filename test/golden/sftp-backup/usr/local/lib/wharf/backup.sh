#!/bin/bash
# Rendered by wharf for stack "seed". Do not edit by hand: the next configure run overwrites it.
# Snapshot sftp-sub:/srv/sftp into /srv/backup/snapshots/<UTC time>, hard-linking unchanged files.
set -euo pipefail

# WHARF_* variables override the rendered values (tests; a manual run against another source).
SRC_HOST=${WHARF_SRC_HOST:-wharfsync@10.88.3.12}
SRC_DIR=/srv/sftp
GUARD=/srv/sftp/.wharf-source
SNAP_DIR=/srv/backup/snapshots
RETENTION=96
SPOOL=${WHARF_SPOOL:-/var/spool/wharf-notify}
NOTIFY=0
ALERT=${WHARF_ALERT:-/usr/local/lib/wharf/alert.sh}
SSH=${WHARF_SSH:-"ssh -i /etc/wharf/backup/id_ed25519 -p 22 -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/etc/wharf/backup/known_hosts -o ConnectTimeout=10"}
RSYNC_PATH=${WHARF_RSYNC_PATH:-"sudo /usr/bin/rsync"}

log() { printf 'wharf-backup: %s\n' "$*" >&2; }

# One run at a time: a slow snapshot must not overlap the next timer tick.
mkdir -p "$SNAP_DIR"
exec 9>"$SNAP_DIR/.lock"
if ! flock -n 9; then log "another backup is still running; skipping"; exit 0; fi

# Every run past the lock is recorded for the monitoring (end, duration, exit code; refusals too).
STATE_DIR=${WHARF_BACKUP_STATE:-/var/lib/wharf/backup}
started=$(date +%s)
record() {
  local rc=$? end
  end=$(date +%s)
  mkdir -p "$STATE_DIR" || return 0
  printf '%s %s %s\n' "$end" "$(( end - started ))" "$rc" >"$STATE_DIR/last-run.tmp" && mv -f "$STATE_DIR/last-run.tmp" "$STATE_DIR/last-run"
  if (( rc == 0 )); then
    printf '%s %s\n' "$end" "$(( end - started ))" >"$STATE_DIR/last-success.tmp" && mv -f "$STATE_DIR/last-success.tmp" "$STATE_DIR/last-success"
  fi
}
trap record EXIT

# Empty-source guard: an unmounted or wiped source must not become the newest snapshot.
# A refusal is raised as an alert on the stack's notice channels (webhook + SMTP), not only logged.
if ! $SSH "$SRC_HOST" test -e "$GUARD"; then
  why="refusing to back up: guard file $GUARD is missing on ${SRC_HOST#*@} (empty or unmounted source?)"
  log "$why"
  if [[ -n "$ALERT" ]]; then
    if "$ALERT" backup-refused "backup on $(hostname): $why; the newest snapshot stays $(readlink "$SNAP_DIR/latest" 2>/dev/null || echo none)"; then
      log "alert backup-refused sent"
    else
      log "ERROR: alert backup-refused was not delivered (see wharf-alert lines above)"
    fi
  fi
  exit 3
fi

# Snapshot names have 1 s resolution: a run right after another waits for a new name.
stamp=$(date -u +%Y%m%dT%H%M%SZ)
for (( w = 0; w < 3; w++ )); do
  [[ -e "$SNAP_DIR/$stamp" ]] || break
  sleep 1
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
done
if [[ -e "$SNAP_DIR/$stamp" ]]; then log "snapshot $stamp exists already"; exit 1; fi
new="$SNAP_DIR/$stamp"
partial="$new.partial"
link=()
if [[ -d "$SNAP_DIR/latest/" ]]; then link=(--link-dest="$SNAP_DIR/latest/"); fi
rm -rf "$partial"
# sudo rsync on the source reads every user's files; rsync temp names and each chroot's log socket folder are skipped.
rsync -a --delete --numeric-ids "${link[@]}" --exclude=/.wharf-partial/ --exclude='/*/dev/' \
  -e "$SSH" --rsync-path="$RSYNC_PATH" \
  "$SRC_HOST:$SRC_DIR/" "$partial/"
mv "$partial" "$new"
ln -sfn "$stamp" "$SNAP_DIR/latest.tmp"
mv -Tf "$SNAP_DIR/latest.tmp" "$SNAP_DIR/latest"
log "snapshot $new done"

# Files new or changed in this snapshot are the ones not hard-linked to the previous one.
if [[ "$NOTIFY" == 1 ]]; then
  mkdir -p "$SPOOL"
  while IFS= read -r -d '' f; do
    rel="${f#"$new"/}"
    case "/$rel" in */.*) continue ;; esac
    size=$(stat -c %s "$f")
    tmp="$SPOOL/.$stamp.$RANDOM.tmp"
    printf '%s\n%s' "$size" "$SRC_DIR/$rel" >"$tmp"
    mv "$tmp" "$SPOOL/$(date +%s%N).$RANDOM.notice"
  done < <(find "$new" -type f -links 1 -print0)
fi

# Retention: keep the newest $RETENTION snapshots.
mapfile -t snaps < <(find "$SNAP_DIR" -mindepth 1 -maxdepth 1 -type d -name '2*Z' -printf '%f\n' | sort)
excess=$(( ${#snaps[@]} - RETENTION ))
for (( i = 0; i < excess; i++ )); do
  rm -rf -- "${SNAP_DIR:?}/${snaps[i]}"
  log "pruned ${snaps[i]}"
done
