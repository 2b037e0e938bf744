/**
 * The built-in resources the operator reads and writes (Leases, Secrets, Events), as the
 * method subsets of client-node's `CoordinationV1Api` and `CoreV1Api` it uses. Those classes
 * satisfy these interfaces too (tests pass them); the operator uses the light implementations
 * below, which talk to the API server through ./api-request.ts. Only the types come from
 * client-node: `import type` loads nothing at run time.
 */
import type { CoreV1Event, V1Lease, V1LeaseList, V1Secret } from '@kubernetes/client-node';
import { kubeCall, MERGE_PATCH, namespacedPath, type KubeAccess } from './api-request.js';

interface Named {
  name: string;
  namespace: string;
}

export interface LeaseApi {
  readNamespacedLease(p: Named): Promise<V1Lease>;
  createNamespacedLease(p: { namespace: string; body: V1Lease }): Promise<V1Lease>;
  replaceNamespacedLease(p: Named & { body: V1Lease }): Promise<V1Lease>;
  listNamespacedLease(p: { namespace: string; labelSelector?: string }): Promise<V1LeaseList>;
  deleteNamespacedLease(p: Named): Promise<unknown>;
}

export interface SecretApi {
  readNamespacedSecret(p: Named): Promise<V1Secret>;
}

const LEASES = '/apis/coordination.k8s.io/v1';

export function leaseApi(kc: KubeAccess): LeaseApi {
  const path = (namespace: string, name?: string) => namespacedPath(LEASES, namespace, 'leases', name);
  return {
    readNamespacedLease: ({ name, namespace }) => kubeCall(kc, 'GET', path(namespace, name)),
    createNamespacedLease: ({ namespace, body }) => kubeCall(kc, 'POST', path(namespace), { body }),
    replaceNamespacedLease: ({ name, namespace, body }) => kubeCall(kc, 'PUT', path(namespace, name), { body }),
    listNamespacedLease: ({ namespace, labelSelector }) => kubeCall(kc, 'GET', path(namespace), { query: { labelSelector } }),
    deleteNamespacedLease: ({ name, namespace }) => kubeCall(kc, 'DELETE', path(namespace, name)),
  };
}

export function secretApi(kc: KubeAccess): SecretApi {
  return { readNamespacedSecret: ({ name, namespace }) => kubeCall(kc, 'GET', namespacedPath('/api/v1', namespace, 'secrets', name)) };
}

/** Events (core/v1): create, and the merge patch that aggregates a repeat. */
export function eventApi(kc: KubeAccess) {
  const path = (namespace: string, name?: string) => namespacedPath('/api/v1', namespace, 'events', name);
  return {
    create: (namespace: string, body: CoreV1Event) => kubeCall<CoreV1Event>(kc, 'POST', path(namespace), { body }),
    patch: (namespace: string, name: string, body: object) => kubeCall<CoreV1Event>(kc, 'PATCH', path(namespace, name), { body, contentType: MERGE_PATCH }),
  };
}
