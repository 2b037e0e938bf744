/**
 * The API server's view of "Ready", for the end-to-end benchmarks: one watch on the namespace's
 * RabbitQueueBatch objects (listed first, then watched from that resourceVersion), and a wait
 * that resolves at the first event after which a condition holds. Nothing is polled: the time
 * of a figure is the arrival of the watch event that made it true.
 */
import { CustomObjectsApi, Watch, type KubeConfig } from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION, type RabbitQueueBatch } from '../../src/api/schema.js';

/** What the watch knows of one object: enough to say whether its status answers its spec. */
export interface Seen {
  generation: number;
  observedGeneration: number | undefined;
  ready: boolean;
}

/** Ready, and the status is about the current spec (observedGeneration caught up). */
export const readyForSpec = (s: Seen | undefined, generation?: number): boolean =>
  s !== undefined && s.ready && s.observedGeneration !== undefined && s.observedGeneration >= (generation ?? s.generation);

export class ReadyWatch {
  readonly seen = new Map<string, Seen>();
  private waiters: { check: () => boolean; resolve: () => void }[] = [];
  private abort: AbortController | undefined;
  private failure: unknown;

  private constructor(private readonly namespace: string) {}

  static async start(kc: KubeConfig, namespace: string): Promise<ReadyWatch> {
    const w = new ReadyWatch(namespace);
    const list = (await kc.makeApiClient(CustomObjectsApi).listNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace })) as { items: RabbitQueueBatch[]; metadata: { resourceVersion: string } };
    for (const b of list.items) w.record(b);
    const watch = new Watch(kc);
    // Busy streams never sit 30 s without data, but a quiet phase may: no client-side timeout.
    (watch as unknown as { requestTimeoutMs: number }).requestTimeoutMs = 60 * 60_000;
    w.abort = await watch.watch(
      `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${PLURAL}`,
      { resourceVersion: list.metadata.resourceVersion, allowWatchBookmarks: true },
      (type, obj: RabbitQueueBatch) => {
        if (type === 'DELETED') w.seen.delete(obj.metadata.name!);
        else if (type === 'ADDED' || type === 'MODIFIED') w.record(obj);
        w.wake();
      },
      (err) => {
        if (err && w.abort) w.failure = err;
        w.wake();
      },
    );
    return w;
  }

  private record(b: RabbitQueueBatch): void {
    const ready = b.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
    this.seen.set(b.metadata.name!, { generation: b.metadata.generation ?? 0, observedGeneration: b.status?.observedGeneration, ready });
  }

  private wake(): void {
    this.waiters = this.waiters.filter((w) => {
      if (!w.check() && this.failure === undefined) return true;
      w.resolve();
      return false;
    });
  }

  /** Resolves when `check` holds after an event (or at once); throws when the watch broke or after `timeoutMs`. */
  async until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (!check()) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.waiters.push({ check, resolve })),
        new Promise<void>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not after ${timeoutMs} ms`)), timeoutMs))),
      ]).finally(() => clearTimeout(timer));
    }
    if (this.failure !== undefined) throw new Error(`${what}: the watch on ${this.namespace} broke: ${String(this.failure)}`);
  }

  stop(): void {
    const a = this.abort;
    this.abort = undefined;
    a?.abort();
  }
}
