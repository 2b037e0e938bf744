/**
 * The exchange and queue names a plan of `spec` with `owned` looks at in the observed state: the
 * cache's hint of which names it must know exactly before the planner runs.
 */
import { bindingId, kindOf, nameOf, parseResource, type BindingKey } from '../model/identity.js';

/**
 * Its items, the ends of its bindings, and what it owns. Undefined (every name) when it owns a
 * binding its spec no longer lists and whose identity is ambiguous (names containing `/`).
 */
export function namesLookedAt(spec: { exchanges: { name: string }[]; queues: { name: string }[]; bindings: BindingKey[] }, owned: ReadonlySet<string>): Set<string> | undefined {
  const names = new Set<string>([...spec.exchanges.map((e) => e.name), ...spec.queues.map((q) => q.name)]);
  for (const b of spec.bindings) names.add(b.source).add(b.destination);
  const listed = new Set(spec.bindings.map(bindingId));
  for (const resource of owned) {
    if (kindOf(resource) !== 'binding') names.add(nameOf(resource));
    else if (!listed.has(resource)) {
      const parsed = parseResource(resource);
      if (parsed?.kind !== 'binding') return undefined;
      names.add(parsed.source).add(parsed.destination);
    }
  }
  return names;
}
