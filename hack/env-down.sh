#!/usr/bin/env bash
# `make env-down`: stops exactly what env-up started, by PID file (never by process name), and
# removes etcd's data. RabbitMQ and Redis are the machine's services and are left running.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=.local/run

stop() {
  local pidfile="$RUN/$1.pid"
  [[ -f "$pidfile" ]] || return 0
  local pid
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    echo "stopped $1 (pid $pid)" >&2
  fi
  rm -f "$pidfile"
}

stop operator
stop kube-apiserver
stop etcd
rm -rf .local/etcd-data .local/apiserver-port .local/etcd-port
