/** Reads one vhost's topology back from RabbitMQ: the planner's "observed" input. */
import type { ManagementApi } from '../model/broker.js';
import type { ObservedVhost } from '../model/observed.js';

export async function observeVhost(api: ManagementApi, vhost: string): Promise<ObservedVhost> {
  // One round trip: the listings run alongside the existence check (they fail for a missing vhost).
  const lists = Promise.all([api.listExchanges(vhost), api.listQueues(vhost), api.listBindings(vhost), api.listPolicies(vhost, 'policy'), api.listPolicies(vhost, 'operator-policy')]);
  lists.catch(() => undefined);
  if (!(await api.vhostExists(vhost))) return { vhost, exists: false, exchanges: new Map(), queues: new Map(), bindings: [], policies: new Map(), operatorPolicies: new Map() };
  const [exchanges, queues, bindings, policies, operatorPolicies] = await lists;
  return {
    vhost,
    exists: true,
    exchanges: new Map(exchanges.map((e) => [e.name, e])),
    queues: new Map(queues.map((q) => [q.name, q])),
    bindings,
    policies: new Map(policies.map((p) => [p.name, p])),
    operatorPolicies: new Map(operatorPolicies.map((p) => [p.name, p])),
  };
}
