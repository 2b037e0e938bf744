/**
 * Policies end to end: the real apiserver, the real broker, the operator in-process. A policy
 * changes a queue that holds messages in place (never deleted, never declared again), comes back
 * when cleared or changed by hand, and the status says which policy applies to each queue.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { RabbitQueueBatchSpecInput } from '../../src/api/schema.js';
import { formatErrors, validateSpec } from '../../src/api/validate.js';
import { kubectl } from '../support/kubectl.js';
import { createTestNamespace, loadKubeConfig } from '../support/kube.js';
import { batchClient, condition, item, startTestOperator, type TestOperator } from '../support/operator.js';
import { createTestVhost, messageCount, mgmt, publish } from '../support/rabbit.js';
import { eventually } from '../support/wait.js';

let ns: { name: string; cleanup: () => Promise<void> };
let vh: { name: string; cleanup: () => Promise<void> };
let operator: TestOperator;
let batches: ReturnType<typeof batchClient>;
let vhost: string;
/** queue.created / queue.deleted events of this file's vhost, seen on amq.rabbitmq.event. */
const queueEvents: string[] = [];
let events: amqp.ChannelModel;

beforeAll(async () => {
  ns = await createTestNamespace('policies');
  vh = await createTestVhost('policies');
  vhost = vh.name;
  events = await amqp.connect('amqp://guest:guest@127.0.0.1:5672/');
  const ch = await events.createChannel();
  const { queue } = await ch.assertQueue('', { exclusive: true });
  await ch.bindQueue(queue, 'amq.rabbitmq.event', 'queue.*');
  await ch.consume(queue, (m) => {
    const h = m?.properties.headers ?? {};
    if (m && String(h.vhost) === vhost) queueEvents.push(`${m.fields.routingKey} ${String(h.name)}`);
  }, { noAck: true });
  operator = await startTestOperator(ns.name);
  batches = batchClient(ns.name);
});

afterAll(async () => {
  await operator?.stop();
  await events?.close();
  await ns?.cleanup();
  await vh?.cleanup();
});

const v = encodeURIComponent;
/** Statistics (effective_policy_definition) are emitted every 5 s, and lag far more on a loaded machine. */
const STATS_WAIT_MS = 90_000;
const spec = (s: RabbitQueueBatchSpecInput): RabbitQueueBatchSpecInput => ({ vhost, deletionPolicy: 'Delete', ...s });
const policyOf = async (name: string) => (await mgmt(`/api/policies/${v(vhost)}/${v(name)}`)).json as { definition: Record<string, unknown>; pattern: string; priority: number } | { error: string };
/** The queue with its statistics: `effective_policy_definition` is one (refreshed every few seconds). */
const queueStats = async (name: string) => (await mgmt(`/api/queues/${v(vhost)}/${v(name)}`)).json as { policy?: string; effective_policy_definition?: Record<string, unknown>; messages?: number };

async function eventsOf(name: string, reason: string): Promise<string[]> {
  const list = await loadKubeConfig().makeApiClient(CoreV1Api).listNamespacedEvent({ namespace: ns.name });
  return list.items.filter((e) => e.involvedObject.name === name && e.reason === reason).map((e) => e.message ?? '');
}

