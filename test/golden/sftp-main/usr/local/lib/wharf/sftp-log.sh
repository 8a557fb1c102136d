#!/bin/bash
# Rendered by wharf for stack "seed". Do not edit by hand: the next configure run overwrites it.
# internal-sftp's log socket inside each SFTP user's chroot (/srv/sftp/<user>/dev/log).
set -euo pipefail
users=(demo)
src=/run/systemd/journal/dev-log
for u in "${users[@]}"; do
  d=/srv/sftp/$u/dev
  case "${1:-up}" in
    up)
      # the chroot as configure makes it (root-owned, 0755), then its dev/ folder
      install -d -o root -g root -m 0755 /srv/sftp/"$u" "$d"
      mountpoint -q "$d/log" && continue
      [[ -e "$d/log" ]] || : >"$d/log"
      mount --bind "$src" "$d/log"
      ;;
    down) if mountpoint -q "$d/log"; then umount "$d/log"; fi ;;
    *) echo "usage: $0 up|down" >&2; exit 2 ;;
  esac
done
