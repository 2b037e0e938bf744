/**
 * Leaves the shared API server as a benchmark found it: every RabbitQueueBatch of the namespace
 * deleted (the object, not just its finalizer: an operator started later on the same plane would
 * reconcile a leftover for ever), then the namespace. The local plane has no controller-manager,
 * so the namespace itself never finishes terminating; the objects in it must already be gone.
 * Call it after the operators are stopped, or they would re-add their finalizer.
 */
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION, type RabbitQueueBatch } from '../../src/api/schema.js';

const api = { group: GROUP, version: VERSION, plural: PLURAL };

export async function deleteBatchesAndNamespace(kc: KubeConfig, namespace: string): Promise<void> {
  const objects = kc.makeApiClient(CustomObjectsApi);
  const list = async () => ((await objects.listNamespacedCustomObject({ ...api, namespace }).catch(() => ({ items: [] }))) as { items: RabbitQueueBatch[] }).items;
  let errors: string[] = [];
  // A few rounds: a patch can fail while the API server is busy or restarting (429, 5xx).
  for (let round = 0; round < 5; round++) {
    errors = [];
    const queue = (await list()).filter((b) => b.metadata.finalizers?.length).map((b) => b.metadata.name);
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        for (let name = queue.pop(); name !== undefined; name = queue.pop()) {
          await objects.patchNamespacedCustomObject({ ...api, namespace, name, body: [{ op: 'remove', path: '/metadata/finalizers' }] }).catch((err: Error) => errors.push(`${name}: ${err.message.split('\n')[0]}`));
        }
      }),
    );
    await objects.deleteCollectionNamespacedCustomObject({ ...api, namespace }).catch((err: Error) => errors.push(`deletecollection: ${err.message.split('\n')[0]}`));
    if ((await list()).length === 0) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  const left = await list();
  if (left.length > 0) console.error(`cleanup: ${left.length} RabbitQueueBatch objects still in ${namespace} (${left.slice(0, 5).map((b) => b.metadata.name).join(', ')}): ${errors.slice(0, 3).join('; ')}`);
  await kc.makeApiClient(CoreV1Api).deleteNamespace({ name: namespace }).catch(() => undefined);
}
