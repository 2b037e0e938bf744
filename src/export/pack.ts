/**
 * Groups a vhost's exported items the way a person would keep them in Git, and packs each group
 * into RabbitQueueBatch specs within the per-resource limits.
 *
 * - Group: by the name's prefix (the part before the first `.`, `_`, `-`, `:`, `/`, `@`, `~` or
 *   `+`) by default; `vhost` puts a whole vhost in one group; a regular expression names the
 *   group by its first capture group (or its whole match); names it does not match go to `other`.
 * - A binding goes with what it binds to (its destination; one into an `amq.*` exchange goes
 *   with its source). Its other end, when declared in another group or batch or not exported at
 *   all, is listed there as `external: true`: verified, never created nor deleted by that batch.
 * - Limits: at most `maxItems` items (exchanges + queues + bindings, externals included) and
 *   `maxExchanges` exchanges per batch; a group that does not fit is split (`-2`, `-3`, ...).
 */
import type { BindingSpec, ExchangeSpec, QueueSpec } from '../api/schema.js';
import type { VhostSelection } from './select.js';

export type GroupRule = { kind: 'prefix' } | { kind: 'vhost' } | { kind: 'regex'; pattern: RegExp };

export interface PackedBatch {
  vhost: string;
  group: string;
  /** 1 for a group's first batch, 2... when it had to be split. */
  part: number;
  exchanges: ExchangeSpec[];
  queues: QueueSpec[];
  externalExchanges: string[];
  externalQueues: string[];
  bindings: BindingSpec[];
}

export interface Limits {
  maxItems: number;
  maxExchanges: number;
}

export function parseGroupRule(rule: string): GroupRule {
  if (rule === 'prefix') return { kind: 'prefix' };
  if (rule === 'vhost') return { kind: 'vhost' };
  return { kind: 'regex', pattern: new RegExp(rule) };
}

export function groupOf(name: string, rule: GroupRule): string {
  if (rule.kind === 'vhost') return 'all';
  if (rule.kind === 'prefix') return name.split(/[._:/@~+-]/)[0] || 'other';
  const m = rule.pattern.exec(name);
  return (m && (m[1] ?? m[0])) || 'other';
}

class Batch {
  readonly exchanges: ExchangeSpec[] = [];
  readonly queues: QueueSpec[] = [];
  readonly externalExchanges = new Set<string>();
  readonly externalQueues = new Set<string>();
  readonly bindings: BindingSpec[] = [];
  private readonly exchangeNames = new Set<string>();
  private readonly queueNames = new Set<string>();

  constructor(
    readonly vhost: string,
    readonly group: string,
    readonly part: number,
  ) {}

  get items(): number {
    return this.exchanges.length + this.externalExchanges.size + this.queues.length + this.externalQueues.size + this.bindings.length;
  }
  get exchangeCount(): number {
    return this.exchanges.length + this.externalExchanges.size;
  }
  hasExchange(name: string): boolean {
    return this.exchangeNames.has(name) || this.externalExchanges.has(name);
  }
  hasQueue(name: string): boolean {
    return this.queueNames.has(name) || this.externalQueues.has(name);
  }
  addExchange(e: ExchangeSpec): void {
    this.exchanges.push(e);
    this.exchangeNames.add(e.name);
  }
  addQueue(q: QueueSpec): void {
    this.queues.push(q);
    this.queueNames.add(q.name);
  }
  toPacked(): PackedBatch {
    return {
      vhost: this.vhost,
      group: this.group,
      part: this.part,
      exchanges: this.exchanges,
      queues: this.queues,
      externalExchanges: [...this.externalExchanges].sort(),
      externalQueues: [...this.externalQueues].sort(),
      bindings: this.bindings,
    };
  }
}

export function pack(selection: VhostSelection, rule: GroupRule, limits: Limits): PackedBatch[] {
  const { vhost } = selection;
  const groups = new Map<string, { exchanges: ExchangeSpec[]; queues: QueueSpec[] }>();
  const groupFor = (name: string) => {
    const g = groupOf(name, rule);
    let entry = groups.get(g);
    if (!entry) groups.set(g, (entry = { exchanges: [], queues: [] }));
    return entry;
  };
  for (const e of [...selection.exchanges.values()].sort(byName)) groupFor(e.name).exchanges.push(e);
  for (const q of [...selection.queues.values()].sort(byName)) groupFor(q.name).queues.push(q);
  // Bindings by the object they go with.
  const into = new Map<string, BindingSpec[]>();
  for (const b of selection.bindings) {
    const anchor = anchorOf(b, selection);
    const list = into.get(anchor) ?? [];
    list.push(b);
    into.set(anchor, list);
  }

  const out: PackedBatch[] = [];
  for (const [group, members] of [...groups].sort(([a], [b]) => a.localeCompare(b))) {
    let batch = new Batch(vhost, group, 1);
    const next = () => {
      out.push(batch.toPacked());
      batch = new Batch(vhost, group, batch.part + 1);
    };
    const fits = (items: number, exchanges: number) => batch.items + items <= limits.maxItems && batch.exchangeCount + exchanges <= limits.maxExchanges;
    /** Makes `name` present in the batch: declared here the first time, external afterwards. */
    const ensure = (kind: 'exchange' | 'queue', name: string) => {
      if (kind === 'exchange' ? batch.hasExchange(name) : batch.hasQueue(name)) return;
      if (kind === 'exchange') batch.externalExchanges.add(name);
      else batch.externalQueues.add(name);
    };
    const needs = (b: BindingSpec): { items: number; exchanges: number } => {
      let items = 1;
      let exchanges = 0;
      const missingExchanges = [b.source, ...(b.destinationType === 'exchange' ? [b.destination] : [])].filter((n) => !n.startsWith('amq.') && !batch.hasExchange(n));
      items += new Set(missingExchanges).size;
      exchanges += new Set(missingExchanges).size;
      if (b.destinationType === 'queue' && !batch.hasQueue(b.destination)) items++;
      return { items, exchanges };
    };
    const addBinding = (b: BindingSpec) => {
      const need = needs(b);
      if (!fits(need.items, need.exchanges) && batch.items > 0) next();
      if (!b.source.startsWith('amq.')) ensure('exchange', b.source);
      if (b.destinationType === 'exchange' && !b.destination.startsWith('amq.')) ensure('exchange', b.destination);
      if (b.destinationType === 'queue') ensure('queue', b.destination);
      batch.bindings.push(b);
    };
    for (const e of members.exchanges) {
      if (!fits(1, 1)) next();
      batch.addExchange(e);
    }
    for (const e of members.exchanges) for (const b of into.get(`exchange/${e.name}`) ?? []) addBinding(b);
    for (const q of members.queues) {
      const bindings = into.get(`queue/${q.name}`) ?? [];
      // Keep a queue with its bindings when they fit together in a fresh batch.
      const together = 1 + bindings.reduce((n, b) => n + needs(b).items, 0);
      if (!fits(1, 0) || (!fits(together, 0) && together <= limits.maxItems)) next();
      batch.addQueue(q);
      for (const b of bindings) addBinding(b);
    }
    if (batch.items > 0) out.push(batch.toPacked());
  }
  return out;
}

/** `exchange/x` or `queue/q`: what a binding is kept with (see the module comment). */
function anchorOf(b: BindingSpec, s: VhostSelection): string {
  if (b.destinationType === 'queue') return `queue/${b.destination}`;
  return s.exchanges.has(b.destination) ? `exchange/${b.destination}` : `exchange/${b.source}`;
}

const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);
