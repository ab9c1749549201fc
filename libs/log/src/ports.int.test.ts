// The LevelDB adapters, as the device opens them (one database, two sublevels), meet the log's ports.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  eventStoreRawKey,
  openDeviceDatabase,
  storageAdapterRawKey,
  type DeviceDatabase,
} from '@accord/storage-level';
import type { LogDocumentStorage, LogEventStore } from './ports.js';
import { runLogPortConformance, type LogPortFixture } from './testing.js';

const VIEW = { keyEncoding: 'view', valueEncoding: 'view' } as const;

async function levelLogPorts(): Promise<LogPortFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'accord-log-ports-'));
  let db: DeviceDatabase = await openDeviceDatabase(dir);
  // Declared as the ports: the adapters must implement them as they are.
  let store: LogEventStore = db.eventStore;
  let storage: LogDocumentStorage = db.storageAdapter;
  const damage = async (sublevel: string, key: Uint8Array): Promise<void> => {
    const raw = db.db.sublevel<Uint8Array, Uint8Array>(sublevel, VIEW);
    const value = await raw.get(key);
    if (value === undefined) throw new Error('test hook: nothing stored under that key');
    const copy = new Uint8Array(value);
    copy[copy.length - 1] = copy[copy.length - 1]! ^ 0xff;
    await raw.put(key, copy);
  };
  return {
    get store() {
      return store;
    },
    get storage() {
      return storage;
    },
    damageEvent: (device, seq) => damage('events', eventStoreRawKey({ kind: 'event', device, seq })),
    damageChunk: (key) => damage('automerge', storageAdapterRawKey(key)),
    reopen: async () => {
      await db.close();
      db = await openDeviceDatabase(dir);
      store = db.eventStore;
      storage = db.storageAdapter;
      return store;
    },
    teardown: async () => {
      await db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

runLogPortConformance('LevelDB (openDeviceDatabase)', levelLogPorts);
