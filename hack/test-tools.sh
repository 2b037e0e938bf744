#!/usr/bin/env bash
# Tools the test suite runs besides the servers: kubectl and python3 (the control-plane scripts
# and several tests), a Lua 5.1 interpreter for the Argo CD health check (Argo CD runs it on
# gopher-lua, a Lua 5.1), promtool (Debian's `prometheus` package) for `promtool test rules`,
# setpriv (util-linux) to run the image test as a non-root user, and toxiproxy for the
# network-fault tests. Installed when missing (Debian's packages when run as root, toxiproxy
# built from the Go module proxy and cached), so a fresh machine needs nothing by hand. Another
# apt run holding the dpkg lock (common on a fresh machine) is waited for, not an error.
set -euo pipefail
cd "$(dirname "$0")/.."
die() { echo "test-tools: $*" >&2; exit 1; }

APT=(apt-get -o DPkg::Lock::Timeout=600 -y -qq)
# apt_install <package> <why>: installs a Debian package as root; says what to run otherwise.
apt_install() {
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    echo "installing $1 (apt-get) for $2" >&2
    { DEBIAN_FRONTEND=noninteractive "${APT[@]}" install "$1" >/dev/null 2>&1 ||
      { "${APT[@]}" update >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive "${APT[@]}" install "$1" >/dev/null 2>&1; }; } ||
      die "could not install $1: run 'apt-get install $1' and retry"
  else
    die "$1 is missing (needed for $2): run 'apt-get install $1' as root and retry"
  fi
}

command -v kubectl >/dev/null ||
  die "kubectl is missing: apt-get install kubectl (Debian 13), or put a kubectl >= 1.33 from https://kubernetes.io/docs/tasks/tools/ on PATH, and retry"
command -v python3 >/dev/null || apt_install python3 "the control-plane scripts (free ports)"
if ! command -v lua5.1 >/dev/null && ! command -v lua >/dev/null; then
  apt_install lua5.1 "the Argo CD health-check test"
fi
command -v promtool >/dev/null || apt_install prometheus "promtool test rules (the PrometheusRule's unit tests)"
command -v promtool >/dev/null || die "promtool is still missing after installing prometheus"
command -v setpriv >/dev/null || apt_install util-linux "running the image test as uid 65532"
bash hack/build-toxiproxy.sh >/dev/null
