import { LevelEventStore, type EventStoreOptions } from './event-store.js';
import { openLevel, type BinaryLevel } from './level-open.js';
import type { LevelDatabase } from './raw-store.js';
import { LevelStorageAdapter, type CorruptionReport } from './storage-adapter.js';

/** One device's LevelDB: the automerge-repo chunks and the event log, in two sublevels. */
export interface DeviceDatabase {
  /** The root database (owned by this object). */
  readonly db: BinaryLevel;
  /** automerge-repo adapter on sublevel `automerge`. */
  readonly storageAdapter: LevelStorageAdapter;
  /** The event log store on sublevel `events`. */
  readonly eventStore: LevelEventStore;
  /** Closes both stores (waiting for their pending writes), then the database. Idempotent. */
  close(): Promise<void>;
}

/** Options of {@link openDeviceDatabase}. */
export interface DeviceDatabaseOptions {
  /** Called for every corrupt value met in either store; exceptions are swallowed. */
  readonly onCorruption?: (report: CorruptionReport & { readonly store: 'automerge' | 'events' }) => void;
}

/**
 * Opens (creating if needed) a device's LevelDB at `path` and puts an automerge-repo
 * storage adapter and an event store on separate sublevels of it.
 *
 * @remarks Throws STORAGE_IO when the database cannot be opened (for instance, another
 * process holds its lock). Run `eventStore.verify()` at start-up.
 */
export async function openDeviceDatabase(
  path: string,
  options: DeviceDatabaseOptions = {},
): Promise<DeviceDatabase> {
  const db = await openLevel(path);
  const sub = (name: string): LevelDatabase =>
    db.sublevel<Uint8Array, Uint8Array>(name, { keyEncoding: 'view', valueEncoding: 'view' });
  const notify = options.onCorruption;
  const forStore = (store: 'automerge' | 'events'): EventStoreOptions =>
    notify === undefined ? {} : { onCorruption: (report: CorruptionReport) => notify({ ...report, store }) };
  const storageAdapter = new LevelStorageAdapter(sub('automerge'), forStore('automerge'));
  const eventStore = new LevelEventStore(sub('events'), forStore('events'));
  let closing: Promise<void> | undefined;
  return {
    db,
    storageAdapter,
    eventStore,
    close: () =>
      (closing ??= (async () => {
        await Promise.all([storageAdapter.close(), eventStore.close()]);
        await db.close();
      })()),
  };
}
