import { describe, expect, it } from 'vitest';
import { applyWatcherEvent } from '../../../src/kube/reflector.js';
import { createStore, objectKey, parseKey, type KubeObject } from '../../../src/kube/store.js';

interface Gadget extends KubeObject {
  spec?: { owner?: string };
}

const gadget = (name: string, owner = 'x', namespace = 'ns'): Gadget => ({ apiVersion: 'v1', kind: 'Gadget', metadata: { name, namespace }, spec: { owner } });

describe('store keys', () => {
  it('uses namespace/name, or name for cluster-scoped objects', () => {
    expect(objectKey(gadget('a'))).toBe('ns/a');
    expect(objectKey({ metadata: { name: 'node1' } })).toBe('node1');
    expect(parseKey('ns/a')).toEqual({ namespace: 'ns', name: 'a' });
    expect(parseKey('node1')).toEqual({ namespace: '', name: 'node1' });
  });
});

describe('Store and reflector', () => {
  it('is not synced until the first list, and wakes waiters then', async () => {
    const { store, writer } = createStore<Gadget>();
    expect(store.hasSynced()).toBe(false);
    const waiting = store.waitForSync();
    writer.apply(gadget('early'));
    expect(store.hasSynced()).toBe(false);
    writer.replace([gadget('a')]);
    await waiting;
    expect(store.hasSynced()).toBe(true);
  });

  it('rejects waitForSync when the signal aborts first', async () => {
    const { store } = createStore<Gadget>();
    const ac = new AbortController();
    const waiting = store.waitForSync(ac.signal);
    ac.abort(new Error('gave up'));
    await expect(waiting).rejects.toThrow('gave up');
  });

  it('applies watch events and reports what they replaced', () => {
    const { store, writer } = createStore<Gadget>();
    expect(applyWatcherEvent(writer, { type: 'restarted', objects: [gadget('a', 'x')] })).toEqual({ type: 'restarted', objects: [gadget('a', 'x')], vanished: [] });
    const update = applyWatcherEvent(writer, { type: 'applied', object: gadget('a', 'y') });
    expect(update).toMatchObject({ type: 'applied', key: 'ns/a', old: { spec: { owner: 'x' } } });
    expect(store.get('ns/a')?.spec?.owner).toBe('y');
    applyWatcherEvent(writer, { type: 'deleted', object: gadget('a', 'y') });
    expect(store.get('ns/a')).toBeUndefined();
    expect(store.list()).toEqual([]);
  });

  it('replaces everything on relist in one swap and names the keys that vanished', () => {
    const { store, writer } = createStore<Gadget>();
    writer.replace([gadget('a'), gadget('b'), gadget('c')]);
    const event = applyWatcherEvent(writer, { type: 'restarted', objects: [gadget('b'), gadget('d')] });
    expect(event).toMatchObject({ vanished: ['ns/a', 'ns/c'] });
    expect(store.keys().sort()).toEqual(['ns/b', 'ns/d']);
  });

  it('maintains indexes through updates, deletes and relists, including ones added late', () => {
    const { store, writer } = createStore<Gadget>();
    writer.replace([gadget('a', 'alice'), gadget('b', 'bob')]);
    store.addIndex('owner', (g) => (g.spec?.owner ? [g.spec.owner] : []));
    expect(store.byIndex('owner', 'alice').map(objectKey)).toEqual(['ns/a']);
    writer.apply(gadget('a', 'bob'));
    expect(store.byIndex('owner', 'alice')).toEqual([]);
    expect(store.byIndex('owner', 'bob').map(objectKey).sort()).toEqual(['ns/a', 'ns/b']);
    writer.delete(gadget('b'));
    expect(store.byIndex('owner', 'bob').map(objectKey)).toEqual(['ns/a']);
    writer.replace([gadget('c', 'carol')]);
    expect(store.byIndex('owner', 'bob')).toEqual([]);
    expect(store.byIndex('owner', 'carol').map(objectKey)).toEqual(['ns/c']);
    expect(() => store.byIndex('nope', 'x')).toThrow(/no index/);
    expect(() => store.addIndex('owner', () => [])).toThrow(/already exists/);
  });

  it('freezes stored objects so readers cannot corrupt the cache', () => {
    const { store, writer } = createStore<Gadget>();
    writer.apply(gadget('a'));
    const cached = store.get('ns/a') as Gadget;
    expect(() => {
      (cached.metadata as { finalizers?: string[] }).finalizers = ['x'];
    }).toThrow(TypeError);
    const copy = structuredClone(cached);
    copy.metadata!.finalizers = ['x'];
    expect(store.get('ns/a')?.metadata?.finalizers).toBeUndefined();
  });
});
