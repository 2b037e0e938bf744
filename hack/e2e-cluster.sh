#!/usr/bin/env bash
# `make e2e-cluster`: the real single-node cluster up (reused when running), the image built and
# loaded, then test/cluster (deploy/ applied as users apply it, the operator as a Pod) and the
# integration tests that drive an operator, each with its operator as a Pod. Leaves the
# cluster and the operator running for a person to look at:
#   kubectl --kubeconfig .local/cluster/kubeconfig -n rabbitbatch-system get pods
# With --down-if-started (what `make test` passes) a cluster this run had to start is taken down
# afterwards, pass or fail, so the test suite leaves the machine as it found it.
set -euo pipefail
cd "$(dirname "$0")/.."
started_here=0
if ! bash hack/cluster.sh status 2>/dev/null | grep -q '^kubelet running'; then started_here=1; fi
if [[ "${1:-}" == --down-if-started && $started_here == 1 ]]; then trap 'bash hack/cluster.sh down' EXIT; fi
t0=$(date +%s)
bash hack/cluster.sh up
t1=$(date +%s)
bash hack/image.sh
t2=$(date +%s)
PATH="$PWD/node_modules/.bin:$PATH" vitest run --project cluster
t3=$(date +%s)
# The integration tests that drive an operator, with that operator as a Pod of the image on the
# node (test/support/operator-pod.ts); the installed operator is paused for the run meanwhile.
mapfile -t operator_tests < <(grep -l startTestOperator test/integration/*.test.ts)
RABBITBATCH_E2E=1 RABBITBATCH_OPERATOR=pod KUBECONFIG="$PWD/.local/cluster/kubeconfig" \
  PATH="$PWD/node_modules/.bin:$PATH" vitest run --project integration "${operator_tests[@]}"
t4=$(date +%s)
echo "e2e-cluster: cluster-up $((t1 - t0)) s, image $((t2 - t1)) s, cluster tests $((t3 - t2)) s, integration tests with the operator in a Pod $((t4 - t3)) s" >&2
