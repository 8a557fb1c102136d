// The backup job on the backup node: pull the source's chroot tree as dated --link-dest snapshots,
// refuse an empty/unmounted source, keep `retention` snapshots (pitfall 7); systemd timer.
import type { Topology } from '../topology/model.ts';
import { addressOf, type Inventory } from '../topology/inventory.ts';
import { cronToOnCalendar } from '../topology/cron.ts';
import type { RenderedFile } from './types.ts';
import { CHECKS, file, header, lines, shq, unitCheck } from './util.ts';
import { NOTIFY_SPOOL } from './notify.ts';
import { ALERT_SCRIPT, alertsEnabled } from './alert.ts';
import { CHROOT_LOG_DIR } from './sshd.ts';
import { BACKUP_STATE_DIR } from './monitoring.ts';

export const BACKUP_SCRIPT = '/usr/local/lib/wharf/backup.sh';
export const BACKUP_SERVICE = '/etc/systemd/system/wharf-backup.service';
export const BACKUP_TIMER = '/etc/systemd/system/wharf-backup.timer';
/** The replication user's key on the backup node and the source's host key, placed by the runbook. */
export const BACKUP_KEY = '/etc/wharf/backup/id_ed25519';
export const BACKUP_KNOWN_HOSTS = '/etc/wharf/backup/known_hosts';

export function renderBackupScript(t: Topology, inv: Inventory): RenderedFile {
  const b = t.replication.backup;
  const base = t.sftp.chrootBase;
  const source = addressOf(inv, b.from, 'lan');
  const notices = t.notifications.on === 'backup';
  const text = lines(
    '#!/bin/bash',
    header(t).trimEnd(),
    `# Snapshot ${b.from}:${base} into ${b.snapshotDir}/<UTC time>, hard-linking unchanged files.`,
    'set -euo pipefail',
    '',
    '# WHARF_* variables override the rendered values (tests; a manual run against another source).',
    `SRC_HOST=\${WHARF_SRC_HOST:-${shq(`${t.replication.lsyncd.user}@${source}`)}}`,
    `SRC_DIR=${shq(base)}`,
    `GUARD=${shq(`${base}/${b.guardFile}`)}`,
    `SNAP_DIR=${shq(b.snapshotDir)}`,
    `RETENTION=${b.retention}`,
    `SPOOL=\${WHARF_SPOOL:-${shq(NOTIFY_SPOOL)}}`,
    `NOTIFY=${notices ? 1 : 0}`,
    `ALERT=\${WHARF_ALERT:-${shq(alertsEnabled(t) ? ALERT_SCRIPT : '')}}`,
    `SSH=\${WHARF_SSH:-"ssh -i ${BACKUP_KEY} -p ${t.sftp.port} -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=${BACKUP_KNOWN_HOSTS} -o ConnectTimeout=10"}`,
    `RSYNC_PATH=\${WHARF_RSYNC_PATH:-"sudo /usr/bin/rsync"}`,
    '',
    'log() { printf \'wharf-backup: %s\\n\' "$*" >&2; }',
    '',
    '# One run at a time: a slow snapshot must not overlap the next timer tick.',
    'mkdir -p "$SNAP_DIR"',
    'exec 9>"$SNAP_DIR/.lock"',
    'if ! flock -n 9; then log "another backup is still running; skipping"; exit 0; fi',
    '',
    '# Every run past the lock is recorded for the monitoring (end, duration, exit code; refusals too).',
    `STATE_DIR=\${WHARF_BACKUP_STATE:-${shq(BACKUP_STATE_DIR)}}`,
    'started=$(date +%s)',
    'record() {',
    '  local rc=$? end',
    '  end=$(date +%s)',
    '  mkdir -p "$STATE_DIR" || return 0',
    '  printf \'%s %s %s\\n\' "$end" "$(( end - started ))" "$rc" >"$STATE_DIR/last-run.tmp" && mv -f "$STATE_DIR/last-run.tmp" "$STATE_DIR/last-run"',
    '  if (( rc == 0 )); then',
    '    printf \'%s %s\\n\' "$end" "$(( end - started ))" >"$STATE_DIR/last-success.tmp" && mv -f "$STATE_DIR/last-success.tmp" "$STATE_DIR/last-success"',
    '  fi',
    '}',
    'trap record EXIT',
    '',
    '# Empty-source guard: an unmounted or wiped source must not become the newest snapshot.',
    "# A refusal is raised as an alert on the stack's notice channels (webhook + SMTP), not only logged.",
    'if ! $SSH "$SRC_HOST" test -e "$GUARD"; then',
    '  why="refusing to back up: guard file $GUARD is missing on ${SRC_HOST#*@} (empty or unmounted source?)"',
    '  log "$why"',
    '  if [[ -n "$ALERT" ]]; then',
    '    if "$ALERT" backup-refused "backup on $(hostname): $why; the newest snapshot stays $(readlink "$SNAP_DIR/latest" 2>/dev/null || echo none)"; then',
    '      log "alert backup-refused sent"',
    '    else',
    '      log "ERROR: alert backup-refused was not delivered (see wharf-alert lines above)"',
    '    fi',
    '  fi',
    '  exit 3',
    'fi',
    '',
    '# Snapshot names have 1 s resolution: a run right after another waits for a new name.',
    'stamp=$(date -u +%Y%m%dT%H%M%SZ)',
    'for (( w = 0; w < 3; w++ )); do',
    '  [[ -e "$SNAP_DIR/$stamp" ]] || break',
    '  sleep 1',
    '  stamp=$(date -u +%Y%m%dT%H%M%SZ)',
    'done',
    'if [[ -e "$SNAP_DIR/$stamp" ]]; then log "snapshot $stamp exists already"; exit 1; fi',
    'new="$SNAP_DIR/$stamp"',
    'partial="$new.partial"',
    'link=()',
    'if [[ -d "$SNAP_DIR/latest/" ]]; then link=(--link-dest="$SNAP_DIR/latest/"); fi',
    'rm -rf "$partial"',
    "# sudo rsync on the source reads every user's files; rsync temp names and each chroot's log socket folder are skipped.",
    `rsync -a --delete --numeric-ids "\${link[@]}" --exclude=${shq(`/${t.replication.lsyncd.tempDir}/`)} --exclude=${shq(`/*/${CHROOT_LOG_DIR}/`)} \\`,
    '  -e "$SSH" --rsync-path="$RSYNC_PATH" \\',
    '  "$SRC_HOST:$SRC_DIR/" "$partial/"',
    'mv "$partial" "$new"',
    'ln -sfn "$stamp" "$SNAP_DIR/latest.tmp"',
    'mv -Tf "$SNAP_DIR/latest.tmp" "$SNAP_DIR/latest"',
    'log "snapshot $new done"',
    '',
    '# Files new or changed in this snapshot are the ones not hard-linked to the previous one.',
    'if [[ "$NOTIFY" == 1 ]]; then',
    '  mkdir -p "$SPOOL"',
    "  while IFS= read -r -d '' f; do",
    '    rel="${f#"$new"/}"',
    '    case "/$rel" in */.*) continue ;; esac',
    '    size=$(stat -c %s "$f")',
    '    tmp="$SPOOL/.$stamp.$RANDOM.tmp"',
    '    printf \'%s\\n%s\' "$size" "$SRC_DIR/$rel" >"$tmp"',
    '    mv "$tmp" "$SPOOL/$(date +%s%N).$RANDOM.notice"',
    '  done < <(find "$new" -type f -links 1 -print0)',
    'fi',
    '',
    '# Retention: keep the newest $RETENTION snapshots.',
    "mapfile -t snaps < <(find \"$SNAP_DIR\" -mindepth 1 -maxdepth 1 -type d -name '2*Z' -printf '%f\\n' | sort)",
    'excess=$(( ${#snaps[@]} - RETENTION ))',
    'for (( i = 0; i < excess; i++ )); do',
    '  rm -rf -- "${SNAP_DIR:?}/${snaps[i]}"',
    '  log "pruned ${snaps[i]}"',
    'done',
  );
  return file(BACKUP_SCRIPT, text, { mode: 0o755, check: CHECKS.bash });
}

