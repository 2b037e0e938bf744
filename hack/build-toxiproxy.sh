#!/usr/bin/env bash
# Builds toxiproxy (the loopback latency/fault proxy used by benchmarks and fault tests) from
# the Go module proxy, cached by version like the control plane. Prints the binary's path.
set -euo pipefail
TOXIPROXY_VERSION="${TOXIPROXY_VERSION:-v2.5.0}"
CACHE="${RABBITBATCH_CACHE:-$HOME/.cache/rabbitbatch}"
BIN="$CACHE/toxiproxy-$TOXIPROXY_VERSION/toxiproxy-server"
if [[ ! -x "$BIN" ]]; then
  command -v go >/dev/null || { echo "build-toxiproxy: the Go toolchain is missing: install Go >= 1.24 and retry" >&2; exit 1; }
  gobin="$CACHE/build/toxiproxy-$TOXIPROXY_VERSION"
  mkdir -p "$gobin"
  CGO_ENABLED=0 GOBIN="$gobin" go install -trimpath -ldflags "-s -w" "github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION" >&2
  mkdir -p "$(dirname "$BIN")" && mv "$gobin/server" "$BIN" && rm -rf "$gobin"
fi
echo "$BIN"
