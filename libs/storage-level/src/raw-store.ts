/**
 * The byte-level key/value layer under the checksummed adapters: one interface, a LevelDB
 * implementation and an in-memory one, so both adapters share every line of logic above it.
 */
import { transientBytes } from './frame.js';
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
  /** abstract-level's chained batch (only on an open database). */
  batch(): LevelChainedBatch;
  /** The database's default key encoding (abstract-level's `keyEncoding()`). */
  keyEncoding(): { readonly name: string };
  /** The database's default value encoding (abstract-level's `valueEncoding()`). */
  valueEncoding(): { readonly name: string };
  iterator<K = Uint8Array, V = Uint8Array>(options: LevelRangeOptions): LevelIteratorLike<[K, V]>;
  keys<K = Uint8Array>(options: LevelRangeOptions): LevelIteratorLike<K>;
  /** `key` (already encoded) with this database's sublevel prefix; as is for a root database. */
  prefixKey(key: Uint8Array, keyFormat: 'view'): Uint8Array;
  /** The root database of a sublevel (abstract-level 3's `sublevel.db`); a root database has none. */
  readonly db?: LevelDatabase;
}

/** abstract-level's chained batch, as {@link LevelRawStore.write} uses it. */
export interface LevelChainedBatch {
  put(key: Uint8Array, value: Uint8Array, options?: { keyEncoding: 'view'; valueEncoding: 'view' }): unknown;
  del(key: Uint8Array, options?: { keyEncoding: 'view' }): unknown;
  write(options: { sync: boolean }): Promise<void>;
  close(): Promise<void>;
}

/** The write options of a batch: synced before it resolves. */
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
 * {@link RawStore} over an abstract-level database; a write is one synced chained batch on the
 * root database, keys prefixed here.
 */
export class LevelRawStore implements RawStore {
  readonly #db: LevelDatabase;
  /** Where writes go: the root database (`#db` itself unless that is a sublevel). */
  readonly #root: LevelDatabase;
  /** The options of each chained `put`/`del`: none when the root's defaults already are `view`. */
  readonly #opOptions: typeof VIEW | undefined;
  /**
   * The bytes `#db.prefixKey` puts in front of a key (empty for a root), when it is a plain prefix;
   * undefined when not (another implementation): then `prefixKey` is asked for every key.
   */
  readonly #prefix: Uint8Array | undefined;

  constructor(db: LevelDatabase) {
    this.#db = db;
    this.#root = db.db ?? db;
    const bytes = this.#root.keyEncoding().name === 'view' && this.#root.valueEncoding().name === 'view';
    this.#opOptions = bytes ? undefined : VIEW;
    this.#prefix = db === this.#root ? new Uint8Array(0) : plainPrefix(db);
  }

  /** `key` as the root database knows it: the sublevel's prefix, then `key`, in a transient slab. */
  #rootKey(key: Uint8Array): Uint8Array {
    const prefix = this.#prefix;
    if (prefix === undefined) return this.#db.prefixKey(key, 'view');
    if (prefix.length === 0) return key;
    const out = transientBytes(prefix.length + key.length);
    out.set(prefix);
    out.set(key, prefix.length);
    return out;
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
   * @remarks One chained batch on the root database (abstract-level's public API), with the
   * sublevel's prefix put on each key here: a sublevel's `batch` copies and re-encodes every op,
   * then hands the new array to its parent's, which does it all again. The prefix is learnt once
   * (`plainPrefix`) and each prefixed key is carved out of a shared slab (`transientBytes`):
   * `prefixKey` made a small typed array per key, whose bytes V8 keeps on its heap until the
   * native side asks for its buffer, which then costs an ArrayBuffer of its own. The chained batch's `put`
   * hands each key and value to classic-level's native batch at once (`batch_put`: a copy into
   * LevelDB's `WriteBatch`), where the array form makes a copy of every op with the batch's
   * options spread into it and then has the native side look up `type`, `key` and `value` of
   * each by name (`batch_do`): measured on the main thread, ≈ 25 µs an event (two ops) through
   * the public array form, ≈ 6–8 through its private `_batch` (what this package used from
   * session 13 to 15), ≈ 2.5–4 through the chained batch (README, "session 15"). Prewrite hooks
   * and `write` listeners run as they would with any public batch. A database still opening
   * (or closed) takes the array form, which waits for the open (or rejects). Keys and values are
   * checked to be bytes first: a `view` encoding would store a string's UTF-8 instead.
   */
  write(ops: readonly RawOp[]): Promise<void> {
    // Not an async function: no frame of it holds the ops while LevelDB syncs (the native batch
    // has copied every key and value before `write` returns its promise).
    try {
      const root = this.#root;
      for (const op of ops) {
        if (!(op.key instanceof Uint8Array) || op.key.length === 0)
          throw new TypeError('a batch key must be a non-empty Uint8Array');
        if (op.type === 'put' && !(op.value instanceof Uint8Array))
          throw new TypeError('a batch value must be a Uint8Array');
      }
      if (root.status !== 'open') {
        const encoded = ops.map((op) => {
          const key = this.#rootKey(op.key);
          return op.type === 'put'
            ? { type: 'put' as const, key, value: op.value }
            : { type: 'del' as const, key };
        });
        return root.batch<Uint8Array, Uint8Array>(encoded, { ...VIEW, sync: true });
      }
      const batch = root.batch();
      const options = this.#opOptions;
      try {
        for (const op of ops) {
          const key = this.#rootKey(op.key);
          if (op.type === 'put') batch.put(key, op.value, options);
          else batch.del(key, options);
        }
      } catch (err) {
        void batch.close();
        throw err;
      }
      return batch.write(SYNC);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }
}

/**
 * The bytes a sublevel's `prefixKey` puts in front of every key, copied, when that is all it does
 * (abstract-level's sublevels: the prefix, then the key); undefined otherwise.
 */
function plainPrefix(db: LevelDatabase): Uint8Array | undefined {
  const probe = Uint8Array.of(0x00, 0xff, 0x61);
  const prefixed = db.prefixKey(probe, 'view');
  if (!(prefixed instanceof Uint8Array) || prefixed.length < probe.length) return undefined;
  const prefix = prefixed.slice(0, prefixed.length - probe.length);
  for (let i = 0; i < probe.length; i++) if (prefixed[prefix.length + i] !== probe[i]) return undefined;
  const again = db.prefixKey(Uint8Array.of(0x62), 'view');
  if (again.length !== prefix.length + 1 || again[prefix.length] !== 0x62) return undefined;
  for (let i = 0; i < prefix.length; i++) if (again[i] !== prefix[i]) return undefined;
  return prefix;
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
