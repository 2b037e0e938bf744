/**
 * A connection's AMQP addresses, where its event stream subscribes: a connection Secret's
 * `amqpUri` (one `amqp://` / `amqps://` URL, or several nodes separated by commas), or, without
 * it, one per management node of `uri`: the same host on 5672 (5671 for `https://`, with
 * `amqps://`). `RABBITMQ_AMQP_URL` is the default connection's `amqpUri`.
 */
import { nodeListProblems, splitNodeList } from './node-list.js';

export interface AmqpAddresses {
  /** Without credentials or vhost; empty when there are problems. */
  urls: string[];
  /** True when given (`amqpUri`), false when derived from the management URLs. */
  explicit: boolean;
  /** Each naming the entry by position and host (a URL may carry credentials). */
  problems: string[];
}

/** The AMQP address of a management node: its host, 5672 (or 5671 with TLS). */
export function derivedAmqpUrl(managementUrl: string): string {
  const url = new URL(managementUrl);
  // `hostname` keeps an IPv6 address's brackets.
  return url.protocol === 'https:' ? `amqps://${url.hostname}:5671` : `amqp://${url.hostname}:5672`;
}

export function amqpAddresses(managementUrls: readonly string[], amqpUri: string | undefined): AmqpAddresses {
  if (amqpUri === undefined) return { urls: managementUrls.map(derivedAmqpUrl), explicit: false, problems: [] };
  const entries = splitNodeList(amqpUri);
  const problems = nodeListProblems(entries, ['amqp:', 'amqps:'], 'one amqp:// or amqps:// URL, or several separated by commas');
  if (problems.length > 0) return { urls: [], explicit: true, problems };
  // Credentials come from the Secret's username and password; the event exchange lives in vhost "/".
  const urls = entries.map((entry) => {
    const url = new URL(entry);
    return `${url.protocol}//${url.host}`;
  });
  return { urls, explicit: true, problems };
}
