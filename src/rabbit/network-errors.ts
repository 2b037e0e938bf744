/**
 * Why a connection to RabbitMQ failed, in words: "connection refused", "host not found", "timed
 * out", "access refused". Node and amqplib give terse codes (`ECONNREFUSED`, `ENOTFOUND`, a
 * `403 (ACCESS-REFUSED)` handshake text); people and scripts reading a CLI's stderr need the cause,
 * with the code kept at the end for searching.
 */

const BY_CODE: Record<string, string> = {
  ECONNREFUSED: 'connection refused (nothing listens on that port)',
  ENOTFOUND: 'host not found (DNS lookup failed)',
  EAI_AGAIN: 'host not found (DNS lookup failed, temporarily)',
  EAI_NONAME: 'host not found (DNS lookup failed)',
  ETIMEDOUT: 'connect timed out',
  UND_ERR_CONNECT_TIMEOUT: 'connect timed out',
  UND_ERR_HEADERS_TIMEOUT: 'no answer within the header timeout',
  UND_ERR_BODY_TIMEOUT: 'the answer stalled (body timeout)',
  ECONNRESET: 'connection reset by the peer',
  EPIPE: 'connection closed by the peer',
  UND_ERR_SOCKET: 'connection closed by the peer',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
};

/** The first string `code` on the error or its causes (undici and AggregateError nest them). */
export function networkCode(err: unknown): string | undefined {
  const seen = new Set<unknown>();
  const queue: unknown[] = [err];
  while (queue.length > 0) {
    const e = queue.shift();
    if (!e || typeof e !== 'object' || seen.has(e)) continue;
    seen.add(e);
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code in BY_CODE && code !== 'UND_ERR_SOCKET') return code;
    queue.push((e as { cause?: unknown }).cause, ...((e as { errors?: unknown[] }).errors ?? []));
  }
  return (err as { code?: unknown } | undefined)?.code === 'UND_ERR_SOCKET' ? 'UND_ERR_SOCKET' : undefined;
}

/** "connection refused (nothing listens on that port) (ECONNREFUSED)", or undefined for an unknown code. */
export function describeCode(code: string): string | undefined {
  const words = BY_CODE[code];
  return words ? `${words} (${code})` : undefined;
}

/**
 * The cause of a failed connect, in words, or the error's own message when it is none of the
 * known kinds. An AMQP login refusal (amqplib: `Handshake terminated by server: 403
 * (ACCESS-REFUSED)`) says the credentials were refused.
 */
export function describeConnectFailure(err: unknown): string {
  const code = networkCode(err);
  if (code) return describeCode(code)!;
  const message = err instanceof Error ? err.message : String(err);
  if (/ACCESS[-_]REFUSED|403/.test(message) && /handshake|login|access/i.test(message)) return `access refused: RabbitMQ did not accept the username and password (${message})`;
  if (/NOT[-_]ALLOWED|vhost/i.test(message) && /530/.test(message)) return `the vhost does not exist or the user has no access to it (${message})`;
  return message;
}
