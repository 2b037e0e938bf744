#!/usr/bin/env bash
# A real three-node RabbitMQ cluster for the tests, and beside it one standalone node without the
# rabbitmq_event_exchange plugin (a broker that sends no change events), run from the machine's
# own RabbitMQ installation (no downloads) BESIDE the machine's broker, which this script never
# stops, reconfigures or joins: the nodes have their own names, loopback-only ports, Erlang
# cookie, config, plugins file, data and logs, all under $BROKER_CLUSTER_DIR.
#
#   hack/broker-cluster.sh up            start the four nodes (or reuse them) and cluster the three
#   hack/broker-cluster.sh down          stop exactly those four nodes and remove their state
#   hack/broker-cluster.sh status        one line per node: name, ports, running or stopped
#   hack/broker-cluster.sh info          the nodes, ports, user and password as JSON (for tests)
#   hack/broker-cluster.sh stop-node N   stop node N (1..3) the way a lost node stops (the VM exits)
#   hack/broker-cluster.sh start-node N  start node N again; it rejoins the cluster from its own data
#
# Node N (1..3) is rabbitbatch-N@localhost with AMQP on 127.0.0.1:$((AMQP_PORT+N-1)), the
# management API on 127.0.0.1:$((MGMT_PORT+N-1)) and Erlang distribution on
# 127.0.0.1:$((DIST_PORT+N-1)). Defaults: 5681-5683, 15681-15683, 25681-25683 (the machine's
# broker keeps 5672/15672/25672); the command-line tools use 35691-35720 for their own
# distribution port. The standalone node rabbitbatch-plain@localhost (cluster name
# rabbitbatch-test-plain, plugin rabbitmq_management only) has the next port of each range:
# 5684, 15684, 25684 by default. Override with BROKER_CLUSTER_AMQP_PORT, BROKER_CLUSTER_MGMT_PORT,
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
PLAIN_NAME=rabbitbatch-test-plain
NODES=(1 2 3)
# Every node this script starts: the cluster's three and the standalone one.
ALL=(1 2 3 plain)
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
# Node N's ports are the Nth of each range; the standalone node's the 4th.
offset() { if [[ $1 == plain ]]; then echo 3; else echo $(($1 - 1)); fi; }
amqp_port() { echo $((AMQP_PORT + $(offset "$1"))); }
mgmt_port() { echo $((MGMT_PORT + $(offset "$1"))); }
dist_port() { echo $((DIST_PORT + $(offset "$1"))); }

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
  export RABBITMQ_NODE_PORT
  RABBITMQ_NODE_PORT="$(amqp_port "$n")"
  export RABBITMQ_DIST_PORT
  RABBITMQ_DIST_PORT="$(dist_port "$n")"
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
  for n in "${ALL[@]}"; do
    local d name=$CLUSTER_NAME plugins=rabbitmq_management,rabbitmq_event_exchange
    # The standalone node is the broker without change events: no amq.rabbitmq.event exchange.
    [[ $n == plain ]] && name=$PLAIN_NAME plugins=rabbitmq_management
    d="$(node_dir "$n")"
    mkdir -p "$d/data" "$d/log"
    cat >"$d/rabbitmq.conf" <<EOF
