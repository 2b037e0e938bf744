/**
 * Addressing custom objects and reading API errors, shared by the status, finalizer and event
 * helpers. Failed calls (./api-request.ts `ApiError`, or client-node's `ApiException` in tests)
 * carry the HTTP status in `code` and the raw response text in `body`.
 */

/** Where a custom object lives in the API. `namespace` is '' for cluster-scoped resources. */
export interface CustomObjectRef {
  group: string;
  version: string;
  plural: string;
  namespace: string;
  name: string;
}

/** The HTTP status of a failed API call, if it has one. */
export function apiStatusCode(err: unknown): number | undefined {
  if (err === null || typeof err !== 'object') return undefined;
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e.code === 'number') return e.code;
  if (typeof e.statusCode === 'number') return e.statusCode;
  return undefined;
}

export const isNotFound = (err: unknown): boolean => apiStatusCode(err) === 404;

/** The `message` of the Status object in a failed call's body, else its first 200 characters. */
export function apiErrorMessage(err: unknown): string {
  const body = (err as { body?: unknown } | null)?.body;
  if (typeof body === 'string') {
    try {
      const status = JSON.parse(body) as { message?: string };
      if (status.message) return status.message;
    } catch {
      // not JSON: fall through
    }
    return body.slice(0, 200);
  }
  return err instanceof Error ? err.message : String(err);
}
