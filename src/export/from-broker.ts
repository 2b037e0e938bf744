/**
 * Reads a live broker's topology for `rabbitbatch export`: only GETs, so a user with the
 * `monitoring` (or `management`) tag and read permissions is enough. Policies need the
 * `policymaker` tag to be listed; without it they are noted, not an error.
 */
import { ManagementError } from '../model/errors.js';
import { segment } from '../rabbit/management-client.js';
import { ExportInputError, emptyTopology, type RawArguments, type Topology } from './topology.js';

export interface BrokerReader {
  readonly endpoint: string;
  read<T>(path: string): Promise<T>;
}

interface RawExchange { name: string; type: string; durable: boolean; auto_delete: boolean; internal: boolean; arguments?: RawArguments }
interface RawQueue { name: string; type?: string; durable: boolean; auto_delete: boolean; exclusive?: boolean; arguments?: RawArguments }
interface RawBinding { source: string; destination: string; destination_type: 'queue' | 'exchange'; routing_key: string; arguments?: RawArguments }

export async function readBroker(api: BrokerReader, opts: { vhost?: string } = {}): Promise<Topology> {
  const vhosts = (await api.read<{ name: string }[]>('/api/vhosts?columns=name')).map((v) => v.name).sort();
  if (opts.vhost !== undefined && !vhosts.includes(opts.vhost)) {
    throw new ExportInputError(`vhost "${opts.vhost}" does not exist on ${api.endpoint} (or the user has no permissions on it); the user sees: ${vhosts.map((v) => `"${v}"`).join(', ') || 'none'}`);
  }
  const topology = emptyTopology();
  topology.vhosts = vhosts;
  for (const vhost of opts.vhost !== undefined ? [opts.vhost] : vhosts) {
    const v = segment(vhost);
    const [exchanges, queues, bindings, policies] = await Promise.all([
      api.read<RawExchange[]>(`/api/exchanges/${v}?disable_stats=true&columns=name,type,durable,auto_delete,internal,arguments`),
      api.read<RawQueue[]>(`/api/queues/${v}?disable_stats=true&columns=name,type,durable,auto_delete,exclusive,arguments`),
      api.read<RawBinding[]>(`/api/bindings/${v}?columns=source,destination,destination_type,routing_key,arguments`),
      api.read<{ name: string }[]>(`/api/policies/${v}`).catch((err: unknown) => {
        if (err instanceof ManagementError && (err.status === 401 || err.status === 403)) return undefined;
        throw err;
      }),
    ]);
    for (const e of exchanges) {
      // The default exchange ("") is implicit in every vhost.
      if (e.name !== '') topology.exchanges.push({ vhost, name: e.name, type: e.type, durable: e.durable, autoDelete: e.auto_delete, internal: e.internal, arguments: e.arguments ?? {} });
    }
    for (const q of queues) {
      topology.queues.push({ vhost, name: q.name, type: q.type ?? 'classic', durable: q.durable, autoDelete: q.auto_delete, exclusive: q.exclusive === true, arguments: q.arguments ?? {} });
    }
    for (const b of bindings) {
      // Default-exchange bindings (source "") are implicit, one per queue.
      if (b.source !== '') topology.bindings.push({ vhost, source: b.source, destination: b.destination, destinationType: b.destination_type, routingKey: b.routing_key, arguments: b.arguments ?? {} });
    }
    if (policies) for (const p of policies) topology.policies.push({ vhost, name: p.name });
    else topology.notes.push({ what: `policies/${vhost}`, reason: 'not read: listing policies needs the policymaker tag' });
  }
  return topology;
}
