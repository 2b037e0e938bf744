/**
 * vitest globalSetup for the `cluster` project (`make e2e-cluster`): the real single-node cluster
 * of hack/cluster.sh must be up and `make image` done (the make target runs both first). Installs
 * crds/ and hands the cluster's kubeconfig to the tests; RabbitMQ is the machine's broker, which
 * the tests read directly on loopback and the operator Pod reaches through the node's bridge.
 */
import { existsSync } from 'node:fs';
import type { TestProject } from 'vitest/node';
import { installCrds } from './global-setup.js';

const ROOT = new URL('../../', import.meta.url).pathname;

export default async function setup(project: TestProject): Promise<void> {
  const kubeconfigPath = process.env.CLUSTER_KUBECONFIG ?? `${ROOT}.local/cluster/kubeconfig`;
  if (!existsSync(kubeconfigPath)) throw new Error(`no cluster kubeconfig at ${kubeconfigPath}: run \`make cluster-up\` and \`make image\` (make e2e-cluster does both)`);
  await installCrds(kubeconfigPath);
  project.provide('kubeconfigPath', kubeconfigPath);
  project.provide('rabbitmqUrl', process.env.RABBITMQ_URL ?? 'http://127.0.0.1:15672');
}
