import { ErrorCode } from '@accord/protocol';
import { describe, expect, it } from 'vitest';
import { LevelStorageAdapter, openLevel } from './index.js';
import {
  deviceDatabaseStorageAdapterSetup,
  expectAccordError,
  levelStorageAdapterSetup,
  makeTempDir,
  runStorageAdapterConformance,
} from './testing.js';

runStorageAdapterConformance('LevelStorageAdapter (root database)', levelStorageAdapterSetup);
runStorageAdapterConformance(
  'LevelStorageAdapter (device database sublevel)',
  deviceDatabaseStorageAdapterSetup,
);

describe('LevelStorageAdapter on disk', () => {
  it('keeps everything across close and reopen of its own database', async () => {
    const dir = await makeTempDir();
    try {
      const first = await LevelStorageAdapter.open(dir.path);
      await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          first.save(['doc', 'incremental', String(i).padStart(2, '0')], new Uint8Array([i, i])),
        ),
      );
      await first.save(['doc', 'snapshot'], new Uint8Array(0));
      await first.close();
      const second = await LevelStorageAdapter.open(dir.path);
      const chunks = await second.loadRange(['doc']);
      expect(chunks).toHaveLength(31);
      expect(chunks[0]).toStrictEqual({ key: ['doc', 'incremental', '00'], data: new Uint8Array([0, 0]) });
      expect(await second.load(['doc', 'snapshot'])).toStrictEqual(new Uint8Array(0));
      expect((await second.scan()).corrupt).toStrictEqual([]);
      await second.close();
    } finally {
      await dir.remove();
    }
  });

  it('a database locked by another handle fails to open with STORAGE_IO', async () => {
    const dir = await makeTempDir();
    try {
      const held = await LevelStorageAdapter.open(dir.path);
      const err = await expectAccordError(LevelStorageAdapter.open(dir.path), ErrorCode.STORAGE_IO);
      expect(err.cause).toBeInstanceOf(Error);
      await held.close();
    } finally {
      await dir.remove();
    }
  });

  it('LevelDB errors surface as STORAGE_IO with the level error as cause', async () => {
    const dir = await makeTempDir();
    try {
      const db = await openLevel(dir.path);
      const adapter = new LevelStorageAdapter(db);
      await adapter.save(['k'], new Uint8Array([1]));
      await db.close(); // closed behind the adapter's back
      const read = await expectAccordError(adapter.load(['k']), ErrorCode.STORAGE_IO);
      expect(read.details['levelCode']).toBe('LEVEL_DATABASE_NOT_OPEN');
      await expectAccordError(adapter.save(['k'], new Uint8Array([2])), ErrorCode.STORAGE_IO);
      await expectAccordError(adapter.loadRange([]), ErrorCode.STORAGE_IO);
      await adapter.close();
    } finally {
      await dir.remove();
    }
  });
});
