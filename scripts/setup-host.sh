#!/usr/bin/env bash
# Prepares a Debian 12 host for wharf's tests: installs (only when absent) the daemons whose own
# checkers validate the rendered files, the lab's tools, and starts dockerd when it does not answer.
# Run as root. Safe to repeat. Fails loudly, naming what is missing.
set -euo pipefail
export NEEDRESTART_SUSPEND=1 # no needrestart prompts or scans during apt-get in CI

log() { printf 'setup-host: %s\n' "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

# package → a file or command it provides (present = installed)
declare -A PROVIDES=(
  [haproxy]=haproxy
  [keepalived]=keepalived # keepalived --config-test on the HAProxy pair's keepalived.conf
  [openssh-server]=/usr/sbin/sshd
  [openssh-client]=ssh
  [nftables]=nft
  [lsyncd]=lsyncd
  [lua5.4]=lua5.4
  [debootstrap]=debootstrap
  [rsync]=rsync
  [systemd]=systemd-analyze
  [sudo]=visudo
  [inotify-tools]=inotifywait
  [iproute2]=ip
  [curl]=curl
  [openssl]=openssl
  [docker.io]=dockerd
  [chromium]=chromium # the HTML report's browser test (playwright-core drives it headless)
  [prometheus]=promtool                # checks the rendered prometheus.yml and alert rules
  [prometheus-alertmanager]=amtool     # checks the rendered alertmanager.yml
)

present() { [[ $1 == /* ]] && [[ -x $1 ]] || command -v "$1" >/dev/null 2>&1; }

missing=()
for pkg in "${!PROVIDES[@]}"; do
  present "${PROVIDES[$pkg]}" || missing+=("$pkg")
done

if ((${#missing[@]})); then
  [[ $(id -u) -eq 0 ]] || die "missing packages (${missing[*]}) and not root: run as root or install them"
  command -v apt-get >/dev/null || die "missing packages (${missing[*]}) and no apt-get: this script targets Debian 12"
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  for pkg in "${missing[@]}"; do
    present "${PROVIDES[$pkg]}" || die "$pkg installed but ${PROVIDES[$pkg]} is still missing"
  done
else
  log "host packages: all present"
fi

# Node.js: Debian 12 ships 18, wharf needs >= 20.19 — not installed here, only checked.
command -v node >/dev/null || die "node is missing: install Node.js >= 20.19 (e.g. from nodejs.org or NodeSource)"
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' ||
  die "node $(node --version) is too old: wharf needs >= 20.19"

# Docker engine: the lab tests need one that answers. Same rules as src/lab/engine.ts: a pid file
# whose process is gone or is another program now (pids wrap) is stale; a dockerd that runs but
# does not answer is restarted only when wharf started it (/run/wharf-dockerd.pid), else named.
# WHARF_SETUP_NO_ENGINE=1 (.ci/run): judge the pid files, start nothing: the caller starts it.
if timeout 20 docker info >/dev/null 2>&1; then
  log "docker: answering"
else
  [[ $(id -u) -eq 0 ]] || die "docker does not answer and we are not root to start dockerd"
  for entry in /var/run/docker.pid:dockerd /var/run/docker/containerd/containerd.pid:containerd; do
    pidfile=${entry%%:*} comm=${entry##*:}
    [[ -f $pidfile ]] || continue
    pid=$(cat "$pidfile")
    if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$comm" ]]; then
      if [[ $comm == dockerd && $(cat /run/wharf-dockerd.pid 2>/dev/null) != "$pid" ]]; then
        die "dockerd (pid $pid) runs but does not answer and was not started by wharf: restart it (e.g. systemctl restart docker)"
      fi
      log "docker: $comm (pid $pid) runs but does not answer: stopping it"
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 150); do [[ -e /proc/$pid ]] || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
  if [[ ${WHARF_SETUP_NO_ENGINE:-} == 1 ]]; then
    log "docker: not started (WHARF_SETUP_NO_ENGINE=1: the caller starts it)"
    exit 0
  fi
  log "docker: starting dockerd (log: /var/log/wharf-dockerd.log)"
  # tini -s (a docker.io dependency) keeps containerd's shims in this tree rather than under PID 1
  if command -v tini >/dev/null; then
    nohup tini -s -- dockerd >>/var/log/wharf-dockerd.log 2>&1 </dev/null &
  else
    nohup dockerd >>/var/log/wharf-dockerd.log 2>&1 </dev/null &
  fi
  for _ in $(seq 1 120); do
    timeout 20 docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  timeout 20 docker info >/dev/null 2>&1 || {
    tail -n 20 /var/log/wharf-dockerd.log >&2 || true
    die "dockerd did not answer within 60 s"
  }
  cp /var/run/docker.pid /run/wharf-dockerd.pid
  log "docker: answering"
fi
