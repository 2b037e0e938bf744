#!/usr/bin/env bash
# `make cluster-up` / `make cluster-down`: a real single-node Kubernetes cluster on this machine.
#
#   cluster.sh up      etcd + kube-apiserver (control-plane.sh), kube-controller-manager,
#                      kube-scheduler, containerd and kubelet; waits for the node to be Ready.
#                      A running cluster is reused. Kubeconfig: $CLUSTER_DIR/kubeconfig.
#   cluster.sh down    stops all of it and removes what `up` added: Pods (so their network
#                      namespaces, veths and mounts go), processes (by PID file), leftover mounts
#                      under the cluster's directory, the bridge, our iptables chain and any KUBE-*
#                      chain the kubelet made, the kernel settings the kubelet and the bridge
#                      plugin change (restored to the values saved by `up`), the containerd state.
#   cluster.sh status  one line per process.
#
# Network: Pods live in network namespaces on the bridge $BRIDGE ($NODE_IP/24), which this script
# creates. kube-apiserver listens on the bridge address; one DNAT rule sends the `kubernetes`
# Service ($SERVICE_IP:443) there (no kube-proxy). socat forwards $NODE_IP:5672 (AMQP) and
# $NODE_IP:15673 (management) to RabbitMQ on 127.0.0.1:5672 and :15672, so the broker sees a
# loopback client. No traffic leaves the machine: everything is loopback or the bridge.
#
# Machine quirks (cgroup v1, no CAP_SYS_RESOURCE) and the settings they imply are explained where
# they are set below. Needs root. State: $CLUSTER_DIR (default .local/cluster); sockets in a short
# directory under /run (unix socket paths are limited to 108 bytes).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
C="${CLUSTER_DIR:-$ROOT/.local/cluster}"
mkdir -p "$C"
C="$(cd "$C" && pwd)"
CACHE="${RABBITBATCH_CACHE:-$HOME/.cache/rabbitbatch}"
BRIDGE="${CLUSTER_BRIDGE:-rbk0}"
NODE_IP="${CLUSTER_NODE_IP:-10.244.0.1}"
POD_SUBNET="${NODE_IP%.*}.0/24"
SERVICE_IP=10.0.0.1
NODE_NAME=rabbitbatch-node
# listen:target pairs. RabbitMQ's management listener binds 0.0.0.0:15672, so a Pod connecting to
# $NODE_IP:15672 would reach it directly as a non-local client, which guest may not be: Pods use
# $NODE_IP:15673 instead, forwarded to loopback.
FORWARDS="${CLUSTER_FORWARDS:-5672:5672 15673:15672}"
CHAIN=RABBITBATCH-CLUSTER
SOCKDIR="/run/rabbitbatch-$(printf %s "$C" | sha1sum | cut -c1-10)"
PKI="$C/pki" RUN="$C/run" LOGS="$C/logs"
KUBECONFIG_FILE="$C/kubeconfig"
PAUSE_IMAGE=localhost/rabbitbatch-pause:1
# What the kubelet (setupKernelTunables) and the bridge CNI plugin (ip_forward) write; saved by up,
# restored by down.
SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.ip_forward)

