/**
 * Credentials never leak: a password planted in a connection Secret (and used for real against
 * RabbitMQ) appears in no log line, Event, status or metric, even when things fail. And a batch
 * can only use a Secret of its own namespace.
 */
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchApi, createTestNamespace, loadKubeConfig } from '../support/kube.js';
import { batchClient, condition, operatorRabbitUrl, startTestOperator, type TestOperator } from '../support/operator.js';
import { createTestVhost, getQueue, mgmt, rabbitUrl } from '../support/rabbit.js';

const PLANTED = 'Pl4nted-s3cret-9f2c';
const USER = 'rabbitbatch-planted';
let ns: { name: string; cleanup: () => Promise<void> };
let other: { name: string; cleanup: () => Promise<void> };
let vh: { name: string; cleanup: () => Promise<void> };
let operator: TestOperator;

beforeAll(async () => {
  ns = await createTestNamespace('secrets');
  other = await createTestNamespace('other');
  vh = await createTestVhost('secrets');
  await mgmt(`/api/users/${USER}`, { method: 'PUT', body: { password: PLANTED, tags: 'management' } });
  await mgmt(`/api/permissions/${encodeURIComponent(vh.name)}/${USER}`, { method: 'PUT', body: { configure: '.*', write: '.*', read: '.*' } });
  const core = loadKubeConfig().makeApiClient(CoreV1Api);
  const secret = (namespace: string, password: string) =>
    core.createNamespacedSecret({ namespace, body: { metadata: { name: 'rabbit' }, stringData: { uri: operatorRabbitUrl(rabbitUrl()), username: USER, password } } });
  await secret(ns.name, PLANTED);
  await secret(other.name, PLANTED);
  await core.createNamespacedSecret({ namespace: ns.name, body: { metadata: { name: 'wrong' }, stringData: { uri: `http://${USER}:${PLANTED}@127.0.0.1:1`, username: USER, password: PLANTED } } });
  operator = await startTestOperator(ns.name);
});

afterAll(async () => {
  await operator?.stop();
  await mgmt(`/api/users/${USER}`, { method: 'DELETE' });
  await ns?.cleanup();
  await other?.cleanup();
  await vh?.cleanup();
});

describe('credentials', () => {
  it('are used but never shown: logs, Events, status and metrics stay clean, also on failure', async () => {
    const batches = batchClient(ns.name);
    await batches.create('ok', { vhost: vh.name, rabbitmq: { connectionSecret: { name: 'rabbit' } }, queues: [{ name: 'sec.q' }] });
    await batches.waitFor('ok', (b) => condition(b, 'Ready')?.status === 'True').catch((err) => {
      console.log(operator.logs.filter((l) => /"level":(40|50)/.test(l)).slice(-5).join('\n'));
      throw err;
    });
    expect(await getQueue(vh.name, 'sec.q')).toBeDefined(); // the planted credentials really worked
    // Failures: an unreachable endpoint whose URL even carries the credentials, and a refused argument.
    await batches.create('unreachable', { vhost: vh.name, rabbitmq: { connectionSecret: { name: 'wrong' } }, queues: [{ name: 'sec.x' }] });
    await batches.create('refused', { vhost: vh.name, rabbitmq: { connectionSecret: { name: 'rabbit' } }, queues: [{ name: 'sec.bad', type: 'quorum', arguments: { 'x-max-age': '1D' } }] });
    await batches.waitFor('unreachable', (b) => condition(b, 'Ready')?.reason === 'BrokerUnavailable', 60_000);
    await batches.waitFor('refused', (b) => condition(b, 'Degraded')?.reason === 'RolledBack');

    const core = loadKubeConfig().makeApiClient(CoreV1Api);
    const events = JSON.stringify((await core.listNamespacedEvent({ namespace: ns.name })).items.map((e) => e.message));
    const statuses = JSON.stringify(await Promise.all(['ok', 'unreachable', 'refused'].map(async (n) => (await batches.get(n)).status)));
    const metrics = await (await fetch(`http://${operator.metricsAddress}/metrics`)).text();
    const logs = operator.logs.join('\n');
    // The failure was logged, naming the endpoint of the Secret's URL (which carries the credentials)...
    const failures = operator.logs
      .map((l) => JSON.parse(l) as { level: number; name?: string; err?: { type?: string; message?: string } })
      .filter((l) => l.level >= 50 && l.name === 'unreachable' && l.err?.type === 'BrokerUnavailableError');
    expect(failures.length, 'error log lines of the unreachable batch').toBeGreaterThan(0);
    expect(failures[0]!.err!.message).toContain('http://127.0.0.1:1');
    // ...and nothing anywhere holds the password.
    for (const [where, text] of Object.entries({ logs, events, statuses, metrics })) {
      expect(text.includes(PLANTED), `${where} contains the planted password`).toBe(false);
    }
  });

  it('a batch can only use a Secret of its own namespace', async () => {
    // The API has no namespace field for the Secret: a batch in `ns` naming "rabbit" gets ns's own.
    const spec = { vhost: vh.name, rabbitmq: { connectionSecret: { name: 'rabbit', namespace: other.name } }, queues: [{ name: 'cross.q' }] };
    const api = loadKubeConfig().makeApiClient(CustomObjectsApi);
    const body = { apiVersion: 'rabbitbatch.io/v1alpha1', kind: 'RabbitQueueBatch', metadata: { name: 'cross' }, spec };
    // Strict field validation, as kubectl applies it.
    const refused = await api.createNamespacedCustomObject({ ...batchApi, namespace: other.name, body, fieldValidation: 'Strict' }).then(
      () => 'accepted',
      (err: { body?: string }) => String(err.body),
    );
    expect(refused).toContain('unknown field');
    expect(refused).toContain('spec.rabbitmq.connectionSecret.namespace');
  });
});