export function renderBackupService(t: Topology): RenderedFile {
  const b = t.replication.backup;
  const text = lines(
    header(t).trimEnd(),
    '[Unit]',
    `Description=wharf backup: snapshot ${b.from} into ${b.snapshotDir}`,
    'After=network-online.target',
    'Wants=network-online.target',
    '',
    '[Service]',
    'Type=oneshot',
    `ExecStart=${BACKUP_SCRIPT}`,
    'Nice=10',
    'IOSchedulingClass=best-effort',
    'IOSchedulingPriority=7',
  );
  return file(BACKUP_SERVICE, text, { check: unitCheck('wharf-backup.service') });
}

export function renderBackupTimer(t: Topology): RenderedFile {
  const b = t.replication.backup;
  const text = lines(
    header(t).trimEnd(),
    '[Unit]',
    `Description=wharf backup schedule (cron "${b.schedule}")`,
    '',
    '[Timer]',
    `OnCalendar=${cronToOnCalendar(b.schedule)}`,
    '# Runs a missed backup after the node was down.',
    'Persistent=true',
    'Unit=wharf-backup.service',
    '',
    '[Install]',
    'WantedBy=timers.target',
  );
  return file(BACKUP_TIMER, text, { check: unitCheck('wharf-backup.timer'), notify: ['wharf-backup.timer'] });
}
