import { ErrorCode } from '@accord/protocol';
import { describe, expect, it } from 'vitest';
import { MemoryEventStore, MemoryKeyValue } from './index.js';
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
