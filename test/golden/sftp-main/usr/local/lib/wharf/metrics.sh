#!/bin/bash
# Rendered by wharf for stack "seed". Do not edit by hand: the next configure run overwrites it.
# wharf's own metrics for node_exporter's textfile collector, every 2s: disk, lsyncd, notify.
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
  gauge wharf_lsyncd_up "1 while lsyncd (replication main to sub) is active" "$(systemctl is-active --quiet lsyncd && echo 1 || echo 0)"
  # the notice spool: names start with the queueing time in ns
  oldest=""; count=0
  for f in "$SPOOL"/*.notice; do
    [ -e "$f" ] || continue
    count=$(( count + 1 ))
    b=${f##*/}; b=${b%%.*}
    [ -z "$oldest" ] || [ "$b" -lt "$oldest" ] && oldest=$b
  done
  gauge wharf_notify_spool_length "upload notices waiting for delivery" "$count"
  gauge wharf_notify_spool_oldest_age_seconds "age of the oldest waiting notice (0: none)" "$([ -n "$oldest" ] && echo $(( now - oldest / 1000000000 )) || echo 0)"
  counter wharf_uploads_noticed_total "complete uploads queued for a notice" "$(stat -c %s "$QUEUED" 2>/dev/null || echo 0)"
  counter wharf_notices_delivered_total "notices delivered on every channel" "$(stat -c %s "$DELIVERED" 2>/dev/null || echo 0)"
  gauge wharf_notify_up "1 while the notifier service is active" "$(systemctl is-active --quiet wharf-notify && echo 1 || echo 0)"
}

mkdir -p "$(dirname "$OUT")" || exit 1
while :; do
  collect >"$OUT.tmp" && mv -f "$OUT.tmp" "$OUT"
  sleep 2
done
