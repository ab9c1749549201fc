import { readFile } from 'node:fs/promises';
import { Repo, type AutomergeUrl } from '@automerge/automerge-repo';
import { describe, expect, it } from 'vitest';
import { benchRawLevelPuts, openDeviceDatabase, openLevel } from './index.js';
import { makeTempDir, seededBytes } from './testing.js';

describe('openDeviceDatabase', () => {
  it('hosts the automerge adapter and the event store side by side without touching each other', async () => {
    const dir = await makeTempDir();
    try {
      const device = await openDeviceDatabase(dir.path);
      await device.eventStore.append([{ device: 'd', seq: 1, id: 'e1', bytes: new Uint8Array([1]) }]);
      await device.eventStore.meta.put('clock', new Uint8Array([7]));
      await device.storageAdapter.save(['doc', 'snapshot'], new Uint8Array([2]));
      // Everything under the adapter's empty prefix is the adapter's own data only.
      expect((await device.storageAdapter.loadRange([])).map((c) => c.key)).toStrictEqual([
        ['doc', 'snapshot'],
      ]);
      await device.storageAdapter.removeRange([]);
      expect(await device.eventStore.count()).toBe(1);
      expect(await device.eventStore.meta.get('clock')).toStrictEqual(new Uint8Array([7]));
      expect(await device.storageAdapter.scan()).toStrictEqual({ corrupt: [], badKeys: [], checked: 0 });
      await device.close();
      await device.close(); // idempotent
      expect(device.db.status).toBe('closed');
    } finally {
      await dir.remove();
    }
  });

  it('reports corruption with the store it happened in', async () => {
    const dir = await makeTempDir();
    try {
      const seen: { store: string; key: readonly string[] }[] = [];
      const device = await openDeviceDatabase(dir.path, {
        onCorruption: (r) => seen.push({ store: r.store, key: r.key }),
      });
      await device.storageAdapter.save(['doc'], new Uint8Array([1]));
      const sub = device.db.sublevel<Uint8Array, Uint8Array>('automerge', {
        keyEncoding: 'view',
        valueEncoding: 'view',
      });
      for await (const key of sub.keys()) await sub.put(key, new Uint8Array(0));
      expect((await device.storageAdapter.scan()).corrupt).toStrictEqual([['doc']]);
      expect(seen).toStrictEqual([{ store: 'automerge', key: ['doc'] }]);
      await device.close();
    } finally {
      await dir.remove();
    }
  });

  it('an automerge-repo Repo persists documents through the adapter and reloads them after a restart', async () => {
    const dir = await makeTempDir();
    try {
      let url: AutomergeUrl;
      {
        const device = await openDeviceDatabase(dir.path);
        const repo = new Repo({ storage: device.storageAdapter, network: [] });
        const handle = repo.create<{ events: number[] }>({ events: [] });
        for (let i = 0; i < 20; i++) handle.change((d) => void d.events.push(i));
        url = handle.url;
        await repo.flush();
        await repo.shutdown();
        await device.close();
      }
      {
        const device = await openDeviceDatabase(dir.path);
        const repo = new Repo({ storage: device.storageAdapter, network: [] });
        const handle = await repo.find<{ events: number[] }>(url);
        expect(handle.doc().events).toStrictEqual(Array.from({ length: 20 }, (_, i) => i));
        expect((await device.storageAdapter.scan()).corrupt).toStrictEqual([]);
        await repo.shutdown();
        await device.close();
      }
    } finally {
      await dir.remove();
    }
  });
});

describe('DeviceDatabase.unmapTables', () => {
  /** The LevelDB table files of `dir` this process has mapped (Linux /proc). */
  async function mappedTables(dir: string): Promise<number> {
    const maps = await readFile('/proc/self/maps', 'utf8');
    return new Set(maps.split('\n').filter((l) => l.includes(dir) && l.endsWith('.ldb'))).size;
  }

  it('lets go of the table files a full scan mapped, and both stores carry on reading and writing', async () => {
    const dir = await makeTempDir();
    try {
      const events = Array.from({ length: 2000 }, (_, i) => ({
        device: 'd',
        seq: i + 1,
        id: `e${i + 1}`,
        bytes: seededBytes(400, i + 1),
      }));
      {
        const device = await openDeviceDatabase(dir.path);
        await device.eventStore.append(events);
        await device.storageAdapter.save(['doc', 'snapshot'], seededBytes(1000, 9));
        await device.close();
      }
      // Reopening moves LevelDB's write-ahead log into table files.
      const device = await openDeviceDatabase(dir.path);
      let read = 0;
      for await (const stored of device.eventStore.iterate({ skipCorrupt: false }))
        read += stored.bytes.length;
      expect(read).toBe(2000 * 400);
      expect(await mappedTables(dir.path)).toBeGreaterThan(0);

      await device.unmapTables();
      expect(await mappedTables(dir.path)).toBe(0);
      expect(device.db.status).toBe('open');
      expect((await device.eventStore.get('e1500'))?.bytes).toStrictEqual(events[1499]!.bytes);
      await device.eventStore.append([{ device: 'd', seq: 2001, id: 'e2001', bytes: new Uint8Array([1]) }]);
      expect(await device.eventStore.count()).toBe(2001);
      expect((await device.storageAdapter.load(['doc', 'snapshot']))?.length).toBe(1000);
      await device.close();
      expect(device.db.status).toBe('closed');
    } finally {
      await dir.remove();
    }
  });
});

describe('benchRawLevelPuts', () => {
  it('writes every payload under sequential keys and reports a rate (no timing asserted)', async () => {
    const dir = await makeTempDir();
    try {
      const payloads = Array.from({ length: 300 }, (_, i) => seededBytes(100, i + 1));
      const result = await benchRawLevelPuts(dir.path, payloads, { batchSize: 64 });
      expect(result.count).toBe(300);
      expect(result.batches).toBe(5);
      expect(result.perSecond).toBeGreaterThan(0);
      const db = await openLevel(dir.path);
      const values = await db.values().all();
      expect(values.map((v) => Buffer.from(v).equals(payloads[values.indexOf(v)]!))).toStrictEqual(
        payloads.map(() => true),
      );
      await db.close();
    } finally {
      await dir.remove();
    }
  });
});
