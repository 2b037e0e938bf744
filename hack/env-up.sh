#!/usr/bin/env bash
# `make env-up`: a real local control plane (etcd + kube-apiserver built from source, see
# build-control-plane.sh) on loopback ports, plus RabbitMQ (with the management and event-exchange
# plugins) and Redis. Idempotent: a running plane is reused. Writes .local/kubeconfig.
# RABBITBATCH_LOCAL_DIR puts the plane's state (PKI, etcd data, PID files, kubeconfig) elsewhere.
# With RABBITBATCH_E2E=1 the user's $KUBECONFIG cluster is used and only RabbitMQ is checked.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
LOCAL="${RABBITBATCH_LOCAL_DIR:-$ROOT/.local}"
RABBITMQ_URL="${RABBITMQ_URL:-http://127.0.0.1:15672}"

die() { echo "env-up: $*" >&2; exit 1; }

ensure_rabbitmq() {
  local auth="${RABBITMQ_USERNAME:-guest}:${RABBITMQ_PASSWORD:-guest}"
  if [[ "${RABBITBATCH_E2E:-}" != 1 ]]; then
    command -v rabbitmq-server >/dev/null || die "RabbitMQ is not installed: apt-get install rabbitmq-server (3.10+), then retry"
    if ! rabbitmqctl -q status >/dev/null 2>&1; then
      echo "starting RabbitMQ (rabbitmq-server -detached)" >&2
      rabbitmq-server -detached >/dev/null 2>&1 || true
      rabbitmqctl -q wait --timeout 60 --pid "$(pgrep -f beam.smp | head -1 || echo 0)" >/dev/null 2>&1 || true
      for _ in $(seq 1 60); do rabbitmqctl -q status >/dev/null 2>&1 && break; sleep 1; done
      rabbitmqctl -q status >/dev/null 2>&1 || die "RabbitMQ did not start; see /var/log/rabbitmq/"
    fi
    local enabled
    enabled="$(rabbitmq-plugins list -e -m 2>/dev/null || true)"
    if ! grep -qx rabbitmq_management <<<"$enabled" || ! grep -qx rabbitmq_event_exchange <<<"$enabled"; then
      rabbitmq-plugins enable rabbitmq_management rabbitmq_event_exchange >/dev/null
    fi
  fi
  for _ in $(seq 1 60); do
    curl -fsS -u "$auth" "$RABBITMQ_URL/api/overview?columns=rabbitmq_version" >/dev/null 2>&1 && break
    sleep 1
  done
  curl -fsS -u "$auth" "$RABBITMQ_URL/api/overview?columns=rabbitmq_version" >/dev/null 2>&1 ||
    die "the RabbitMQ management API does not answer at $RABBITMQ_URL: start RabbitMQ and enable rabbitmq_management"
  curl -fsS -u "$auth" -o /dev/null "$RABBITMQ_URL/api/exchanges/%2F/amq.rabbitmq.event" ||
    die "exchange amq.rabbitmq.event is missing: rabbitmq-plugins enable rabbitmq_event_exchange"
}

ensure_redis() {
  [[ "${RABBITBATCH_E2E:-}" == 1 ]] && return 0
  redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return 0
  command -v redis-server >/dev/null || die "Redis is not installed: apt-get install redis-server, then retry"
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log >/dev/null
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return 0; sleep 0.2; done
  die "Redis did not start on 127.0.0.1:6379; see /var/log/redis/ci.log"
}

start_plane() { bash "$ROOT/hack/control-plane.sh" start "$LOCAL"; }

mkdir -p "$LOCAL"
if [[ "${RABBITBATCH_E2E:-}" == 1 ]]; then
  ensure_rabbitmq
  echo "e2e mode: using the cluster in \$KUBECONFIG (${KUBECONFIG:-~/.kube/config})" >&2
  exit 0
fi
start_plane
ensure_rabbitmq
ensure_redis