cluster_name = $name
management.tcp.ip = 127.0.0.1
management.tcp.port = $(mgmt_port "$n")
loopback_users.guest = true
log.file.level = info
log.console = false
EOF
    echo "[]." >"$d/advanced.config"
    echo "[$plugins]." >"$d/enabled_plugins"
  done
}

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_node() {
  local n=$1
  if node_running "$n"; then return 0; fi
  for port in $(amqp_port "$n") $(mgmt_port "$n") $(dist_port "$n"); do
    port_taken "$port" && die "port 127.0.0.1:$port (node $(node_name "$n")) is taken by another process: set BROKER_CLUSTER_*_PORT to a free range"
  done
  log "starting $(node_name "$n") (AMQP $(amqp_port "$n"), management $(mgmt_port "$n"), distribution $(dist_port "$n"))"
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
  local n=$1 port auth="${2:-$USER_NAME:$USER_PASSWORD}"
  port="$(mgmt_port "$n")"
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
# on node N (users are cluster-wide: node 1 for the cluster, and the standalone node). The
# management API answers in milliseconds where each rabbitmqctl call starts a VM (seconds on a
# small machine).
ensure_user() {
  local n=$1 api
  api="http://127.0.0.1:$(mgmt_port "$n")/api"
  wait_management "$n" guest:guest
  curl -fsS -u guest:guest -X PUT -H 'content-type: application/json' -o /dev/null \
    -d "{\"password\":\"$USER_PASSWORD\",\"tags\":\"administrator\"}" "$api/users/$USER_NAME" ||
    die "could not create user $USER_NAME on $(node_name "$n")"
  curl -fsS -u guest:guest -X PUT -H 'content-type: application/json' -o /dev/null \
    -d '{"configure":".*","write":".*","read":".*"}' "$api/permissions/%2F/$USER_NAME" ||
    die "could not give $USER_NAME permissions on vhost / of $(node_name "$n")"
}

# The nodes run as they should: every cluster node's management API answers and lists all three
# nodes running, and the standalone node's lists itself alone (one HTTP request per node, so
# reusing them costs well under a second).
healthy() {
  local nodes
  for n in "${NODES[@]}"; do
    nodes="$(curl -fsS -m 5 -u "$USER_NAME:$USER_PASSWORD" "http://127.0.0.1:$(mgmt_port "$n")/api/nodes?columns=name,running" 2>/dev/null)" || return 1
    for m in "${NODES[@]}"; do
      grep -q "{\"name\":\"$(node_name "$m")\",\"running\":true}" <<<"$nodes" || return 1
    done
  done
  nodes="$(curl -fsS -m 5 -u "$USER_NAME:$USER_PASSWORD" "http://127.0.0.1:$(mgmt_port plain)/api/nodes?columns=name,running" 2>/dev/null)" || return 1
  [[ "$nodes" == "[{\"name\":\"$(node_name plain)\",\"running\":true}]" ]]
}

up() {
  if [[ -s "$DIR/home/.erlang.cookie" ]] && healthy; then
    log "reusing the running cluster $CLUSTER_NAME ($(node_name 1) .. $(node_name 3)) and $(node_name plain)"
    return 0
  fi
  prepare
  for n in "${ALL[@]}"; do start_node "$n"; done
  for n in "${ALL[@]}"; do wait_node "$n"; done
  for n in 2 3; do
    if ! clustered "$n"; then
      log "joining $(node_name "$n") to $(node_name 1)"
      {
        ctl "$n" stop_app && ctl "$n" reset && ctl "$n" join_cluster "$(node_name 1)" && ctl "$n" start_app
      } >>"$(node_dir "$n")/log/join.log" 2>&1 || die "$(node_name "$n") could not join $(node_name 1); see $(node_dir "$n")/log/join.log"
    fi
  done
  ensure_user 1
  ensure_user plain
  for n in "${ALL[@]}"; do wait_management "$n"; done
  healthy || die "the nodes did not form one cluster of three running nodes beside one standalone node: see $DIR/node-*/log/"
  log "cluster $CLUSTER_NAME up: $(for n in "${NODES[@]}"; do printf '%s ' "$(node_name "$n")"; done)(management http://127.0.0.1:$MGMT_PORT-$((MGMT_PORT + 2)), user $USER_NAME)"
  log "standalone $(node_name plain) ($PLAIN_NAME, no rabbitmq_event_exchange) up: management http://127.0.0.1:$(mgmt_port plain), AMQP 127.0.0.1:$(amqp_port plain)"
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
  for n in "${ALL[@]}"; do stop_node "$n"; done
  for n in "${ALL[@]}"; do
    ! node_pid "$n" >/dev/null || die "$(node_name "$n") is still running (PID $(node_pid "$n")); state left in $DIR"
  done
  rm -rf "$DIR"
  log "stopped rabbitbatch-1..3@localhost and $(node_name plain), and removed $DIR"
}

status() {
  for n in "${ALL[@]}"; do
    local state=stopped
    node_running "$n" && state=running
    echo "$(node_name "$n") amqp=127.0.0.1:$(amqp_port "$n") management=http://127.0.0.1:$(mgmt_port "$n") dist=$(dist_port "$n") $state"
  done
}

node_json() {
  printf '{"name":"%s","amqpPort":%d,"managementPort":%d,"distPort":%d}' "$(node_name "$1")" "$(amqp_port "$1")" "$(mgmt_port "$1")" "$(dist_port "$1")"
}

info() {
  local sep=''
  printf '{"clusterName":"%s","username":"%s","password":"%s","nodes":[' "$CLUSTER_NAME" "$USER_NAME" "$USER_PASSWORD"
  for n in "${NODES[@]}"; do
    printf '%s%s' "$sep" "$(node_json "$n")"
    sep=,
  done
  printf '],"plain":{"clusterName":"%s","node":%s}}\n' "$PLAIN_NAME" "$(node_json plain)"
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
