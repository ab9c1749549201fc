// The log's ports: everything it asks of the storage underneath, declared here. The LevelDB
// adapter (`@accord/storage-level`: LevelEventStore, LevelStorageAdapter, and the pair that
// `openDeviceDatabase` opens) implements them, and so do its in-memory twins (MemoryEventStore,
// MemoryStorageAdapter) used by the tests; `runLogPortConformance` in `./testing` checks both.
import type { StorageAdapterInterface, StorageKey } from '@automerge/automerge-repo';

/** One stored event: its author device, that device's sequence number, its id and its signed bytes. */
export interface LogStoredEvent {
  readonly device: string;
  readonly seq: number;
  readonly id: string;
  readonly bytes: Uint8Array;
}

/** A small durable key/value space beside the events (equivocation barriers, seal markers). */
export interface LogMetaSpace {
  /** The value, or undefined when never put. A zero-length value is returned as such. */
  get(key: string): Promise<Uint8Array | undefined>;
  /** Durable before it resolves. */
  put(key: string, value: Uint8Array): Promise<void>;
}

/** Options of {@link LogEventStore.iterate}: the log reads the whole store once, at open. */
export interface LogIterateOptions {
  /** Only this device's events (the start-up scan reads the relay's first). */
  readonly device?: string;
  /** Damaged events are skipped, not thrown. */
  readonly skipCorrupt: true;
  /** Told the slot of every damaged event skipped. */
  readonly onSkipped?: (slot: { readonly device: string; readonly seq: number }) => void;
}

/**
 * The log's local source of truth: every verified event, durably, by (device, seq) and by id.
 *
 * @remarks
 * - `append` is all-or-nothing per call and durable before it resolves. Re-appending an identical
 *   event is a no-op. An id already stored in another slot or with other bytes, or a slot holding
 *   another event, rejects the whole call with `STORAGE_CONFLICT` (an `AccordError`): the log then
 *   retries event by event and reports the contradicting one as an equivocation. Appending into a
 *   slot whose stored value is damaged rewrites it (repair from a peer's copy).
 * - `iterate` yields every intact event (of one device, when asked) in (device, seq) order and
 *   names each damaged one.
 * - `readSync` gives one event by id without waiting (see there).
 * - `highestSeq` counts damaged slots too: a damaged own event still used its number.
 */
export interface LogEventStore {
  /** Stores events durably; see the contract above. */
  append(events: readonly LogStoredEvent[]): Promise<void>;
  /** Every intact stored event, in (device, seq) order; damaged ones are skipped and named. */
  iterate(opts: LogIterateOptions): AsyncIterable<LogStoredEvent>;
  /** The highest stored seq of `device` (damaged or not), 0 when none. */
  highestSeq(device: string): Promise<number>;
  /**
   * The stored event with this id, read synchronously (blocking): undefined when none.
   *
   * @remarks The log keeps indexes, statuses and projections in memory and reads an event's
   * bytes here when a query asks for it, so its queries stay synchronous. An event appended is
   * readable once its `append` resolved. Throws `STORAGE_CORRUPT` (an `AccordError`) when the
   * stored value, or the id's index entry, is damaged: never damaged or another event's bytes.
   */
  readSync(id: string): LogStoredEvent | undefined;
  /** Durable key/value space for the log's own state. */
  readonly meta: LogMetaSpace;
}

/**
 * Where automerge-repo keeps the sync documents: an automerge-repo storage adapter that can also
 * list its damaged chunks.
 *
 * @remarks At open the log drops every chunk `scan` names (`remove`): peers, and the event store,
 * supply the lost changes again. A damaged chunk must never be loaded as shorter or empty data.
 */
export interface LogDocumentStorage extends StorageAdapterInterface {
  /** Checks every stored value; `corrupt` lists the keys whose value is damaged. Never throws for damage. */
  scan(): Promise<{ readonly corrupt: readonly StorageKey[] }>;
}
