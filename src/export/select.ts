/**
 * Decides, object by object, what an export turns into batch items and what it leaves out (and
 * why). Left out: RabbitMQ's own objects (`amq.*` exchanges, server-named `amq.*` queues), the
 * objects of client connections (exclusive and auto-delete queues, auto-delete exchanges), what
 * a RabbitQueueBatch cannot hold (names, types or arguments its schema refuses; a second binding
 * that differs from another only in arguments), and policies, which the API has no place for.
 * Every item is checked with the API's own zod schemas, so what is exported is accepted.
 */
import { bindingSchema, exchangeSchema, queueSchema, type BindingSpec, type ExchangeSpec, type QueueSpec } from '../api/schema.js';
import { bindingId } from '../model/identity.js';
import { describeIssue } from './read-input.js';
import type { Skipped, Topology } from './topology.js';

export interface VhostSelection {
  vhost: string;
  exchanges: Map<string, ExchangeSpec>;
  queues: Map<string, QueueSpec>;
  bindings: BindingSpec[];
}

export interface Selection {
  vhosts: VhostSelection[];
  skipped: Skipped[];
}

export const POLICY_REASON = 'the RabbitQueueBatch API holds no policies: keep managing them as before (rabbitmqctl set_policy, a definitions file, or the operator\'s Policy resource)';

export function select(topology: Topology, opts: { match?: RegExp } = {}): Selection {
  const inScope = (name: string) => !opts.match || opts.match.test(name);
  const skipped: Skipped[] = [...topology.notes];
  const byVhost = new Map<string, VhostSelection>();
  const vhostOf = (vhost: string) => {
    let v = byVhost.get(vhost);
    if (!v) byVhost.set(vhost, (v = { vhost, exchanges: new Map(), queues: new Map(), bindings: [] }));
    return v;
  };
  const skip = (what: string, reason: string) => skipped.push({ what, reason });

  for (const e of topology.exchanges) {
    if (!inScope(e.name)) continue;
    const what = `exchange/${e.vhost}/${e.name}`;
    if (e.name.startsWith('amq.')) skip(what, 'RabbitMQ\'s own amq.* exchange (bindings may still name it)');
    else if (e.autoDelete) skip(what, 'auto-delete: it lives only as long as its bindings (a client\'s object)');
    else {
      const parsed = exchangeSchema.safeParse({ name: e.name, type: e.type, durable: e.durable, autoDelete: e.autoDelete, internal: e.internal, arguments: e.arguments });
      if (parsed.success) vhostOf(e.vhost).exchanges.set(e.name, parsed.data);
      else skip(what, `a RabbitQueueBatch cannot hold it: ${describeIssue(parsed.error)}`);
    }
  }
  for (const q of topology.queues) {
    if (!inScope(q.name)) continue;
    const what = `queue/${q.vhost}/${q.name}`;
    if (q.name.startsWith('amq.')) skip(what, 'server-named amq.* queue of a client');
    else if (q.exclusive) skip(what, 'exclusive: it belongs to one client connection');
    else if (q.autoDelete) skip(what, 'auto-delete: deleted with its last consumer (a client\'s object)');
    else {
      // The type is `type`; RabbitMQ also stores it as the `x-queue-type` argument.
      const { 'x-queue-type': _type, ...args } = q.arguments;
      const parsed = queueSchema.safeParse({ name: q.name, type: q.type, durable: q.durable, autoDelete: q.autoDelete, arguments: args });
      if (parsed.success) vhostOf(q.vhost).queues.set(q.name, parsed.data);
      else skip(what, `a RabbitQueueBatch cannot hold it: ${describeIssue(parsed.error)}`);
    }
  }
  const seen = new Set<string>();
  for (const b of topology.bindings) {
    const v = vhostOf(b.vhost);
    const what = `${bindingId(b)} (vhost ${b.vhost})`;
    const destinationExported = b.destinationType === 'queue' ? v.queues.has(b.destination) : v.exchanges.has(b.destination);
    // A binding goes with its destination; one into an amq.* exchange goes with its source.
    const anchoredOnSource = !destinationExported && b.destinationType === 'exchange' && b.destination.startsWith('amq.') && v.exchanges.has(b.source);
    if (!destinationExported && !anchoredOnSource) {
      const intoBuiltIn = b.destinationType === 'exchange' && b.destination.startsWith('amq.');
      const anchor = intoBuiltIn ? b.source : b.destination;
      if (inScope(anchor)) skip(what, intoBuiltIn ? `its source exchange ${b.source} is not exported` : `its ${b.destinationType} ${b.destination} is not exported`);
      continue;
    }
    if (!inScope(anchoredOnSource ? b.source : b.destination)) continue;
    const id = `${b.vhost}|${bindingId(b)}`;
    if (seen.has(id)) {
      skip(what, 'another binding with the same source, destination and routing key is exported; a RabbitQueueBatch tells bindings apart without their arguments');
      continue;
    }
    const parsed = bindingSchema.safeParse({ source: b.source, destination: b.destination, destinationType: b.destinationType, routingKey: b.routingKey, arguments: b.arguments });
    if (!parsed.success) {
      skip(what, `a RabbitQueueBatch cannot hold it: ${describeIssue(parsed.error)}`);
      continue;
    }
    seen.add(id);
    v.bindings.push(parsed.data);
  }
  for (const p of topology.policies) if (inScope(p.name)) skip(`policy/${p.vhost}/${p.name}`, POLICY_REASON);
  const vhosts = [...byVhost.values()].filter((v) => v.exchanges.size + v.queues.size + v.bindings.length > 0).sort((a, b) => a.vhost.localeCompare(b.vhost));
  return { vhosts, skipped };
}
