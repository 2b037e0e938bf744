#!/usr/bin/env bash
# One local control plane (etcd + kube-apiserver, built by build-control-plane.sh) whose whole
# state lives in one directory: PKI, etcd data, PID files, logs, ports and the kubeconfig.
# env-up.sh / env-down.sh use it for .local; fault tests start private planes in temp dirs, so
# breaking one never takes the shared plane down.
#
#   control-plane.sh start DIR                   start both (a running plane is reused); writes DIR/kubeconfig
#   control-plane.sh stop DIR                    stop everything DIR's PID files name; remove etcd's data
#   control-plane.sh stop-apiserver DIR [SIGNAL] stop only kube-apiserver (TERM by default, KILL for a crash)
#   control-plane.sh start-apiserver DIR         start kube-apiserver again on its port, on the same etcd and data
#   control-plane.sh restart-apiserver DIR       both of the above
#
# Ports: ETCD_PORT / APISERVER_PORT, else free ones. Processes are found by PID file only.
# The real cluster (cluster.sh) reuses this plane with a few knobs, defaults in brackets:
#   APISERVER_BIND_ADDRESS   the address kube-apiserver listens on and the kubeconfig names [127.0.0.1]
#   APISERVER_EXTRA_SANS     more subjectAltNames for its serving certificate, e.g. IP:10.244.0.1 []
#   APISERVER_ADMISSION      admission flags [--disable-admission-plugins ServiceAccount: no Pods here]
#   APISERVER_EXTRA_ARGS     further flags, space-separated []
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

