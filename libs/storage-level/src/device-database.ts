import { LevelEventStore, type EventStoreOptions } from './event-store.js';
import { ioError } from './errors.js';
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
  /**
   * Closes and reopens the LevelDB handle, so that LevelDB lets go of the table files it mapped.
   *
   * @remarks LevelDB reads its table files through `mmap`, and a table stays mapped (every page
   * read from it counted as resident memory) until the table is closed. A start-up scan of the
   * whole database therefore leaves the whole database resident: ≈ 60 MB at 100k events. Call it
   * only when no read or write is in flight (`DeviceLog.open` calls it through
   * `afterStartupScan`, between its scans and its first document); an operation that starts
   * meanwhile fails with the store's STORAGE_IO.
   */
  readonly unmapTables: () => Promise<void>;
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
  const subs: LevelDatabase[] = [];
  const sub = (name: string): LevelDatabase => {
    const level = db.sublevel<Uint8Array, Uint8Array>(name, { keyEncoding: 'view', valueEncoding: 'view' });
    subs.push(level);
    return level;
  };
  const notify = options.onCorruption;
  const forStore = (store: 'automerge' | 'events'): EventStoreOptions =>
    notify === undefined ? {} : { onCorruption: (report: CorruptionReport) => notify({ ...report, store }) };
  const storageAdapter = new LevelStorageAdapter(sub('automerge'), forStore('automerge'));
  const eventStore = new LevelEventStore(sub('events'), forStore('events'));
  try {
    // Open now rather than on first use: a synchronous read (`readSync`) does not wait for it.
    for (const level of subs) await level.open();
  } catch (err) {
    await db.close();
    throw ioError(err, 'open');
  }
  let closing: Promise<void> | undefined;
  return {
    db,
    storageAdapter,
    eventStore,
    unmapTables: async () => {
      if (closing !== undefined) return;
      try {
        await db.close();
        await db.open();
        // A sublevel stays closed when its parent closes, and does not follow it back open.
        for (const level of subs) await level.open();
      } catch (err) {
        throw ioError(err, 'reopen');
      }
    },
    close: () =>
      (closing ??= (async () => {
        await Promise.all([storageAdapter.close(), eventStore.close()]);
        await db.close();
      })()),
  };
}
