/**
 * The failover client's routing over fake node clients (the pure part: which node is asked, when
 * a node is taken out and when it is tried again); the 3-node cluster test covers real nodes.
 */
import { describe, expect, it } from 'vitest';
import { FailoverManagementClient, type NodeClient } from '../../src/rabbit/failover-client.js';
import { BrokerUnavailableError, ManagementError } from '../../src/model/errors.js';
import { isClusterTransient } from '../../src/rabbit/management-client.js';
import { nodeListProblems, splitNodeList } from '../../src/model/node-list.js';
import { checkSameBroker } from '../../src/rabbit/same-broker.js';
import { TlsError } from '../../src/model/errors.js';

/** A node whose `vhostExists` answers true, or throws what `fail` holds. */
function fakeNode(endpoint: string) {
  const node = {
    endpoint,
    fail: undefined as Error | undefined,
    calls: 0,
    closed: false,
    async vhostExists() {
      node.calls++;
      if (node.fail) throw node.fail;
      return true;
    },
    async close() {
      node.closed = true;
    },
  };
  return node;
}

function setup(n = 3) {
  let now = 1_000_000;
  const nodes = Array.from({ length: n }, (_, i) => fakeNode(`http://node-${i + 1}:15672`));
  const client = new FailoverManagementClient(nodes as unknown as NodeClient[], { initialRetryDelayMs: 1_000, maxRetryDelayMs: 30_000, now: () => now });
  return { nodes, client, advance: (ms: number) => (now += ms) };
}

const down = () => new BrokerUnavailableError('connect ECONNREFUSED');

