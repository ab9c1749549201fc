/**
 * The byte-level key/value layer under the checksummed adapters: one interface, a LevelDB
 * implementation and an in-memory one, so both adapters share every line of logic above it.
 */
import { Level } from 'level';
import type { ByteRange } from './keys.js';

/** One write in an atomic batch. */
export type RawOp =
  | { readonly type: 'put'; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly type: 'del'; readonly key: Uint8Array };

/** A key range plus iteration options. */
export interface RawRange extends ByteRange {
  readonly reverse?: boolean;
  readonly limit?: number;
}

/** One stored key and its raw (framed) value. */
export interface RawEntry {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

/**
 * Ordered byte key/value storage (LevelDB semantics: keys sorted bytewise).
 *
 * @remarks `write` applies all ops atomically, in order, and resolves only once they are
 * durable. Reads return values the caller may keep (never a view on mutable internals).
 */
export interface RawStore {
  get(key: Uint8Array): Promise<Uint8Array | undefined>;
  /** `get` without waiting: what the log reads on demand from synchronous queries. */
  getSync(key: Uint8Array): Uint8Array | undefined;
  getMany(keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]>;
  entries(range: RawRange): AsyncIterable<RawEntry>;
  keys(range: RawRange): AsyncIterable<Uint8Array>;
  write(ops: readonly RawOp[]): Promise<void>;
}

/** Per-operation encoding options: this package always talks bytes to LevelDB. */
const VIEW = { keyEncoding: 'view', valueEncoding: 'view' } as const;

/** An iterator as returned by abstract-level's `iterator()`/`keys()`. */
interface LevelIteratorLike<T> {
  nextv(size: number): Promise<T[]>;
  close(): Promise<void>;
}

/**
 * The subset of an abstract-level database (a `Level`, a `ClassicLevel` or any sublevel)
 * this package uses. Keys and values are always passed with `view` (Uint8Array) encodings,
 * so the database's own default encodings do not matter.
 */
export interface LevelDatabase {
  readonly status: 'opening' | 'open' | 'closing' | 'closed';
  open(): Promise<void>;
  close(): Promise<void>;
  get<K = Uint8Array, V = Uint8Array>(
    key: K,
    options: { keyEncoding: 'view'; valueEncoding: 'view' },
  ): Promise<V | undefined>;
  /** abstract-level 3's synchronous read (classic-level implements it; a sublevel forwards it). */
  getSync<K = Uint8Array, V = Uint8Array>(
    key: K,
    options: { keyEncoding: 'view'; valueEncoding: 'view' },
  ): V | undefined;
  getMany<K = Uint8Array, V = Uint8Array>(
    keys: K[],
    options: { keyEncoding: 'view'; valueEncoding: 'view' },
  ): Promise<(V | undefined)[]>;
  put<K = Uint8Array, V = Uint8Array>(
    key: K,
    value: V,
    options: { keyEncoding: 'view'; valueEncoding: 'view' },
  ): Promise<void>;
  del<K = Uint8Array>(key: K, options: { keyEncoding: 'view' }): Promise<void>;
  batch<K = Uint8Array, V = Uint8Array>(
    ops: ({ type: 'put'; key: K; value: V } | { type: 'del'; key: K })[],
    options: { keyEncoding: 'view'; valueEncoding: 'view'; sync: boolean },
  ): Promise<void>;
  iterator<K = Uint8Array, V = Uint8Array>(options: LevelRangeOptions): LevelIteratorLike<[K, V]>;
  keys<K = Uint8Array>(options: LevelRangeOptions): LevelIteratorLike<K>;
  /** `key` (already encoded) with this database's sublevel prefix; as is for a root database. */
  prefixKey(key: Uint8Array, keyFormat: 'view'): Uint8Array;
  /** The root database of a sublevel (abstract-level 3's `sublevel.db`); a root database has none. */
  readonly db?: LevelDatabase;
}

/** A put or del as classic-level's private `_batch` takes it: keys and values already encoded. */
type EncodedOp =
  | { readonly type: 'put'; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly type: 'del'; readonly key: Uint8Array };

/**
 * What of a root `Level` (classic-level) {@link LevelRawStore.write} reads to hand a batch straight
 * to the implementation: abstract-level's private `_batch`, its hooks and its `write` listeners.
 */
interface DirectBatchLevel {
  _batch(ops: EncodedOp[], options: { sync: boolean }): Promise<void>;
  readonly hooks: { readonly prewrite: { readonly noop: boolean } };
  listenerCount(event: 'write'): number;
}

/** classic-level's write options: the batch's own, not copied onto each op. */
const SYNC = { sync: true } as const;

/** Range options as passed to LevelDB iterators. */
interface LevelRangeOptions {
  keyEncoding: 'view';
  valueEncoding: 'view';
  gte?: Uint8Array;
  lt?: Uint8Array;
  reverse?: boolean;
  limit?: number;
}

function rangeOptions(range: RawRange): LevelRangeOptions {
  const o: LevelRangeOptions = { ...VIEW };
  if (range.gte !== undefined) o.gte = range.gte;
  if (range.lt !== undefined) o.lt = range.lt;
  if (range.reverse === true) o.reverse = true;
  if (range.limit !== undefined) o.limit = range.limit;
  return o;
}

/** A plain `Uint8Array` view (LevelDB hands out Buffers; callers compare with `Uint8Array`). */
function plain(b: Uint8Array): Uint8Array {
  return Object.getPrototypeOf(b) === Uint8Array.prototype
    ? b
    : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

async function* drain<T>(it: LevelIteratorLike<T>): AsyncGenerator<T> {
  try {
    for (;;) {
      const items = await it.nextv(256);
      if (items.length === 0) return;
      yield* items;
    }
  } finally {
    await it.close();
  }
}

/**
 * {@link RawStore} over an abstract-level database; a write is one synced `batch` on the root
 * database, keys prefixed here.
 */
export class LevelRawStore implements RawStore {
  readonly #db: LevelDatabase;
  /** Where writes go: the root database (`#db` itself unless that is a sublevel). */
  readonly #root: LevelDatabase;

  constructor(db: LevelDatabase) {
    this.#db = db;
    this.#root = db.db ?? db;
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    const v = await this.#db.get<Uint8Array, Uint8Array>(key, VIEW);
    return v === undefined ? undefined : plain(v);
  }

  getSync(key: Uint8Array): Uint8Array | undefined {
    const v = this.#db.getSync<Uint8Array, Uint8Array>(key, VIEW);
    return v === undefined ? undefined : plain(v);
  }

  async getMany(keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    if (keys.length === 0) return [];
    const vs = await this.#db.getMany<Uint8Array, Uint8Array>([...keys], VIEW);
    return vs.map((v) => (v === undefined ? undefined : plain(v)));
  }

  async *entries(range: RawRange): AsyncGenerator<RawEntry> {
    const it = this.#db.iterator<Uint8Array, Uint8Array>(rangeOptions(range));
    for await (const [key, value] of drain(it)) yield { key: plain(key), value: plain(value) };
  }

  async *keys(range: RawRange): AsyncGenerator<Uint8Array> {
    const it = this.#db.keys<Uint8Array>(rangeOptions(range));
    for await (const key of drain(it)) yield plain(key);
  }

  /**
   * Writes `ops` atomically and durably.
   *
   * @remarks Handed to the root database with the sublevel's prefix put on each key here: a
   * sublevel's `batch` copies and re-encodes every op, then hands the new array to its parent's
   * `batch`, which does it all again (a third of the CPU of a cold sync's write of 10,000 ops per
   * sealed segment). abstract-level's chained batch is no cheaper per op.
   *
   * On an open classic-level root with no prewrite hook and no `write` listener, the ops go
   * straight to classic-level's `_batch` (abstract-level's private API, which its public `batch`
   * calls once it has made a copy of every op with the batch's options spread into it, looked its
   * encodings up and encoded it again: with a `view` encoding and byte keys, the same bytes). That
   * copy was 10 % of a new device's CPU profile over a 100k-event cold sync, more than LevelDB's own
   * write. Keys and values are checked here as `batch` would (bytes, a key not empty). Anything
   * else (a database opening or closing, another implementation, a hook) takes `batch`.
   */
  write(ops: readonly RawOp[]): Promise<void> {
    // Not an async function: no frame of it holds the ops while LevelDB syncs (classic-level has
    // copied them by the time `_batch` returns its promise).
    try {
      const db = this.#db;
      const encoded: EncodedOp[] = ops.map((op) => {
        const key = db === this.#root ? op.key : db.prefixKey(op.key, 'view');
        return op.type === 'put' ? { type: 'put', key, value: op.value } : { type: 'del', key };
      });
      const direct = this.#direct();
      if (direct === undefined)
        return this.#root.batch<Uint8Array, Uint8Array>(encoded, { ...VIEW, sync: true });
      for (const op of encoded) {
        if (!(op.key instanceof Uint8Array) || op.key.length === 0)
          throw new TypeError('a batch key must be a non-empty Uint8Array');
        if (op.type === 'put' && !(op.value instanceof Uint8Array))
          throw new TypeError('a batch value must be a Uint8Array');
      }
      return direct._batch(encoded, SYNC);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** The root database, when a batch may go straight to classic-level (see {@link LevelRawStore.write}). */
  #direct(): DirectBatchLevel | undefined {
    const root = this.#root;
    if (!(root instanceof Level) || root.status !== 'open') return undefined;
    const level = root as unknown as DirectBatchLevel;
    if (!level.hooks.prewrite.noop || level.listenerCount('write') > 0) return undefined;
    return level;
  }
}

function keyString(key: Uint8Array): string {
  let s = '';
  for (const b of key) s += String.fromCharCode(b);
  return s;
}

function keyBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/**
 * In-memory ordered byte key/value storage: the backend of the `Memory*` adapters.
 *
 * @remarks Keep a reference to share it between store instances (a "reopen") or to reach
 * the raw bytes in tests (`getRaw`/`putRaw`/`deleteRaw`). `failNextWrites(n)` makes the
 * next `n` batch writes reject, to exercise I/O-failure paths. Values are copied in and out.
 */
export class MemoryKeyValue implements RawStore {
  readonly #data = new Map<string, Uint8Array>();
  /** Keys as binary strings (code units 0..255 compare like the bytes they hold), kept sorted. */
  readonly #sorted: string[] = [];
  #failures = 0;

  /** Number of stored keys. */
  get size(): number {
    return this.#data.size;
  }

  /** The raw stored bytes under `key` (a copy), for tests. */
  getRaw(key: Uint8Array): Uint8Array | undefined {
    const v = this.#data.get(keyString(key));
    return v === undefined ? undefined : v.slice();
  }

  /** Overwrites raw bytes under `key`, bypassing framing, for tests. */
  putRaw(key: Uint8Array, value: Uint8Array): void {
    const k = keyString(key);
    if (!this.#data.has(k)) this.#sorted.splice(this.#lowerBound(k), 0, k);
    this.#data.set(k, value.slice());
  }

  /** Deletes `key`, bypassing framing, for tests. */
  deleteRaw(key: Uint8Array): void {
    const k = keyString(key);
    if (this.#data.delete(k)) this.#sorted.splice(this.#lowerBound(k), 1);
  }

  /**
   * A copy of everything stored now, as a separate backend: a backup of the disk taken at this
   * instant (later writes to either do not reach the other). The simulator restores a relay from
   * one, and keeps one at a crash as the disk the restarted process finds.
   */
  clone(): MemoryKeyValue {
    const copy = new MemoryKeyValue();
    for (const k of this.#sorted) copy.#data.set(k, this.#data.get(k)!);
    copy.#sorted.push(...this.#sorted);
    return copy;
  }

  /** Makes the next `count` calls to `write` fail with an I/O-like error (nothing applied). */
  failNextWrites(count: number): void {
    this.#failures = count;
  }

  /** Index of the first sorted key `>= k`. */
  #lowerBound(k: string): number {
    let lo = 0;
    let hi = this.#sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#sorted[mid]! < k) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return Promise.resolve(this.getRaw(key));
  }

  getSync(key: Uint8Array): Uint8Array | undefined {
    return this.getRaw(key);
  }

  getMany(keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    return Promise.resolve(keys.map((k) => this.getRaw(k)));
  }

  #select(range: RawRange): string[] {
    // A copy taken at call time, like a LevelDB iterator's implicit snapshot.
    const lo = range.gte === undefined ? 0 : this.#lowerBound(keyString(range.gte));
    const hi = range.lt === undefined ? this.#sorted.length : this.#lowerBound(keyString(range.lt));
    if (hi <= lo) return [];
    const limit = range.limit !== undefined && range.limit >= 0 ? range.limit : hi - lo;
    if (range.reverse === true) return this.#sorted.slice(Math.max(lo, hi - limit), hi).reverse();
    return this.#sorted.slice(lo, Math.min(hi, lo + limit));
  }

  async *entries(range: RawRange): AsyncGenerator<RawEntry> {
    const snapshot = this.#select(range).map((k) => ({
      key: keyBytes(k),
      value: this.#data.get(k)!.slice(),
    }));
    await Promise.resolve();
    yield* snapshot;
  }

  async *keys(range: RawRange): AsyncGenerator<Uint8Array> {
    const snapshot = this.#select(range).map(keyBytes);
    await Promise.resolve();
    yield* snapshot;
  }

  async write(ops: readonly RawOp[]): Promise<void> {
    await Promise.resolve();
    if (this.#failures > 0) {
      this.#failures--;
      throw Object.assign(new Error('injected write failure'), { code: 'MEMORY_INJECTED_FAILURE' });
    }
    for (const op of ops) {
      if (op.type === 'put') this.putRaw(op.key, op.value);
      else this.deleteRaw(op.key);
    }
  }
}
