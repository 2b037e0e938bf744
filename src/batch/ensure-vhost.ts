/**
 * `vhostPolicy: Create`: the operator creates a missing vhost. RabbitMQ gives the user who creates
 * a vhost over the management API full permissions on it, so the batch can go on at once. Only
 * an `administrator` may create vhosts: a refusal says so, with the way out. rabbitbatch never
 * deletes a vhost (the vhost may hold what other batches and applications put there).
 */
import type { ManagementApi } from '../model/broker.js';
import { ConfigError, ManagementError } from '../model/errors.js';
import { Reason } from '../model/reason.js';

export async function createVhost(api: ManagementApi, vhost: string): Promise<void> {
  try {
    await api.putVhost(vhost);
  } catch (err) {
    if (err instanceof ManagementError && (err.status === 401 || err.status === 403)) {
      throw new ConfigError(
        Reason.VhostNotFound,
        `vhost "${vhost}" does not exist and RabbitMQ refused to create it (${err.status} ${err.reason}): spec.vhostPolicy: Create needs a user with the "administrator" tag; create the vhost by hand or give the user that tag`,
      );
    }
    throw err;
  }
}
