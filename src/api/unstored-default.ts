/**
 * Item defaults the operator and the CLI apply when they read a spec, and the API server does
 * not store.
 *
 * A default in the CRD is written into every item of every stored object: for a 1,000-queue
 * batch the defaults of `type`, `durable`, `autoDelete`, `arguments` and `external` were 86 of
 * its 155 KB, and the API server's cost of each write (the edit, the write-ahead record, the
 * result) grows with the object, so they more than doubled the time an edit waits for
 * (docs/adr/0022-item-defaults-not-stored.md). The zod schema still applies them, so every reader
 * of a spec sees the same values; the CRD says them in each field's description, and its CEL
 * rules read an omitted field as its default. Fields that key a list-map (a binding's
 * `destinationType` and `routingKey`) keep their stored default: the API server requires one.
 */

/** The `.meta()` marker of such a default; structural.ts drops the schema's `default` where it sees it. */
export const UNSTORED_DEFAULT = 'x-rabbitbatch-unstored-default';
export const UNSTORED = { [UNSTORED_DEFAULT]: true } as const;
