import { describe, expect, it } from 'vitest';
import { validateSpec } from '../../src/api/validate.js';

const errorsOf = (input: unknown, opts?: { maxItems?: number }) => {
  const v = validateSpec(input, opts);
  if (v.ok) throw new Error('expected the spec to be refused');
  return v.errors;
};

describe('validateSpec', () => {
  it('fills defaults', () => {
    const v = validateSpec({ queues: [{ name: 'q' }] });
    expect(v).toMatchObject({ ok: true, spec: { vhost: '/', mode: 'AllOrNothing', deletionPolicy: 'Retain', queues: [{ name: 'q', type: 'classic', durable: true }] } });
  });

  it('names the field path and the reason', () => {
    expect(errorsOf({ queues: [{ name: 'ok' }, { name: 'bad name' }] })[0]).toMatchObject({ path: 'spec.queues[1].name' });
    expect(errorsOf({ queues: [{ name: 'q', type: 'lazy' }] })[0]?.path).toBe('spec.queues[0].type');
    expect(errorsOf({ queues: [{ name: 'q', arguments: { 'x-max-length': { nested: 1 } } }] })[0]?.path).toBe('spec.queues[0].arguments.x-max-length');
    expect(errorsOf({ queues: [{ name: 'amq.q' }] })[0]?.message).toContain('reserved');
    expect(errorsOf({ queues: [{ name: 'q', type: 'quorum', durable: false }] })[0]).toMatchObject({ path: 'spec.queues[0].durable' });
    expect(errorsOf({ queues: [{ name: 'q', colour: 'red' }] })[0]?.message).toMatch(/colour/);
  });

  it('refuses duplicates, dangling bindings, oversize batches and binding cycles', () => {
    expect(errorsOf({ queues: [{ name: 'q' }, { name: 'q' }] })[0]).toMatchObject({ path: 'spec.queues[1]' });
    expect(errorsOf({ queues: [{ name: 'q' }], bindings: [{ source: 'nope', destination: 'q' }] })[0]).toMatchObject({ path: 'spec.bindings[0].source' });
    expect(errorsOf({ exchanges: [{ name: 'x' }], queues: [{ name: 'a' }, { name: 'b' }] }, { maxItems: 2 })[0]?.message).toContain('at most 2');
    const cycle = errorsOf({
      exchanges: [{ name: 'x' }, { name: 'y' }],
      bindings: [
        { source: 'x', destination: 'y', destinationType: 'exchange' },
        { source: 'y', destination: 'x', destinationType: 'exchange' },
      ],
    });
    expect(cycle[0]?.message).toContain('x -> y -> x');
  });
});
