/**
 * Records Kubernetes Events (core/v1) about objects, as client-go's `EventRecorder` does,
 * including its aggregation: the same object, type, reason and message again within the
 * window patches `count` and `lastTimestamp` of the existing Event instead of creating one
 * more, so a retry loop shows as one Event with a count, not hundreds.
 *
 * Guarantees: `record()` never throws and never rejects; a failed write is logged. Events about
 * one object+reason+message are written one after another (a repeat waits for the first
 * create), so aggregation also holds for concurrent calls.
 *
 * Failure modes: the apiserver is down → the Event is lost (logged); the aggregated Event was
 * deleted (Events expire after an hour by default) → a new one is created. The recent-events
 * cache is in memory: after a restart the first repeat creates a new Event.
 */
import { hostname } from 'node:os';
import type { CoreV1Event } from '@kubernetes/client-node';
import pino, { type Logger } from 'pino';
import type { KubeAccess } from './api-request.js';
import { eventApi } from './core-apis.js';
import { apiErrorMessage, isNotFound } from './custom-object.js';
import type { KubeObject } from './store.js';

export type EventType = 'Normal' | 'Warning';

export interface EventRecorderOptions {
  /** Connection and credentials. Required. */
  kubeConfig: KubeAccess;
  /** `source.component` and `reportingComponent` of every Event. Defaults to 'rabbitbatch'. */
  component?: string;
  /** `source.host` and `reportingInstance` (e.g. the pod name). Defaults to the host name. */
  instance?: string;
  /** Repeats within this window are aggregated into one Event. Defaults to 600000 (10 minutes). */
  aggregationWindowMs?: number;
  /** How many distinct recent Events are remembered for aggregation (least recently used are forgotten). Defaults to 1000. */
  cacheSize?: number;
  /** Where failed writes are logged. Defaults to a silent logger. */
  logger?: Logger;
  /** Clock, replaceable in tests. Defaults to `() => new Date()`. */
  now?: () => Date;
}

/** Longer messages are cut, as client-go does. */
const MAX_MESSAGE_LENGTH = 1024;

interface Recent {
  name: string;
  namespace: string;
  count: number;
  lastSeenMs: number;
}

export class EventRecorder {
  readonly #api: ReturnType<typeof eventApi>;
  readonly #component: string;
  readonly #instance: string;
  readonly #windowMs: number;
  readonly #cacheSize: number;
  readonly #log: Logger;
  readonly #now: () => Date;
  /** Insertion-ordered: the first entry is the least recently used. */
  readonly #recent = new Map<string, Recent>();
  /** The last write per aggregation key, so repeats queue behind it. */
  readonly #chains = new Map<string, Promise<void>>();
  #seq = 0;

  constructor(options: EventRecorderOptions) {
    this.#api = eventApi(options.kubeConfig);
    this.#component = options.component ?? 'rabbitbatch';
    this.#instance = options.instance ?? hostname();
    this.#windowMs = options.aggregationWindowMs ?? 600_000;
    this.#cacheSize = options.cacheSize ?? 1000;
    this.#log = options.logger ?? pino({ enabled: false });
    this.#now = options.now ?? (() => new Date());
  }

  /** Records an Event about `obj`. Resolves when written (or failed and logged); never rejects. */
  record(obj: KubeObject, type: EventType, reason: string, message: string): Promise<void> {
    const text = message.length > MAX_MESSAGE_LENGTH ? `${message.slice(0, MAX_MESSAGE_LENGTH - 3)}...` : message;
    const meta = obj.metadata ?? {};
    const key = JSON.stringify([obj.apiVersion, obj.kind, meta.namespace, meta.name, meta.uid, type, reason, text]);
    const previous = this.#chains.get(key) ?? Promise.resolve();
    const next = previous.then(() => this.#write(key, obj, type, reason, text));
    this.#chains.set(key, next);
    void next.then(() => {
      if (this.#chains.get(key) === next) this.#chains.delete(key);
    });
    return next;
  }

  /** Waits for every Event write started so far. */
  async flush(): Promise<void> {
    await Promise.all([...this.#chains.values()]);
  }

  async #write(key: string, obj: KubeObject, type: EventType, reason: string, message: string): Promise<void> {
    const now = this.#now();
    const recent = this.#recent.get(key);
    try {
      if (recent && now.getTime() - recent.lastSeenMs < this.#windowMs) {
        try {
          await this.#api.patch(recent.namespace, recent.name, { count: recent.count + 1, lastTimestamp: now.toISOString() });
          recent.count += 1;
          recent.lastSeenMs = now.getTime();
          this.#remember(key, recent);
          return;
        } catch (err) {
          // The Event expired or was deleted: start a new one.
          if (!isNotFound(err)) throw err;
        }
      }
      const created = await this.#api.create(this.#namespaceOf(obj), this.#newEvent(obj, type, reason, message, now));
      this.#remember(key, { name: created.metadata.name ?? '', namespace: created.metadata.namespace ?? this.#namespaceOf(obj), count: 1, lastSeenMs: now.getTime() });
    } catch (err) {
      this.#log.warn({ reason, object: `${obj.kind}/${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`, error: apiErrorMessage(err) }, 'could not record Kubernetes Event');
    }
  }

  #namespaceOf(obj: KubeObject): string {
    // Events about cluster-scoped objects go to `default`, as kubectl looks for them there.
    return obj.metadata?.namespace || 'default';
  }

  #newEvent(obj: KubeObject, type: EventType, reason: string, message: string, now: Date): CoreV1Event {
    const meta = obj.metadata ?? {};
    const objectName = meta.name ?? 'unknown';
    // client-go names Events `<object>.<unix nanoseconds in hex>`; a sequence number keeps
    // two Events within one millisecond apart.
    const nanos = BigInt(now.getTime()) * 1_000_000n + BigInt(this.#seq++ % 1_000_000);
    return {
      metadata: { name: `${objectName}.${nanos.toString(16)}`, namespace: this.#namespaceOf(obj) },
      involvedObject: { apiVersion: obj.apiVersion, kind: obj.kind, name: meta.name, namespace: meta.namespace, uid: meta.uid, resourceVersion: meta.resourceVersion },
      reason,
      message,
      type,
      count: 1,
      firstTimestamp: now,
      lastTimestamp: now,
      source: { component: this.#component, host: this.#instance },
      reportingComponent: this.#component,
      reportingInstance: this.#instance,
    };
  }

  #remember(key: string, recent: Recent): void {
    this.#recent.delete(key);
    this.#recent.set(key, recent);
    while (this.#recent.size > this.#cacheSize) {
      const oldest = this.#recent.keys().next().value;
      if (oldest === undefined) break;
      this.#recent.delete(oldest);
    }
  }
}
