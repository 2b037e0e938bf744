/**
 * RabbitMQ refused the credentials (401/403), at whatever step: reported as `Unauthorized`
 * naming where the credentials come from, so the reader knows which Secret to fix.
 */
import type { RabbitQueueBatch } from '../api/schema.js';
import type { ExecutionResult } from '../batch/execute.js';

/** Where a batch's RabbitMQ credentials come from, in words. */
export function credentialsOf(batch: RabbitQueueBatch): string {
  const secret = batch.spec.rabbitmq?.connectionSecret?.name;
  return secret
    ? `the credentials of Secret ${batch.metadata.namespace}/${secret} (spec.rabbitmq.connectionSecret)`
    : "the operator's default credentials (RABBITMQ_USERNAME / RABBITMQ_PASSWORD)";
}

export function unauthorizedMessage(batch: RabbitQueueBatch, endpoint: string, vhost: string, status: number, reason: string): string {
  return `RabbitMQ at ${endpoint} refused ${credentialsOf(batch)} (${status} ${reason}); the user needs the "management" tag and permissions on vhost "${vhost}"; a change of the Secret is picked up at once`;
}

/** The refusal that ended a run, if its first failure was one. */
export function refusalOf(result: ExecutionResult): { status: number; reason: string } | undefined {
  const f = result.failure;
  // classify() makes a 401/403 the `config` kind: the one answer that is about the credentials.
  if (!f || f.kind !== 'config' || f.status === undefined) return undefined;
  return { status: f.status, reason: `${f.resource}: ${f.error.replace(/^\d{3} /, '')}` };
}
