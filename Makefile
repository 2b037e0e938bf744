# rabbitbatch: every target a newcomer needs. See README.md.
SHELL := /bin/bash
export KUBECONFIG ?= $(CURDIR)/.local/kubeconfig
NPM_STAMP := node_modules/.install-stamp

.PHONY: demo test test-reliability e2e env-up env-down broker-cluster-up broker-cluster-down run bench crd lint typecheck build deps \
	cluster-up cluster-down image e2e-cluster

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

deps: $(NPM_STAMP)

## demo: bring up the local control plane and RabbitMQ, install the CRD, run the operator, apply examples/
demo: deps
	bash hack/demo.sh

## test: lint, typecheck, unit and integration tests against a real kube-apiserver, etcd and RabbitMQ,
## then e2e-cluster (a cluster it had to start is taken down again)
test: deps
	bash hack/env-up.sh
	bash hack/test-tools.sh
	npm test
	bash hack/e2e-cluster.sh --down-if-started

## test-reliability: only the fault tests (broker restart, operator SIGKILL); `make test` runs them too
test-reliability: deps
	bash hack/env-up.sh
	bash hack/test-tools.sh
	npm run test:reliability

## e2e: the same integration suite against any cluster in $$KUBECONFIG (kind, CI); RabbitMQ at $$RABBITMQ_URL.
## RABBITBATCH_OPERATOR=pod runs each test's operator as a Pod of localhost/rabbitbatch:dev (the
## local cluster of `make cluster-up`; `make e2e-cluster` does this for the tests that drive one)
e2e: deps
	RABBITBATCH_E2E=1 npm run test:integration

## cluster-up / cluster-down: a real single-node cluster (kubelet, containerd; kubeconfig .local/cluster/kubeconfig)
cluster-up: deps
	bash hack/cluster.sh up

cluster-down:
	bash hack/cluster.sh down

## image: localhost/rabbitbatch:dev from the Dockerfile (buildah), loaded into the cluster's containerd
image: deps
	bash hack/image.sh

## e2e-cluster: cluster-up, image, then deploy/ as Pods and the tests of test/cluster; leaves it running
e2e-cluster: deps
	bash hack/e2e-cluster.sh

## env-up / env-down: the local control plane (kubeconfig at .local/kubeconfig) and RabbitMQ
env-up:
	bash hack/env-up.sh

env-down:
	bash hack/env-down.sh

## broker-cluster-up / broker-cluster-down: three RabbitMQ nodes clustered beside the machine's broker
## (rabbitbatch-1..3@localhost, AMQP 5681-5683, management 15681-15683; see hack/broker-cluster.sh)
broker-cluster-up:
	bash hack/broker-cluster.sh up

broker-cluster-down:
	bash hack/broker-cluster.sh down

## run: the operator from source against $$KUBECONFIG
run: deps
	npx tsx src/cli/main.ts operator $(ARGS)

## bench: the benchmark suite (BENCH=<name> for one, QUICK=1 for a smoke run)
bench: deps
	bash hack/env-up.sh
	kubectl --kubeconfig .local/kubeconfig apply --server-side --force-conflicts -f crds/ >/dev/null
	kubectl --kubeconfig .local/kubeconfig wait --for condition=Established crd/rabbitqueuebatches.rabbitbatch.io --timeout=60s >/dev/null
	node_modules/.bin/node --import tsx bench/run.ts $(BENCH)

## crd: regenerate crds/ from the zod schema in src/api
crd: deps
	npm run gen:crd

lint: deps
	npm run lint

typecheck: deps
	npm run typecheck

build: deps
	npm run build
