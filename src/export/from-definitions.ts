/**
 * Reads a RabbitMQ definitions file (the format of `GET /api/definitions`, or of
 * `GET /api/definitions/{vhost}`, whose entries carry no vhost) for `rabbitbatch export`.
 * Users, permissions and parameters are not topology and are ignored; everything else is checked
 * before anything is exported.
 */
import { z } from 'zod';
import { describeIssue, readInput } from './read-input.js';
import { ExportInputError, emptyTopology, type Topology } from './topology.js';

const args = z.record(z.string(), z.unknown()).default({});
const exchange = z.looseObject({ name: z.string(), vhost: z.string().optional(), type: z.string(), durable: z.boolean(), auto_delete: z.boolean(), internal: z.boolean().default(false), arguments: args });
const queue = z.looseObject({ name: z.string(), vhost: z.string().optional(), type: z.string().optional(), durable: z.boolean(), auto_delete: z.boolean(), arguments: args });
const binding = z.looseObject({
  source: z.string(),
  vhost: z.string().optional(),
  destination: z.string(),
  destination_type: z.enum(['queue', 'exchange']),
  routing_key: z.string(),
  arguments: args,
});
const policy = z.looseObject({ name: z.string(), vhost: z.string().optional() });
const vhost = z.looseObject({ name: z.string() });

const MARKERS = ['rabbit_version', 'rabbitmq_version', 'vhosts', 'queues', 'exchanges', 'bindings', 'policies'];

export function readDefinitions(file: string, opts: { vhost?: string } = {}): Topology {
  const text = readInput(file);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ExportInputError(`${file} is not a RabbitMQ definitions file: it is not JSON (${(err as Error).message})`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc) || !MARKERS.some((k) => k in doc)) {
    throw new ExportInputError(`${file} is not a RabbitMQ definitions file (GET /api/definitions): a JSON object with ${MARKERS.join(', ')} was expected`);
  }
  const d = doc as Record<string, unknown>;
  const list = <S extends z.ZodType>(key: string, schema: S, label: (o: Record<string, unknown>) => string): z.output<S>[] => {
    const value = d[key] ?? [];
    if (!Array.isArray(value)) throw new ExportInputError(`${file}: field ${key}: expected a list, got ${typeof value}`);
    return value.map((entry: unknown, i) => {
      const parsed = schema.safeParse(entry);
      if (!parsed.success) {
        const name = entry && typeof entry === 'object' ? label(entry as Record<string, unknown>) : '';
        throw new ExportInputError(`${file}: ${key}[${i}]${name ? ` (${name})` : ''}: ${describeIssue(parsed.error)}`);
      }
      return parsed.data;
    });
  };
  const byName = (o: Record<string, unknown>) => (typeof o.name === 'string' ? `"${o.name}"` : '');
  const bindingLabel = (o: Record<string, unknown>) => `${String(o.source)} → ${String(o.destination)}`;
  const vhosts = list('vhosts', vhost, byName);
  const exchanges = list('exchanges', exchange, byName);
  const queues = list('queues', queue, byName);
  const bindings = list('bindings', binding, bindingLabel);
  const policies = list('policies', policy, byName);

  // A per-vhost export has no vhost in its entries: the vhost must be given.
  const vhostOf = (key: string, i: number, entry: { vhost?: string | undefined }): string => {
    if (entry.vhost !== undefined) return entry.vhost;
    if (opts.vhost !== undefined) return opts.vhost;
    throw new ExportInputError(`${file}: ${key}[${i}] has no vhost (a file exported from one vhost): give --vhost`);
  };
  const topology = emptyTopology();
  const known = new Set(vhosts.map((v) => v.name));
  const keep = (v: string) => opts.vhost === undefined || v === opts.vhost;
  exchanges.forEach((e, i) => {
    const v = vhostOf('exchanges', i, e);
    known.add(v);
    if (keep(v) && e.name !== '') topology.exchanges.push({ vhost: v, name: e.name, type: e.type, durable: e.durable, autoDelete: e.auto_delete, internal: e.internal, arguments: e.arguments });
  });
  queues.forEach((q, i) => {
    const v = vhostOf('queues', i, q);
    known.add(v);
    const type = q.type ?? (typeof q.arguments['x-queue-type'] === 'string' ? q.arguments['x-queue-type'] : 'classic');
    if (keep(v)) topology.queues.push({ vhost: v, name: q.name, type, durable: q.durable, autoDelete: q.auto_delete, exclusive: false, arguments: q.arguments });
  });
  bindings.forEach((b, i) => {
    const v = vhostOf('bindings', i, b);
    known.add(v);
    if (keep(v) && b.source !== '') topology.bindings.push({ vhost: v, source: b.source, destination: b.destination, destinationType: b.destination_type, routingKey: b.routing_key, arguments: b.arguments });
  });
  policies.forEach((p, i) => {
    const v = vhostOf('policies', i, p);
    known.add(v);
    if (keep(v)) topology.policies.push({ vhost: v, name: p.name });
  });
  if (opts.vhost !== undefined && !known.has(opts.vhost)) {
    throw new ExportInputError(`vhost "${opts.vhost}" does not exist in ${file}; it holds ${[...known].sort().map((v) => `"${v}"`).join(', ') || 'no vhost'}`);
  }
  topology.vhosts = [...known].sort();
  return topology;
}
