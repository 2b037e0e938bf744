#!/usr/bin/env bash
# `make env-up`: a real local control plane (etcd + kube-apiserver built from source, see
# build-control-plane.sh) on loopback ports, plus RabbitMQ (with the management and event-exchange
# plugins) and Redis. Idempotent: a running plane is reused. Writes .local/kubeconfig.
# With RABBITBATCH_E2E=1 the user's $KUBECONFIG cluster is used and only RabbitMQ is checked.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
LOCAL="$ROOT/.local"
RUN="$LOCAL/run"
LOGS="$LOCAL/logs"
PKI="$LOCAL/pki"
RABBITMQ_URL="${RABBITMQ_URL:-http://127.0.0.1:15672}"

die() { echo "env-up: $*" >&2; exit 1; }
alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

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

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

make_pki() {
  [[ -f "$PKI/admin.crt" ]] && return 0
  command -v openssl >/dev/null || die "openssl is missing: apt-get install openssl"
  mkdir -p "$PKI" && cd "$PKI"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=rabbitbatch-local-ca" -keyout ca.key -out ca.crt 2>/dev/null
  cat >server.ext <<'EXT'
subjectAltName=DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:127.0.0.1,IP:10.0.0.1
extendedKeyUsage=serverAuth
EXT
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout server.key -out server.csr 2>/dev/null
  openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile server.ext -out server.crt 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\n' >client.ext
  openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=rabbitbatch-admin" -keyout admin.key -out admin.csr 2>/dev/null
  openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile client.ext -out admin.crt 2>/dev/null
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  rm -f ./*.csr
  cd "$ROOT"
}

apiserver_ready() {
  [[ -f "$LOCAL/apiserver-port" ]] || return 1
  curl -fsS --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "https://127.0.0.1:$(cat "$LOCAL/apiserver-port")/readyz" >/dev/null 2>&1
}

write_kubeconfig() {
  local port="$1"
  cat >"$LOCAL/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: rabbitbatch-local
  cluster:
    server: https://127.0.0.1:$port
    certificate-authority: $PKI/ca.crt
users:
- name: rabbitbatch-admin
  user:
    client-certificate: $PKI/admin.crt
    client-key: $PKI/admin.key
contexts:
- name: rabbitbatch-local
  context:
    cluster: rabbitbatch-local
    user: rabbitbatch-admin
    namespace: default
current-context: rabbitbatch-local
EOF
  printf 'KUBECONFIG=%s\nAPISERVER=https://127.0.0.1:%s\n' "$LOCAL/kubeconfig" "$port" >"$LOCAL/env"
}

start_plane() {
  mkdir -p "$RUN" "$LOGS" "$LOCAL/bin"
  local bins apiserver etcd
  bins="$(bash "$ROOT/hack/build-control-plane.sh")"
  apiserver="$(sed -n 1p <<<"$bins")"
  etcd="$(sed -n 2p <<<"$bins")"
  ln -sf "$apiserver" "$LOCAL/bin/kube-apiserver"
  ln -sf "$etcd" "$LOCAL/bin/etcd"
  make_pki

  if alive "$RUN/kube-apiserver.pid" && apiserver_ready; then
    write_kubeconfig "$(cat "$LOCAL/apiserver-port")"
    echo "control plane already running (https://127.0.0.1:$(cat "$LOCAL/apiserver-port"))" >&2
    return 0
  fi
  # Stale or half-started: stop what our PID files name, then start clean.
  bash "$ROOT/hack/env-down.sh" >/dev/null 2>&1 || true

  local etcd_port peer_port api_port
  etcd_port="${ETCD_PORT:-$(free_port)}"
  peer_port="$(free_port)"
  api_port="${APISERVER_PORT:-$(free_port)}"
  for p in "$etcd_port" "$api_port"; do port_in_use "$p" && die "port $p is in use: free it or set ETCD_PORT/APISERVER_PORT to a free port"; done

  rm -rf "$LOCAL/etcd-data"
  nohup "$etcd" --name rabbitbatch --data-dir "$LOCAL/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "rabbitbatch=http://127.0.0.1:$peer_port" --unsafe-no-fsync \
    >"$LOGS/etcd.log" 2>&1 &
  echo $! >"$RUN/etcd.pid"
  for _ in $(seq 1 50); do curl -fsS "http://127.0.0.1:$etcd_port/health" >/dev/null 2>&1 && break; sleep 0.2; done
  curl -fsS "http://127.0.0.1:$etcd_port/health" >/dev/null 2>&1 || die "etcd did not start; see $LOGS/etcd.log"

  nohup "$apiserver" --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --secure-port "$api_port" \
    --cert-dir "$PKI" --tls-cert-file "$PKI/server.crt" --tls-private-key-file "$PKI/server.key" \
    --client-ca-file "$PKI/ca.crt" --authorization-mode RBAC \
    --service-cluster-ip-range 10.0.0.0/24 --disable-admission-plugins ServiceAccount \
    --service-account-issuer https://kubernetes.default.svc --service-account-key-file "$PKI/sa.pub" \
    --service-account-signing-key-file "$PKI/sa.key" --allow-privileged=true \
    >"$LOGS/kube-apiserver.log" 2>&1 &
  echo $! >"$RUN/kube-apiserver.pid"
  echo "$api_port" >"$LOCAL/apiserver-port"
  echo "$etcd_port" >"$LOCAL/etcd-port"

  for _ in $(seq 1 120); do
    apiserver_ready && break
    alive "$RUN/kube-apiserver.pid" || die "kube-apiserver exited; see $LOGS/kube-apiserver.log"
    sleep 0.5
  done
  apiserver_ready || die "kube-apiserver did not become ready in 60 s; see $LOGS/kube-apiserver.log"
  write_kubeconfig "$api_port"
  for _ in $(seq 1 60); do
    kubectl --kubeconfig "$LOCAL/kubeconfig" get namespace default >/dev/null 2>&1 && break
    curl -fsS --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
      "https://127.0.0.1:$api_port/api/v1/namespaces/default" >/dev/null 2>&1 && break
    sleep 0.5
  done
  echo "control plane up: https://127.0.0.1:$api_port (kubeconfig .local/kubeconfig)" >&2
}

mkdir -p "$LOCAL"
if [[ "${RABBITBATCH_E2E:-}" == 1 ]]; then
  ensure_rabbitmq
  echo "e2e mode: using the cluster in \$KUBECONFIG (${KUBECONFIG:-~/.kube/config})" >&2
  exit 0
fi
start_plane
ensure_rabbitmq
ensure_redis
