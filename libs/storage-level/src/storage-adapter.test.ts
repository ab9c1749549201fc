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
});
