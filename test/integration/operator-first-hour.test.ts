/**
 * What a new user sees from the operator, on the real apiserver and broker: a queue recreated by
 * `onConflict: RecreateIfEmpty` keeps its bindings and is reported as recreated (not as drift);
 * `READY ready/total` in the status, no pool figures in it; a missing or wrong connection Secret
 * is named in the status and an Event, and fixing it is picked up at once (the Secret is watched);
 * a missing broker is named on /readyz and in the log.
 */
import { Writable } from 'node:stream';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RabbitQueueBatchSpecInput } from '../../src/api/schema.js';
import { loadEnv, loadOperatorConfig } from '../../src/config/config.js';
import { startManager } from '../../src/operator/manager.js';
import { installCrds } from '../support/global-setup.js';
import { createTestNamespace, kubeconfigPath, loadKubeConfig } from '../support/kube.js';
import { batchClient, condition, item, operatorRabbitUrl, startTestOperator, type TestOperator } from '../support/operator.js';
import { createTestVhost, getQueue, listBindings, rabbitUrl } from '../support/rabbit.js';
import { eventually } from '../support/wait.js';

let ns: { name: string; cleanup: () => Promise<void> };
let vh: { name: string; cleanup: () => Promise<void> };
let operator: TestOperator;
let batches: ReturnType<typeof batchClient>;
const core = () => loadKubeConfig().makeApiClient(CoreV1Api);

beforeAll(async () => {
  // The API server is shared: make sure it serves this checkout's CRD (its `status.ready`).
  await installCrds(kubeconfigPath());
  ns = await createTestNamespace('first-hour');
  vh = await createTestVhost('first-hour');
  operator = await startTestOperator(ns.name);
  batches = batchClient(ns.name);
});

afterAll(async () => {
  await operator?.stop();
  await ns?.cleanup();
  await vh?.cleanup();
});

const eventsOf = async (name: string) => (await core().listNamespacedEvent({ namespace: ns.name, fieldSelector: `involvedObject.name=${name}` })).items;

describe('onConflict: RecreateIfEmpty through the operator', () => {
  it('recreates the queue with its binding, says Recreated (not DriftRepaired), and shows READY 3/3', async () => {
    const spec = (ttl: number): RabbitQueueBatchSpecInput => ({
      vhost: vh.name,
      deletionPolicy: 'Delete',
      onConflict: 'RecreateIfEmpty',
      exchanges: [{ name: 'shop.events', type: 'topic' }],
      queues: [{ name: 'shop.orders', arguments: { 'x-message-ttl': ttl } }],
      bindings: [{ source: 'shop.events', destination: 'shop.orders', routingKey: 'order.#' }],
    });
    await batches.create('shop', spec(60_000));
    await batches.waitFor('shop', (b) => condition(b, 'Ready')?.status === 'True');
    await batches.setSpec('shop', spec(30_000));
    const b = await batches.waitFor('shop', (b) => condition(b, 'Ready')?.status === 'True');
    expect((await getQueue(vh.name, 'shop.orders'))?.arguments).toEqual({ 'x-message-ttl': 30_000 });
    expect((await listBindings(vh.name)).map((x) => `${x.source}->${x.destination}:${x.routing_key}`)).toEqual(['shop.events->shop.orders:order.#']);
    expect(item(b, 'binding/shop.events/shop.orders/order.#')?.status).toBe('Ready');
    expect(b.status?.ready).toBe('3/3');
    expect(b.status).not.toHaveProperty('connection');
    const events = await eventually(async () => {
      const list = await eventsOf('shop');
      expect(list.map((e) => e.reason)).toContain('Recreated');
      return list;
    });
    expect(events.find((e) => e.reason === 'Recreated')?.message).toContain('queue/shop.orders');
    // The event stream delivered the queue's and the binding's deletion meanwhile: our own, not drift.
    await new Promise((r) => setTimeout(r, 2_000));
    expect((await eventsOf('shop')).map((e) => e.reason)).not.toContain('DriftRepaired');
    // The binding is still there after the echoes of the recreate were processed.
    expect((await listBindings(vh.name)).map((x) => `${x.source}->${x.destination}`)).toEqual(['shop.events->shop.orders']);
  });
});

describe('connection Secrets', () => {
  it('a missing Secret gets an Event; a wrong password is Unauthorized naming the Secret; the fixed Secret is used at once', async () => {
    await batches.create('creds', { vhost: vh.name, rabbitmq: { connectionSecret: { name: 'rabbit-creds' } }, queues: [{ name: 'creds.q' }] });
    const missing = await batches.waitFor('creds', (b) => condition(b, 'Ready')?.reason === 'SecretNotFound');
    expect(condition(missing, 'Ready')?.message).toContain(`Secret ${ns.name}/rabbit-creds`);
    await eventually(async () => expect((await eventsOf('creds')).map((e) => e.reason)).toContain('SecretNotFound'));

    const data = (password: string) => ({ uri: Buffer.from(operatorRabbitUrl(rabbitUrl())).toString('base64'), username: Buffer.from('guest').toString('base64'), password: Buffer.from(password).toString('base64') });
    await core().createNamespacedSecret({ namespace: ns.name, body: { metadata: { name: 'rabbit-creds' }, data: data('not-the-password') } });
    const refused = await batches.waitFor('creds', (b) => condition(b, 'Ready')?.reason === 'Unauthorized');
    expect(condition(refused, 'Ready')?.message).toContain(`Secret ${ns.name}/rabbit-creds`);
    expect(condition(refused, 'Ready')?.message).not.toContain('not-the-password');
    await eventually(async () => expect((await eventsOf('creds')).map((e) => e.reason)).toContain('Unauthorized'));

    // The operator requeues an Unauthorized batch after a minute; the watch on the Secret is what makes this quick.
    await core().replaceNamespacedSecret({ name: 'rabbit-creds', namespace: ns.name, body: { metadata: { name: 'rabbit-creds' }, data: data('guest') } });
    await batches.waitFor('creds', (b) => condition(b, 'Ready')?.status === 'True', 30_000);
    expect(await getQueue(vh.name, 'creds.q')).toBeDefined();
  });
});

describe('a broker that is not there', () => {
  it('/readyz names the address and the cause, and the log says so', async () => {
    const logs: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
        done();
      },
    });
    const config = loadOperatorConfig(
      { metricsBindAddress: '127.0.0.1:0', healthProbeBindAddress: '127.0.0.1:0', leaderElect: false, kubeconfig: kubeconfigPath(), logLevel: 'info' },
      loadEnv({ ...process.env, WATCH_NAMESPACE: ns.name, RABBITMQ_URL: 'http://127.0.0.1:1', RABBITMQ_EVENTS: 'false', HTTP_POOL_MIN_SIZE: '1' }),
    );
    const broken = await startManager(config, { logDestination: destination, onLostLeadership: () => undefined });
    try {
      const res = await eventually(async () => {
        const r = await fetch(`http://${broken.probeAddress}/readyz`);
        const text = await r.text();
        expect(text).toContain('RabbitMQ management API at http://127.0.0.1:1');
        return { status: r.status, text };
      });
      expect(res.status).toBe(503);
      expect(res.text).toContain('connection refused');
      await eventually(() => expect(logs.some((l) => l.includes('does not answer') && l.includes('RABBITMQ_URL'))).toBe(true));
    } finally {
      await broken.stop();
    }
  });
});
