/** The claims index and lookups: which batch declares which object on which broker. */
import { describe, expect, it } from 'vitest';
import type { RabbitQueueBatch } from '../../src/api/schema.js';
import { CLAIMS_INDEX, Claims, claimKey, claimsIndex } from '../../src/controllers/claims.js';
import { bindingId, queueId } from '../../src/model/identity.js';

const batch = (name: string, spec: object, created = '2026-01-01T00:00:00Z'): RabbitQueueBatch =>
  ({ metadata: { namespace: 'ns', name, creationTimestamp: created }, spec }) as RabbitQueueBatch;

function storeOf(batches: RabbitQueueBatch[], maxItems = 1000) {
  const index = claimsIndex(maxItems);
  return { list: () => batches, byIndex: (i: string, v: string) => (i === CLAIMS_INDEX ? batches.filter((b) => index(b).includes(v)) : []) };
}

describe('claims', () => {
  it('indexes a batch larger than the default limit when MAX_ITEMS allows it', () => {
    const big = batch('big', { queues: Array.from({ length: 1_200 }, (_, i) => ({ name: `q${i}` })) });
    expect(claimsIndex(2_000)(big)).toHaveLength(1_200);
    expect(claimsIndex(2_000)(big)).toContain(claimKey('/', queueId('q1199')));
    expect(claimsIndex(1_000)(big)).toEqual([]); // over the limit: invalid, so it claims nothing
  });

  it('a larger-than-default batch still conflicts with a newer one on the same broker (MAX_ITEMS=2000)', () => {
    const big = batch('big', { queues: Array.from({ length: 1_200 }, (_, i) => ({ name: `q${i}` })) }, '2026-01-01T00:00:00Z');
    const small = batch('small', { queues: [{ name: 'q7' }] }, '2026-01-02T00:00:00Z');
    const claims = new Claims(storeOf([big, small], 2_000), () => 'http://broker:15672');
    expect(claims.ownerOtherThan(small, 'http://broker:15672', '/', queueId('q7'))).toBe('ns/big');
  });

  it('batches on different brokers never conflict; an event concerns only batches on its broker', () => {
    const a = batch('a', { queues: [{ name: 'q' }] }, '2026-01-01T00:00:00Z');
    const b = batch('b', { rabbitmq: { connectionSecret: { name: 'other' } }, queues: [{ name: 'q' }] }, '2026-01-02T00:00:00Z');
    const endpoints: Record<string, string> = { a: 'http://one:15672', b: 'http://two:15672' };
    const claims = new Claims(storeOf([a, b]), (x) => endpoints[x.metadata.name]);
    expect(claims.ownerOtherThan(b, 'http://two:15672', '/', queueId('q'))).toBeUndefined();
    expect(claims.concernedBy('http://one:15672', { kind: 'queue', action: 'deleted', vhost: '/', name: 'q' })).toEqual(['ns/a']);
    // Two Secrets naming one endpoint are one broker: the events of the default connection reach a Secret's batch.
    endpoints.b = 'http://one:15672';
    expect(claims.concernedBy('http://one:15672', { kind: 'queue', action: 'deleted', vhost: '/', name: 'q' })).toEqual(['ns/a', 'ns/b']);
  });

  it('a binding to queue x and one to exchange x are different claims', () => {
    const toQueue = { source: 'src', destination: 'x', destinationType: 'queue' as const, routingKey: 'k' };
    const a = batch('a', { exchanges: [{ name: 'src' }, { name: 'x' }], queues: [{ name: 'x' }], bindings: [toQueue] });
    const claims = new Claims(storeOf([a]), () => 'e');
    const event = (destinationType: 'queue' | 'exchange') => ({ kind: 'binding' as const, action: 'deleted', vhost: '/', ...toQueue, destinationType });
    expect(claims.concernedBy('e', event('queue'))).toEqual(['ns/a']);
    expect(claims.concernedBy('e', event('exchange'))).toEqual([]);
    expect(claimsIndex(1000)(a)).toContain(claimKey('/', bindingId(toQueue)));
  });
});
