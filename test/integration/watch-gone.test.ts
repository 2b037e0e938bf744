/**
 * 410 Gone for real: a private control plane whose kube-apiserver serves watches from etcd
 * (`--watch-cache=false`: no watch cache, no bookmarks), its etcd compacted past the
 * reflector's resourceVersion (other writes moved etcd's revision on). The server ends each
 * watch after `timeoutSeconds`; the resumed watch gets 410 Gone, and the reflector relists: a
 * second complete list, logged as such, holding exactly the objects that exist.
 */
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import pino from 'pino';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GROUP, PLURAL, VERSION } from '../../src/api/schema.js';
import { Reflector, type ReflectedEvent } from '../../src/kube/reflector.js';
import type { KubeObject } from '../../src/kube/store.js';
import { batchApi, createTestNamespace, loadKubeConfig } from '../support/kube.js';
import { startPrivatePlane, type PrivatePlane } from '../support/private-plane.js';
import { eventually } from '../support/wait.js';

let plane: PrivatePlane;
let ns: { name: string; cleanup: () => Promise<void> };

beforeAll(async () => {
  plane = await startPrivatePlane('gone', ['--watch-cache=false']);
  ns = await createTestNamespace('gone', plane.kubeconfigPath);
}, 180_000);
afterAll(async () => {
  await ns?.cleanup();
  await plane?.stop();
});

async function etcd(path: string, body: unknown): Promise<{ header?: { revision?: string } }> {
  const res = await request(`http://127.0.0.1:${plane.etcdPort()}${path}`, { method: 'POST', body: JSON.stringify(body) });
  const json = (await res.body.json()) as { header?: { revision?: string } };
  if (res.statusCode !== 200) throw new Error(`etcd ${path}: ${res.statusCode} ${JSON.stringify(json)}`);
  return json;
}

describe('410 Gone', () => {
  it('relists after etcd compacted past the watch resourceVersion', async () => {
    const kc = loadKubeConfig(plane.kubeconfigPath);
    const objects = kc.makeApiClient(CustomObjectsApi);
    const body = (name: string) => ({ apiVersion: `${GROUP}/${VERSION}`, kind: 'RabbitQueueBatch', metadata: { name }, spec: { queues: [{ name: `${name}.q` }] } });
    await objects.createNamespacedCustomObject({ ...batchApi, namespace: ns.name, body: body('keep') });
    await objects.createNamespacedCustomObject({ ...batchApi, namespace: ns.name, body: body('doomed') });
    const warnings: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push((JSON.parse(line) as { msg: string }).msg) });
    const path = `/apis/${GROUP}/${VERSION}/namespaces/${ns.name}/${PLURAL}`;
    const reflector = new Reflector<KubeObject>({ kubeConfig: kc, path, timeoutSeconds: 3, watchdogMarginMs: 2_000, backoff: { initialMs: 1_000, maxMs: 1_000 }, logger });
    const events: ReflectedEvent<KubeObject>[] = [];
    try {
      reflector.start((e) => events.push(e));
      await reflector.store.waitForSync();
      expect(reflector.store.get(`${ns.name}/doomed`)).toBeDefined();
      const restarts = () => events.filter((e) => e.type === 'restarted').length;
      expect(restarts()).toBe(1);
      // The watch sees this deletion; then other writes move etcd on, and a compaction to the
      // current revision leaves the reflector's resourceVersion behind the compacted one.
      await objects.deleteNamespacedCustomObject({ ...batchApi, namespace: ns.name, name: 'doomed' });
      await eventually(() => expect(reflector.store.get(`${ns.name}/doomed`)).toBeUndefined());
      const core = kc.makeApiClient(CoreV1Api);
      for (let i = 0; i < 3; i++) await core.createNamespacedConfigMap({ namespace: ns.name, body: { metadata: { name: `bump-${i}` } } });
      const revision = (await etcd('/v3/kv/range', { key: Buffer.from('/').toString('base64'), limit: 1 })).header?.revision;
      await etcd('/v3/kv/compaction', { revision, physical: true });
      await eventually(() => expect(warnings).toContain('resourceVersion gone; relisting after backoff'), { timeoutMs: 30_000, intervalMs: 200 });
      await eventually(() => expect(restarts()).toBe(2), { timeoutMs: 30_000, intervalMs: 200 });
      const relist = events.filter((e) => e.type === 'restarted')[1] as Extract<ReflectedEvent<KubeObject>, { type: 'restarted' }>;
      expect(relist.objects.map((o) => o.metadata?.name)).toEqual(['keep']);
    } finally {
      await reflector.stop();
    }
  }, 120_000);
});
