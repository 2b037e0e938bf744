/**
 * Whether the nodes listed for one connection are one broker: every node of a RabbitMQ cluster
 * reports the same `cluster_name` in `/api/overview`. Nodes of different brokers behind one
 * connection would scatter a batch over unrelated brokers, so such a list is refused.
 */
export interface NamedNode {
  readonly endpoint: string;
  clusterName(): Promise<string>;
}

export interface SameBrokerCheck {
  /** Cluster name per node that answered. */
  names: Map<string, string>;
  /** Endpoints that did not answer (to be checked again later). */
  unanswered: string[];
  /** Set when the nodes that answered name different clusters: a message naming each. */
  mismatch?: string;
}

/** Asks every node not in `known` for its cluster name, and compares all the names known. */
export async function checkSameBroker(nodes: readonly NamedNode[], known: ReadonlyMap<string, string> = new Map()): Promise<SameBrokerCheck> {
  const names = new Map(known);
  const unanswered: string[] = [];
  await Promise.all(
    nodes
      .filter((n) => !names.has(n.endpoint))
      .map(async (n) => {
        try {
          names.set(n.endpoint, await n.clusterName());
        } catch {
          unanswered.push(n.endpoint);
        }
      }),
  );
  const distinct = new Set(names.values());
  if (distinct.size <= 1) return { names, unanswered };
  const list = nodes.filter((n) => names.has(n.endpoint)).map((n) => `${n.endpoint} is in cluster "${names.get(n.endpoint)}"`);
  return { names, unanswered, mismatch: `the nodes belong to different RabbitMQ clusters (${list.join(', ')}): list the nodes of one cluster only` };
}
