/** Reads one vhost's topology back from RabbitMQ: the planner's "observed" input. */
import type { Operation } from '../batch/plan.js';
import type { ManagementApi } from './management-api.js';
import type { ObservedVhost } from './types.js';

/** Where the reconciler gets observed state: straight from the API, or through the cache. */
export interface ObservedStateSource {
  /** `wanted`: the exchange and queue names the caller will look at, a hint a cache may use; defaults to every name. */
  observe(api: ManagementApi, vhost: string, wanted?: ReadonlySet<string>): Promise<ObservedVhost>;
  /** Before each operation the operator makes: its event will be the operator's own echo. */
  expectWrite?(api: ManagementApi, vhost: string, op: Operation): void;
  /** After each operation the operator made (write-through; a failed one makes the state unknown). */
  recordWrite(api: ManagementApi, vhost: string, op: Operation, ok: boolean, propertiesKey?: string): void;
  /** Forget what is known of a vhost: the next observe reads RabbitMQ. */
  invalidate(api: ManagementApi, vhost: string): void;
}

export async function observeVhost(api: ManagementApi, vhost: string): Promise<ObservedVhost> {
  // One round trip: the listings run alongside the existence check (they fail for a missing vhost).
  const lists = Promise.all([api.listExchanges(vhost), api.listQueues(vhost), api.listBindings(vhost)]);
  lists.catch(() => undefined);
  if (!(await api.vhostExists(vhost))) return { vhost, exists: false, exchanges: new Map(), queues: new Map(), bindings: [] };
  const [exchanges, queues, bindings] = await lists;
  return {
    vhost,
    exists: true,
    exchanges: new Map(exchanges.map((e) => [e.name, e])),
    queues: new Map(queues.map((q) => [q.name, q])),
    bindings,
  };
}