describe('spec.policies', () => {
  const ttlBatch = (ttl?: number) =>
    spec({
      queues: [{ name: 'work.orders' }],
      policies: ttl === undefined ? [] : [{ name: 'work-ttl', pattern: '^work\\.', applyTo: 'queues', definition: { 'message-ttl': ttl } }],
    });

  it('gives a queue that holds 100 messages a TTL, then another, without deleting or declaring it again', async () => {
    await batches.create('ttl', ttlBatch());
    await batches.waitFor('ttl', (b) => condition(b, 'Ready')?.status === 'True');
    await publish(vhost, 'work.orders', Array.from({ length: 100 }, (_, i) => `m${i}`));
    const createdBefore = queueEvents.filter((e) => e === 'queue.created work.orders').length;

    await batches.setSpec('ttl', ttlBatch(3_600_000));
    let b = await batches.waitFor('ttl', (b) => item(b, 'queue/work.orders')?.policy === 'work-ttl' && condition(b, 'Ready')?.status === 'True');
    expect(item(b, 'policy/work-ttl')?.status).toBe('Ready');
    expect(b.status?.applied?.policies).toEqual(['work-ttl']);
    await eventually(async () => expect((await queueStats('work.orders')).effective_policy_definition).toEqual({ 'message-ttl': 3_600_000 }), { timeoutMs: STATS_WAIT_MS });

    await batches.setSpec('ttl', ttlBatch(7_200_000));
    b = await batches.waitFor('ttl', (b) => condition(b, 'Ready')?.status === 'True');
    expect(item(b, 'queue/work.orders')).toMatchObject({ status: 'Ready', policy: 'work-ttl' });
    expect(await policyOf('work-ttl')).toMatchObject({ definition: { 'message-ttl': 7_200_000 }, pattern: '^work\\.' });
    await eventually(async () => expect((await queueStats('work.orders')).effective_policy_definition).toEqual({ 'message-ttl': 7_200_000 }), { timeoutMs: STATS_WAIT_MS });

    expect(await messageCount(vhost, 'work.orders')).toBe(100);
    expect(queueEvents).not.toContain('queue.deleted work.orders');
    expect(queueEvents.filter((e) => e === 'queue.created work.orders').length).toBe(createdBefore);
  }, 4 * STATS_WAIT_MS);

  it('puts back a policy cleared by hand, and one changed by hand, with DriftRepaired Events', async () => {
    const cleared = performance.now();
    await mgmt(`/api/policies/${v(vhost)}/work-ttl`, { method: 'DELETE' });
    await eventually(async () => expect(await policyOf('work-ttl')).toMatchObject({ definition: { 'message-ttl': 7_200_000 } }), { timeoutMs: 20_000 });
    // A measurement to read, not an assertion: the event stream should bring it back well within 1 s.
    console.log(`policy cleared by hand back after ${Math.round(performance.now() - cleared)} ms`);

    await mgmt(`/api/policies/${v(vhost)}/work-ttl`, { method: 'PUT', body: { pattern: '^work\\.', 'apply-to': 'queues', definition: { 'message-ttl': 5 } } });
    await eventually(async () => expect(await policyOf('work-ttl')).toMatchObject({ definition: { 'message-ttl': 7_200_000 } }), { timeoutMs: 20_000 });
    await eventually(async () => expect((await eventsOf('ttl', 'DriftRepaired')).join('\n')).toContain('policy/work-ttl'));
    expect(await messageCount(vhost, 'work.orders')).toBe(100);
  });

  it('warns when two policies of equal priority match one queue, and when a policy matches nothing of the batch', async () => {
    await batches.create(
      'tie',
      spec({
        queues: [{ name: 'tie.q' }],
        policies: [
          { name: 'tie-a', pattern: '^tie\\.', definition: { 'max-length': 10 } },
          { name: 'tie-b', pattern: '^tie\\.q$', definition: { 'max-length': 20 } },
          { name: 'tie-typo', pattern: '^tei\\.', definition: { 'max-length': 30 } },
        ],
      }),
    );
    const b = await batches.waitFor('tie', (b) => condition(b, 'Ready')?.status === 'True' && item(b, 'queue/tie.q')?.message !== undefined);
    expect(item(b, 'queue/tie.q')?.message).toContain('"tie-a" and "tie-b" match this queue with the same priority 0');
    expect(item(b, 'policy/tie-typo')?.message).toContain('matches no queue or exchange of this batch');
    await eventually(async () => expect((await eventsOf('tie', 'PolicyTie')).join('\n')).toContain('queue/tie.q'));
    await eventually(async () => expect((await eventsOf('tie', 'PolicyUnmatched')).join('\n')).toContain('policy/tie-typo'));
  });

  it('reports a queue argument change as Conflict naming the policy key that can make it', async () => {
    await batches.create('args', spec({ queues: [{ name: 'args.q', arguments: { 'x-message-ttl': 1000 } }] }));
    await batches.waitFor('args', (b) => condition(b, 'Ready')?.status === 'True');
    await batches.setSpec('args', spec({ queues: [{ name: 'args.q', arguments: { 'x-message-ttl': 2000 } }] }));
    const b = await batches.waitFor('args', (b) => item(b, 'queue/args.q')?.status === 'Conflict');
    expect(item(b, 'queue/args.q')?.error).toContain('x-message-ttl cannot change on an existing queue; a policy with message-ttl can, without recreating it');
  });

  it('deletes the policies it made when the batch goes (deletionPolicy: Delete)', async () => {
    await batches.delete('tie');
    await batches.gone('tie');
    for (const name of ['tie-a', 'tie-b', 'tie-typo']) expect((await mgmt(`/api/policies/${v(vhost)}/${name}`)).status).toBe(404);
  });
});

