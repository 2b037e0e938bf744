#!/usr/bin/env bash
# Tools the test suite runs besides the servers: a Lua 5.1 interpreter for the Argo CD health
# check (Argo CD runs it on gopher-lua, a Lua 5.1) and toxiproxy for the network-fault tests.
# Installed when missing (lua5.1 from Debian's packages when run as root, toxiproxy built from
# the Go module proxy and cached), so a fresh machine needs nothing by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
die() { echo "test-tools: $*" >&2; exit 1; }

if ! command -v lua5.1 >/dev/null && ! command -v lua >/dev/null; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    echo "installing lua5.1 (apt-get) for the Argo CD health-check test" >&2
    { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lua5.1 >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lua5.1 >/dev/null 2>&1; }; } ||
      die "could not install lua5.1: run 'apt-get install lua5.1' (or put a Lua 5.1 'lua' on PATH) and retry"
  else
    die "a Lua 5.1 interpreter is missing: apt-get install lua5.1 (or put 'lua' on PATH) and retry"
  fi
fi
bash hack/build-toxiproxy.sh >/dev/null
