/**
 * automerge-repo storage adapters whose every value is checksummed and whose writes are
 * group-committed: {@link LevelStorageAdapter} (LevelDB) and {@link MemoryStorageAdapter}.
 */
import type { Chunk, StorageAdapterInterface, StorageKey } from '@automerge/automerge-repo';
import { ErrorCode } from '@accord/protocol';
import { closedError, ioError, storageError } from './errors.js';
import { frameValue, unframeValue, type CorruptionReason } from './frame.js';
import { GroupCommitter, type CommitStats } from './group-commit.js';
import { decodeSegments, encodeSegments, prefixRange, toHex } from './keys.js';
import { openLevel } from './level-open.js';
import { LevelRawStore, MemoryKeyValue, type LevelDatabase, type RawOp, type RawStore } from './raw-store.js';

/** What a corruption callback is told: where, and why the value was refused. */
export interface CorruptionReport {
  /** The logical key of the damaged value (for the event store: `['event', device, seq]`, `['index', id]`, `['meta', key]`). */
  readonly key: readonly string[];
  readonly reason: CorruptionReason;
}

/** Options shared by the storage adapters. */
export interface StorageAdapterOptions {
  /**
   * Called for every corrupt value found by `load`, `loadRange` or `scan`, before the
   * error is thrown (or the key is listed). Exceptions from the callback are swallowed.
   */
  readonly onCorruption?: (report: CorruptionReport) => void;
}

/** Result of {@link ChecksummedStorageAdapter.scan}. */
export interface StorageScanReport {
  /** Keys whose value is zero-length, truncated, or fails its checksum. */
  readonly corrupt: StorageKey[];
  /** Raw keys (hex) that are not a valid key encoding at all. */
  readonly badKeys: string[];
  /** Number of values checked. */
  readonly checked: number;
}

/**
 * An automerge-repo `StorageAdapterInterface` with checksums, integrity scan, group-commit
 * counters and an explicit lifecycle.
 *
 * @remarks
 * - `load`/`loadRange` throw `AccordError` STORAGE_CORRUPT (`details.key`) for a damaged
 *   value; they never return it as shorter, empty or missing data.
 * - `save`/`remove`/`removeRange` resolve once the change is durable; concurrent calls are
 *   applied in call order and coalesced into one synced batch.
 * - `loadRange` returns chunks in key order (segment by segment, by UTF-8 bytes).
 * - After `close()`, every method rejects with STORAGE_CLOSED.
 */
export interface ChecksummedStorageAdapter extends StorageAdapterInterface {
  /** Checks every stored value without throwing. */
  scan(): Promise<StorageScanReport>;
  /** Group-commit counters. */
  stats(): CommitStats;
  /** Waits for pending writes, then refuses further use (and closes a database it opened). */
  close(): Promise<void>;
}

/** Keys written earlier in the batch being prepared (binary-string form → raw key). */
type BatchKeys = Map<string, Uint8Array>;

function bin(key: Uint8Array): string {
  let s = '';
  for (const b of key) s += String.fromCharCode(b);
  return s;
}