describe('spec.operatorPolicies', () => {
  it('sets an operator policy and says which one applies to each queue', async () => {
    await batches.create('limits', spec({ queues: [{ name: 'limited.q' }], operatorPolicies: [{ name: 'cap', pattern: '^limited\\.', definition: { 'max-length': 1000 } }] }));
    const b = await batches.waitFor('limits', (b) => condition(b, 'Ready')?.status === 'True');
    expect(item(b, 'queue/limited.q')?.operatorPolicy).toBe('cap');
    expect((await mgmt(`/api/operator-policies/${v(vhost)}/cap`)).json).toMatchObject({ definition: { 'max-length': 1000 }, 'apply-to': 'queues' });
    await batches.delete('limits');
    await batches.gone('limits');
    expect((await mgmt(`/api/operator-policies/${v(vhost)}/cap`)).status).toBe(404);
  });
});

describe('vhostPolicy: Create', () => {
  it('creates a missing vhost, and leaves it when the batch is deleted with deletionPolicy: Delete', async () => {
    const created = `${vhost}-made`;
    try {
      await batches.create('made', { vhost: created, vhostPolicy: 'Create', deletionPolicy: 'Delete', queues: [{ name: 'made.q' }] });
      // Creating a vhost starts its message stores: tens of seconds on a loaded broker.
      await batches.waitFor('made', (b) => condition(b, 'Ready')?.status === 'True', STATS_WAIT_MS);
      expect((await mgmt(`/api/queues/${v(created)}/made.q`)).status).toBe(200);
      expect((await eventsOf('made', 'VhostCreated')).join('\n')).toContain(created);
      await batches.delete('made');
      await batches.gone('made');
      expect((await mgmt(`/api/queues/${v(created)}/made.q`)).status).toBe(404);
      expect((await mgmt(`/api/vhosts/${v(created)}`)).status).toBe(200);
    } finally {
      // The batch first: while it exists the operator would create the vhost again.
      await batches.delete('made').catch(() => undefined);
      await batches.gone('made').catch(() => undefined);
      await mgmt(`/api/vhosts/${v(created)}`, { method: 'DELETE' });
    }
  }, 2 * STATS_WAIT_MS);
});

