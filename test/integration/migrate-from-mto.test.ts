/**
 * The path of docs/migrating-from-the-topology-operator.md, command by command, on the local
 * plane: the official operator's CRDs installed as plain CRDs (its published schema; the operator
 * itself does not run), its resources in a namespace with the finalizers it adds, the objects
 * they describe already in RabbitMQ. Export from the resources, apply with adopt: IfIdentical,
 * wait for Ready, remove the operator's resources, and check that RabbitMQ lost nothing and the
 * batches own everything (without one write to RabbitMQ).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createTestNamespace, kubeconfigPath } from '../support/kube.js';
import { batchClient, condition, startTestOperator, type TestOperator } from '../support/operator.js';
import { createTestVhost, getExchange, getQueue, listBindings, mgmt, rabbitUrl } from '../support/rabbit.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const MTO_CRDS = join(ROOT, 'test/fixtures/mto-crds');
const MTO_KINDS = 'queues.rabbitmq.com,exchanges.rabbitmq.com,bindings.rabbitmq.com,policies.rabbitmq.com';
const v = encodeURIComponent;

let ns: { name: string; cleanup: () => Promise<void> };
let vh: { name: string; cleanup: () => Promise<void> };
let operator: TestOperator | undefined;

/** Runs a command without blocking the event loop: the operator runs in this process. */
function run(cmd: string, args: string[], input?: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, KUBECONFIG: kubeconfigPath(), RABBITMQ_URL: rabbitUrl() } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out, err }));
    child.stdin.end(input ?? '');
  });
}
async function sh(cmd: string, args: string[], input?: string): Promise<string> {
  const res = await run(cmd, args, input);
  if (res.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${res.code}):\n${res.err}${res.out}`);
  return res.out;
}
const kubectl = (...args: string[]) => sh('kubectl', args);

async function put(path: string, body: unknown): Promise<void> {
  const res = await mgmt(path, { method: path.includes('/bindings/') ? 'POST' : 'PUT', body });
  if (res.status >= 300) throw new Error(`${path}: ${res.status} ${JSON.stringify(res.json)}`);
}

beforeAll(async () => {
  await kubectl('apply', '--server-side', '-f', MTO_CRDS);
  await kubectl('wait', '--for=condition=Established', '--timeout=60s', ...readdirSync(MTO_CRDS).map((f) => `crd/${f.replace(/^rabbitmq\.com_/, '').replace(/\.yaml$/, '')}.rabbitmq.com`));
  ns = await createTestNamespace('mto');
  vh = await createTestVhost('mto');
});

afterAll(async () => {
  await operator?.stop();
  // Whatever of the operator's resources is left (a failed run): without the operator their
  // finalizers would keep them, and their CRDs, terminating for ever.
  if (ns) {
    for (const kind of MTO_KINDS.split(',')) {
      const left = await run('kubectl', ['get', kind, '-n', ns.name, '-o', 'name']);
      for (const object of left.out.split('\n').filter(Boolean)) {
        await run('kubectl', ['patch', object, '-n', ns.name, '--type=json', '-p', '[{"op":"remove","path":"/metadata/finalizers"}]']);
      }
    }
    await run('kubectl', ['delete', MTO_KINDS, '--all', '-n', ns.name]);
  }
  await run('kubectl', ['delete', '-f', MTO_CRDS, '--ignore-not-found', '--timeout=60s']);
  await ns?.cleanup();
  await vh?.cleanup();
});

describe('migrating from the messaging-topology-operator', () => {
  it('exports its resources, adopts every object with reads only, and its resources go without RabbitMQ losing anything', async () => {
    const vhost = vh.name;
    const V = v(vhost);
    // What the official operator made in RabbitMQ (its defaults: classic, not durable unless said).
    await put(`/api/exchanges/${V}/orders`, { type: 'topic', durable: true, auto_delete: false });
    await put(`/api/queues/${V}/orders.created`, { durable: true, auto_delete: false, arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 5 } });
    await put(`/api/queues/${V}/orders.audit`, { durable: false, auto_delete: false, arguments: {} });
    await put(`/api/bindings/${V}/e/orders/q/orders.created`, { routing_key: 'created.#', arguments: {} });
    await put(`/api/bindings/${V}/e/orders/q/orders.audit`, { routing_key: '#', arguments: {} });
    await put(`/api/policies/${V}/orders-ttl`, { pattern: '^orders\\.', definition: { 'message-ttl': 60000 }, 'apply-to': 'queues', priority: 0 });

    // Its resources, with the finalizers it adds.
    const ref = { name: 'production-rabbit' };
    const resource = (kind: string, plural: string, name: string, spec: Record<string, unknown>) => ({
      apiVersion: 'rabbitmq.com/v1beta1',
      kind,
      metadata: { name, namespace: ns.name, finalizers: [`deletion.finalizers.${plural}.rabbitmq.com`] },
      spec: { vhost, rabbitmqClusterReference: ref, ...spec },
    });
    const resources = [
      resource('Exchange', 'exchanges', 'orders', { name: 'orders', type: 'topic', durable: true }),
      resource('Queue', 'queues', 'orders-created', { name: 'orders.created', type: 'quorum', durable: true, arguments: { 'x-delivery-limit': 5 } }),
      resource('Queue', 'queues', 'orders-audit', { name: 'orders.audit' }),
      resource('Binding', 'bindings', 'orders-created', { source: 'orders', destination: 'orders.created', destinationType: 'queue', routingKey: 'created.#' }),
      resource('Binding', 'bindings', 'orders-audit', { source: 'orders', destination: 'orders.audit', destinationType: 'queue', routingKey: '#' }),
      resource('Policy', 'policies', 'orders-ttl', { name: 'orders-ttl', pattern: '^orders\\.', applyTo: 'queues', definition: { 'message-ttl': 60000 } }),
    ];
    await sh('kubectl', ['apply', '--server-side', '-f', '-'], resources.map((r) => stringify(r)).join('---\n'));

    // 1. Export from its resources (the guide's command).
    const out = mkdtempSync(join(tmpdir(), 'rabbitbatch-mto-'));
    const manifests = await kubectl('get', MTO_KINDS, '-n', ns.name, '-o', 'yaml');
    const exported = await run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'export', '--from-mto', '-', '--namespace', ns.name, '--out-dir', out], manifests);
    expect(exported.code, exported.err).toBe(0);
    expect(exported.err).toContain('1 exchanges, 2 queues, 2 bindings, 0 policies exported in 1 batches; 1 skipped');
    expect(exported.err).toContain(`policy/${vhost}/orders-ttl`);

    // 2. Apply with adopt: IfIdentical (the export's default) and wait for Ready.
    operator = await startTestOperator(ns.name);
    const writesBefore = await nonGetRequests(operator);
    await kubectl('apply', '-f', out);
    await kubectl('wait', '--for=condition=Ready', 'rqb', '--all', '-n', ns.name, '--timeout=60s');
    const batches = batchClient(ns.name);
    const name = `${vhost.toLowerCase()}-orders`;
    const batch = await batches.waitFor(name, (b) => condition(b, 'Ready')?.status === 'True');
    expect(batch.spec.adopt).toBe('IfIdentical');
    expect(batch.status?.applied).toEqual({ vhost, exchanges: ['orders'], queues: ['orders.audit', 'orders.created'], bindings: ['binding/orders/orders.audit/#', 'binding/orders/orders.created/created.#'] });
    expect(batch.status?.adopted).toBe(5);
    expect(await nonGetRequests(operator)).toBe(writesBefore);
    const columns = await sh('bash', ['-c', `kubectl get rqb -n ${ns.name} -o custom-columns=NAME:.metadata.name,READY:'.status.conditions[?(@.type=="Ready")].status',ADOPTED:.status.adopted`]);
    expect(columns.split('\n')[1]?.split(/\s+/)).toEqual([name, 'True', '5']);

    // 3. Remove its resources without deleting anything in RabbitMQ (the guide's commands).
    // As in the guide (without scaling the operator down: it does not run here).
    const NS = ns.name;
    await sh('bash', ['-euo', 'pipefail', '-c', `
kubectl get queues.rabbitmq.com -n ${NS} -o name \\
  | xargs -r -I{} kubectl patch {} -n ${NS} --type=merge -p '{"spec":{"deletionPolicy":"retain"}}'
for kind in queues.rabbitmq.com exchanges.rabbitmq.com bindings.rabbitmq.com policies.rabbitmq.com; do
  kubectl get "$kind" -n ${NS} -o name \\
    | xargs -r -I{} kubectl patch {} -n ${NS} --type=json -p '[{"op":"remove","path":"/metadata/finalizers"}]'
done
kubectl delete queues.rabbitmq.com,exchanges.rabbitmq.com,bindings.rabbitmq.com --all -n ${NS}
`]);
    expect((await kubectl('get', 'queues.rabbitmq.com', '-n', ns.name, '-o', 'jsonpath={.items}'))).toBe('[]');
    await kubectl('delete', MTO_KINDS, '--all', '-n', ns.name);
    expect((await kubectl('get', MTO_KINDS, '-n', ns.name, '-o', 'name')).trim()).toBe('');

    // RabbitMQ lost nothing; the batch still owns and verifies everything.
    expect(await getExchange(vhost, 'orders')).toMatchObject({ type: 'topic', durable: true });
    expect(await getQueue(vhost, 'orders.created')).toMatchObject({ type: 'quorum', durable: true });
    expect(await getQueue(vhost, 'orders.audit')).toMatchObject({ durable: false });
    expect((await listBindings(vhost)).map((b) => `${b.source}->${b.destination}:${b.routing_key}`).sort()).toEqual(['orders->orders.audit:#', 'orders->orders.created:created.#']);
    expect((await mgmt(`/api/policies/${V}/orders-ttl`)).status).toBe(200);
    const after = await batches.get(name);
    expect(condition(after, 'Ready')?.status).toBe('True');
    await batches.delete(name); // deletionPolicy Retain (the export's default): RabbitMQ untouched
    await batches.gone(name);
    expect(await getQueue(vhost, 'orders.created')).toBeDefined();
  });
});

async function nonGetRequests(op: TestOperator): Promise<number> {
  return (await op.metric('rabbitbatch_http_requests_total')).filter((x) => x.labels.method !== 'GET').reduce((n, x) => n + x.value, 0);
}
