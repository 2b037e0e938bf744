/** Pure parts of the management client: RabbitMQ's JSON → Observed*, request bodies, paths. */
import { describe, expect, it } from 'vitest';
import { bindingSchema, exchangeSchema, queueSchema } from '../../src/api/schema.js';
import { bindingBody, exchangeBody, managementPaths, queueBody, reasonOf, segment, toObservedBinding, toObservedExchange, toObservedQueue } from '../../src/rabbit/management-client.js';

describe('mapping RabbitMQ JSON to observed types', () => {
  it('maps a queue listing entry (snake_case, no stats) and leaves counts unread', () => {
    const q = toObservedQueue({ name: 'q', type: 'quorum', durable: true, auto_delete: false, arguments: { 'x-queue-type': 'quorum' } });
    expect(q).toEqual({ name: 'q', type: 'quorum', durable: true, autoDelete: false, arguments: { 'x-queue-type': 'quorum' } });
    expect('messages' in q).toBe(false);
  });

  it('treats counts missing from a single-queue GET as 0 (stats not emitted yet)', () => {
    expect(toObservedQueue({ name: 'new', durable: true, auto_delete: false }, true)).toMatchObject({ type: 'classic', arguments: {}, messages: 0, consumers: 0 });
    expect(toObservedQueue({ name: 'q', durable: true, auto_delete: false, messages_ready: 3, consumers: 1 }, true)).toMatchObject({ messages: 3, consumers: 1 });
  });

  it('maps exchanges and bindings', () => {
    expect(toObservedExchange({ name: 'x', type: 'topic', durable: false, auto_delete: true, internal: true })).toEqual({ name: 'x', type: 'topic', durable: false, autoDelete: true, internal: true, arguments: {} });
    expect(toObservedBinding({ source: 'x', destination: 'q', destination_type: 'queue', routing_key: 'a.#', arguments: { k: 1 }, properties_key: 'a.%23~abc' })).toEqual({
      source: 'x',
      destination: 'q',
      destinationType: 'queue',
      routingKey: 'a.#',
      arguments: { k: 1 },
      propertiesKey: 'a.%23~abc',
    });
  });
});

describe('request bodies', () => {
  it('always sends durable and auto_delete, and the queue type as x-queue-type', () => {
    expect(JSON.parse(queueBody(queueSchema.parse({ name: 'q' })))).toEqual({ durable: true, auto_delete: false, arguments: {} });
    expect(JSON.parse(queueBody(queueSchema.parse({ name: 'q', type: 'quorum', arguments: { 'x-delivery-limit': 5 } })))).toEqual({
      durable: true,
      auto_delete: false,
      arguments: { 'x-delivery-limit': 5, 'x-queue-type': 'quorum' },
    });
  });

  it('sends an exchange type and internal flag, and a binding routing_key', () => {
    expect(JSON.parse(exchangeBody(exchangeSchema.parse({ name: 'x', type: 'fanout' })))).toEqual({ type: 'fanout', durable: true, auto_delete: false, internal: false, arguments: {} });
    expect(JSON.parse(bindingBody(bindingSchema.parse({ source: 'x', destination: 'q', routingKey: 'k' })))).toEqual({ routing_key: 'k', arguments: {} });
  });
});

describe('paths', () => {
  it('encodes the default vhost and names as one segment each', () => {
    expect(managementPaths.queue('/', 'a/b c')).toBe('/api/queues/%2F/a%2Fb%20c');
    expect(managementPaths.binding('v#1', { source: 'x', destination: 'y', destinationType: 'exchange' })).toBe('/api/bindings/v%231/e/x/e/y');
    expect(segment('..')).toBe('%2E%2E');
    expect(segment('.')).toBe('%2E');
  });

  it('lists without stats and with only the needed columns', () => {
    expect(managementPaths.queues('/')).toBe('/api/queues/%2F?disable_stats=true&columns=name,type,durable,auto_delete,arguments,policy');
    expect(managementPaths.exchanges('v')).toContain('disable_stats=true&columns=');
  });
});

describe('reasonOf', () => {
  it('takes RabbitMQ\'s reason, falls back to error, then to the text', () => {
    expect(reasonOf('{"error":"bad_request","reason":"inequivalent arg"}')).toBe('inequivalent arg');
    expect(reasonOf('{"error":"Object Not Found"}')).toBe('Object Not Found');
    expect(reasonOf('<html>502</html>')).toBe('<html>502</html>');
  });
});
