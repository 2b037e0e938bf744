#!/usr/bin/env bash
# Prints the gitVersion of the API server in $KUBECONFIG (e.g. v1.35.4), read from its /version.
set -euo pipefail
kubectl get --raw /version | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p'
