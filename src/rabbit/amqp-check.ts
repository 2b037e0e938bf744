/**
 * Asks a connection's AMQP addresses, once, whether one answers and which cluster it belongs to
 * (the `cluster_name` server property of the AMQP handshake). The connection resolver refuses a
 * Secret whose `amqpUri` no node answers, or whose answer is another broker than its `uri`'s.
 */
import type { ChannelModel } from 'amqplib';
import { AmqpConnection } from './amqp-connection.js';

export interface AmqpTarget {
  /** `amqp://` / `amqps://` node addresses, without credentials. */
  urls: string[];
  username: string;
  password: string;
  ca?: string;
}

/** The target as one `AmqpConnection` URL: every node with the credentials, vhost `/` (where the event exchange lives). */
export function amqpConnectionUrl(target: AmqpTarget): string {
  return target.urls
    .map((u) => {
      const url = new URL(u);
      url.username = encodeURIComponent(target.username);
      url.password = encodeURIComponent(target.password);
      url.pathname = '/';
      return url.href;
    })
    .join(',');
}

/** Connects once (every node in turn, no retries), reads the cluster name, closes. Rejects with the last node's error. */
export async function amqpClusterName(target: AmqpTarget): Promise<string> {
  const connection = new AmqpConnection({ url: amqpConnectionUrl(target), connectionName: 'rabbitbatch-check', retryFirstConnect: false, ...(target.ca ? { ca: target.ca } : {}) });
  try {
    const conn: ChannelModel = await connection.connection();
    const props = (conn.connection as unknown as { serverProperties?: Record<string, unknown> }).serverProperties ?? {};
    const name = props.cluster_name;
    return Buffer.isBuffer(name) ? name.toString('utf8') : String(name ?? '');
  } finally {
    await connection.close();
  }
}
