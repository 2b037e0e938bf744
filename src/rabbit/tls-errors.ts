/**
 * TLS failures to RabbitMQ (management API over `https://`, AMQP over `amqps://`), told apart
 * from an unreachable broker and said in words a person can act on.
 *
 * Guarantees
 * - `tlsFailure` recognises Node's certificate-verification codes (`UNABLE_TO_VERIFY_LEAF_SIGNATURE`,
 *   `SELF_SIGNED_CERT_IN_CHAIN`, `DEPTH_ZERO_SELF_SIGNED_CERT`, ...), expiry, a host-name mismatch
 *   and handshake failures; the message names the endpoint, what is wrong and where the CA comes
 *   from (ca.crt / RABBITMQ_CA_FILE / --ca-file), and keeps Node's code at the end for searching.
 * - Messages carry the endpoint as given (callers pass it without credentials), never a password.
 * - `TlsError` is classified `config` with `noAnswer` (model/errors.ts): a run stops as for an
 *   unreachable broker, but retrying cannot fix it, so the resilience layer neither retries it nor
 *   counts it towards the circuit breaker, and the error stays visible instead of turning into
 *   "circuit open".
 */
import { TlsError } from '../model/errors.js';

const NOT_SIGNED_BY_A_TRUSTED_CA = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
]);
const NOT_VALID_NOW = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);

export interface TlsContext {
  /** Where we connected, without credentials, e.g. `https://127.0.0.1:15671`. */
  endpoint: string;
  /** Was a CA bundle given (otherwise Node's system roots were used)? */
  caGiven: boolean;
}

/** A `TlsError` when `err` (or its cause) is a TLS failure; undefined otherwise. */
export function tlsFailure(err: unknown, context: TlsContext): TlsError | undefined {
  const code = tlsCode(err);
  if (!code) return undefined;
  const cert = `TLS: the server certificate of ${context.endpoint} could not be verified`;
  let message: string;
  if (NOT_SIGNED_BY_A_TRUSTED_CA.has(code)) {
    message = context.caGiven
      ? `${cert}: it is not signed by the CA in ca.crt / RABBITMQ_CA_FILE / --ca-file`
      : `${cert}: it is not signed by a CA of the system roots (no CA bundle given: put the broker's CA in ca.crt / RABBITMQ_CA_FILE / --ca-file)`;
  } else if (NOT_VALID_NOW.has(code)) {
    message = `${cert}: it has expired or is not valid yet`;
  } else if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    message = `${cert}: it does not name the host of ${context.endpoint} (subjectAltName)`;
  } else {
    message = `TLS: the handshake with ${context.endpoint} failed: is it a TLS port of RabbitMQ?`;
  }
  return new TlsError(`${message} (${code})`, code, { cause: err });
}

/** Node's TLS code on the error or, as undici wraps socket errors, on its cause. */
function tlsCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 3; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    // A handshake that timed out is an overloaded or stopping broker, not a TLS problem: retried as usual.
    if (typeof code !== 'string' || code === 'ERR_TLS_HANDSHAKE_TIMEOUT') continue;
    if (NOT_SIGNED_BY_A_TRUSTED_CA.has(code) || NOT_VALID_NOW.has(code) || code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_')) return code;
  }
  return undefined;
}
