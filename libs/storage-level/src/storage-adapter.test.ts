import { ErrorCode } from '@accord/protocol';
import { describe, expect, it } from 'vitest';
import { MemoryKeyValue, MemoryStorageAdapter } from './index.js';
import { expectAccordError, memoryStorageAdapterSetup, runStorageAdapterConformance } from './testing.js';

runStorageAdapterConformance('MemoryStorageAdapter', memoryStorageAdapterSetup);

describe('MemoryStorageAdapter', () => {
  it('a failed batch write rejects every save in it with STORAGE_IO and stores none of them', async () => {
    const backend = new MemoryKeyValue();
    const adapter = new MemoryStorageAdapter({ backend });
    backend.failNextWrites(1);
    const saves = Array.from({ length: 5 }, (_, i) => adapter.save(['k', String(i)], new Uint8Array([i])));
    const settled = await Promise.allSettled(saves);
    for (const result of settled) {
      const err = await expectAccordError(
        result.status === 'rejected' ? Promise.reject(result.reason as Error) : Promise.resolve(),
        ErrorCode.STORAGE_IO,
      );
      expect(err.cause).toBeInstanceOf(Error);
    }
    expect(backend.size).toBe(0);
    await adapter.save(['k', '0'], new Uint8Array([9]));
    expect(await adapter.load(['k', '0'])).toStrictEqual(new Uint8Array([9]));
  });

  it('a new adapter on the same backend sees everything (a simulated restart)', async () => {
    const backend = new MemoryKeyValue();
    const first = new MemoryStorageAdapter({ backend });
    await first.save(['doc', 'snapshot'], new Uint8Array([1, 2, 3]));
    await first.close();
    const second = new MemoryStorageAdapter({ backend });
    expect(await second.loadRange(['doc'])).toStrictEqual([
      { key: ['doc', 'snapshot'], data: new Uint8Array([1, 2, 3]) },
    ]);
  });

  it('a clone of the backend is a backup taken at that instant: later writes reach only one side', async () => {
    const backend = new MemoryKeyValue();
    const live = new MemoryStorageAdapter({ backend });
    await live.save(['doc', 'a'], new Uint8Array([1]));
    const backup = backend.clone();
    await live.save(['doc', 'b'], new Uint8Array([2]));
    await live.remove(['doc', 'a']);
    const restored = new MemoryStorageAdapter({ backend: backup });
    expect(await restored.loadRange(['doc'])).toStrictEqual([
      { key: ['doc', 'a'], data: new Uint8Array([1]) },
    ]);
    await restored.save(['doc', 'c'], new Uint8Array([3]));
    expect((await live.loadRange(['doc'])).map((c) => c.key)).toStrictEqual([['doc', 'b']]);
  });
});
