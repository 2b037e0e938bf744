/** A second cache level shared by replicas (Redis), and the channel that carries invalidations. */
export interface SharedCache {
  get(key: string): Promise<unknown>;
  /** `ttlMs` 0 keeps the value until it is invalidated. */
  set(key: string, value: unknown, ttlMs: number): Promise<void>;
  /** Deletes the keys and tells every other replica to drop them from its own L1. */
  invalidate(keys: string[]): Promise<void>;
  onInvalidate(handler: (keys: string[]) => void): void;
  close(): Promise<void>;
}
