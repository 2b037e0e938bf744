/** Pure parts of what a new user meets: plans around RecreateIfEmpty and dead-letter exchanges, dry-run exit codes, connection causes in words. */
import { describe, expect, it } from 'vitest';
import { specSchema, type RabbitQueueBatchSpecInput } from '../../src/api/schema.js';
import { planBatch, planDeletion, type Plan } from '../../src/batch/plan.js';
import { dryRunExitCode } from '../../src/cli/batch-commands.js';
import { describeConnectFailure, networkCode } from '../../src/rabbit/network-errors.js';
import type { ObservedBinding, ObservedExchange, ObservedQueue, ObservedVhost } from '../../src/model/observed.js';

const spec = (input: Partial<RabbitQueueBatchSpecInput>) => specSchema.parse(input);
const opTypes = (plan: Plan) => plan.phases.map((p) => p.map((o) => `${o.type}:${o.resource}`));
/** An observed vhost the test fills in (the cache hands out read-only maps; a test builds its own). */
const observed = () => ({ vhost: '/', exists: true, exchanges: new Map<string, ObservedExchange>(), queues: new Map<string, ObservedQueue>(), bindings: [] as ObservedBinding[] }) satisfies ObservedVhost;

describe('RecreateIfEmpty in the plan', () => {
  it('binds every binding of the batch to the recreated queue again, after the recreate', () => {
    const o = observed();
    o.exchanges.set('shop.events', { name: 'shop.events', type: 'topic', durable: true, autoDelete: false, internal: false, arguments: {} });
    o.queues.set('shop.orders', { name: 'shop.orders', type: 'classic', durable: true, autoDelete: false, arguments: { 'x-message-ttl': 60000 } });
    o.bindings.push({ source: 'shop.events', destination: 'shop.orders', destinationType: 'queue', routingKey: 'order.#', arguments: {}, propertiesKey: 'order.%23' });
    const plan = planBatch({
      spec: spec({
        onConflict: 'RecreateIfEmpty',
        exchanges: [{ name: 'shop.events', type: 'topic' }],
        queues: [{ name: 'shop.orders', arguments: { 'x-message-ttl': 30000 } }],
        bindings: [{ source: 'shop.events', destination: 'shop.orders', routingKey: 'order.#' }],
      }),
      observed: o,
    });
    expect(opTypes(plan)).toEqual([['recreateQueue:queue/shop.orders'], ['bind:binding/shop.events/shop.orders/order.#']]);
    expect(plan.items.find((i) => i.resource === 'binding/shop.events/shop.orders/order.#')?.decision).toBe('update');
    const recreate = plan.phases[0]![0]!;
    expect(recreate.type === 'recreateQueue' && recreate.bindings.map((b) => b.routingKey)).toEqual(['order.#']);
  });
});

describe('deleting an exchange', () => {
  it('names the queues that dead-letter to it, so the executor can keep it for them', () => {
    const o = observed();
    o.exchanges.set('dlx', { name: 'dlx', type: 'fanout', durable: true, autoDelete: false, internal: false, arguments: {} });
    o.queues.set('work', { name: 'work', type: 'quorum', durable: true, autoDelete: false, arguments: { 'x-dead-letter-exchange': 'dlx', 'x-queue-type': 'quorum' } });
    const plan = planDeletion(spec({}), o, new Set(['exchange/dlx', 'queue/work']));
    const del = plan.phases.flat().find((op) => op.type === 'deleteExchange');
    expect(del).toMatchObject({ name: 'dlx', deadLetteredBy: ['work'] });
  });
});

describe('dry-run exit codes', () => {
  const plan = (decision: 'create' | 'conflict' | 'missing', vhostExists = true): Plan => ({ vhost: '/', vhostExists, items: [{ resource: 'queue/q', decision }], phases: [] });
  it('are the real run’s: 4 all-or-nothing or 3 best-effort with a conflict, 2 without the vhost, else 0', () => {
    expect(dryRunExitCode(plan('create'), 'AllOrNothing')).toBe(0);
    expect(dryRunExitCode(plan('conflict'), 'AllOrNothing')).toBe(4);
    expect(dryRunExitCode(plan('conflict'), 'BestEffort')).toBe(3);
    expect(dryRunExitCode(plan('missing'), 'BestEffort')).toBe(3);
    expect(dryRunExitCode(plan('create', false), 'AllOrNothing')).toBe(2);
  });
});

describe('connection failures in words', () => {
  const failing = (code: string, message = 'terse') => Object.assign(new Error(message), { code });
  it('names refused, DNS and timeout, also when nested (undici, AggregateError)', () => {
    expect(describeConnectFailure(failing('ECONNREFUSED'))).toBe('connection refused (nothing listens on that port) (ECONNREFUSED)');
    expect(describeConnectFailure(failing('ENOTFOUND'))).toBe('host not found (DNS lookup failed) (ENOTFOUND)');
    expect(describeConnectFailure(Object.assign(new Error('fetch failed'), { cause: failing('UND_ERR_CONNECT_TIMEOUT') }))).toBe('connect timed out (UND_ERR_CONNECT_TIMEOUT)');
    expect(networkCode(new AggregateError([failing('ECONNREFUSED')]))).toBe('ECONNREFUSED');
  });
  it('says an AMQP login refusal is about the credentials, and leaves other messages alone', () => {
    expect(describeConnectFailure(new Error('Handshake terminated by server: 403 (ACCESS-REFUSED) with message "ACCESS_REFUSED - Login was refused"'))).toMatch(/^access refused: RabbitMQ did not accept the username and password/);
    expect(describeConnectFailure(new Error('something else'))).toBe('something else');
  });
});
