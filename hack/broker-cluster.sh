#!/usr/bin/env bash
# A real three-node RabbitMQ cluster for the tests, run from the machine's own RabbitMQ
# installation (no downloads) BESIDE the machine's broker, which this script never stops,
# reconfigures or joins: the nodes have their own names, loopback-only ports, Erlang cookie,
# config, plugins file, data and logs, all under $BROKER_CLUSTER_DIR.
#
#   hack/broker-cluster.sh up            start the three nodes (or reuse them) and cluster them
#   hack/broker-cluster.sh down          stop exactly those three nodes and remove their state
#   hack/broker-cluster.sh status        one line per node: name, ports, running or stopped
#   hack/broker-cluster.sh info          the nodes, ports, user and password as JSON (for tests)
#   hack/broker-cluster.sh stop-node N   stop node N (1..3) the way a lost node stops (the VM exits)
#   hack/broker-cluster.sh start-node N  start node N again; it rejoins the cluster from its own data
#
# Node N (1..3) is rabbitbatch-N@localhost with AMQP on 127.0.0.1:$((AMQP_PORT+N-1)), the
# management API on 127.0.0.1:$((MGMT_PORT+N-1)) and Erlang distribution on
# 127.0.0.1:$((DIST_PORT+N-1)). Defaults: 5681-5683, 15681-15683, 25681-25683 (the machine's
# broker keeps 5672/15672/25672); the command-line tools use 35691-35720 for their own
# distribution port. Override with BROKER_CLUSTER_AMQP_PORT, BROKER_CLUSTER_MGMT_PORT,
# BROKER_CLUSTER_DIST_PORT, BROKER_CLUSTER_CTL_PORT, BROKER_CLUSTER_DIR,
# BROKER_CLUSTER_USER / BROKER_CLUSTER_PASSWORD (the tests' user, administrator on the cluster).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

DIR="${BROKER_CLUSTER_DIR:-$ROOT/.local/broker-cluster}"
AMQP_PORT="${BROKER_CLUSTER_AMQP_PORT:-5681}"
MGMT_PORT="${BROKER_CLUSTER_MGMT_PORT:-15681}"
DIST_PORT="${BROKER_CLUSTER_DIST_PORT:-25681}"
CTL_PORT="${BROKER_CLUSTER_CTL_PORT:-35691}"
USER_NAME="${BROKER_CLUSTER_USER:-rabbitbatch-test}"
USER_PASSWORD="${BROKER_CLUSTER_PASSWORD:-rabbitbatch-test}"
CLUSTER_NAME=rabbitbatch-test-cluster
NODES=(1 2 3)
# The installation's own scripts, not /usr/sbin's wrappers (those switch to the rabbitmq user and
# the machine broker's directories).
SBIN="${RABBITMQ_SBIN:-}"
if [[ -z "$SBIN" ]]; then
  for candidate in /usr/lib/rabbitmq/bin /usr/local/lib/rabbitmq/bin; do
    [[ -x "$candidate/rabbitmq-server" ]] && SBIN="$candidate" && break
  done
fi

die() { echo "broker-cluster: $*" >&2; exit 1; }
log() { echo "broker-cluster: $*" >&2; }

[[ -n "$SBIN" ]] || die "RabbitMQ is not installed (no rabbitmq-server under /usr/lib/rabbitmq/bin): apt-get install rabbitmq-server (3.10+), or set RABBITMQ_SBIN"

node_name() { echo "rabbitbatch-$1@localhost"; }
node_dir() { echo "$DIR/node-$1"; }

# Everything a node and the command-line tools talking to it need, and nothing from
# /etc/rabbitmq: our own env file (empty), config, plugins file, cookie (via HOME) and directories.
node_env() {
  local n=$1 d
  d="$(node_dir "$n")"
  export HOME="$DIR/home"
  export RABBITMQ_CONF_ENV_FILE="$DIR/rabbitmq-env.conf"
  export RABBITMQ_NODENAME
  RABBITMQ_NODENAME="$(node_name "$n")"
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT=$((AMQP_PORT + n - 1))
  export RABBITMQ_DIST_PORT=$((DIST_PORT + n - 1))
  export RABBITMQ_CONFIG_FILE="$d/rabbitmq.conf"
  export RABBITMQ_ADVANCED_CONFIG_FILE="$d/advanced.config"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$d/enabled_plugins"
  export RABBITMQ_MNESIA_BASE="$d/data"
  export RABBITMQ_LOG_BASE="$d/log"
  export RABBITMQ_PID_FILE="$d/rabbitmq.pid"
  export RABBITMQ_ALLOW_INPUT=false
  export ERL_EPMD_ADDRESS=127.0.0.1
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  export RABBITMQ_CTL_DIST_PORT_MIN="$CTL_PORT"
  export RABBITMQ_CTL_DIST_PORT_MAX=$((CTL_PORT + 29))
}

