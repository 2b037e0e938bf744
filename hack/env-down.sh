#!/usr/bin/env bash
# `make env-down`: stops exactly what env-up started, by PID file (never by process name), and
# removes etcd's data. RabbitMQ and Redis are the machine's services and are left running.
# RABBITBATCH_LOCAL_DIR names the state directory env-up used (default .local).
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/control-plane.sh stop "${RABBITBATCH_LOCAL_DIR:-$PWD/.local}"