die() { echo "cluster: $*" >&2; exit 1; }
log() { echo "cluster: $*" >&2; }
running() { kill -0 "$1" 2>/dev/null && [[ "$(ps -o stat= -p "$1" 2>/dev/null | tr -d ' ')" != Z* ]]; }
alive() { [[ -f "$RUN/$1.pid" ]] && running "$(cat "$RUN/$1.pid")"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
kc() { kubectl --kubeconfig "$KUBECONFIG_FILE" "$@"; }

# ---- prerequisites ----------------------------------------------------------------------------

ensure_packages() {
  local missing=() need=(containerd:containerd runc:runc /usr/lib/cni/bridge:containernetworking-plugins
    socat:socat iptables:iptables ip:iproute2 buildah:buildah podman:podman busybox:busybox-static python3:python3)
  for pair in "${need[@]}"; do
    local probe="${pair%%:*}" pkg="${pair#*:}"
    if [[ "$probe" == /* ]]; then [[ -e "$probe" ]] || missing+=("$pkg"); else command -v "$probe" >/dev/null || missing+=("$pkg"); fi
  done
  command -v kubectl >/dev/null || die "kubectl is missing: apt-get install kubectl (Debian 13) or put a kubectl >= 1.33 on PATH"
  [[ ${#missing[@]} -eq 0 ]] && return 0
  [[ "$(id -u)" == 0 ]] || die "missing packages ${missing[*]}: apt-get install them as root"
  log "installing ${missing[*]} (apt-get; waits for the dpkg lock if another apt run holds it)"
  local apt=(apt-get -o DPkg::Lock::Timeout=600 -y -qq)
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" install "${missing[@]}" >/dev/null 2>&1 ||
    { "${apt[@]}" update >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive "${apt[@]}" install "${missing[@]}" >/dev/null; } ||
    die "could not install ${missing[*]}"
}

save_sysctls() {
  [[ -f "$C/sysctl.saved" ]] && return 0
  for k in "${SYSCTLS[@]}"; do echo "$k=$(sysctl -n "$k")"; done >"$C/sysctl.saved"
}

restore_sysctls() {
  [[ -f "$C/sysctl.saved" ]] || return 0
  while IFS='=' read -r k v; do sysctl -q -w "$k=$v" >/dev/null 2>&1 || log "could not restore $k=$v"; done <"$C/sysctl.saved"
  rm -f "$C/sysctl.saved"
}

# ---- network ----------------------------------------------------------------------------------

bridge_up() {
  ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
  ip addr show dev "$BRIDGE" | grep -q " $NODE_IP/" || ip addr add "$NODE_IP/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # Network namespaces that exist before the cluster: down removes only ones the cluster made.
  [[ -f "$C/netns.before" ]] || { ls /var/run/netns 2>/dev/null || true; } >"$C/netns.before"
  # containerd's shims put their sockets under /run/containerd/s whatever its config says.
  [[ -f "$C/run-containerd.before" ]] || { [[ -d /run/containerd ]] && echo yes || echo no; } >"$C/run-containerd.before"
  [[ -f "$C/kube-chains.before" ]] || iptables-save 2>/dev/null | grep -oE '^:KUBE-[A-Z0-9-]+' | sort -u >"$C/kube-chains.before" || true
}

nat_rule_up() {
  local port; port="$(cat "$C/apiserver-port")"
  iptables -t nat -N "$CHAIN" 2>/dev/null || true
  iptables -t nat -F "$CHAIN"
  iptables -t nat -A "$CHAIN" -d "$SERVICE_IP/32" -p tcp --dport 443 -j DNAT --to-destination "$NODE_IP:$port"
  iptables -t nat -C PREROUTING -i "$BRIDGE" -j "$CHAIN" 2>/dev/null || iptables -t nat -A PREROUTING -i "$BRIDGE" -j "$CHAIN"
}

network_down() {
  iptables -t nat -D PREROUTING -i "$BRIDGE" -j "$CHAIN" 2>/dev/null || true
  iptables -t nat -F "$CHAIN" 2>/dev/null || true
  iptables -t nat -X "$CHAIN" 2>/dev/null || true
  # KUBE-* chains the kubelet created (its canary chains), never ones that were there before.
  local table chain
  for table in mangle nat filter; do
    for chain in $(iptables -t "$table" -S 2>/dev/null | awk '$1=="-N" && $2 ~ /^KUBE-/ {print $2}'); do
      grep -qx ":$chain" "$C/kube-chains.before" 2>/dev/null && continue
      iptables -t "$table" -F "$chain" 2>/dev/null || true
      iptables -t "$table" -X "$chain" 2>/dev/null || true
    done
  done
  for ns in $(ls /var/run/netns 2>/dev/null || true); do
    [[ "$ns" == cni-* ]] || continue
    grep -qx "$ns" "$C/netns.before" 2>/dev/null && continue
    ip netns delete "$ns" 2>/dev/null || true
  done
  ip link show "$BRIDGE" >/dev/null 2>&1 && ip link delete "$BRIDGE"
  [[ "$(cat "$C/run-containerd.before" 2>/dev/null)" == no ]] && rm -rf /run/containerd
  rm -f "$C/netns.before" "$C/kube-chains.before" "$C/run-containerd.before"
}

forwards_up() {
  for pair in $FORWARDS; do
    local port="${pair%%:*}" target="${pair#*:}"
    alive "forward-$port" && continue
    nohup socat "TCP-LISTEN:$port,bind=$NODE_IP,fork,reuseaddr,backlog=512" "TCP:127.0.0.1:$target" >>"$LOGS/forward-$port.log" 2>&1 &
    echo $! >"$RUN/forward-$port.pid"
    sleep 0.2
    alive "forward-$port" || die "cannot forward $NODE_IP:$port to 127.0.0.1:$target: $(tail -1 "$LOGS/forward-$port.log")"
  done
}

# ---- processes --------------------------------------------------------------------------------

start_bg() { # name, command...
  local name="$1"; shift
  alive "$name" && return 0
  nohup "$@" >>"$LOGS/$name.log" 2>&1 &
  echo $! >"$RUN/$name.pid"
}

stop_proc() {
  local pidfile="$RUN/$1.pid"
  [[ -f "$pidfile" ]] || return 0
  local pid; pid="$(cat "$pidfile")"
  if running "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do running "$pid" || break; sleep 0.1; done
    running "$pid" && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

node_pki() {
  [[ -f "$PKI/kubelet.crt" ]] && return 0
  printf 'subjectAltName=DNS:%s,IP:%s,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' "$NODE_NAME" "$NODE_IP" >"$PKI/kubelet.ext"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$NODE_NAME" -keyout "$PKI/kubelet.key" -out "$PKI/kubelet.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/kubelet.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial -days 3650 \
    -extfile "$PKI/kubelet.ext" -out "$PKI/kubelet.crt" 2>/dev/null
  rm -f "$PKI/kubelet.csr"
}

containerd_up() {
  mkdir -p "$SOCKDIR" "$C/containerd" "$C/cni/net.d"
  cat >"$C/containerd/config.toml" <<EOF
version = 2
root = "$C/containerd/root"
state = "$SOCKDIR/state"
oom_score = 0
[grpc]
  address = "$SOCKDIR/containerd.sock"
[ttrpc]
  address = "$SOCKDIR/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$C/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # The sessions lack CAP_SYS_RESOURCE: a container's oom_score_adj may not go below containerd's,
  # or runc fails with "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        Root = "$SOCKDIR/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$C/cni/net.d"
EOF
  cat >"$C/cni/net.d/10-rabbitbatch.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "rabbitbatch",
  "plugins": [
    {
      "type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": { "type": "host-local", "dataDir": "$C/cni/ipam", "ranges": [[{ "subnet": "$POD_SUBNET", "rangeStart": "${NODE_IP%.*}.10", "gateway": "$NODE_IP" }]],
                "routes": [{ "dst": "0.0.0.0/0" }] }
    },
    { "type": "loopback" }
  ]
}
EOF
  start_bg containerd containerd --config "$C/containerd/config.toml"
  for _ in $(seq 1 100); do ctr --address "$SOCKDIR/containerd.sock" version >/dev/null 2>&1 && return 0; sleep 0.1; done
  die "containerd did not start; see $LOGS/containerd.log"
}

ctr_k8s() { ctr --address "$SOCKDIR/containerd.sock" -n k8s.io "$@"; }

pause_image() {
  ctr_k8s images ls -q 2>/dev/null | grep -qx "$PAUSE_IMAGE" && return 0
  local archive="$CACHE/images/rabbitbatch-pause-1.oci.tar"
  if [[ ! -f "$archive" ]]; then
    log "building $PAUSE_IMAGE (a static Go program) with buildah"
    mkdir -p "$CACHE/images"
    local tmp; tmp="$(mktemp -d)"
    (cd "$tmp" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o pause "$ROOT/hack/pause/pause.go")
    local ctr; ctr="$(bash "$ROOT/hack/buildah.sh" from scratch)"
    bash "$ROOT/hack/buildah.sh" copy "$ctr" "$tmp/pause" /pause >/dev/null
    bash "$ROOT/hack/buildah.sh" config --entrypoint '["/pause"]' --user 65535:65535 "$ctr"
    bash "$ROOT/hack/buildah.sh" commit -q "$ctr" "$PAUSE_IMAGE" >/dev/null
    bash "$ROOT/hack/buildah.sh" rm "$ctr" >/dev/null
    rm -f "$archive.tmp"
    bash "$ROOT/hack/buildah.sh" push -q "$PAUSE_IMAGE" "oci-archive:$archive.tmp:$PAUSE_IMAGE"
    mv "$archive.tmp" "$archive"
    rm -rf "$tmp"
  fi
  # A containerd that has just started can fail an import once ("content digest ... not found",
  # seen in a fresh clone's run right after its socket answered): ask again before giving up.
  local attempt
  for attempt in 1 2 3; do
    ctr_k8s images import --index-name "$PAUSE_IMAGE" "$archive" >/dev/null && return 0
    log "importing $PAUSE_IMAGE failed (attempt $attempt of 3)"
    sleep 2
  done
  return 1
}

kubelet_up() {
  mkdir -p "$C/kubelet"
  local healthz; healthz="$(cat "$C/kubelet-healthz-port" 2>/dev/null || free_port)"
  echo "$healthz" >"$C/kubelet-healthz-port"
  cat >"$C/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine mounts cgroup v1 only; kubelet 1.35 refuses it unless told otherwise.
failCgroupV1: false
cgroupDriver: cgroupfs
# No QoS cgroup hierarchy: nothing to clean up under /sys/fs/cgroup but what runc removes itself.
cgroupsPerQOS: false
enforceNodeAllocatable: ["none"]
# The kubelet cannot lower its own oom_score_adj here (no CAP_SYS_RESOURCE).
oomScoreAdj: 0
containerRuntimeEndpoint: unix://$SOCKDIR/containerd.sock
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $healthz
tlsCertFile: $PKI/kubelet.crt
tlsPrivateKeyFile: $PKI/kubelet.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: AlwaysAllow}
failSwapOn: false
makeIPTablesUtilChains: false
resolvConf: /etc/resolv.conf
serializeImagePulls: false
evictionHard: {memory.available: 100Mi, nodefs.available: 2%, imagefs.available: 2%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
maxPods: 40
rotateCertificates: false
serverTLSBootstrap: false
EOF
  start_bg kubelet "$C/bin/kubelet" --config "$C/kubelet-config.yaml" --kubeconfig "$KUBECONFIG_FILE" \
    --root-dir "$C/kubelet" --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --v=1
}

controllers_up() {
  local kcm_port sched_port
  kcm_port="$(free_port)"; sched_port="$(free_port)"
  start_bg kube-controller-manager "$C/bin/kube-controller-manager" --kubeconfig "$KUBECONFIG_FILE" \
    --authentication-kubeconfig "$KUBECONFIG_FILE" --authorization-kubeconfig "$KUBECONFIG_FILE" \
    --bind-address 127.0.0.1 --secure-port "$kcm_port" --leader-elect=false \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --use-service-account-credentials=true --service-cluster-ip-range 10.0.0.0/24 --v=1
  start_bg kube-scheduler "$C/bin/kube-scheduler" --kubeconfig "$KUBECONFIG_FILE" \
    --authentication-kubeconfig "$KUBECONFIG_FILE" --authorization-kubeconfig "$KUBECONFIG_FILE" \
    --bind-address 127.0.0.1 --secure-port "$sched_port" --leader-elect=false --v=1
}

up() {
  [[ "$(id -u)" == 0 ]] || die "needs root (network namespaces, a bridge, containerd)"
  ensure_packages
  mkdir -p "$RUN" "$LOGS" "$C/bin"
  local bins; bins="$(bash "$ROOT/hack/build-control-plane.sh" --node)"
  for b in kube-controller-manager kube-scheduler kubelet; do ln -sf "$(grep "/$b\$" <<<"$bins")" "$C/bin/$b"; done
  save_sysctls
  bridge_up
  APISERVER_BIND_ADDRESS="$NODE_IP" APISERVER_EXTRA_SANS="IP:$NODE_IP" APISERVER_ADMISSION="" \
    APISERVER_EXTRA_ARGS="--kubelet-client-certificate $PKI/admin.crt --kubelet-client-key $PKI/admin.key --kubelet-preferred-address-types InternalIP" \
    bash "$ROOT/hack/control-plane.sh" start "$C"
  nat_rule_up
  forwards_up
  node_pki
  containerd_up
  pause_image
  kubelet_up
  controllers_up
  log "waiting for node $NODE_NAME to be Ready"
  for _ in $(seq 1 120); do
    kc wait --for condition=Ready "node/$NODE_NAME" --timeout=1s >/dev/null 2>&1 && break
    for p in containerd kubelet kube-controller-manager kube-scheduler; do alive "$p" || die "$p exited; see $LOGS/$p.log"; done
    sleep 1
  done
  kc wait --for condition=Ready "node/$NODE_NAME" --timeout=1s >/dev/null || die "node $NODE_NAME not Ready after 2 minutes; see $LOGS/kubelet.log"
  for _ in $(seq 1 60); do kc get serviceaccount default -n default >/dev/null 2>&1 && break; sleep 1; done
  log "cluster up: node $NODE_NAME Ready; kubectl --kubeconfig ${KUBECONFIG_FILE#"$ROOT"/} get nodes"
}

unmount_under() { # every mount below a path, deepest first
  local path="$1"
  awk -v p="$path" '$5 == p || index($5, p "/") == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "could not unmount $m"
  done
}

down() {
  [[ -d "$C" ]] || return 0
  # No new Pods: stop the controllers first, then let the kubelet tear every Pod down (CNI DEL
  # removes its veth and network namespace, the kubelet its volume mounts).
  stop_proc kube-controller-manager
  stop_proc kube-scheduler
  if alive kubelet && alive kube-apiserver; then
    kc delete pods --all -A --grace-period=2 --wait=false >/dev/null 2>&1 || true
    for _ in $(seq 1 60); do
      [[ -z "$(kc get pods -A -o name 2>/dev/null)" ]] && break
      sleep 1
    done
    kc delete pods --all -A --force --grace-period=0 >/dev/null 2>&1 || true
    for _ in $(seq 1 30); do
      [[ -z "$(ctr_k8s tasks ls -q 2>/dev/null)" ]] && break
      sleep 1
    done
  fi
  stop_proc kubelet
  if alive containerd; then
    for t in $(ctr_k8s tasks ls -q 2>/dev/null); do ctr_k8s tasks kill -s KILL "$t" >/dev/null 2>&1 || true; done
    sleep 0.5
    for t in $(ctr_k8s tasks ls -q 2>/dev/null); do ctr_k8s tasks delete -f "$t" >/dev/null 2>&1 || true; done
  fi
  stop_proc containerd
  pkill -f "containerd-shim-runc-v2 -namespace k8s.io -address $SOCKDIR/" 2>/dev/null || true
  for f in "$RUN"/forward-*.pid; do [[ -f "$f" ]] && stop_proc "$(basename "$f" .pid)"; done
  bash "$ROOT/hack/control-plane.sh" stop "$C" >/dev/null 2>&1 || true
  unmount_under "$C"
  unmount_under "$SOCKDIR"
  network_down
  restore_sysctls
  rm -rf "$SOCKDIR" "$C"
  log "cluster down: nothing of it is running or mounted"
}

status() {
  for p in etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet; do
    if alive "$p"; then echo "$p running (pid $(cat "$RUN/$p.pid"))"; else echo "$p stopped"; fi
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) die "usage: cluster.sh up|down|status" ;;
esac
