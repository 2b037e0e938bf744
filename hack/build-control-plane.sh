#!/usr/bin/env bash
# Builds kube-apiserver and etcd from the Go module proxy (no binary downloads
# exist on these machines) and caches them by version outside the repository.
# Second runs find the binaries in the cache and return in milliseconds.
#
#   build-control-plane.sh          kube-apiserver, etcd (the fast suite's plane); prints their paths
#   build-control-plane.sh --node   also kube-controller-manager, kube-scheduler and kubelet (the
#                                   real cluster of cluster-up.sh), built in the same Go module
#                                   so the three share most of kube-apiserver's compiled packages
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.35.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.6}"
CACHE="${RABBITBATCH_CACHE:-$HOME/.cache/rabbitbatch}"
APISERVER="$CACHE/kube-apiserver-$K8S_VERSION/kube-apiserver"
NODE_BINARIES=(kube-controller-manager kube-scheduler kubelet)
WITH_NODE=0
[[ "${1:-}" == --node ]] && WITH_NODE=1
ETCD="$CACHE/etcd-$ETCD_VERSION/etcd"

die() { echo "build-control-plane: $*" >&2; exit 1; }
command -v go >/dev/null || die "the Go toolchain is missing: install Go >= 1.24 (apt-get install golang-go, or https://go.dev/dl) and retry"

export CGO_ENABLED=0 GOFLAGS=-mod=mod

k8s_bin() { echo "$CACHE/$1-$K8S_VERSION/$1"; }

# Builds every k8s.io/kubernetes command named that is not cached yet, in one `go build`.
build_k8s() {
  local missing=()
  for b in "$@"; do [[ -x "$(k8s_bin "$b")" ]] || missing+=("$b"); done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  echo "building ${missing[*]} $K8S_VERSION (cold build: kube-apiserver ~3-5 min on 2 cores, the node binaries ~4-6 min more; cached in $CACHE)" >&2
  local work
  mkdir -p "$CACHE/build" && work="$(mktemp -d "$CACHE/build/k8s-$K8S_VERSION.XXXXXX")" && cd "$work"
  local gomod
  gomod="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')"
  [[ -f "$gomod" ]] || die "could not download k8s.io/kubernetes@$K8S_VERSION from the Go module proxy"
  go mod init rabbitbatch.local/kubernetes >/dev/null 2>&1
  # k8s.io/kubernetes replaces its staging modules with local paths; point each
  # at its published twin (v0.<minor>.<patch>) so the module resolves.
  local staging="v0.${K8S_VERSION#v1.}"
  grep -oE 'k8s.io/[a-z0-9-]+ => ./staging/' "$gomod" | awk '{print $1}' | sort -u | while read -r m; do
    echo "replace $m => $m $staging" >>go.mod
  done
  go get "k8s.io/kubernetes@$K8S_VERSION" >/dev/null
  local date pkgs=()
  date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  for b in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  mkdir -p out
  go build -trimpath -o out/ \
    -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.buildDate=$date -X k8s.io/component-base/version.gitTreeState=clean" \
    "${pkgs[@]}"
  for b in "${missing[@]}"; do
    mkdir -p "$(dirname "$(k8s_bin "$b")")" && mv "out/$b" "$(k8s_bin "$b")"
  done
  cd / && rm -rf "$work"
}

build_etcd() {
  [[ -x "$ETCD" ]] && return 0
  echo "building etcd $ETCD_VERSION (cached in $CACHE)" >&2
  # server/v3's go.mod has replace directives, so `go install pkg@version`
  # refuses it: build it from a throwaway module instead.
  local work
  mkdir -p "$CACHE/build" && work="$(mktemp -d "$CACHE/build/etcd-$ETCD_VERSION.XXXXXX")" && cd "$work"
  go mod init rabbitbatch.local/etcd >/dev/null 2>&1
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null
  go build -trimpath -ldflags "-s -w" -o etcd.tmp go.etcd.io/etcd/server/v3
  mkdir -p "$(dirname "$ETCD")" && mv etcd.tmp "$ETCD"
  cd / && rm -rf "$work"
}

mkdir -p "$CACHE"
# Several make targets (or parallel runs) may ask at once: one builds, the others wait for it and
# then find the binaries in the cache.
exec 9>"$CACHE/.build.lock"
flock 9
build_etcd
if [[ $WITH_NODE == 1 ]]; then build_k8s kube-apiserver "${NODE_BINARIES[@]}"; else build_k8s kube-apiserver; fi
echo "$APISERVER"
echo "$ETCD"
if [[ $WITH_NODE == 1 ]]; then for b in "${NODE_BINARIES[@]}"; do k8s_bin "$b"; done; fi
