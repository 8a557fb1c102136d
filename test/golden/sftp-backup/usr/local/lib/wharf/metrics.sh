#!/bin/bash
# Rendered by wharf for stack "seed". Do not edit by hand: the next configure run overwrites it.
# wharf's own metrics for node_exporter's textfile collector, every 2s: disk, backup.
set -u
OUT=/var/lib/prometheus/node-exporter/wharf.prom
CHROOT_BASE=/srv/sftp
STAMP=/srv/sftp/.wharf-heartbeat/stamp
MAIN_LAN=10.88.3.11
SYNC_KEYS=/var/lib/wharfsync/.ssh/authorized_keys
BACKUP_STATE=/var/lib/wharf/backup
SNAP_DIR=/srv/backup/snapshots
SPOOL=/var/spool/wharf-notify
QUEUED=/var/spool/wharf-notify.counters/queued
DELIVERED=/var/spool/wharf-notify.counters/delivered
MARK=/var/lib/wharf/needs-reconcile
FAILOVER=/var/lib/wharf/failover.json

metric() { printf '# HELP %s %s\n# TYPE %s %s\n%s %s\n' "$2" "$3" "$2" "$1" "$2" "$4"; }
gauge() { metric gauge "$@"; }
counter() { metric counter "$@"; }

collect() {
  now=$(date +%s)
  gauge wharf_metrics_generated_timestamp_seconds "when wharf's metrics generator last ran" "$now"
  # the upload filesystem (the lab's nodes: their overlay root, or the size-limited upload disk)
  if df_out=$(df -B1 --output=avail,size "$CHROOT_BASE" 2>/dev/null | tail -n 1); then
    read -r avail size <<<"$df_out"
    gauge wharf_upload_fs_avail_bytes "free bytes of the upload filesystem" "$avail"
    gauge wharf_upload_fs_size_bytes "size of the upload filesystem" "$size"
  fi
  # backup.sh records every run that got past its lock, refusals (exit 3) included
  if read -r end dur rc <"$BACKUP_STATE/last-run" 2>/dev/null; then
    gauge wharf_backup_last_run_timestamp_seconds "end of the last backup run" "$end"
    gauge wharf_backup_last_run_duration_seconds "duration of the last backup run" "$dur"
    gauge wharf_backup_last_exit_code "exit code of the last backup run (3: empty-source guard refused)" "$rc"
  fi
  # never succeeded: the age counts from the first time this generator ran
  [ -e "$BACKUP_STATE/since" ] || { mkdir -p "$BACKUP_STATE" && echo "$now" >"$BACKUP_STATE/since"; }
  if read -r end dur <"$BACKUP_STATE/last-success" 2>/dev/null; then
    gauge wharf_backup_last_success_timestamp_seconds "end of the last successful backup (else: monitoring start)" "$end"
    gauge wharf_backup_last_success_duration_seconds "duration of the last successful backup" "$dur"
  else
    gauge wharf_backup_last_success_timestamp_seconds "end of the last successful backup (else: monitoring start)" "$(cat "$BACKUP_STATE/since")"
  fi
  gauge wharf_backup_snapshots "dated snapshots kept" "$(find "$SNAP_DIR" -mindepth 1 -maxdepth 1 -type d -name '2*Z' 2>/dev/null | wc -l)"
}

mkdir -p "$(dirname "$OUT")" || exit 1
while :; do
  collect >"$OUT.tmp" && mv -f "$OUT.tmp" "$OUT"
  sleep 2
done
