/**
 * Loads the Kubernetes client configuration: an explicit kubeconfig file (the `--kubeconfig`
 * flag or `KUBECONFIG`, resolved by src/config), else the in-cluster service account when
 * running in a pod, else client-node's default lookup (`~/.kube/config`, then localhost).
 *
 * The in-cluster account and kubeconfigs using certificates, tokens or basic auth get the light
 * {@link LightKubeConfig}; anything else (exec plugins, auth providers, proxies, the default
 * lookup) gets client-node's `KubeConfig` with the shared pool (./api-server-pool.ts), imported
 * only then, since importing client-node costs the operator ~80 MB of RSS
 * (docs/adr/0019-own-api-calls-for-the-operator.md). Both keep one connection pool per API server.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { KubeAccess } from './api-request.js';
import { fromKubeconfig, inClusterConfig, SERVICE_ACCOUNT } from './light-kubeconfig.js';

export type OperatorKubeConfig = KubeAccess & { readonly connectionsOpened: number; close(): Promise<void> };

export async function loadKubeConfig(path?: string, service?: { host: string; port: string }): Promise<OperatorKubeConfig> {
  if (path) {
    const { parse } = await import('yaml');
    const light = fromKubeconfig(parse(readFileSync(path, 'utf8')), path);
    if (!('unsupported' in light)) return light;
  } else if (service && existsSync(`${SERVICE_ACCOUNT}/token`)) {
    return inClusterConfig(service);
  }
  const { PooledKubeConfig } = await import('./api-server-pool.js');
  const kc = new PooledKubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  return kc;
}
