#!/bin/bash
# Rendered by wharf for stack "seed". Do not edit by hand: the next configure run overwrites it.
# wharf's own metrics for node_exporter's textfile collector, every 2s: disk, lag.
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
  # main's heartbeat as replicated here (readLag's mechanism): its age is the replication lag
  hb=$(cat "$STAMP" 2>/dev/null || true)
  case "$hb" in
    "" | *[!0-9]*) gauge wharf_replication_heartbeat_present "1 when main's heartbeat exists here" 0 ;;
    *)
      gauge wharf_replication_heartbeat_present "1 when main's heartbeat exists here" 1
      gauge wharf_replication_lag_seconds "age of main's replicated heartbeat (replication lag main to sub)" "$(( now - hb ))" ;;
  esac
  # failed over: main fenced out of the replication account, nothing is fresher than this node
  gauge wharf_replication_fenced "1 while main is fenced out (failed over to this node)" "$(grep -qF "from=\"!$MAIN_LAN," "$SYNC_KEYS" 2>/dev/null && echo 1 || echo 0)"
}

mkdir -p "$(dirname "$OUT")" || exit 1
while :; do
  collect >"$OUT.tmp" && mv -f "$OUT.tmp" "$OUT"
  sleep 2
done
