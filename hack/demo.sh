#!/usr/bin/env bash
# `make demo`: the newcomer path on local defaults. Brings up the local control plane and
# RabbitMQ if needed, installs the CRD, runs the operator from source, applies examples/ and
# shows what happened, in Kubernetes and in RabbitMQ. The operator is stopped at the end
# (`make run` keeps one running); the examples stay applied (`kubectl delete -f examples/`).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "local control plane and RabbitMQ (hack/env-up.sh)"
bash hack/env-up.sh
export KUBECONFIG="$PWD/.local/kubeconfig"
# The control plane's own version (`kubectl version`'s second line is kustomize's, not the server's).
echo "control plane: kube-apiserver $(bash hack/server-version.sh)"


step "install the CRD (crds/, generated from src/api/schema.ts)"
kubectl apply --server-side --force-conflicts -f crds/
kubectl wait --for condition=Established crd/rabbitqueuebatches.rabbitbatch.io --timeout=60s

step "run the operator from source (logs: .local/logs/operator.log)"
mkdir -p .local/logs .local/run
METRICS_ADDR="${DEMO_METRICS_ADDR:-127.0.0.1:18080}"
PROBE_ADDR="${DEMO_PROBE_ADDR:-127.0.0.1:18081}"
"$PWD/node_modules/.bin/node" --import tsx src/cli/main.ts operator --metrics-bind-address "$METRICS_ADDR" --health-probe-bind-address "$PROBE_ADDR" \
  >.local/logs/operator.log 2>&1 &
OPERATOR_PID=$!
echo "$OPERATOR_PID" >.local/run/operator.pid
trap 'kill $OPERATOR_PID 2>/dev/null || true; rm -f .local/run/operator.pid' EXIT
for _ in $(seq 1 120); do
  curl -fsS "http://$PROBE_ADDR/readyz" >/dev/null 2>&1 && break
  kill -0 "$OPERATOR_PID" 2>/dev/null || { echo "the operator exited; see .local/logs/operator.log:" >&2; tail -20 .local/logs/operator.log >&2; exit 1; }
  sleep 0.5
done
echo "operator ready (pid $OPERATOR_PID; metrics http://$METRICS_ADDR/metrics)"

step "kubectl apply -f examples/"
kubectl apply -f examples/01-small-batch.yaml -f examples/02-bindings-and-quorum.yaml
kubectl wait --for condition=Ready rqb/orders rqb/billing --timeout=60s
kubectl apply -f examples/03-best-effort-with-conflict.yaml
kubectl wait --for jsonpath='{.status.summary.total}'=3 rqb/reporting --timeout=60s

step "kubectl get rqb"
kubectl get rqb

step "per-item status of rqb/reporting (BestEffort, one deliberate conflict)"
kubectl get rqb reporting -o jsonpath='{range .status.items[*]}{.status}{"\t"}{.resource}{"\t"}{.error}{"\n"}{end}'
kubectl get rqb reporting -o jsonpath='{range .status.conditions[*]}{.type}={.status} ({.reason}): {.message}{"\n"}{end}'

step "what RabbitMQ holds now (read back over the management API)"
curl -fsS -u guest:guest 'http://127.0.0.1:15672/api/queues/%2F?disable_stats=true&columns=name,type,arguments' |
  npx tsx -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{for(const q of JSON.parse(s)) if(/^(orders|billing|reporting)/.test(q.name)) console.log(`${q.type.padEnd(8)} ${q.name.padEnd(22)} ${JSON.stringify(q.arguments)}`)})'

step "done"
echo "The examples stay applied. With an operator running ('make run'), 'kubectl delete -f examples/' removes them and, as their deletionPolicy is Delete, their objects in RabbitMQ."
echo "'make run' keeps an operator running; 'make env-down' stops the local control plane."