ctl() {
  local n=$1
  shift
  # Without our cookie there is no node of ours to talk to (and the CLI would try to create one).
  [[ -s "$DIR/home/.erlang.cookie" ]] || return 1
  # A CLI call to a node that is down may crash its own VM: no erl_crash.dump in the caller's directory.
  (node_env "$n" && export ERL_CRASH_DUMP_SECONDS=0 && "$SBIN/rabbitmqctl" -q -n "$(node_name "$n")" "$@")
}

# The PID of node N when it runs: from its PID file, and only if that process is a beam.smp of
# this very node (a stale file never makes us signal another process).
node_pid() {
  local n=$1 pid file
  file="$(node_dir "$n")/rabbitmq.pid"
  [[ -s "$file" ]] || return 1
  pid="$(tr -dc 0-9 <"$file")"
  [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
  # The node name is not on beam's command line; its environment carries it.
  tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "RABBITMQ_NODENAME=$(node_name "$n")" || return 1
  echo "$pid"
}

node_running() { ctl "$1" ping >/dev/null 2>&1; }

prepare() {
  mkdir -p "$DIR/home"
  chmod 700 "$DIR/home"
  if [[ ! -s "$DIR/home/.erlang.cookie" ]]; then
    head -c 32 /dev/urandom | od -An -tx1 | tr -dc 0-9a-f >"$DIR/home/.erlang.cookie"
    chmod 400 "$DIR/home/.erlang.cookie"
  fi
  : >"$DIR/rabbitmq-env.conf"
  for n in "${NODES[@]}"; do
    local d
    d="$(node_dir "$n")"
    mkdir -p "$d/data" "$d/log"
    cat >"$d/rabbitmq.conf" <<EOF
cluster_name = $CLUSTER_NAME
management.tcp.ip = 127.0.0.1
management.tcp.port = $((MGMT_PORT + n - 1))
loopback_users.guest = true
log.file.level = info
log.console = false
EOF
    echo "[]." >"$d/advanced.config"
    echo "[rabbitmq_management,rabbitmq_event_exchange]." >"$d/enabled_plugins"
  done
}

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_node() {
  local n=$1
  if node_running "$n"; then return 0; fi
  for port in $((AMQP_PORT + n - 1)) $((MGMT_PORT + n - 1)) $((DIST_PORT + n - 1)); do
    port_taken "$port" && die "port 127.0.0.1:$port (node $(node_name "$n")) is taken by another process: set BROKER_CLUSTER_*_PORT to a free range"
  done
  log "starting $(node_name "$n") (AMQP $((AMQP_PORT + n - 1)), management $((MGMT_PORT + n - 1)), distribution $((DIST_PORT + n - 1)))"
  (node_env "$n" && cd "$(node_dir "$n")" && "$SBIN/rabbitmq-server" -detached >"$(node_dir "$n")/log/startup.log" 2>&1) ||
    die "$(node_name "$n") did not start; see $(node_dir "$n")/log/"
}

wait_node() {
  local n=$1
  for _ in $(seq 1 120); do
    [[ -s "$(node_dir "$n")/rabbitmq.pid" ]] && break
    sleep 0.5
  done
  ctl "$n" wait --timeout 120 "$(node_dir "$n")/rabbitmq.pid" >/dev/null 2>&1 ||
    die "$(node_name "$n") did not boot within 120 s; see $(node_dir "$n")/log/"
}

wait_management() {
  local n=$1 port=$((MGMT_PORT + $1 - 1)) auth="${2:-$USER_NAME:$USER_PASSWORD}"
  for _ in $(seq 1 120); do
    curl -fsS -u "$auth" -o /dev/null "http://127.0.0.1:$port/api/overview?columns=cluster_name" 2>/dev/null && return 0
    sleep 0.5
  done
  die "the management API of $(node_name "$n") does not answer on 127.0.0.1:$port"
}

# Node N is in node 1's cluster (a node that was clustered before keeps that in its data).
clustered() {
  ctl "$1" cluster_status --formatter json 2>/dev/null | grep -q "\"$(node_name 1)\""
}

# guest may log in from loopback, which is all these nodes listen on; it creates the tests' user
# (users are cluster-wide). The management API answers in milliseconds where each rabbitmqctl
# call starts a VM (seconds on a small machine).
ensure_user() {
  local api="http://127.0.0.1:$MGMT_PORT/api"
  wait_management 1 guest:guest
  curl -fsS -u guest:guest -X PUT -H 'content-type: application/json' -o /dev/null \
    -d "{\"password\":\"$USER_PASSWORD\",\"tags\":\"administrator\"}" "$api/users/$USER_NAME" ||
    die "could not create user $USER_NAME on $(node_name 1)"
  curl -fsS -u guest:guest -X PUT -H 'content-type: application/json' -o /dev/null \
    -d '{"configure":".*","write":".*","read":".*"}' "$api/permissions/%2F/$USER_NAME" ||
    die "could not give $USER_NAME permissions on vhost / of $(node_name 1)"
}

# The cluster runs as it should: every node's management API answers and lists all three nodes
# running (one HTTP request per node, so a reused cluster costs well under a second).
healthy() {
  for n in "${NODES[@]}"; do
    local nodes
    nodes="$(curl -fsS -m 5 -u "$USER_NAME:$USER_PASSWORD" "http://127.0.0.1:$((MGMT_PORT + n - 1))/api/nodes?columns=name,running" 2>/dev/null)" || return 1
    for m in "${NODES[@]}"; do
      grep -q "{\"name\":\"$(node_name "$m")\",\"running\":true}" <<<"$nodes" || return 1
    done
  done
}

up() {
  if [[ -s "$DIR/home/.erlang.cookie" ]] && healthy; then
    log "reusing the running cluster $CLUSTER_NAME ($(node_name 1) .. $(node_name 3))"
    return 0
  fi
  prepare
  for n in "${NODES[@]}"; do start_node "$n"; done
  for n in "${NODES[@]}"; do wait_node "$n"; done
  for n in 2 3; do
    if ! clustered "$n"; then
      log "joining $(node_name "$n") to $(node_name 1)"
      {
        ctl "$n" stop_app && ctl "$n" reset && ctl "$n" join_cluster "$(node_name 1)" && ctl "$n" start_app
      } >>"$(node_dir "$n")/log/join.log" 2>&1 || die "$(node_name "$n") could not join $(node_name 1); see $(node_dir "$n")/log/join.log"
    fi
  done
  ensure_user
  for n in "${NODES[@]}"; do wait_management "$n"; done
  healthy || die "the nodes did not form one cluster of three running nodes: see $DIR/node-*/log/"
  log "cluster $CLUSTER_NAME up: $(for n in "${NODES[@]}"; do printf '%s ' "$(node_name "$n")"; done)(management http://127.0.0.1:$MGMT_PORT-$((MGMT_PORT + 2)), user $USER_NAME)"
}

stop_node() {
  local n=$1 pid
  pid="$(node_pid "$n" || true)"
  [[ -n "$pid" ]] || { node_running "$n" || return 0; }
  log "stopping $(node_name "$n")"
  ctl "$n" stop >/dev/null 2>&1 || true
  if [[ -n "$pid" ]]; then
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  fi
}

down() {
  for n in "${NODES[@]}"; do stop_node "$n"; done
  for n in "${NODES[@]}"; do
    ! node_pid "$n" >/dev/null || die "$(node_name "$n") is still running (PID $(node_pid "$n")); state left in $DIR"
  done
  rm -rf "$DIR"
  log "stopped rabbitbatch-1..3@localhost and removed $DIR"
}

status() {
  for n in "${NODES[@]}"; do
    local state=stopped
    node_running "$n" && state=running
    echo "$(node_name "$n") amqp=127.0.0.1:$((AMQP_PORT + n - 1)) management=http://127.0.0.1:$((MGMT_PORT + n - 1)) dist=$((DIST_PORT + n - 1)) $state"
  done
}

info() {
  local sep=''
  printf '{"clusterName":"%s","username":"%s","password":"%s","nodes":[' "$CLUSTER_NAME" "$USER_NAME" "$USER_PASSWORD"
  for n in "${NODES[@]}"; do
    printf '%s{"name":"%s","amqpPort":%d,"managementPort":%d,"distPort":%d}' "$sep" "$(node_name "$n")" $((AMQP_PORT + n - 1)) $((MGMT_PORT + n - 1)) $((DIST_PORT + n - 1))
    sep=,
  done
  printf ']}\n'
}

node_arg() {
  [[ "${1:-}" =~ ^[123]$ ]] || die "node number 1, 2 or 3 expected, got '${1:-}'"
  echo "$1"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  info) info ;;
  stop-node) stop_node "$(node_arg "${2:-}")" ;;
  start-node)
    n="$(node_arg "${2:-}")"
    [[ -d "$(node_dir "$n")/data" ]] || die "node $n has no data: run \`make broker-cluster-up\` first"
    start_node "$n"
    wait_node "$n"
    wait_management "$n"
    ;;
  *) die "usage: $0 up|down|status|info|stop-node N|start-node N" ;;
esac