function startsWith(key: Uint8Array, prefix: Uint8Array): boolean {
  if (key.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (key[i] !== prefix[i]) return false;
  return true;
}

function encodeKey(key: StorageKey): Uint8Array {
  if (!Array.isArray(key) || key.length === 0)
    throw new TypeError('a storage key is a non-empty array of strings');
  return encodeSegments(key);
}

/** The raw LevelDB key under which an adapter stores `key` (for tests and tools). */
export function storageAdapterRawKey(key: StorageKey): Uint8Array {
  return encodeKey(key);
}

/** Shared implementation over a {@link RawStore}. */
class RawStorageAdapter implements ChecksummedStorageAdapter {
  readonly #raw: RawStore;
  readonly #committer: GroupCommitter<BatchKeys>;
  readonly #onCorruption: ((report: CorruptionReport) => void) | undefined;
  readonly #onClose: (() => Promise<void>) | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(raw: RawStore, options: StorageAdapterOptions, onClose?: () => Promise<void>) {
    this.#raw = raw;
    this.#committer = new GroupCommitter<BatchKeys>(raw, () => new Map());
    this.#onCorruption = options.onCorruption;
    this.#onClose = onClose;
  }

  #report(key: readonly string[], reason: CorruptionReason): void {
    try {
      this.#onCorruption?.({ key: [...key], reason });
    } catch {
      // A callback must not change what the caller sees.
    }
  }

  #check(raw: Uint8Array, value: Uint8Array, key: StorageKey): Uint8Array {
    const result = unframeValue(raw, value);
    if (result.ok) return result.payload;
    this.#report(key, result.reason);
    throw storageError(
      ErrorCode.STORAGE_CORRUPT,
      `corrupt value under [${key.join(', ')}] (${result.reason})`,
      {
        details: { key: [...key], reason: result.reason },
      },
    );
  }

  async #read<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    if (this.#closed) throw closedError('storage adapter');
    try {
      return await fn();
    } catch (err) {
      // Bad arguments are the caller's bug, not an I/O failure.
      if (err instanceof TypeError || err instanceof RangeError) throw err;
      if (this.#closed) throw closedError('storage adapter');
      throw ioError(err, operation);
    }
  }

  #submit(fn: (ctx: BatchKeys) => Promise<readonly RawOp[]> | readonly RawOp[]): Promise<void> {
    if (this.#closed) throw closedError('storage adapter');
    return this.#committer.submit(fn);
  }

  load(key: StorageKey): Promise<Uint8Array | undefined> {
    return this.#read('load', async () => {
      const raw = encodeKey(key);
      const value = await this.#raw.get(raw);
      return value === undefined ? undefined : this.#check(raw, value, key);
    });
  }

  // Write methods are async so that argument errors reject; everything before `#submit`
  // runs synchronously, so calls are queued in call order.
  async save(key: StorageKey, data: Uint8Array): Promise<void> {
    if (!(data instanceof Uint8Array)) throw new TypeError('data must be a Uint8Array');
    const raw = encodeKey(key);
    // Framed (and so copied) now: later changes to `data` by the caller are not saved.
    const value = frameValue(raw, data);
    return this.#submit((ctx) => {
      ctx.set(bin(raw), raw);
      return [{ type: 'put', key: raw, value }];
    });
  }

  async remove(key: StorageKey): Promise<void> {
    const raw = encodeKey(key);
    return this.#submit((ctx) => {
      ctx.set(bin(raw), raw);
      return [{ type: 'del', key: raw }];
    });
  }

  loadRange(keyPrefix: StorageKey): Promise<Chunk[]> {
    return this.#read('loadRange', async () => {
      const prefix = encodeSegments(keyPrefix);
      const chunks: Chunk[] = [];
      for await (const { key: raw, value } of this.#raw.entries(prefixRange(prefix))) {
        const key = decodeSegments(raw);
        if (key === undefined) {
          const hex = toHex(raw);
          this.#report(['<raw>', hex], 'key');
          throw storageError(
            ErrorCode.STORAGE_CORRUPT,
            `undecodable key ${hex} under [${keyPrefix.join(', ')}]`,
            {
              details: { key: [...keyPrefix], rawKey: hex, reason: 'key' },
            },
          );
        }
        chunks.push({ key, data: this.#check(raw, value, key) });
      }
      return chunks;
    });
  }

  async removeRange(keyPrefix: StorageKey): Promise<void> {
    const prefix = encodeSegments(keyPrefix);
    return this.#submit(async (ctx) => {
      // Everything in storage now (earlier batches are written) plus keys written earlier
      // in this batch: deleting a key that is not there is harmless.
      const targets = new Map<string, Uint8Array>();
      for await (const key of this.#raw.keys(prefixRange(prefix))) targets.set(bin(key), key);
      for (const [s, key] of ctx) if (startsWith(key, prefix)) targets.set(s, key);
      for (const [s, key] of targets) ctx.set(s, key);
      return [...targets.values()].map((key): RawOp => ({ type: 'del', key }));
    });
  }

  scan(): Promise<StorageScanReport> {
    return this.#read('scan', async () => {
      const corrupt: StorageKey[] = [];
      const badKeys: string[] = [];
      let checked = 0;
      for await (const { key: raw, value } of this.#raw.entries({})) {
        checked++;
        const key = decodeSegments(raw);
        if (key === undefined) {
          badKeys.push(toHex(raw));
          this.#report(['<raw>', toHex(raw)], 'key');
          continue;
        }
        const result = unframeValue(raw, value);
        if (!result.ok) {
          corrupt.push(key);
          this.#report(key, result.reason);
        }
      }
      return { corrupt, badKeys, checked };
    });
  }

  stats(): CommitStats {
    return this.#committer.stats();
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      await this.#committer.idle();
      await this.#onClose?.();
    })();
    return this.#closing;
  }
}

/**
 * automerge-repo storage adapter on LevelDB (`level`), checksummed and group-committed.
 *
 * @remarks Use {@link LevelStorageAdapter.open} with a path (the adapter owns and closes
 * the database) or construct it on an open `Level`/sublevel you own (the adapter uses its
 * whole key space with byte encodings and never closes it). See
 * {@link ChecksummedStorageAdapter} for the contract.
 */
export class LevelStorageAdapter extends RawStorageAdapter {
  /** Adapter on a database (or sublevel) owned by the caller. */
  constructor(db: LevelDatabase, options: StorageAdapterOptions = {}, onClose?: () => Promise<void>) {
    super(new LevelRawStore(db), options, onClose);
  }

  /** Opens (creating if needed) a LevelDB at `path` owned by the adapter, or wraps `db`. */
  static async open(
    pathOrDb: string | LevelDatabase,
    options: StorageAdapterOptions = {},
  ): Promise<LevelStorageAdapter> {
    if (typeof pathOrDb !== 'string') return new LevelStorageAdapter(pathOrDb, options);
    const db = await openLevel(pathOrDb);
    return new LevelStorageAdapter(db, options, () => db.close());
  }
}

/** Options of {@link MemoryStorageAdapter}. */
export interface MemoryStorageAdapterOptions extends StorageAdapterOptions {
  /** Backend to use (share it to simulate a restart, or to reach raw bytes in tests). */
  readonly backend?: MemoryKeyValue;
}

/**
 * In-memory twin of {@link LevelStorageAdapter}: same framing, checksums, ordering,
 * group commit and errors, for tests and simulations.
 */
export class MemoryStorageAdapter extends RawStorageAdapter {
  constructor(options: MemoryStorageAdapterOptions = {}) {
    super(options.backend ?? new MemoryKeyValue(), options);
  }
}
