/**
 * One watch request (`?watch=true`) as a stream of `(type, object)` lines, the way
 * client-node's low-level `Watch` does it, without loading client-node's generated clients.
 * The list/watch state machine above it is ./watcher.ts.
 *
 * Guarantees
 * - `done` is called exactly once: `null` when the server ended the stream, an error otherwise
 *   (a non-200 answer carries `statusCode`; an inactivity abort is a `TimeoutError`).
 * - Aborting the returned controller ends the request and its socket's share of the pool.
 * - Lines are delivered in order, each as soon as its newline has arrived.
 *
 * Failure modes
 * - A line that is not JSON is skipped (as client-node does); the watcher's relist repairs it.
 * - No byte for `inactivityMs`: aborted with a `TimeoutError` (a half-open connection).
 */
import { STATUS_CODES } from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import { request } from 'undici';
import { prepareRequest, type KubeAccess } from './api-request.js';

export type WatchLine = (type: string, object: unknown) => void;

export interface WatchStreamOptions {
  /** Abort when no byte arrives for this long. Defaults to 30000 (client-node's default). */
  inactivityMs?: number;
}

export async function watchStream(kc: KubeAccess, path: string, params: Record<string, string | undefined>, onLine: WatchLine, done: (err: unknown) => void, o: WatchStreamOptions = {}): Promise<AbortController> {
  const { url, headers, dispatcher } = await prepareRequest(kc, path);
  url.searchParams.set('watch', 'true');
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
  const controller = new AbortController();
  const inactivityMs = o.inactivityMs ?? 30_000;
  let timer: NodeJS.Timeout | undefined;
  let finished = false;
  const finish = (err: unknown) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    controller.abort();
    done(err);
  };
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => finish(new DOMException('The operation was aborted due to timeout', 'TimeoutError')), inactivityMs);
    timer.unref();
  };
  arm();
  void (async () => {
    try {
      const res = await request(url, { method: 'GET', headers: { ...headers, accept: 'application/json' }, signal: controller.signal, ...(dispatcher ? { dispatcher } : {}) });
      if (res.statusCode !== 200) {
        await res.body.dump().catch(() => undefined);
        throw Object.assign(new Error(STATUS_CODES[res.statusCode] ?? `HTTP ${res.statusCode}`), { statusCode: res.statusCode });
      }
      arm();
      // A multi-byte character may be split across chunks.
      const decoder = new StringDecoder('utf8');
      let pending = '';
      for await (const chunk of res.body) {
        arm();
        pending += decoder.write(chunk as Buffer);
        let nl: number;
        while ((nl = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          if (finished) return;
          deliver(line, onLine);
        }
      }
      pending += decoder.end();
      if (pending && !finished) deliver(pending, onLine);
      finish(null);
    } catch (err) {
      finish(err);
    }
  })();
  return controller;
}

function deliver(line: string, onLine: WatchLine): void {
  if (!line.trim()) return;
  let event: { type?: string; object?: unknown };
  try {
    event = JSON.parse(line) as typeof event;
  } catch {
    return; // not JSON: skipped, as client-node does
  }
  onLine(event.type ?? '', event.object);
}
