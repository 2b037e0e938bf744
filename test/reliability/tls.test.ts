/**
 * TLS to RabbitMQ, against the machine's broker with TLS listeners added at runtime
 * (test/support/broker-tls.ts: a throwaway CA, HTTPS on 15671, AMQPS on 5671). The server's
 * certificate is verified against the CA given (Secret `ca.crt`, RABBITMQ_CA_FILE, --ca-file):
 * with it, the management client, the AMQP channel pool, the CLI and the operator work; with an
 * unrelated CA, or none (system roots), every one of them fails saying the certificate could not
 * be verified, and never shows the password.
 *
 * A reliability test because adding the HTTPS listener restarts the management plugin, which
 * the management API's other users would notice.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import type { ConfirmChannel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queueSchema } from '../../src/api/schema.js';
import { AmqpConnection } from '../../src/rabbit/amqp-connection.js';
import { ChannelPool } from '../../src/rabbit/channel-pool.js';
import { BrokerUnavailableError, TlsError } from '../../src/model/errors.js';
import { ManagementClient } from '../../src/rabbit/management-client.js';
import { ensureBrokerTls, type BrokerTls } from '../support/broker-tls.js';
import { createTestNamespace, loadKubeConfig } from '../support/kube.js';
import { batchClient, condition, startTestOperator, type TestOperator } from '../support/operator.js';
import { createTestVhost, deleteQueueByHand, getQueue, messageCount, mgmt } from '../support/rabbit.js';
import { eventually } from '../support/wait.js';

const USER = 'rabbitbatch-tls';
const PASSWORD = 'Tls-pl4nted-s3cret-7d1e';
const credentials = { username: USER, password: PASSWORD };
// The broker sends its CA along with its certificate (cacertfile), so Node usually says
// SELF_SIGNED_CERT_IN_CHAIN; without the CA in the chain it says UNABLE_TO_VERIFY_LEAF_SIGNATURE.
const NOT_SIGNED_BY_GIVEN_CA = /^TLS: the server certificate of (https|amqps):\/\/127\.0\.0\.1:(15671|5671) could not be verified: it is not signed by the CA in ca\.crt \/ RABBITMQ_CA_FILE \/ --ca-file \((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)\)$/;
const NOT_SIGNED_BY_SYSTEM_ROOTS = /^TLS: the server certificate of (https|amqps):\/\/127\.0\.0\.1:(15671|5671) could not be verified: it is not signed by a CA of the system roots \(no CA bundle given: put the broker's CA in ca\.crt \/ RABBITMQ_CA_FILE \/ --ca-file\) \((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)\)$/;

let tls: BrokerTls;
let vh: { name: string; cleanup: () => Promise<void> };

beforeAll(async () => {
  tls = await ensureBrokerTls();
  vh = await createTestVhost('tls');
  await mgmt(`/api/users/${USER}`, { method: 'PUT', body: { password: PASSWORD, tags: 'management' } });
  await mgmt(`/api/permissions/${encodeURIComponent(vh.name)}/${USER}`, { method: 'PUT', body: { configure: '.*', write: '.*', read: '.*' } });
});

afterAll(async () => {
  await mgmt(`/api/users/${USER}`, { method: 'DELETE' });
  await vh?.cleanup();
  await tls?.restore(); // the machine's broker without the TLS listeners again, as found
});

describe('management API over https', () => {
  it('with the CA from ca.crt: declares a queue and reads it back', async () => {
    const api = new ManagementClient({ url: tls.managementUrl, ...credentials, ca: tls.ca, warm: false });
    try {
      await api.putQueue(vh.name, queueSchema.parse({ name: 'tls.mgmt.q', arguments: { 'x-max-length': 7 } }));
      expect(await api.getQueue(vh.name, 'tls.mgmt.q')).toMatchObject({ name: 'tls.mgmt.q', durable: true, arguments: { 'x-max-length': 7 } });
      expect(api.endpoint).toBe('https://127.0.0.1:15671');
    } finally {
      await api.close();
    }
    expect(await getQueue(vh.name, 'tls.mgmt.q')).toMatchObject({ arguments: { 'x-max-length': 7 } }); // really in RabbitMQ
  });

  it('with the wrong CA, or none (system roots): fails at once saying the certificate could not be verified, every time', async () => {
    for (const [ca, expected] of [[tls.wrongCa, NOT_SIGNED_BY_GIVEN_CA], [undefined, NOT_SIGNED_BY_SYSTEM_ROOTS]] as const) {
      const api = new ManagementClient({ url: tls.managementUrl, ...credentials, ...(ca ? { ca } : {}), warm: false });
      try {
        // More failures than open the circuit breaker (5): a TLS refusal is neither retried nor
        // counted, so the sixth still says what is wrong instead of "circuit open".
        for (let i = 1; i <= 6; i++) {
          const err = await api.putQueue(vh.name, queueSchema.parse({ name: 'tls.never' })).then(() => undefined, (e: unknown) => e);
          expect(err).toBeInstanceOf(TlsError);
          expect((err as Error).message).toMatch(expected);
          expect((err as Error).message).not.toContain(PASSWORD);
        }
        expect(api.poolStats().requests).toBe(6); // one attempt per call: no retry
        expect(api.breakerState).toBe('0'); // cockatiel's CircuitState.Closed
      } finally {
        await api.close();
      }
    }
    expect(await getQueue(vh.name, 'tls.never')).toBeUndefined();
  });
});

describe('AMQP over amqps', () => {
  it('with the CA: the connection and the confirm-channel pool declare, publish and are TLS on the broker', async () => {
    const connectionName = `rabbitbatch-tls-test-${process.pid}`;
    const connection = new AmqpConnection({ url: tls.amqpsUrl(vh.name, credentials), ca: tls.ca, connectionName });
    const pool = new ChannelPool<ConfirmChannel>({ connection, size: 2, confirm: true, acquireTimeoutMs: 5_000 });
    try {
      await pool.use(async (ch) => {
        await ch.assertQueue('tls.amqp.q', { durable: true });
        ch.sendToQueue('tls.amqp.q', Buffer.from('over tls'), { persistent: true });
        await ch.waitForConfirms();
      });
      expect(await messageCount(vh.name, 'tls.amqp.q')).toBe(1);
      // The broker's own view: this connection came in over TLS (connection stats appear after a few seconds).
      await eventually(async () => {
        const { json } = await mgmt('/api/connections?columns=client_properties.connection_name,ssl,port');
        const ours = (json as { client_properties?: { connection_name?: string }; ssl: boolean; port: number }[]).find((c) => c.client_properties?.connection_name === connectionName);
        expect(ours).toMatchObject({ ssl: true, port: 5671 });
      });
    } finally {
      await pool.close();
      await connection.close();
    }
  });

  it('with the wrong CA, or none: the pool has no channel and says the certificate could not be verified', async () => {
    for (const [ca, expected] of [[tls.wrongCa, NOT_SIGNED_BY_GIVEN_CA], [undefined, NOT_SIGNED_BY_SYSTEM_ROOTS]] as const) {
      const connection = new AmqpConnection({ url: tls.amqpsUrl(vh.name, credentials), ...(ca ? { ca } : {}) });
      const retries: unknown[] = [];
      connection.on('retry', (err: unknown) => retries.push(err));
      const pool = new ChannelPool({ connection, size: 1, acquireTimeoutMs: 1_500 });
      try {
        const err = await pool.acquire().then(() => undefined, (e: unknown) => e);
        expect(err).toBeInstanceOf(BrokerUnavailableError);
        expect((err as Error).message).toMatch(/^could not open an AMQP channel within 1500 ms: the connection to RabbitMQ is down or refuses channels \(last connection error: TLS: /);
        expect(connection.lastError).toBeInstanceOf(TlsError);
        expect(connection.lastError?.message).toMatch(expected);
        expect(retries.length).toBeGreaterThan(0);
        expect(retries.every((r) => r instanceof TlsError)).toBe(true);
        for (const text of [(err as Error).message, ...retries.map((r) => (r as Error).message)]) expect(text).not.toContain(PASSWORD);
      } finally {
        // Connection first: the pool's close waits for the channel it is still trying to open,
        // which gives up only once the connection is closed.
        await connection.close();
        await pool.close();
      }
    }
  });
});

describe('the CLI over TLS', () => {
  const ROOT = new URL('../../', import.meta.url).pathname;
  const dir = mkdtempSync(join(tmpdir(), 'rabbitbatch-tls-cli-'));
  const cli = (args: string[]) => {
    const res = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, RABBITMQ_USERNAME: USER, RABBITMQ_PASSWORD: PASSWORD, RABBITMQ_CA_FILE: '' },
    });
    return { code: res.status, out: res.stdout, err: res.stderr };
  };

  it('queue create --url https://... --ca-file: works with the CA, exits 2 with the reason with the wrong one', async () => {
    writeFileSync(join(dir, 'queues.json'), JSON.stringify([{ name: 'tls.cli.q' }]));
    const base = ['queue', 'create', '--batch', '--file', join(dir, 'queues.json'), '--vhost', vh.name, '--url', tls.managementUrl, '--audit-log', join(dir, 'audit.log')];
    const wrong = cli([...base, '--ca-file', tls.wrongCaFile]);
    expect(wrong.code, wrong.err).toBe(2);
    expect(wrong.err).toContain('TLS: the server certificate of https://127.0.0.1:15671 could not be verified: it is not signed by the CA in ca.crt');
    expect(wrong.err + wrong.out).not.toContain(PASSWORD);
    expect(await getQueue(vh.name, 'tls.cli.q')).toBeUndefined();
    const right = cli([...base, '--ca-file', tls.caFile]);
    expect(right.code, right.err).toBe(0);
    expect(await getQueue(vh.name, 'tls.cli.q')).toBeDefined();
  });

  it('publish --amqp-url amqps://... --ca-file: every message confirmed', async () => {
    writeFileSync(join(dir, 'bodies.txt'), 'one\ntwo\nthree\n');
    const res = cli(['publish', '--file', join(dir, 'bodies.txt'), '--raw', '--routing-key', 'tls.cli.q', '--vhost', vh.name, '--amqp-url', `amqps://127.0.0.1:5671`, '--ca-file', tls.caFile]);
    expect(res.code, res.err).toBe(0);
    expect(res.err).toContain('confirmed 3');
    expect(await messageCount(vh.name, 'tls.cli.q')).toBe(3);
  });
});

describe('the operator over TLS', () => {
  let ns: { name: string; cleanup: () => Promise<void> };
  let operator: TestOperator;
  let batches: ReturnType<typeof batchClient>;
  const core = () => loadKubeConfig().makeApiClient(CoreV1Api);
  const secret = (name: string, ca: string) => ({ metadata: { name }, stringData: { uri: tls.managementUrl, username: USER, password: PASSWORD, 'ca.crt': ca } });

  beforeAll(async () => {
    ns = await createTestNamespace('tls');
    await core().createNamespacedSecret({ namespace: ns.name, body: secret('rabbit-tls', tls.ca) });
    await core().createNamespacedSecret({ namespace: ns.name, body: secret('rabbit-wrong-ca', tls.wrongCa) });
    // The default connection over TLS as well: readiness needs the management API over https and
    // the event stream subscribed over amqps, both verified against RABBITMQ_CA_FILE.
    operator = await startTestOperator(ns.name, { RABBITMQ_URL: tls.managementUrl, RABBITMQ_CA_FILE: tls.caFile, RABBITMQ_AMQP_URL: 'amqps://127.0.0.1:5671' });
    batches = batchClient(ns.name);
  });

  afterAll(async () => {
    await operator?.stop();
    await ns?.cleanup();
  });

  it('applies batches through a TLS connection Secret and the TLS default connection; drift comes back over the amqps event stream', async () => {
    await batches.create('through-secret', { vhost: vh.name, rabbitmq: { connectionSecret: { name: 'rabbit-tls' } }, queues: [{ name: 'tls.secret.q' }] });
    await batches.create('through-default', { vhost: vh.name, deletionPolicy: 'Delete', queues: [{ name: 'tls.default.q' }] });
    for (const name of ['through-secret', 'through-default']) await batches.waitFor(name, (b) => condition(b, 'Ready')?.status === 'True');
    expect(await getQueue(vh.name, 'tls.secret.q')).toBeDefined();
    expect(await getQueue(vh.name, 'tls.default.q')).toBeDefined();
    // The Secret's endpoint has a client (and a breaker) of its own in the operator.
    expect(await (await fetch(`http://${operator.metricsAddress}/metrics`)).text()).toContain('rabbitbatch_circuit_breaker_state{endpoint="https://127.0.0.1:15671"}');

    await deleteQueueByHand(vh.name, 'tls.default.q');
    await eventually(async () => expect(await getQueue(vh.name, 'tls.default.q')).toBeDefined(), { timeoutMs: 15_000, intervalMs: 200 });
  });

  it('reports TLSError, saying the certificate is not signed by ca.crt, when the Secret holds the wrong CA; a fixed Secret is used next time', async () => {
    await batches.create('wrong-ca', { vhost: vh.name, rabbitmq: { connectionSecret: { name: 'rabbit-wrong-ca' } }, queues: [{ name: 'tls.wrong.q' }] });
    const b = await batches.waitFor('wrong-ca', (b) => condition(b, 'Degraded')?.reason === 'TLSError');
    expect(condition(b, 'Ready')).toMatchObject({ status: 'False', reason: 'TLSError' });
    expect(condition(b, 'Degraded')).toMatchObject({ status: 'True', reason: 'TLSError' });
    expect(condition(b, 'Ready')?.message).toMatch(NOT_SIGNED_BY_GIVEN_CA);
    expect(await getQueue(vh.name, 'tls.wrong.q')).toBeUndefined();
    expect(JSON.stringify(b.status)).not.toContain(PASSWORD);
    expect(operator.logs.join('\n')).not.toContain(PASSWORD);

    // The Secret is read on every reconcile (and a new CA means a new client): fix it, touch the spec.
    await core().replaceNamespacedSecret({ name: 'rabbit-wrong-ca', namespace: ns.name, body: secret('rabbit-wrong-ca', tls.ca) });
    await batches.setSpec('wrong-ca', { vhost: vh.name, rabbitmq: { connectionSecret: { name: 'rabbit-wrong-ca' } }, queues: [{ name: 'tls.wrong.q' }, { name: 'tls.fixed.q' }] });
    await batches.waitFor('wrong-ca', (b) => condition(b, 'Ready')?.status === 'True');
    expect(await getQueue(vh.name, 'tls.fixed.q')).toBeDefined();
  });
});
