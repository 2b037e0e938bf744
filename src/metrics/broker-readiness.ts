/**
 * The `rabbitmq` readiness check: the default connection's management API answers. A broker
 * that is missing or misaddressed must not be a silent stall of `kubectl rollout status`: the
 * check's failure names the address and the cause (so `/readyz` says it), and the operator logs
 * a warning when the broker stops answering and a line when it answers again.
 */
import type { Logger } from 'pino';
import type { ManagementApi } from '../model/broker.js';
import { BrokerUnavailableError, ManagementError } from '../model/errors.js';

export interface BrokerReadiness {
  name: 'rabbitmq';
  check: () => Promise<void>;
}

export function brokerReadiness(api: () => ManagementApi, log: Logger): BrokerReadiness {
  let answering: boolean | undefined;
  return {
    name: 'rabbitmq',
    check: async () => {
      const client = api();
      try {
        await client.vhostExists('/');
      } catch (err) {
        const why = causeOf(err);
        const message = err instanceof ManagementError
          ? `RabbitMQ management API at ${client.endpoint} (RABBITMQ_URL) refused the default credentials (RABBITMQ_USERNAME / RABBITMQ_PASSWORD): ${why}`
          : `RabbitMQ management API at ${client.endpoint} (RABBITMQ_URL) does not answer: ${why}`;
        if (answering !== false) log.warn({ endpoint: client.endpoint, cause: why }, `${message}; the operator stays unready until this is fixed (RABBITMQ_URL: your broker's management API)`);
        answering = false;
        throw new Error(message, { cause: err });
      }
      if (answering === false) log.info({ endpoint: client.endpoint }, 'RabbitMQ management API answers again');
      answering = true;
    },
  };
}

/** The innermost broker error (under "circuit open"), or a refusal's status and reason. */
function causeOf(err: unknown): string {
  if (err instanceof ManagementError) return `${err.status} ${err.reason}`;
  let e = err;
  while (e instanceof BrokerUnavailableError && e.cause instanceof BrokerUnavailableError) e = e.cause;
  return e instanceof Error ? e.message : String(e);
}
