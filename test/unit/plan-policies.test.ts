/** The planner's policy part and the effective-policy computation: pure, no broker. */
import { describe, expect, it } from 'vitest';
import { specSchema, type RabbitQueueBatchSpecInput } from '../../src/api/schema.js';
import { planBatch, planDeletion } from '../../src/batch/plan.js';
import { policyEffects } from '../../src/batch/policy-effects.js';
import type { ObservedPolicy, ObservedVhost } from '../../src/model/observed.js';

const spec = (s: Partial<RabbitQueueBatchSpecInput>) => specSchema.parse({ vhost: 'v', ...s });
const observed = (policies: ObservedPolicy[] = [], extra: Partial<ObservedVhost> = {}): ObservedVhost => ({
  vhost: 'v',
  exists: true,
  exchanges: new Map(),
  queues: new Map(),
  bindings: [],
  policies: new Map(policies.map((p) => [p.name, p])),
  operatorPolicies: new Map(),
  ...extra,
});
const ttl = (ms: number) => ({ name: 'ttl', pattern: '^q', applyTo: 'queues' as const, definition: { 'message-ttl': ms } });
const have = (ms: number): ObservedPolicy => ({ name: 'ttl', pattern: '^q', applyTo: 'queues', priority: 0, definition: { 'message-ttl': ms } });

describe('planning policies', () => {
  it('writes policies before the queues of the same run', () => {
    const plan = planBatch({ spec: spec({ queues: [{ name: 'q1' }], policies: [ttl(1000)] }), observed: observed() });
    expect(plan.phases.map((p) => p.map((op) => op.type))).toEqual([['putPolicy'], ['declareQueue']]);
  });

  it('changes an owned policy in place: an update, never a conflict', () => {
    const plan = planBatch({ spec: spec({ policies: [ttl(2000)] }), observed: observed([have(1000)]), owned: new Set(['policy/ttl']) });
    expect(plan.items).toEqual([{ resource: 'policy/ttl', decision: 'update', message: 'changed in place: definition.message-ttl: desired 2000, actual 1000' }]);
    expect(plan.phases.flat()).toMatchObject([{ type: 'putPolicy', created: false }]);
  });

  it('leaves an identical policy alone, and reports a different one it did not make as Conflict', () => {
    expect(planBatch({ spec: spec({ policies: [ttl(1000)] }), observed: observed([have(1000)]) }).phases).toEqual([]);
    const plan = planBatch({ spec: spec({ policies: [ttl(2000)] }), observed: observed([have(1000)]) });
    expect(plan.items[0]).toMatchObject({ decision: 'conflict', message: expect.stringContaining('was not made by this batch') });
    expect(plan.phases).toEqual([]);
  });

  it('names the batch that declared a policy first', () => {
    const plan = planBatch({ spec: spec({ policies: [ttl(1000)] }), observed: observed(), claimedBy: (r) => (r === 'policy/ttl' ? 'team-a/first' : undefined) });
    expect(plan.items[0]).toMatchObject({ decision: 'conflict', message: expect.stringContaining('team-a/first') });
  });

  it('prunes an owned policy no longer declared, last, and deletes owned policies with the batch', () => {
    const pruned = planBatch({ spec: spec({ queues: [{ name: 'q1' }] }), observed: observed([have(1000)]), owned: new Set(['policy/ttl']) });
    expect(pruned.phases.at(-1)).toMatchObject([{ type: 'deletePolicy', kind: 'policy', name: 'ttl' }]);
    expect(planDeletion(spec({ policies: [ttl(1000)] }), observed([have(1000)]), new Set(['policy/ttl'])).phases.flat().map((op) => op.type)).toEqual(['deletePolicy']);
  });

  it('names the policy key in a queue argument conflict', () => {
    const plan = planBatch({
      spec: spec({ queues: [{ name: 'q1', arguments: { 'x-message-ttl': 2 } }] }),
      observed: observed([], { queues: new Map([['q1', { name: 'q1', type: 'classic', durable: true, autoDelete: false, arguments: { 'x-message-ttl': 1 } }]]) }),
    });
    expect(plan.items[0]?.message).toContain('x-message-ttl cannot change on an existing queue; a policy with message-ttl can, without recreating it');
  });
});

describe('effective policies', () => {
  it('takes the highest priority, warns on a tie and on a policy that matches nothing', () => {
    const s = spec({
      queues: [{ name: 'q1' }, { name: 'q2' }],
      policies: [
        { name: 'low', pattern: '^q', definition: { 'max-length': 1 } },
        { name: 'high', pattern: '^q1$', priority: 5, definition: { 'max-length': 2 } },
        { name: 'tie', pattern: '^q2$', definition: { 'max-length': 3 } },
        { name: 'typo', pattern: '^x', definition: { 'max-length': 4 } },
      ],
      operatorPolicies: [{ name: 'cap', pattern: '.', definition: { 'max-length': 9 } }],
    });
    const e = policyEffects(s, observed());
    expect(e.queues.get('q1')).toEqual({ policy: 'high', operatorPolicy: 'cap' });
    expect(e.warnings.map((w) => [w.resource, w.reason])).toEqual([
      ['queue/q2', 'PolicyTie'],
      ['policy/typo', 'PolicyUnmatched'],
    ]);
  });

  it('prefers what RabbitMQ says applies to a queue', () => {
    const e = policyEffects(spec({ queues: [{ name: 'q1' }], policies: [ttl(1)] }), observed([], { queues: new Map([['q1', { name: 'q1', type: 'classic', durable: true, autoDelete: false, arguments: {}, policy: 'other' }]]) }));
    expect(e.queues.get('q1')?.policy).toBe('other');
  });
});
