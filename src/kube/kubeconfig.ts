/**
 * Loads the Kubernetes client configuration: an explicit kubeconfig file (the `--kubeconfig`
 * flag or `KUBECONFIG`, resolved by src/config), else the in-cluster service account when
 * running in a pod, else client-node's default lookup (`~/.kube/config`, then localhost).
 * Every client built from it shares one keep-alive connection pool per API server
 * (src/kube/api-server-pool.ts).
 */
import { existsSync } from 'node:fs';
import { PooledKubeConfig } from './api-server-pool.js';

/** Where every pod finds its service-account token. */
const IN_CLUSTER_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export function loadKubeConfig(path?: string): PooledKubeConfig {
  const kc = new PooledKubeConfig();
  if (path) kc.loadFromFile(path);
  else if (existsSync(IN_CLUSTER_TOKEN)) kc.loadFromCluster();
  else kc.loadFromDefault();
  return kc;
}
