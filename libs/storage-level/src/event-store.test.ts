import { deviceIdFromPublicKey, ErrorCode, eventIdFor, type DeviceId } from '@accord/protocol';
import { describe, expect, it } from 'vitest';
import { eventStoreRawKey, MemoryEventStore, MemoryKeyValue, type StoredEvent } from './index.js';
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

describe('ids in the slot record', () => {
  it('stores and reads back ASCII and non-ASCII ids alike (the ASCII ones are written without an encoder)', async () => {
    const backend = new MemoryKeyValue();
    const ids = ['01M9902K5E64GP5MFWHR000001', 'é-id', '😀', 'a\u007fb', '\u0080'];
    const store = new MemoryEventStore({ backend });
    await store.append(ids.map((id, i) => ({ device: 'd', seq: i + 1, id, bytes: new Uint8Array([i]) })));
    const reopened = new MemoryEventStore({ backend });
    for (const [i, id] of ids.entries()) {
      expect(reopened.readSync(id)).toStrictEqual({
        device: 'd',
        seq: i + 1,
        id,
        bytes: new Uint8Array([i]),
      });
      expect((await reopened.getBySeq('d', i + 1))?.id).toBe(id);
    }
    expect((await reopened.verify()).index).toEqual([]);
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

describe('append reads only what can be stored', () => {
  const device = deviceIdFromPublicKey(new Uint8Array(32).fill(7));
  const other = deviceIdFromPublicKey(new Uint8Array(32).fill(9));
  const own = (seq: number, at = 1_765_000_000_000, of: string = device): StoredEvent => ({
    device: of,
    seq,
    id: eventIdFor(at, of as DeviceId, seq),
    bytes: new Uint8Array([seq, at % 251]),
  });
  /** The number of keys each batch read before writing. */
  function counted(backend: MemoryKeyValue): number[] {
    const reads: number[] = [];
    const getMany = backend.getMany.bind(backend);
    backend.getMany = (keys) => {
      reads.push(keys.length);
      return getMany(keys);
    };
    return reads;
  }

  it("reads nothing for a device's next events under ids bound to their slots, and still refuses a taken slot", async () => {
    const backend = new MemoryKeyValue();
    const reads = counted(backend);
    const store = new MemoryEventStore({ backend });
    await store.append([own(1), own(2)]);
    await store.append([own(3)]);
    expect(reads).toEqual([]);
    expect(await store.highestSeq(device)).toBe(3);
    // Seq 2 again under another id (another time part): its slot is read, and found taken.
    await expect(store.append([own(2, 1_765_000_000_001)])).rejects.toMatchObject({
      code: ErrorCode.STORAGE_CONFLICT,
      details: { reason: 'slot-taken' },
    });
    // The same event again is idempotent (read, found identical).
    await store.append([own(3)]);
    expect(reads).toEqual([2, 2]);
    expect(await store.count()).toBe(3);
  });

  it('learns what a reopened store holds before it skips a read', async () => {
    const backend = new MemoryKeyValue();
    const first = new MemoryEventStore({ backend });
    await first.append([own(1), own(2), own(3)]);
    await first.close();
    const reads = counted(backend);
    const store = new MemoryEventStore({ backend });
    await expect(store.append([own(3, 1_765_000_000_005)])).rejects.toMatchObject({
      code: ErrorCode.STORAGE_CONFLICT,
      details: { reason: 'slot-taken' },
    });
    expect(reads).toEqual([2]);
    await store.append([own(4)]);
    expect(reads).toEqual([2]);
    expect(await store.get(own(4).id)).toEqual(own(4));
  });

  it('still reads the index for an id not bound to its slot: one id under two devices is refused', async () => {
    const backend = new MemoryKeyValue();
    const reads = counted(backend);
    const store = new MemoryEventStore({ backend });
    await store.append([own(1)]);
    // Device `other` sends an event under `device`'s id: its slot is new, the id is not its own.
    await expect(store.append([{ ...own(1), device: other }])).rejects.toMatchObject({
      code: ErrorCode.STORAGE_CONFLICT,
      details: { reason: 'id-elsewhere' },
    });
    expect(reads).toEqual([1]);
    expect(await store.highestSeq(other)).toBe(0);
  });
});
