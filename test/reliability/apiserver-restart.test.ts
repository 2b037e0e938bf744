/**
 * The API server restarted under a running operator, on a private control plane (its own etcd
 * and kube-apiserver: the shared plane is never stopped). The operator's watch fails and backs
 * off; the apiserver comes back on the same port with etcd's data; a spec edit made right after
 * its /readyz, before the operator's watch is back, is applied: the new queue exists in
 * RabbitMQ, the removed one is pruned, and the status describes the new generation. Twice: a
 * graceful stop (SIGTERM: watches are closed) and a crash (SIGKILL: connections reset), each
 * with an operator of its own (the watch backoff grows over one outage and only resets after
 * 2 quiet minutes; a second outage under the same process would just wait longer).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RabbitQueueBatchSpecInput } from '../../src/api/schema.js';
import { createTestNamespace } from '../support/kube.js';
import { batchClient, condition } from '../support/operator.js';
import { spawnOperator, type OperatorProcess } from '../support/operator-process.js';
import { startPrivatePlane, type PrivatePlane } from '../support/private-plane.js';
import { createTestVhost, listQueueNames } from '../support/rabbit.js';
import { eventually } from '../support/wait.js';

let plane: PrivatePlane;
let ns: { name: string; cleanup: () => Promise<void> };
let vh: { name: string; cleanup: () => Promise<void> };
const operators: OperatorProcess[] = [];
let batches: ReturnType<typeof batchClient>;

const spec = (queues: string[]): RabbitQueueBatchSpecInput => ({ vhost: vh.name, deletionPolicy: 'Delete', queues: queues.map((name) => ({ name })) });

interface LogLine {
  time?: number;
  msg?: string;
  watch?: string;
  delayMs?: number;
}

/** The RabbitQueueBatch watcher's retry lines ("list/watch failed; retrying", "resourceVersion gone; relisting"). */
const watchRetries = (lines: LogLine[]) => lines.filter((l) => l.watch?.includes('rabbitqueuebatches') && /retrying after backoff|relisting after backoff/.test(l.msg ?? ''));

beforeAll(async () => {
  plane = await startPrivatePlane('apirestart');
  ns = await createTestNamespace('apirestart', plane.kubeconfigPath);
  vh = await createTestVhost('apirestart');
  batches = batchClient(ns.name, plane.kubeconfigPath);
});

afterAll(async () => {
  await Promise.all(operators.map((o) => o.kill('SIGKILL')));
  await ns?.cleanup().catch(() => undefined);
  await vh?.cleanup();
  await plane?.stop();
});

async function startOperator(identity: string): Promise<OperatorProcess> {
  const op = await spawnOperator(identity, ns.name, [], { KUBECONFIG: plane.kubeconfigPath });
  operators.push(op);
  return op;
}

/**
 * Stops the private apiserver with `signal`, waits until the operator's watch has failed and
 * backed off for a few seconds, starts the apiserver again and, at once, replaces the queues.
 */
async function restartApiserverThenEdit(op: OperatorProcess, signal: 'TERM' | 'KILL', batch: string, queues: string[]): Promise<void> {
  const mark = op.lines().length;
  await plane.stopApiserver(signal);
  // Wait until the watch has failed a few times and its next retry is >= 5 s away (nominally
  // 6.4 s, the 4th retry): the apiserver (~3 s to /readyz here) is back, and the edit made,
  // before that retry, so the edit is not simply delivered by a live watch.
  await eventually(() => expect(watchRetries(op.lines().slice(mark) as LogLine[]).some((l) => (l.delayMs ?? 0) >= 5_000)).toBe(true), { timeoutMs: 60_000, intervalMs: 20 });
  await plane.startApiserver();
  // Right after /readyz; retried only if the freshly started apiserver still refuses it.
  await eventually(() => batches.setSpec(batch, spec(queues)), { timeoutMs: 30_000, intervalMs: 50 });
  const editedAt = Date.now();

  const since = op.lines().slice(mark) as LogLine[];
  const last = watchRetries(since).filter((l) => (l.time ?? 0) <= editedAt).at(-1);
  const nextAttemptAt = (last?.time ?? 0) + (last?.delayMs ?? 0);
  console.log(
    `SIG${signal}: ${watchRetries(since).length} watch retries during the outage; the edit was made ` +
      (nextAttemptAt > editedAt ? `${nextAttemptAt - editedAt} ms before the operator's next watch attempt` : `${editedAt - nextAttemptAt} ms after the operator's last scheduled watch attempt`),
  );
}

async function expectApplied(batch: string, queues: string[], generation: number): Promise<void> {
  const b = await batches.waitFor(batch, (b) => condition(b, 'Ready')?.status === 'True' && b.metadata.generation === generation, 60_000);
  expect(b.status?.observedGeneration).toBe(generation);
  expect(b.status?.applied?.queues).toEqual(queues);
  await eventually(async () => expect((await listQueueNames(vh.name)).filter((q) => q.startsWith(`${batch}.`))).toEqual(queues));
}

async function expectOperatorRecovered(op: OperatorProcess, mark: number): Promise<void> {
  expect(op.child.exitCode).toBeNull();
  expect(op.child.signalCode).toBeNull();
  const lines = op.lines().slice(mark) as LogLine[];
  // The watcher said it would resume (from its resourceVersion) or relist (after 410 Gone) ...
  expect(watchRetries(lines).length).toBeGreaterThan(0);
  const retries = watchRetries(lines).map((l) => (/relisting/.test(l.msg ?? '') ? '410 Gone' : 'failed'));
  const relisted = lines.some((l) => l.watch?.includes('rabbitqueuebatches') && l.msg === 'listed');
  console.log(`watch retries: ${retries.join(', ')}; then ${relisted ? 'a full relist' : 'resumed from its resourceVersion'}`);
  // ... and the operator is whole again: its cache synced, RabbitMQ and the event stream up.
  await eventually(async () => {
    const res = await fetch(`http://127.0.0.1:${op.probePort}/readyz`);
    expect(res.status, await res.text()).toBe(200);
  });
}

describe('kube-apiserver restarted under a running operator (private control plane)', () => {
  it('applies a spec edit made right after a graceful restart (SIGTERM)', async () => {
    const op = await startOperator('apirestart-term');
    await batches.create('term', spec(['term.a', 'term.b']));
    await expectApplied('term', ['term.a', 'term.b'], 1);

    const mark = op.lines().length;
    await restartApiserverThenEdit(op, 'TERM', 'term', ['term.a', 'term.c']);
    await expectApplied('term', ['term.a', 'term.c'], 2);
    await expectOperatorRecovered(op, mark);
    expect(await op.kill('SIGTERM')).toBe(0); // the next case gets an operator of its own
  });

  it('applies a spec edit made right after the apiserver crashed (SIGKILL) and came back', async () => {
    const op = await startOperator('apirestart-kill');
    await batches.create('kill', spec(['kill.a', 'kill.b']));
    await expectApplied('kill', ['kill.a', 'kill.b'], 1);

    const mark = op.lines().length;
    await restartApiserverThenEdit(op, 'KILL', 'kill', ['kill.b', 'kill.c']);
    await expectApplied('kill', ['kill.b', 'kill.c'], 2);
    await expectOperatorRecovered(op, mark);
  });
});
