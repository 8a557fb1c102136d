#!/bin/bash
# Rendered by wharf for stack "seed". Do not edit by hand: the next configure run overwrites it.
# wharf's own metrics for node_exporter's textfile collector, every 2s: reconcile.
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
  # non-preemptive failover: main held out until failback (agent mark), a failover on record
  gauge wharf_needs_reconcile "1 while main is held out until failback (needs-reconcile mark)" "$([ -e "$MARK" ] && echo 1 || echo 0)"
  gauge wharf_failover_recorded "1 while a failover is on record on this HAProxy node" "$([ -e "$FAILOVER" ] && echo 1 || echo 0)"
}

mkdir -p "$(dirname "$OUT")" || exit 1
while :; do
  collect >"$OUT.tmp" && mv -f "$OUT.tmp" "$OUT"
  sleep 2
done