describe('FailoverManagementClient', () => {
  it('sends every request to the first node while it answers, and names all nodes as its endpoint', async () => {
    const { nodes, client } = setup();
    for (let i = 0; i < 5; i++) expect(await client.vhostExists('/')).toBe(true);
    expect(nodes.map((n) => n.calls)).toEqual([5, 0, 0]);
    expect(client.endpoint).toBe('http://node-1:15672,http://node-2:15672,http://node-3:15672');
  });

  it('moves on to the next node when one does not answer, and stays there', async () => {
    const { nodes, client } = setup();
    nodes[0]!.fail = down();
    expect(await client.vhostExists('/')).toBe(true);
    expect(await client.vhostExists('/')).toBe(true);
    expect(nodes.map((n) => n.calls)).toEqual([1, 2, 0]);
    expect(client.nodeStates()[0]).toMatchObject({ up: false, lastError: 'connect ECONNREFUSED' });
  });

  it('tries a node that was taken out again only after its pause, with a longer pause each time it fails', async () => {
    const { nodes, client, advance } = setup(2);
    nodes[0]!.fail = down();
    await client.vhostExists('/');
    const first = client.nodeStates()[0]!.retryInMs!;
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThanOrEqual(30_000);
    // Node 2 stops answering too: within its pause node 1 is not asked again...
    nodes[1]!.fail = down();
    await expect(client.vhostExists('/')).rejects.toBeInstanceOf(BrokerUnavailableError);
    expect(nodes[0]!.calls).toBe(1);
    // ...after it, it is (node 2, now paused, is not).
    advance(first);
    await expect(client.vhostExists('/')).rejects.toBeInstanceOf(BrokerUnavailableError);
    expect(nodes[0]!.calls).toBe(2);
    const pauses: number[] = [first];
    for (let i = 0; i < 12; i++) {
      advance(30_000);
      await client.vhostExists('/').catch(() => undefined);
      pauses.push(client.nodeStates()[0]!.retryInMs!);
    }
    expect(Math.max(...pauses)).toBeLessThanOrEqual(30_000);
    expect(pauses.at(-1)!).toBeGreaterThan(first);
    // Back on its first answer: node 1 serves, and is in again.
    nodes[0]!.fail = undefined;
    advance(30_000);
    const before = nodes[0]!.calls;
    expect(await client.vhostExists('/')).toBe(true);
    expect(nodes[0]!.calls).toBe(before + 1);
    expect(client.nodeStates()[0]).toEqual({ endpoint: 'http://node-1:15672', up: true });
  });

  it('concurrent failures of one node do not lengthen its pause', async () => {
    const { nodes, client } = setup(2);
    nodes[0]!.fail = down();
    await Promise.all(Array.from({ length: 20 }, () => client.vhostExists('/')));
    expect(client.nodeStates()[0]!.retryInMs!).toBeLessThanOrEqual(2_000);
  });

  it('returns an answer from a node as final: a 4xx or 5xx is not sent to another node', async () => {
    const { nodes, client } = setup();
    nodes[0]!.fail = new ManagementError(400, 'inequivalent arg', 'PUT', '/api/queues/v/q');
    await expect(client.vhostExists('/')).rejects.toBeInstanceOf(ManagementError);
    nodes[0]!.fail = new ManagementError(503, 'busy', 'GET', '/api/vhosts');
    await expect(client.vhostExists('/')).rejects.toBeInstanceOf(ManagementError);
    expect(nodes.map((n) => n.calls)).toEqual([2, 0, 0]);
  });

  it('does not fail over a TLS failure: it is a certificate to fix, reported with its own message', async () => {
    const { nodes, client } = setup();
    nodes[0]!.fail = new TlsError('TLS: the server certificate of https://node-1 could not be verified', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    await expect(client.vhostExists('/')).rejects.toThrow(/^TLS: the server certificate of https:\/\/node-1/);
    expect(nodes.map((n) => n.calls)).toEqual([1, 0, 0]);
  });

  it('with no node answering, fails naming each node; with all paused, still asks the one due first', async () => {
    const { nodes, client } = setup();
    for (const n of nodes) n.fail = down();
    await expect(client.vhostExists('/')).rejects.toThrow(
      'no node of http://node-1:15672,http://node-2:15672,http://node-3:15672 answered (http://node-1:15672: connect ECONNREFUSED; http://node-2:15672: connect ECONNREFUSED; http://node-3:15672: connect ECONNREFUSED)',
    );
    expect(nodes.map((n) => n.calls)).toEqual([1, 1, 1]);
    nodes[1]!.fail = undefined;
    const due = client.nodeStates().reduce((a, b) => ((b.retryInMs ?? 0) < (a.retryInMs ?? 0) ? b : a));
    const result = await client.vhostExists('/').catch((e: Error) => e);
    // Exactly one node was asked, the one whose pause ends first.
    expect(nodes.reduce((sum, n) => sum + n.calls, 0)).toBe(4);
    expect(nodes.find((n) => n.endpoint === due.endpoint)!.calls).toBe(2);
    expect(result === true || result instanceof BrokerUnavailableError).toBe(true);
  });

  it('closes every node', async () => {
    const { nodes, client } = setup();
    await client.close();
    expect(nodes.every((n) => n.closed)).toBe(true);
  });
});

describe('node lists', () => {
  it('splits on commas, trims, drops empty entries and duplicates', () => {
    expect(splitNodeList(' http://a:15672 ,http://b:15672,, http://a:15672 ')).toEqual(['http://a:15672', 'http://b:15672']);
    expect(splitNodeList(' , ')).toEqual([]);
  });

  it('names an empty list and each bad entry, never showing credentials', () => {
    expect(nodeListProblems([])).toEqual(['no node listed (one management API URL, or several separated by commas)']);
    expect(nodeListProblems(['http://a:15672', 'rabbit-1', 'amqp://user:s3cret@b:5672'])).toEqual(['entry 2 is not a URL', 'entry 3 (b:5672) is not http:// or https://']);
    expect(nodeListProblems(['https://a:15671', 'http://b'])).toEqual([]);
  });
});

describe('checkSameBroker', () => {
  const named = (endpoint: string, name: string | Error) => ({ endpoint, clusterName: async () => (name instanceof Error ? Promise.reject(name) : name) });

  it('accepts nodes of one cluster, and remembers the ones that did not answer', async () => {
    const check = await checkSameBroker([named('http://a', 'prod'), named('http://b', 'prod'), named('http://c', new Error('refused'))]);
    expect(check.mismatch).toBeUndefined();
    expect(check.unanswered).toEqual(['http://c']);
  });

  it('refuses nodes of different clusters, naming each node and its cluster', async () => {
    const check = await checkSameBroker([named('http://a', 'prod'), named('http://b', 'staging')]);
    expect(check.mismatch).toBe('the nodes belong to different RabbitMQ clusters (http://a is in cluster "prod", http://b is in cluster "staging"): list the nodes of one cluster only');
  });

  it('compares a node that answers later with the names known from before', async () => {
    const check = await checkSameBroker([named('http://a', new Error('not asked')), named('http://c', 'other')], new Map([['http://a', 'prod']]));
    expect(check.mismatch).toContain('http://c is in cluster "other"');
  });
});

describe('isClusterTransient', () => {
  it('recognises the 400s of a quorum queue declared while a node goes down (RabbitMQ 3.10), and nothing about the request itself', () => {
    expect(isClusterTransient("Cannot declare quorum queue 'q359' in vhost 'v' on node 'rabbit-1@h' with leader on node 'rabbit-1@h': cluster_not_formed")).toBe(true);
    expect(isClusterTransient("Request to node rabbit-1@h failed with {'EXIT', {exception, {noproc, {gen_server,call, [{ra_server_sup_sup, 'rabbit-2@h'}]}}}}")).toBe(true);
    expect(isClusterTransient("inequivalent arg 'x-consumer-timeout' for queue 'q' in vhost 'v': received '1' but current is '2'")).toBe(false);
    expect(isClusterTransient('Unknown exchange type')).toBe(false);
  });
});
