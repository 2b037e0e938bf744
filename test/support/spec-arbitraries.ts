/**
 * fast-check generators of RabbitQueueBatch specs: valid ones, and invalid ones made by one
 * mutation each, labelled with what is wrong. Shared by the property tests of zod (unit) and of
 * the CRD schema on the real API server (integration).
 */
import fc from 'fast-check';

const name = fc.stringMatching(/^[a-z][a-z0-9._-]{0,15}$/).filter((n) => !n.startsWith('amq.'));
const args = fc.dictionary(fc.constantFrom('x-message-ttl', 'x-max-length', 'x-dead-letter-exchange', 'x-custom'), fc.oneof(fc.integer({ min: 0, max: 1e6 }), fc.string({ maxLength: 20 }), fc.boolean()), { maxKeys: 3 });

export const validSpec = fc
  .record({
    exchanges: fc.uniqueArray(fc.record({ name, type: fc.constantFrom('direct', 'fanout', 'topic', 'headers') }), { selector: (e) => e.name, maxLength: 4 }),
    queues: fc.uniqueArray(fc.record({ name, type: fc.constantFrom('classic', 'quorum', 'stream'), arguments: args }), { selector: (q) => q.name, minLength: 1, maxLength: 6 }),
    mode: fc.constantFrom('AllOrNothing', 'BestEffort'),
  })
  .chain((s) =>
    fc.record({
      mode: fc.constant(s.mode),
      exchanges: fc.constant(s.exchanges),
      queues: fc.constant(s.queues.map((q) => ({ ...q, arguments: q.type === 'classic' ? q.arguments : { 'x-max-length': 5 } }))),
      bindings:
        s.exchanges.length === 0
          ? fc.constant([])
          : fc.uniqueArray(
              fc.record({ source: fc.constantFrom(...s.exchanges.map((e) => e.name)), destination: fc.constantFrom(...s.queues.map((q) => q.name)), routingKey: fc.stringMatching(/^[a-z.#*]{0,10}$/) }),
              { selector: (b) => `${b.source}|${b.destination}|${b.routingKey}`, maxLength: 4 },
            ),
    }),
  );

export type Mutation = { what: string; apply: (spec: Record<string, unknown>) => Record<string, unknown>; crd: boolean };

const queues = (s: Record<string, unknown>) => s.queues as Record<string, unknown>[];

/** One thing wrong each; `crd` says whether the CRD schema (OpenAPI + CEL) catches it too. */
export const mutations: Mutation[] = [
  { what: 'name too long', crd: true, apply: (s) => ({ ...s, queues: [{ ...queues(s)[0], name: 'q'.repeat(256) }, ...queues(s).slice(1)] }) },
  { what: 'bad characters in a name', crd: true, apply: (s) => ({ ...s, queues: [{ ...queues(s)[0], name: 'has space' }, ...queues(s).slice(1)] }) },
  { what: 'unicode name', crd: true, apply: (s) => ({ ...s, queues: [{ ...queues(s)[0], name: 'ünï©ødé' }, ...queues(s).slice(1)] }) },
  { what: 'unknown queue type', crd: true, apply: (s) => ({ ...s, queues: [{ ...queues(s)[0], type: 'lazy' }, ...queues(s).slice(1)] }) },
  { what: 'duplicate queue name', crd: true, apply: (s) => ({ ...s, queues: [...queues(s), { ...queues(s)[0] }] }) },
  { what: 'reserved amq. name', crd: true, apply: (s) => ({ ...s, queues: [{ ...queues(s)[0], name: 'amq.mine' }, ...queues(s).slice(1)] }) },
  { what: 'non-durable quorum queue', crd: true, apply: (s) => ({ ...s, queues: [{ ...queues(s)[0], type: 'quorum', durable: false, arguments: {} }, ...queues(s).slice(1)] }) },
  { what: 'binding from an unknown exchange', crd: true, apply: (s) => ({ ...s, bindings: [{ source: 'nowhere', destination: (queues(s)[0] as { name: string }).name }] }) },
  { what: 'too many arguments', crd: true, apply: (s) => ({ ...s, queues: [{ ...queues(s)[0], type: 'classic', arguments: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`x-a${i}`, i])) }, ...queues(s).slice(1)] }) },
  { what: 'unknown field', crd: false, apply: (s) => ({ ...s, colour: 'red' }) }, // the API server prunes it (kubectl's strict validation refuses it)
  { what: 'argument of a wrong type', crd: false, apply: (s) => ({ ...s, queues: [{ ...queues(s)[0], type: 'classic', arguments: { 'x-max-length': { nested: true } } }, ...queues(s).slice(1)] }) },
  { what: 'binding to a queue not in the batch', crd: false, apply: (s) => ({ ...s, exchanges: [{ name: 'ex' }], bindings: [{ source: 'ex', destination: 'not-listed' }] }) },
  {
    what: 'cycle of exchange-to-exchange bindings',
    crd: false,
    apply: (s) => ({
      ...s,
      exchanges: [{ name: 'cx1' }, { name: 'cx2' }],
      bindings: [
        { source: 'cx1', destination: 'cx2', destinationType: 'exchange' },
        { source: 'cx2', destination: 'cx1', destinationType: 'exchange' },
      ],
    }),
  },
];

export const invalidSpec = fc.tuple(validSpec, fc.constantFrom(...mutations)).map(([spec, m]) => ({ spec: m.apply(spec as Record<string, unknown>), mutation: m }));
