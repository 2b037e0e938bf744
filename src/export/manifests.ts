/**
 * Turns packed batches into RabbitQueueBatch manifests: names a person can read
 * (`<vhost>-<group>[-<part>]`, as Kubernetes names allow), defaults left out so the YAML shows
 * only what differs, and every spec checked with the operator's own validation first.
 */
import { stringify } from 'yaml';
import { API_VERSION, KIND, type BindingSpec, type ExchangeSpec, type QueueSpec } from '../api/schema.js';
import { formatErrors, validateSpec } from '../api/validate.js';
import type { PackedBatch } from './pack.js';
import { ExportInputError } from './topology.js';

export interface ManifestOptions {
  namespace?: string;
  connectionSecret?: string;
  adopt: 'Never' | 'IfIdentical';
  deletionPolicy: 'Retain' | 'Delete';
  maxItems: number;
}

export interface Manifest {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: { name: string; namespace?: string };
  spec: Record<string, unknown>;
}

/** Lowercase letters, digits and `-`: a DNS label part. */
function slug(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 60);
}

export function toManifests(batches: PackedBatch[], opts: ManifestOptions): Manifest[] {
  const used = new Set<string>();
  return batches.map((b) => {
    const base = [slug(b.vhost) || 'default', slug(b.group) || 'other', ...(b.part > 1 ? [String(b.part)] : [])].join('-');
    // Two groups can slug to one name (`Orders` and `orders`): keep both.
    let name = base;
    for (let n = 2; used.has(name); n++) name = `${base}-x${n}`;
    used.add(name);
    const spec: Record<string, unknown> = {
      ...(opts.connectionSecret ? { rabbitmq: { connectionSecret: { name: opts.connectionSecret } } } : {}),
      vhost: b.vhost,
      adopt: opts.adopt,
      deletionPolicy: opts.deletionPolicy,
      ...(b.exchanges.length + b.externalExchanges.length > 0 ? { exchanges: [...b.exchanges.map(compactExchange), ...b.externalExchanges.map((n) => ({ name: n, external: true }))] } : {}),
      ...(b.queues.length + b.externalQueues.length > 0 ? { queues: [...b.queues.map(compactQueue), ...b.externalQueues.map((n) => ({ name: n, external: true }))] } : {}),
      ...(b.bindings.length > 0 ? { bindings: b.bindings.map(compactBinding) } : {}),
    };
    const v = validateSpec(spec, { maxItems: opts.maxItems });
    if (!v.ok) throw new ExportInputError(`the topology of vhost "${b.vhost}" (group ${b.group}) does not fit a RabbitQueueBatch: ${formatErrors(v.errors)}`);
    return { apiVersion: API_VERSION, kind: KIND, metadata: { name, ...(opts.namespace ? { namespace: opts.namespace } : {}) }, spec };
  });
}

export function manifestYaml(m: Manifest): string {
  return stringify(m, { lineWidth: 0 });
}

const nonEmpty = (a: Record<string, unknown>) => (Object.keys(a).length > 0 ? { arguments: a } : {});

function compactExchange(e: ExchangeSpec): Record<string, unknown> {
  return {
    name: e.name,
    ...(e.type !== 'direct' ? { type: e.type } : {}),
    ...(!e.durable ? { durable: false } : {}),
    ...(e.autoDelete ? { autoDelete: true } : {}),
    ...(e.internal ? { internal: true } : {}),
    ...nonEmpty(e.arguments),
  };
}

function compactQueue(q: QueueSpec): Record<string, unknown> {
  return {
    name: q.name,
    ...(q.type !== 'classic' ? { type: q.type } : {}),
    ...(!q.durable ? { durable: false } : {}),
    ...(q.autoDelete ? { autoDelete: true } : {}),
    ...nonEmpty(q.arguments),
  };
}

function compactBinding(b: BindingSpec): Record<string, unknown> {
  return {
    source: b.source,
    destination: b.destination,
    ...(b.destinationType !== 'queue' ? { destinationType: b.destinationType } : {}),
    ...(b.routingKey !== '' ? { routingKey: b.routingKey } : {}),
    ...nonEmpty(b.arguments),
  };
}
