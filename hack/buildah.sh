#!/usr/bin/env bash
# buildah with the project's own image storage (under the build cache, not the system's
# /var/lib/containers) and the settings these machines need: RUN steps in a chroot (no crun or
# runc needed for builds; crun fails on this hybrid cgroup layout), the host's network for
# `npm ci`, and file-descriptor limits no higher than the hard limit the sessions have.
set -euo pipefail
CACHE="${RABBITBATCH_CACHE:-$HOME/.cache/rabbitbatch}"
STORE="$CACHE/containers"
mkdir -p "$STORE/storage" "$STORE/runroot"
sub="$1"; shift
case "$sub" in
  build|bud) exec buildah --root "$STORE/storage" --runroot "$STORE/runroot" --storage-driver overlay \
    build --isolation chroot --network host --ulimit nofile=20000:20000 "$@" ;;
  *) exec buildah --root "$STORE/storage" --runroot "$STORE/runroot" --storage-driver overlay "$sub" "$@" ;;
esac
