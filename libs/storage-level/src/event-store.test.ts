import { ErrorCode } from '@accord/protocol';
import { describe, expect, it } from 'vitest';
import { eventStoreRawKey, MemoryEventStore, MemoryKeyValue } from './index.js';
import { memoryEventStoreSetup, runEventStoreConformance } from './testing.js';

runEventStoreConformance('MemoryEventStore', memoryEventStoreSetup);

describe('MemoryEventStore', () => {
  it('a failed batch write rejects its appends with STORAGE_IO and stores nothing', async () => {
    const backend = new MemoryKeyValue();
    const store = new MemoryEventStore({ backend });
    backend.failNextWrites(1);
    const bytes = new Uint8Array([1]);
    const a = store.append([{ device: 'd', seq: 1, id: 'a', bytes }]);
    const b = store.meta.put('k', bytes);
    const [ra, rb] = await Promise.allSettled([a, b]);
    expect(ra).toMatchObject({ status: 'rejected', reason: { code: ErrorCode.STORAGE_IO } });
    expect(rb).toMatchObject({ status: 'rejected', reason: { code: ErrorCode.STORAGE_IO } });
    expect(backend.size).toBe(0);
    // The failed batch left no trace in later batches' view of the store.
    await store.append([{ device: 'd', seq: 1, id: 'a', bytes }]);
    expect(await store.count()).toBe(1);
  });
});

describe('reindex', () => {
  it('rebuilds the id index from the slots after records of either were dropped, as LevelDB repair does', async () => {
    const backend = new MemoryKeyValue();
    const store = new MemoryEventStore({ backend });
    const events = [1, 2, 3, 4].map((seq) => ({
      device: 'd',
      seq,
      id: `id-${seq}`,
      bytes: new Uint8Array([seq]),
    }));
    await store.append(events);
    // Event 2 keeps its slot but loses its index entry; event 3 loses its slot but keeps its entry.
    backend.deleteRaw(eventStoreRawKey({ kind: 'index', id: 'id-2' }));
    backend.deleteRaw(eventStoreRawKey({ kind: 'event', device: 'd', seq: 3 }));
    expect(store.readSync('id-2')).toBeUndefined();
    expect((await store.verify()).index).toEqual(
      expect.arrayContaining([
        { id: 'id-2', problem: 'missing' },
        { id: 'id-3', problem: 'dangling' },
      ]),
    );

    expect(await store.reindex()).toBe(2);
    expect(store.readSync('id-2')).toEqual(events[1]);
    expect(await store.get('id-3')).toBeUndefined();
    expect((await store.verify()).index).toEqual([]);
    // The slot freed by the repair takes the event again when a peer supplies it.
    await store.append([events[2]!]);
    expect(await store.get('id-3')).toEqual(events[2]);
    expect(await store.reindex()).toBe(0);
  });
});
