/**
 * The failures rabbitbatch tells apart, and the one classification every layer uses: the HTTP
 * pool's and the resilience layer's retries, the executor (which failures stop a run, which are
 * worth retrying) and the reconciler (what the status says, and whether the work queue retries).
 *
 * | kind        | what it means                                       | the reconciler               |
 * |-------------|-----------------------------------------------------|------------------------------|
 * | `transient` | no answer, a 5xx, a race (404/409 while applying)   | retries with backoff         |
 * | `refused`   | RabbitMQ said no to the request itself (other 4xx)  | waits for a change or resync |
 * | `config`    | credentials, TLS, the connection Secret             | looks again every minute     |
 * | `terminal`  | the spec cannot succeed as written                  | waits for a spec change      |
 */
import { Reason, type ReasonName } from './reason.js';

/** A non-2xx answer of the management API. `reason` is RabbitMQ's own text. */
export class ManagementError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    readonly method: string,
    readonly path: string,
  ) {
    super(`${method} ${path}: ${status} ${reason}`);
    this.name = 'ManagementError';
  }
}

/** Connection refused, reset, timeout, circuit open: the broker is unreachable rather than saying no. */
export class BrokerUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BrokerUnavailableError';
  }
}

/** The server's certificate or handshake was refused: a configuration problem, not an outage (see rabbit/tls-errors.ts). */
export class TlsError extends Error {
  constructor(
    message: string,
    /** Node's code, e.g. `UNABLE_TO_VERIFY_LEAF_SIGNATURE`. */
    readonly code: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TlsError';
  }
}

/** Something a person must fix outside the spec (e.g. a missing connection Secret); `reason` is the condition reason. */
export class ConfigError extends Error {
  constructor(
    readonly reason: ReasonName,
    message: string,
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** The spec fails validation; the message names each field. */
export class InvalidSpecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidSpecError';
  }
}

export type FailureKind = 'transient' | 'refused' | 'config' | 'terminal';

export interface Classification {
  kind: FailureKind;
  /** The condition reason when this failure ends a reconcile; undefined when it has none of its own. */
  reason?: ReasonName;
  message: string;
  /** Nothing reached RabbitMQ (or it never answered): an idempotent request may be sent again, and a run stops. */
  noAnswer: boolean;
}

export function classify(err: unknown): Classification {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof InvalidSpecError) return { kind: 'terminal', reason: Reason.InvalidSpec, message, noAnswer: false };
  if (err instanceof ConfigError) return { kind: 'config', reason: err.reason, message, noAnswer: false };
  if (err instanceof TlsError) return { kind: 'config', reason: Reason.TLSError, message, noAnswer: true };
  if (err instanceof BrokerUnavailableError) return { kind: 'transient', reason: Reason.BrokerUnavailable, message, noAnswer: true };
  if (err instanceof ManagementError) {
    if (err.status === 401 || err.status === 403) return { kind: 'config', reason: Reason.Unauthorized, message, noAnswer: false };
    if (err.status >= 500) return { kind: 'transient', reason: Reason.BrokerUnavailable, message, noAnswer: false };
    // 404 (deleted meanwhile) and 409 can pass on the next try; any other 4xx is the request itself.
    if (err.status === 404 || err.status === 409) return { kind: 'transient', message, noAnswer: false };
    return { kind: 'refused', message, noAnswer: false };
  }
  return { kind: 'transient', message, noAnswer: false };
}

/** What the circuit breaker counts: the broker failing (no answer or a 5xx), not a request it refused. */
export const isBrokerFailure = (err: unknown) => {
  const c = classify(err);
  return c.kind === 'transient' && c.reason === Reason.BrokerUnavailable;
};

/** What may be sent again at once: nothing reached RabbitMQ and it is not a configuration problem. */
export const isUnreachable = (err: unknown) => {
  const c = classify(err);
  return c.kind === 'transient' && c.noAnswer;
};
