/**
 * The few API-server calls the operator makes, as plain HTTP through undici, on any
 * {@link KubeAccess}: the operator's own light kubeconfig (./light-kubeconfig.ts) or a
 * `@kubernetes/client-node` `KubeConfig` (tests, exotic kubeconfigs), which has the same shape.
 *
 * Why not client-node's generated clients: importing them loads every model and API class of
 * Kubernetes (~80 MB of RSS for the operator, measured in bench/memory.ts), for the half-dozen
 * calls below. See docs/adr/0019-own-api-calls-for-the-operator.md.
 *
 * Guarantees
 * - Failed calls throw {@link ApiError} with the HTTP status in `code` and the raw response text
 *   in `body`, as client-node's `ApiException` does, so `apiStatusCode`/`apiErrorMessage`
 *   (./custom-object.ts) read both.
 * - Bodies are plain JSON both ways: timestamps arrive as strings, never `Date`s.
 * - Every response body is consumed, so the connection goes back to the pool.
 */
import { request, type Dispatcher } from 'undici';

/** What a request needs from a kubeconfig: where the server is, and the auth and TLS of one request. */
export interface KubeAccess {
  getCurrentCluster(): { server: string } | null;
  /** Sets the auth headers (and the dispatcher carrying TLS) of one request. */
  applySecurityAuthentication(context: RequestSetup): Promise<void>;
}

/** The part of client-node's `RequestContext` that `applySecurityAuthentication` writes to. */
export interface RequestSetup {
  setHeaderParam(key: string, value: string): void;
  setDispatcher(dispatcher: Dispatcher): void;
}

export const MERGE_PATCH = 'application/merge-patch+json';
export const JSON_PATCH = 'application/json-patch+json';

/** An API call that got a status other than 2xx. */
export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly body: string,
    what: string,
  ) {
    super(`${what}: HTTP ${code}: ${body.slice(0, 200)}`);
    this.name = 'ApiError';
  }
}

/** Headers and dispatcher for one request, as the kubeconfig computes them. */
export async function prepareRequest(kc: KubeAccess, url: string): Promise<{ url: URL; headers: Record<string, string>; dispatcher: Dispatcher | undefined }> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig has no current cluster');
  const headers: Record<string, string> = {};
  let dispatcher: Dispatcher | undefined;
  await kc.applySecurityAuthentication({ setHeaderParam: (k, v) => (headers[k] = v), setDispatcher: (d) => (dispatcher = d) });
  return { url: new URL(cluster.server + url), headers, dispatcher };
}

export interface CallOptions {
  query?: Record<string, string | undefined>;
  body?: unknown;
  /** Content type of the body. Defaults to application/json. */
  contentType?: string;
}

/** One call; resolves with the parsed JSON answer. */
export async function kubeCall<T = unknown>(kc: KubeAccess, method: Dispatcher.HttpMethod, path: string, o: CallOptions = {}): Promise<T> {
  const { url, headers, dispatcher } = await prepareRequest(kc, path);
  for (const [k, v] of Object.entries(o.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
  headers.accept = 'application/json';
  if (o.body !== undefined) headers['content-type'] = o.contentType ?? 'application/json';
  const res = await request(url, { method, headers, body: o.body === undefined ? undefined : JSON.stringify(o.body), ...(dispatcher ? { dispatcher } : {}) });
  const text = await res.body.text();
  if (res.statusCode < 200 || res.statusCode >= 300) throw new ApiError(res.statusCode, text, `${method} ${path}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

const seg = encodeURIComponent;

/** Path of a custom object (namespace '' for cluster-scoped), optionally of a subresource. */
export function customObjectPath(r: { group: string; version: string; plural: string; namespace: string; name: string }, sub = ''): string {
  const ns = r.namespace ? `/namespaces/${seg(r.namespace)}` : '';
  return `/apis/${r.group}/${r.version}${ns}/${r.plural}/${seg(r.name)}${sub ? `/${sub}` : ''}`;
}

export const namespacedPath = (api: string, namespace: string, plural: string, name?: string) => `${api}/namespaces/${seg(namespace)}/${plural}${name === undefined ? '' : `/${seg(name)}`}`;
