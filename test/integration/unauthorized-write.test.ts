/**
 * Credentials refused at a write, not at the read: the read-back can come from the cache (shared
 * per endpoint), so the first request with a wrong password may be a PUT. Against the real broker.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { specSchema, type RabbitQueueBatch } from '../../src/api/schema.js';
import { executePlan } from '../../src/batch/execute.js';
import { planBatch } from '../../src/batch/plan.js';
import { refusalOf, unauthorizedMessage } from '../../src/controllers/unauthorized.js';
import { ManagementClient } from '../../src/rabbit/management-client.js';
import { observeVhost } from '../../src/rabbit/observe.js';
import { createTestVhost, getQueue, rabbitUrl } from '../support/rabbit.js';

let vhost: string;
let cleanup: () => Promise<void>;
const right = new ManagementClient({ url: rabbitUrl(), username: 'guest', password: 'guest', warm: false });
const wrong = new ManagementClient({ url: rabbitUrl(), username: 'guest', password: 'not-it', warm: false });

beforeAll(async () => {
  ({ name: vhost, cleanup } = await createTestVhost('unauth'));
});
afterAll(async () => {
  await cleanup();
  await Promise.all([right.close(), wrong.close()]);
});

describe('a write refused with 401', () => {
  it('is recognised as a refusal of the credentials, and the message names the Secret', async () => {
    const spec = specSchema.parse({ vhost, queues: [{ name: 'unauth.q' }] });
    const plan = planBatch({ spec, observed: await observeVhost(right, vhost) });
    const result = await executePlan(plan, wrong, { mode: 'AllOrNothing' });
    const refusal = refusalOf(result);
    expect(refusal?.status).toBe(401);
    const batch = { metadata: { name: 'b', namespace: 'team-a' }, spec: { rabbitmq: { connectionSecret: { name: 'rabbit-creds' } } } } as RabbitQueueBatch;
    const message = unauthorizedMessage(batch, wrong.endpoint, vhost, refusal!.status, refusal!.reason);
    expect(message).toContain('refused the credentials of Secret team-a/rabbit-creds (spec.rabbitmq.connectionSecret) (401');
    expect(message).not.toContain('not-it');
    expect(await getQueue(vhost, 'unauth.q')).toBeUndefined();
  });
});
