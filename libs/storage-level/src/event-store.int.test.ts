import { ErrorCode } from '@accord/protocol';
import { describe, expect, it } from 'vitest';
import { LevelEventStore, openLevel } from './index.js';
import {
  deviceDatabaseEventStoreSetup,
  expectAccordError,
  levelEventStoreSetup,
  makeTempDir,
  runEventStoreConformance,
} from './testing.js';

runEventStoreConformance('LevelEventStore (own database)', levelEventStoreSetup);
runEventStoreConformance('LevelEventStore (device database sublevel)', deviceDatabaseEventStoreSetup);

describe('LevelEventStore on disk', () => {
  it('on a caller-owned database, close() leaves the database open for its owner', async () => {
    const dir = await makeTempDir();
    try {
      const db = await openLevel(dir.path);
      const store = await LevelEventStore.open(db);
      await store.append([{ device: 'd', seq: 1, id: 'a', bytes: new Uint8Array([1]) }]);
      await store.close();
      expect(db.status).toBe('open');
      const again = await LevelEventStore.open(db);
      expect(await again.count()).toBe(1);
      await again.close();
      await db.close();
    } finally {
      await dir.remove();
    }
  });

  it('LevelDB failures surface as STORAGE_IO', async () => {
    const dir = await makeTempDir();
    try {
      const db = await openLevel(dir.path);
      const store = new LevelEventStore(db);
      await db.close();
      await expectAccordError(
        store.append([{ device: 'd', seq: 1, id: 'a', bytes: new Uint8Array([1]) }]),
        ErrorCode.STORAGE_IO,
      );
      await expectAccordError(store.verify(), ErrorCode.STORAGE_IO);
      await expectAccordError(store.meta.get('k'), ErrorCode.STORAGE_IO);
      await store.close();
    } finally {
      await dir.remove();
    }
  });
});
