/** Proves both halves of the harness: a real apiserver (CRD + watch round trip) and a real broker. */
import { ApiextensionsV1Api, CustomObjectsApi, Watch } from '@kubernetes/client-node';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestNamespace, loadKubeConfig } from '../support/kube.js';
import { createTestVhost, rabbitUrl } from '../support/rabbit.js';
import { eventually } from '../support/wait.js';

const WIDGETS = { group: 'harness.rabbitbatch.io', version: 'v1', plural: 'widgets' };

describe('the local control plane', () => {
  const kc = loadKubeConfig();
  let ns: { name: string; cleanup: () => Promise<void> };
  beforeAll(async () => {
    ns = await createTestNamespace('harness');
  });
  afterAll(() => ns.cleanup());

  it('is ready', async () => {
    const cluster = kc.getCurrentCluster()!;
    const user = kc.getCurrentUser()!;
    const tls = { ca: readFileSync(cluster.caFile!), cert: readFileSync(user.certFile!), key: readFileSync(user.keyFile!) };
    const res = await request(`${cluster.server}/readyz`, { dispatcher: new Agent({ connect: tls }) });
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe('ok');
  });

  it('installs a CRD and round-trips a custom object through a watch', async () => {
    const ext = kc.makeApiClient(ApiextensionsV1Api);
    await ext
      .createCustomResourceDefinition({
        body: {
          metadata: { name: `${WIDGETS.plural}.${WIDGETS.group}` },
          spec: {
            group: WIDGETS.group,
            scope: 'Namespaced',
            names: { kind: 'Widget', plural: WIDGETS.plural, singular: 'widget' },
            versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', properties: { spec: { type: 'object', properties: { size: { type: 'integer' } } } } } } }],
          },
        },
      })
      .catch((err: { code?: number }) => {
        if (err.code !== 409) throw err;
      });
    const objects = kc.makeApiClient(CustomObjectsApi);
    await eventually(() => objects.listNamespacedCustomObject({ ...WIDGETS, namespace: ns.name }));

    const seen: { type: string; name: string; size: number }[] = [];
    const watch = await new Watch(kc).watch(`/apis/${WIDGETS.group}/v1/namespaces/${ns.name}/${WIDGETS.plural}`, {}, (type, obj: { metadata: { name: string }; spec: { size: number } }) => {
      seen.push({ type, name: obj.metadata.name, size: obj.spec.size });
    }, () => undefined);
    try {
      await objects.createNamespacedCustomObject({ ...WIDGETS, namespace: ns.name, body: { apiVersion: `${WIDGETS.group}/v1`, kind: 'Widget', metadata: { name: 'w1' }, spec: { size: 3 } } });
      await eventually(() => expect(seen).toContainEqual({ type: 'ADDED', name: 'w1', size: 3 }));
    } finally {
      watch.abort();
    }
  });
});

describe('the local RabbitMQ', () => {
  let vhost: { name: string; cleanup: () => Promise<void> };
  beforeAll(async () => {
    vhost = await createTestVhost('harness');
  });
  afterAll(() => vhost.cleanup());

  it('declares a queue over the management API and reads it back', async () => {
    const auth = `Basic ${Buffer.from('guest:guest').toString('base64')}`;
    const path = `/api/queues/${encodeURIComponent(vhost.name)}/harness.q`;
    const put = await request(`${rabbitUrl()}${path}`, {
      method: 'PUT',
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: JSON.stringify({ durable: true, auto_delete: false, arguments: { 'x-max-length': 10 } }),
    });
    await put.body.dump();
    expect(put.statusCode).toBe(201);
    const got = await request(`${rabbitUrl()}${path}`, { headers: { authorization: auth } });
    expect(await got.body.json()).toMatchObject({ name: 'harness.q', durable: true, arguments: { 'x-max-length': 10 } });
  });
});