die() { echo "control-plane: $*" >&2; exit 1; }
[[ $# -ge 2 ]] || die "usage: control-plane.sh start|stop|stop-apiserver|start-apiserver|restart-apiserver DIR [SIGNAL]"
CMD="$1"
LOCAL="$2"
if [[ "$CMD" == start ]]; then mkdir -p "$LOCAL"; fi
[[ -d "$LOCAL" ]] && LOCAL="$(cd "$LOCAL" && pwd)"
RUN="$LOCAL/run"
LOGS="$LOCAL/logs"
PKI="$LOCAL/pki"
BIND="${APISERVER_BIND_ADDRESS:-127.0.0.1}"
read -r -a ADMISSION <<<"${APISERVER_ADMISSION---disable-admission-plugins ServiceAccount}"
read -r -a EXTRA_ARGS <<<"${APISERVER_EXTRA_ARGS:-}"

# Nothing reaps orphans on some machines (PID 1 is not an init): a zombie counts as stopped.
running() { kill -0 "$1" 2>/dev/null && [[ "$(ps -o stat= -p "$1" 2>/dev/null | tr -d ' ')" != Z* ]]; }
alive() { [[ -f "$1" ]] && running "$(cat "$1")"; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# python3 picks free ports, kubectl waits for the API server: say how to get them, not "command not found".
need_tools() {
  command -v python3 >/dev/null || die "python3 is missing: apt-get install python3"
  command -v kubectl >/dev/null || die "kubectl is missing: apt-get install kubectl (Debian 13), or put a kubectl >= 1.33 from https://kubernetes.io/docs/tasks/tools/ on PATH"
}

make_pki() {
  [[ -f "$PKI/admin.crt" ]] && return 0
  command -v openssl >/dev/null || die "openssl is missing: apt-get install openssl"
  mkdir -p "$PKI" && cd "$PKI"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=rabbitbatch-local-ca" -keyout ca.key -out ca.crt 2>/dev/null
  cat >server.ext <<EXT
subjectAltName=DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:127.0.0.1,IP:10.0.0.1${APISERVER_EXTRA_SANS:+,$APISERVER_EXTRA_SANS}
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
    "https://$BIND:$(cat "$LOCAL/apiserver-port")/readyz" >/dev/null 2>&1
}

write_kubeconfig() {
  local port="$1"
  cat >"$LOCAL/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: rabbitbatch-local
  cluster:
    server: https://$BIND:$port
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
  printf 'KUBECONFIG=%s\nAPISERVER=https://%s:%s\n' "$LOCAL/kubeconfig" "$BIND" "$port" >"$LOCAL/env"
}

stop() {
  local pidfile="$RUN/$1.pid" signal="${2:-TERM}"
  [[ -f "$pidfile" ]] || return 0
  local pid
  pid="$(cat "$pidfile")"
  if running "$pid"; then
    kill -s "$signal" "$pid"
    for _ in $(seq 1 50); do running "$pid" || break; sleep 0.1; done
    running "$pid" && kill -9 "$pid"
    echo "stopped $1 (pid $pid)" >&2
  fi
  rm -f "$pidfile"
}

stop_plane() {
  [[ -d "$LOCAL" ]] || return 0
  stop operator # the one demo.sh runs, if any
  stop kube-apiserver
  stop etcd
  rm -rf "$LOCAL/etcd-data" "$LOCAL/apiserver-port" "$LOCAL/etcd-port"
}

# Starts kube-apiserver on the port and etcd recorded in $LOCAL and waits for /readyz.
start_apiserver() {
  local apiserver api_port etcd_port
  apiserver="$(readlink -f "$LOCAL/bin/kube-apiserver")"
  [[ -f "$LOCAL/apiserver-port" && -f "$LOCAL/etcd-port" ]] || die "no plane in $LOCAL: run start first"
  alive "$RUN/etcd.pid" || die "etcd of $LOCAL is not running: run start"
  api_port="$(cat "$LOCAL/apiserver-port")"
  etcd_port="$(cat "$LOCAL/etcd-port")"
  alive "$RUN/kube-apiserver.pid" && die "kube-apiserver of $LOCAL is already running"
  nohup "$apiserver" --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address "$BIND" ${APISERVER_BIND_ADDRESS:+--advertise-address "$BIND"} --secure-port "$api_port" \
    --cert-dir "$PKI" --tls-cert-file "$PKI/server.crt" --tls-private-key-file "$PKI/server.key" \
    --client-ca-file "$PKI/ca.crt" --authorization-mode RBAC \
    --service-cluster-ip-range 10.0.0.0/24 "${ADMISSION[@]}" \
    --service-account-issuer https://kubernetes.default.svc --service-account-key-file "$PKI/sa.pub" \
    --service-account-signing-key-file "$PKI/sa.key" --allow-privileged=true "${EXTRA_ARGS[@]}" \
    >>"$LOGS/kube-apiserver.log" 2>&1 &
  echo $! >"$RUN/kube-apiserver.pid"
  for _ in $(seq 1 120); do
    apiserver_ready && return 0
    alive "$RUN/kube-apiserver.pid" || die "kube-apiserver exited; see $LOGS/kube-apiserver.log"
    sleep 0.5
  done
  apiserver_ready || die "kube-apiserver did not become ready in 60 s; see $LOGS/kube-apiserver.log"
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

  if alive "$RUN/kube-apiserver.pid" && alive "$RUN/etcd.pid"; then
    # Running: a busy machine can make /readyz slow for a while. Wait for it rather than wipe a
    # plane that other runs may be using.
    for _ in $(seq 1 60); do apiserver_ready && break; sleep 0.5; done
    if apiserver_ready; then
      write_kubeconfig "$(cat "$LOCAL/apiserver-port")"
      echo "control plane already running (https://$BIND:$(cat "$LOCAL/apiserver-port"))" >&2
      return 0
    fi
    echo "control plane in $LOCAL runs but has not been ready for 30 s: starting it again" >&2
  fi
  # Stale or half-started: stop what our PID files name, then start clean.
  stop_plane >/dev/null 2>&1 || true

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

  echo "$api_port" >"$LOCAL/apiserver-port"
  echo "$etcd_port" >"$LOCAL/etcd-port"
  : >"$LOGS/kube-apiserver.log"
  start_apiserver
  write_kubeconfig "$api_port"
  for _ in $(seq 1 60); do
    kubectl --kubeconfig "$LOCAL/kubeconfig" get namespace default >/dev/null 2>&1 && break
    curl -fsS --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
      "https://$BIND:$api_port/api/v1/namespaces/default" >/dev/null 2>&1 && break
    sleep 0.5
  done
  echo "control plane up: https://$BIND:$api_port (kubeconfig ${LOCAL#"$ROOT"/}/kubeconfig)" >&2
}

case "$CMD" in
  start) need_tools && start_plane ;;
  stop) stop_plane ;;
  stop-apiserver) stop kube-apiserver "${3:-TERM}" ;;
  start-apiserver) start_apiserver ;;
  restart-apiserver) stop kube-apiserver && start_apiserver ;;
  *) die "unknown command $CMD (start, stop, stop-apiserver, start-apiserver, restart-apiserver)" ;;
esac
