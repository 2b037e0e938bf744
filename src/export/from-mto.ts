/**
 * Reads the official messaging-topology-operator's resources (`Queue`, `Exchange`, `Binding`,
 * `Policy` of `rabbitmq.com/v1beta1`) for `rabbitmq export --from-mto`: a `List` (as `kubectl get
 * ... -o yaml` prints it) or multi-document YAML. Their specs are checked against the fields of
 * the operator's published CRDs: an unknown field is an error naming the file, the object and
 * the field, since guessing what it meant could export the wrong topology. Defaults are the
 * operator's: vhost "/", queues classic and not durable, exchanges direct and not durable.
 */
import { parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { describeIssue, readInput } from './read-input.js';
import { ExportInputError, emptyTopology, type Topology } from './topology.js';

export const MTO_API_VERSION = 'rabbitmq.com/v1beta1';

const clusterReference = z
  .object({
    name: z.string().optional(),
    namespace: z.string().optional(),
    connectionSecret: z.object({ name: z.string().default('') }).strict().optional(),
  })
  .strict();
const args = z.record(z.string(), z.unknown()).optional();
const common = { vhost: z.string().default('/'), rabbitmqClusterReference: clusterReference };

const specs = {
  Queue: z
    .object({
      ...common,
      name: z.string().min(1),
      type: z.string().optional(),
      durable: z.boolean().default(false),
      autoDelete: z.boolean().default(false),
      deleteIfEmpty: z.boolean().optional(),
      deleteIfUnused: z.boolean().optional(),
      deletionPolicy: z.enum(['delete', 'retain']).optional(),
      arguments: args,
    })
    .strict(),
  Exchange: z
    .object({ ...common, name: z.string().min(1), type: z.string().default('direct'), durable: z.boolean().default(false), autoDelete: z.boolean().default(false), arguments: args })
    .strict(),
  Binding: z
    .object({
      ...common,
      source: z.string().default(''),
      destination: z.string().min(1),
      destinationType: z.enum(['exchange', 'queue']).default('queue'),
      routingKey: z.string().default(''),
      arguments: args,
    })
    .strict(),
  Policy: z
    .object({
      ...common,
      name: z.string().min(1),
      pattern: z.string(),
      applyTo: z.enum(['queues', 'classic_queues', 'quorum_queues', 'streams', 'exchanges', 'all']).optional(),
      priority: z.number().int().optional(),
      definition: z.record(z.string(), z.unknown()),
    })
    .strict(),
} as const;
type MtoKind = keyof typeof specs;

const envelope = z
  .object({
    apiVersion: z.string(),
    kind: z.string(),
    metadata: z.looseObject({ name: z.string(), namespace: z.string().optional() }),
    spec: z.unknown(),
    status: z.unknown().optional(),
  })
  .strict();

export function readMto(file: string, opts: { vhost?: string } = {}): Topology {
  const text = readInput(file);
  const objects: unknown[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new ExportInputError(`${file} is not YAML: ${doc.errors[0]!.message}`);
    const value: unknown = doc.toJSON();
    if (value === null || value === undefined) continue;
    const list = value as { kind?: unknown; items?: unknown };
    if (typeof list.kind === 'string' && list.kind.endsWith('List') && Array.isArray(list.items)) objects.push(...list.items);
    else objects.push(value);
  }
  const topology = emptyTopology();
  const clusters = new Map<string, string>();
  const vhosts = new Set<string>();
  objects.forEach((object, i) => {
    const env = envelope.safeParse(object);
    if (!env.success) throw new ExportInputError(`${file}: object ${i + 1} is not a Kubernetes resource: ${describeIssue(env.error)}`);
    const { apiVersion, kind, metadata } = env.data;
    const label = `${kind} ${metadata.namespace ? `${metadata.namespace}/` : ''}${metadata.name}`;
    if (!apiVersion.startsWith('rabbitmq.com/')) throw new ExportInputError(`${file}: ${label} (${apiVersion}) is not a messaging-topology-operator resource`);
    if (!(kind in specs)) {
      topology.notes.push({ what: label, reason: `not topology a RabbitQueueBatch declares (only Queue, Exchange, Binding, Policy are read)` });
      return;
    }
    if (apiVersion !== MTO_API_VERSION) throw new ExportInputError(`${file}: ${label}: field apiVersion: ${apiVersion} is not supported, ${MTO_API_VERSION} is`);
    const k = kind as MtoKind;
    const parsed = specs[k].safeParse(env.data.spec);
    if (!parsed.success) {
      const issue = describeIssue(parsed.error).replace(/^unknown field /, 'unknown field spec.').replace(/^field /, 'field spec.');
      throw new ExportInputError(`${file}: ${label}: ${issue}`);
    }
    const { vhost, rabbitmqClusterReference: ref } = parsed.data;
    const cluster = ref.connectionSecret?.name ? `connectionSecret ${metadata.namespace ?? ''}/${ref.connectionSecret.name}` : `RabbitmqCluster ${ref.namespace ?? metadata.namespace ?? ''}/${ref.name ?? ''}`;
    if (!clusters.has(cluster)) clusters.set(cluster, label);
    vhosts.add(vhost);
    if (opts.vhost !== undefined && vhost !== opts.vhost) return;
    if (k === 'Queue') {
      const q = parsed.data as z.output<typeof specs.Queue>;
      const a = q.arguments ?? {};
      const type = q.type ?? (typeof a['x-queue-type'] === 'string' ? a['x-queue-type'] : 'classic');
      topology.queues.push({ vhost, name: q.name, type, durable: q.durable, autoDelete: q.autoDelete, exclusive: false, arguments: a });
    } else if (k === 'Exchange') {
      const e = parsed.data as z.output<typeof specs.Exchange>;
      topology.exchanges.push({ vhost, name: e.name, type: e.type, durable: e.durable, autoDelete: e.autoDelete, internal: false, arguments: e.arguments ?? {} });
    } else if (k === 'Binding') {
      const b = parsed.data as z.output<typeof specs.Binding>;
      if (b.source !== '') topology.bindings.push({ vhost, source: b.source, destination: b.destination, destinationType: b.destinationType, routingKey: b.routingKey, arguments: b.arguments ?? {} });
      else topology.notes.push({ what: label, reason: 'binds from the default exchange, which binds every queue implicitly' });
    } else {
      topology.policies.push({ vhost, name: (parsed.data as z.output<typeof specs.Policy>).name });
    }
  });
  if (clusters.size > 1) {
    const which = [...clusters].map(([c, first]) => `${c} (e.g. ${first})`).join('; ');
    throw new ExportInputError(`${file}: the resources refer to ${clusters.size} RabbitMQ clusters (${which}); export each cluster's resources separately`);
  }
  if (opts.vhost !== undefined && !vhosts.has(opts.vhost)) {
    throw new ExportInputError(`vhost "${opts.vhost}" does not occur in ${file}; it holds ${[...vhosts].sort().map((v) => `"${v}"`).join(', ') || 'no resources'}`);
  }
  topology.vhosts = [...vhosts].sort();
  return topology;
}
