#!/bin/bash
# Rendered by wharf for stack "seed". Do not edit by hand: the next configure run overwrites it.
# internal-sftp's log socket inside each SFTP user's chroot (/srv/sftp/<user>/dev/log).
set -euo pipefail
users=(demo)
src=/run/systemd/journal/dev-log
base=/srv/sftp
# what is mounted now, read once (not one `mountpoint` per user: hundreds of users)
declare -A mounted=()
while read -r _ mp _; do mounted[$mp]=1; done </proc/self/mounts
is_mounted() { local k=${1// /\\040}; [[ -n ${mounted[$k]:-} ]]; }
case "${1:-up}" in
  up)
    # the chroots as configure makes them (root-owned, 0755), then their dev/ folders: one install
    dirs=()
    for u in "${users[@]}"; do dirs+=("$base/$u" "$base/$u/dev"); done
    (( ${#dirs[@]} )) && install -d -o root -g root -m 0755 "${dirs[@]}"
    for u in "${users[@]}"; do
      d="$base/$u/dev"
      is_mounted "$d/log" && continue
      [[ -e "$d/log" ]] || : >"$d/log"
      mount --bind "$src" "$d/log"
    done
    ;;
  down)
    for u in "${users[@]}"; do
      d="$base/$u/dev"
      if is_mounted "$d/log"; then umount "$d/log"; fi
    done
    ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
