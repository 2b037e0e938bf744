/**
 * Per-endpoint resilience for the management API, with cockatiel: a circuit breaker (opens after
 * 5 consecutive unreachable/5xx answers or when more than half of the calls in 10 s fail; a probe
 * after 5 s closes it again) wrapped around a jittered retry of idempotent calls.
 *
 * Failure modes
 * - While the breaker is open, calls fail at once with `BrokerUnavailableError("circuit open")`:
 *   reconciles of batches on that endpoint are requeued with backoff instead of piling up
 *   timeouts, and their status says BrokerUnavailable.
 * - A `TlsError` (certificate not verified) is neither retried nor counted: it reaches the caller
 *   with its own message every time.
 */
import { BrokenCircuitError, CircuitState, ConsecutiveBreaker, ExponentialBackoff, circuitBreaker, handleWhen, retry, wrap, type CircuitBreakerPolicy, type IPolicy } from 'cockatiel';
import { Gauge, type Registry } from 'prom-client';
import { BrokerUnavailableError, isBrokerFailure, isUnreachable } from '../model/errors.js';

export interface ResilienceOptions {
  endpoint: string;
  /** Consecutive failures that open the breaker. Defaults to 5. */
  failureThreshold?: number;
  /** How long the breaker stays open before a probe. Defaults to 5000 ms. */
  halfOpenAfterMs?: number;
  /** Extra attempts of an idempotent call that found the broker unreachable. Defaults to 2. */
  retries?: number;
  registry?: Registry;
}

// Both predicates come from the one classification (model/errors.ts): the breaker counts the broker
// failing (no answer, a 5xx), never a request it refused or a TLS refusal (retrying cannot fix a CA,
// and counting it would hide it behind "circuit open"); the retry resends only what got no answer.

export interface Resilience {
  breaker: CircuitBreakerPolicy;
  /** Runs `fn` through the breaker (and the retry, when `idempotent`). */
  run<T>(fn: () => Promise<T>, idempotent: boolean): Promise<T>;
}

const states = new WeakMap<Registry, Map<string, CircuitBreakerPolicy>>();

export function createResilience(o: ResilienceOptions): Resilience {
  const breaker = circuitBreaker(handleWhen(isBrokerFailure), { halfOpenAfter: o.halfOpenAfterMs ?? 5_000, breaker: new ConsecutiveBreaker(o.failureThreshold ?? 5) });
  const retrying: IPolicy = retry(handleWhen(isUnreachable), { maxAttempts: o.retries ?? 2, backoff: new ExponentialBackoff({ initialDelay: 50, maxDelay: 1_000 }) });
  const idempotentPolicy = wrap(retrying, breaker);
  if (o.registry) registerBreaker(o.registry, o.endpoint, breaker);
  // The breaker's own error says nothing of the cause: keep the last failure it counted, so
  // "circuit open" always comes with what actually went wrong (refused, DNS, timeout, 5xx).
  let lastFailure: Error | undefined;
  const halfOpenAfterS = (o.halfOpenAfterMs ?? 5_000) / 1000;
  const translate = (err: unknown): never => {
    if (err instanceof BrokenCircuitError) {
      throw new BrokerUnavailableError(`RabbitMQ at ${o.endpoint} failed repeatedly${lastFailure ? ` (last error: ${lastFailure.message})` : ''}; circuit open: calls fail at once for ${halfOpenAfterS} s before one is tried again`, lastFailure ? { cause: lastFailure } : undefined);
    }
    throw err;
  };
  return {
    breaker,
    run: (fn, idempotent) => {
      const counted = () =>
        fn().catch((err: unknown) => {
          if (isBrokerFailure(err) && err instanceof Error) lastFailure = err;
          throw err;
        });
      return (idempotent ? idempotentPolicy.execute(counted) : breaker.execute(counted)).catch(translate);
    },
  };
}

function registerBreaker(registry: Registry, endpoint: string, breaker: CircuitBreakerPolicy): void {
  let all = states.get(registry);
  if (!all) states.set(registry, (all = new Map()));
  all.set(endpoint, breaker);
  const byEndpoint = all;
  if (registry.getSingleMetric('rabbitbatch_circuit_breaker_state')) return;
  new Gauge({
    name: 'rabbitbatch_circuit_breaker_state',
    help: 'Management API circuit breaker per endpoint: 0 closed, 1 open, 2 half-open.',
    labelNames: ['endpoint'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [ep, b] of byEndpoint) this.set({ endpoint: ep }, b.state === CircuitState.Closed ? 0 : b.state === CircuitState.HalfOpen ? 2 : 1);
    },
  });
}
