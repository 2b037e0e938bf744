import type { Registry } from 'prom-client';

/** The metric `name` already on `registry`, or a new one: several pools or controllers may share a registry. */
export function getOrCreate<M>(registry: Registry, name: string, create: () => M): M {
  return (registry.getSingleMetric(name) as M | undefined) ?? create();
}