describe('bad policies', () => {
  const manifest = (name: string, policies: string) => `apiVersion: rabbitbatch.io/v1alpha1
kind: RabbitQueueBatch
metadata: {name: ${name}, namespace: ${ns.name}}
spec:
  vhost: ${vhost}
  queues: [{name: bad.q}]
${policies}
`;
  const cases: [string, string, string, string][] = [
    ['bad-regex', '  policies: [{name: p, pattern: "[", definition: {message-ttl: 5}}]', 'spec.policies[0].pattern', 'must be a valid regular expression'],
    ['bad-key', '  policies: [{name: p, pattern: "^bad", definition: {message-ttl: 5, bogus: 1}}]', 'spec.policies[0].definition', 'unknown field "bogus"'],
    ['bad-type', '  policies: [{name: p, pattern: "^bad", definition: {message-ttl: "soon"}}]', 'spec.policies[0].definition.message-ttl', 'must be of type integer'],
    ['bad-operator-key', '  operatorPolicies: [{name: p, pattern: "^bad", definition: {max-length: 5, overflow: drop-head}}]', 'spec.operatorPolicies[0].definition', 'unknown field "overflow"'],
  ];

  it.each(cases)('%s: refused by kubectl apply, the operator and the CLI with the field path; nothing applied', async (name, policies, path, words) => {
    const text = manifest(name, policies);
    const refused = await kubectl(['apply', '-f', '-'], { input: text, allowFailure: true });
    expect(refused.code).not.toBe(0);
    // The API server writes an unknown field as one path (spec...definition.bogus).
    expect(refused.stderr).toContain(words.startsWith('unknown field') ? `${path}.${words.slice('unknown field "'.length, -1)}` : path);
    if (!words.startsWith('unknown field')) expect(refused.stderr).toContain(words);
    expect((await kubectl(['get', 'rqb', name, '-n', ns.name], { allowFailure: true })).code).not.toBe(0);

    // The operator's and the CLI's validation (one function): the same path and words.
    const validation = validateSpec((parse(text) as { spec: unknown }).spec);
    expect(validation.ok).toBe(false);
    if (!validation.ok) expect(formatErrors(validation.errors)).toContain(`${path}: ${words}`);
    const file = join(mkdtempSync(join(tmpdir(), 'rabbitbatch-policies-')), `${name}.yaml`);
    writeFileSync(file, text);
    const cli = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'apply', '-f', file], { cwd: new URL('../../', import.meta.url).pathname, encoding: 'utf8', env: { ...process.env, RABBITMQ_PASSWORD: 'guest' } });
    expect(cli.status).toBe(1);
    expect(cli.stderr).toContain(`${path}: ${words}`);
    expect((await mgmt(`/api/policies/${v(vhost)}`)).json).not.toContainEqual(expect.objectContaining({ name: 'p' }));
    expect((await mgmt(`/api/queues/${v(vhost)}/bad.q`)).status).toBe(404);
  });
});

describe('rabbitbatch policy create|delete and apply --dry-run', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rabbitbatch-policy-cli-'));
  const run = (args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args, '--vhost', vhost, '--audit-log', join(dir, 'audit.log')], {
      cwd: new URL('../../', import.meta.url).pathname,
      encoding: 'utf8',
      env: { ...process.env, RABBITMQ_PASSWORD: 'guest' },
    });
  const file = (name: string, content: unknown) => {
    const path = join(dir, name);
    writeFileSync(path, JSON.stringify(content));
    return path;
  };

  it('creates a policy from a list, shows a change as desired vs actual, changes it in place, and deletes it', async () => {
    const first = file('p1.json', [{ name: 'cli-ttl', pattern: '^cli\\.', applyTo: 'queues', definition: { 'message-ttl': 1000 } }]);
    const created = run(['policy', 'create', '--batch', '--file', first, '-o', 'json']);
    expect(created.status, created.stderr).toBe(0);
    expect(JSON.parse(created.stdout)).toEqual([{ resource: 'policy/cli-ttl', status: 'Ready', error: null }]);
    expect(await policyOf('cli-ttl')).toMatchObject({ definition: { 'message-ttl': 1000 } });

    const changed = [{ name: 'cli-ttl', pattern: '^cli\\.', applyTo: 'queues', definition: { 'message-ttl': 2000 } }];
    const second = file('p2.json', changed);
    const dry = run(['apply', '-f', file('spec.json', { policies: changed }), '--dry-run']);
    expect(dry.status, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/update\s+policy\/cli-ttl\s+changed in place: definition\.message-ttl: desired 2000, actual 1000/);
    expect(await policyOf('cli-ttl')).toMatchObject({ definition: { 'message-ttl': 1000 } });

    expect(run(['policy', 'create', '--batch', '--file', second]).status).toBe(0);
    expect(await policyOf('cli-ttl')).toMatchObject({ definition: { 'message-ttl': 2000 } });
    const deleted = run(['policy', 'delete', '--batch', '--file', second]);
    expect(deleted.status, deleted.stderr).toBe(0);
    expect((await mgmt(`/api/policies/${v(vhost)}/cli-ttl`)).status).toBe(404);
  });
});
