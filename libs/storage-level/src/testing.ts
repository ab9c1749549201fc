/**
 * Conformance suites for the storage ports, and ready-made set-ups for this package's
 * adapters. Every storage adapter and every event store runs the same suite; its own
 * test file is a few lines.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StorageKey } from '@automerge/automerge-repo';
import { AccordError, ErrorCode } from '@accord/protocol';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { STORAGE_CONFLICT } from './errors.js';
import { openDeviceDatabase } from './device-database.js';
import {
  eventStoreRawKey,
  LevelEventStore,
  MemoryEventStore,
  type EventStore,
  type EventStoreOptions,
  type EventStoreRawTarget,
  type StoredEvent,
} from './event-store.js';
import { openLevel } from './level-open.js';
import { MemoryKeyValue, type LevelDatabase } from './raw-store.js';
import {
  LevelStorageAdapter,
  MemoryStorageAdapter,
  storageAdapterRawKey,
  type ChecksummedStorageAdapter,
  type CorruptionReport,
} from './storage-adapter.js';

// ---------------------------------------------------------------------------------------
// Fixtures

/** Rewrites raw stored bytes (the frame included) into damaged bytes. */
export type RawMutation = (raw: Uint8Array) => Uint8Array;

/** What a storage-adapter set-up receives: the suite's corruption listener. */
export interface StorageAdapterSetupOptions {
  readonly onCorruption: (report: CorruptionReport) => void;
}

/** A fresh, empty adapter plus the hooks the suite needs. */
export interface StorageAdapterFixture {
  readonly adapter: ChecksummedStorageAdapter;
  /** Closes everything and deletes temporary files. Must tolerate an adapter already closed. */
  teardown(): Promise<void>;
  /** Replaces the raw stored bytes of `key` with `mutate(raw)`, bypassing the checksum. */
  corrupt(key: StorageKey, mutate: RawMutation): Promise<void>;
}

/** Creates a fresh fixture for one test; must pass `options.onCorruption` to the adapter. */
export type StorageAdapterSetup = (options: StorageAdapterSetupOptions) => Promise<StorageAdapterFixture>;

/** A fresh, empty event store plus the hooks the suite needs. */
export interface EventStoreFixture {
  readonly store: EventStore;
  /** Closes the current store (the last one `reopen` gave, too) and deletes temporary files. */
  teardown(): Promise<void>;
  /** Replaces the raw stored bytes at `target` with `mutate(raw)`, bypassing the checksum. */
  corrupt(target: EventStoreRawTarget, mutate: RawMutation): Promise<void>;
  /** Deletes the raw entry at `target` (makes holes and index damage). */
  deleteRaw(target: EventStoreRawTarget): Promise<void>;
  /** Closes the current store and opens a new one on the same data, with the same options. */
  reopen(): Promise<EventStore>;
}

/** What an event-store set-up receives. */
export interface EventStoreSetupOptions {
  readonly onCorruption: (report: CorruptionReport) => void;
}

/** Creates a fresh fixture for one test; must pass `options.onCorruption` to the store. */
export type EventStoreSetup = (options: EventStoreSetupOptions) => Promise<EventStoreFixture>;

/** Raw byte access used by the ready-made fixtures. */
interface RawAccess {
  get(key: Uint8Array): Promise<Uint8Array | undefined>;
  put(key: Uint8Array, value: Uint8Array): Promise<void>;
  del(key: Uint8Array): Promise<void>;
}

const VIEW = { keyEncoding: 'view', valueEncoding: 'view' } as const;

function levelRaw(db: () => LevelDatabase): RawAccess {
  return {
    get: (key) => db().get<Uint8Array, Uint8Array>(key, VIEW),
    put: (key, value) => db().put(key, value, VIEW),
    del: (key) => db().del(key, { keyEncoding: 'view' }),
  };
}

function memoryRaw(kv: MemoryKeyValue): RawAccess {
  return {
    get: (key) => Promise.resolve(kv.getRaw(key)),
    put: (key, value) => Promise.resolve(kv.putRaw(key, value)),
    del: (key) => Promise.resolve(kv.deleteRaw(key)),
  };
}

async function rewrite(raw: RawAccess, key: Uint8Array, mutate: RawMutation): Promise<void> {
  const value = await raw.get(key);
  if (value === undefined) throw new Error('test hook: nothing stored under that key');
  await raw.put(key, mutate(new Uint8Array(value)));
}

/** A temporary directory, removed by the returned `remove()`. */
export async function makeTempDir(
  prefix = 'accord-storage-',
): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** Set-up: {@link MemoryStorageAdapter} on a fresh {@link MemoryKeyValue}. */
export const memoryStorageAdapterSetup: StorageAdapterSetup = (options) => {
  const backend = new MemoryKeyValue();
  const adapter = new MemoryStorageAdapter({ backend, onCorruption: options.onCorruption });
  const raw = memoryRaw(backend);
  return Promise.resolve({
    adapter,
    teardown: () => adapter.close(),
    corrupt: (key, mutate) => rewrite(raw, storageAdapterRawKey(key), mutate),
  });
};

/** Set-up: {@link LevelStorageAdapter} on the root of a real LevelDB in a temporary directory. */
export const levelStorageAdapterSetup: StorageAdapterSetup = async (options) => {
  const dir = await makeTempDir();
  const db = await openLevel(dir.path);
  const adapter = new LevelStorageAdapter(db, { onCorruption: options.onCorruption });
  const raw = levelRaw(() => db);
  return {
    adapter,
    teardown: async () => {
      await adapter.close();
      await db.close();
      await dir.remove();
    },
    corrupt: (key, mutate) => rewrite(raw, storageAdapterRawKey(key), mutate),
  };
};

/** Set-up: the adapter of {@link openDeviceDatabase} (a sublevel shared with the event store). */
export const deviceDatabaseStorageAdapterSetup: StorageAdapterSetup = async (options) => {
  const dir = await makeTempDir();
  const device = await openDeviceDatabase(dir.path, { onCorruption: options.onCorruption });
  const sub = device.db.sublevel<Uint8Array, Uint8Array>('automerge', VIEW);
  const raw = levelRaw(() => sub);
  return {
    adapter: device.storageAdapter,
    teardown: async () => {
      await device.close();
      await dir.remove();
    },
    corrupt: (key, mutate) => rewrite(raw, storageAdapterRawKey(key), mutate),
  };
};

/** Set-up: {@link MemoryEventStore}; `reopen` makes a new store on the same backend. */
export const memoryEventStoreSetup: EventStoreSetup = (options) => {
  const backend = new MemoryKeyValue();
  const make = (): MemoryEventStore => new MemoryEventStore({ backend, onCorruption: options.onCorruption });
  let store = make();
  const raw = memoryRaw(backend);
  return Promise.resolve({
    store,
    teardown: () => store.close(),
    corrupt: (target, mutate) => rewrite(raw, eventStoreRawKey(target), mutate),
    deleteRaw: (target) => raw.del(eventStoreRawKey(target)),
    reopen: async () => {
      await store.close();
      store = make();
      return store;
    },
  });
};

/** Set-up: {@link LevelEventStore} opened on a path in a temporary directory (reopen closes and reopens the database). */
export const levelEventStoreSetup: EventStoreSetup = async (options) => {
  const dir = await makeTempDir();
  const storeOptions: EventStoreOptions = { onCorruption: options.onCorruption };
  let store = await LevelEventStore.open(dir.path, storeOptions);
  const raw = levelRaw(() => store.rawDb);
  return {
    store,
    teardown: async () => {
      await store.close();
      await dir.remove();
    },
    corrupt: (target, mutate) => rewrite(raw, eventStoreRawKey(target), mutate),
    deleteRaw: (target) => raw.del(eventStoreRawKey(target)),
    reopen: async () => {
      await store.close();
      store = await LevelEventStore.open(dir.path, storeOptions);
      return store;
    },
  };
};

/** Set-up: the event store of {@link openDeviceDatabase} (a sublevel shared with the automerge adapter). */
export const deviceDatabaseEventStoreSetup: EventStoreSetup = async (options) => {
  const dir = await makeTempDir();
  let device = await openDeviceDatabase(dir.path, { onCorruption: options.onCorruption });
  const raw = levelRaw(() => device.db.sublevel<Uint8Array, Uint8Array>('events', VIEW));
  return {
    store: device.eventStore,
    teardown: async () => {
      await device.close();
      await dir.remove();
    },
    corrupt: (target, mutate) => rewrite(raw, eventStoreRawKey(target), mutate),
    deleteRaw: (target) => raw.del(eventStoreRawKey(target)),
    reopen: async () => {
      await device.close();
      device = await openDeviceDatabase(dir.path, { onCorruption: options.onCorruption });
      return device.eventStore;
    },
  };
};

// ---------------------------------------------------------------------------------------
// Shared helpers

/** Damage that every checksummed store must detect, as raw-byte mutations of a framed value. */
export const CORRUPTIONS: readonly { readonly name: string; readonly mutate: RawMutation }[] = [
  { name: 'a flipped payload bit', mutate: (r) => flip(r, r.length - 1, 0x01) },
  { name: 'a flipped checksum byte', mutate: (r) => flip(r, 7, 0xff) },
  { name: 'a flipped length byte', mutate: (r) => flip(r, 5, 0x01) },
  { name: 'a wrong magic byte', mutate: (r) => flip(r, 0, 0xff) },
  { name: 'an unknown version', mutate: (r) => flip(r, 1, 0x7f) },
  { name: 'a truncated value (last byte lost)', mutate: (r) => r.slice(0, r.length - 1) },
  { name: 'a value cut inside its header', mutate: (r) => r.slice(0, 5) },
  { name: 'a zero-length value', mutate: () => new Uint8Array(0) },
  { name: 'a trailing extra byte', mutate: (r) => Uint8Array.from([...r, 0]) },
];

function flip(raw: Uint8Array, at: number, mask: number): Uint8Array {
  const out = raw.slice();
  out[at] = out[at]! ^ mask;
  return out;
}

/** Deterministic pseudo-random bytes (xorshift32), for large payloads. */
export function seededBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Asserts that `promise` rejects with an {@link AccordError} of `code`; returns the error. */
export async function expectAccordError(promise: Promise<unknown>, code: string): Promise<AccordError> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected an AccordError ${code}`).toBeInstanceOf(AccordError);
  expect((caught as AccordError).code).toBe(code);
  return caught as AccordError;
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of iterable) out.push(x);
  return out;
}

const utf8 = new TextEncoder();
const bytes = (s: string): Uint8Array => utf8.encode(s);

function compareKeys(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const d = compareUtf8(a[i]!, b[i]!);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

function compareUtf8(a: string, b: string): number {
  const x = utf8.encode(a);
  const y = utf8.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

function hasPrefix(key: readonly string[], prefix: readonly string[]): boolean {
  return prefix.length <= key.length && prefix.every((s, i) => key[i] === s);
}

// ---------------------------------------------------------------------------------------
// Storage adapter conformance

/**
 * The automerge-repo storage contract plus Accord's checksum, durability and lifecycle
 * contract, as a vitest suite.
 *
 * @remarks Call at the top level of a test file. `setup` runs before each test.
 */
export function runStorageAdapterConformance(name: string, setup: StorageAdapterSetup): void {
  describe(`storage adapter conformance: ${name}`, () => {
    let fx: StorageAdapterFixture;
    let adapter: ChecksummedStorageAdapter;
    const reports: CorruptionReport[] = [];

    beforeEach(async () => {
      reports.length = 0;
      fx = await setup({ onCorruption: (r) => reports.push(r) });
      adapter = fx.adapter;
    });
    afterEach(async () => {
      await fx.teardown();
    });

    const A = (): Uint8Array => new Uint8Array([0, 1, 127, 99, 154, 235]);
    const B = (): Uint8Array => new Uint8Array([1, 76, 160, 53, 57, 10, 230]);
    const C = (): Uint8Array => new Uint8Array([2, 111, 74, 131, 236, 96, 142, 193]);

    describe('automerge-repo contract', () => {
      it('load of a missing key gives undefined', async () => {
        expect(await adapter.load(['AAAAA', 'sync-state', 'xxxxx'])).toBeUndefined();
      });

      it('returns what was saved, as a plain Uint8Array, for simple and composite keys', async () => {
        await adapter.save(['storage-adapter-id'], A());
        await adapter.save(['AAAAA', 'sync-state', 'xxxxx'], B());
        expect(await adapter.load(['storage-adapter-id'])).toStrictEqual(A());
        expect(await adapter.load(['AAAAA', 'sync-state', 'xxxxx'])).toStrictEqual(B());
        expect(await adapter.load(['AAAAA', 'sync-state'])).toBeUndefined();
      });

      it('round-trips a large payload byte for byte', async () => {
        const big = seededBytes(1_000_003, 7);
        await adapter.save(['doc', 'snapshot', 'big'], big);
        const loaded = await adapter.load(['doc', 'snapshot', 'big']);
        expect(Object.getPrototypeOf(loaded)).toBe(Uint8Array.prototype);
        // Compared as one string: vitest's deep equality walks a megabyte slowly.
        expect(Buffer.from(loaded!).equals(big)).toBe(true);
      });

      it('keeps a zero-length value as zero-length data, distinct from a missing key', async () => {
        await adapter.save(['doc', 'empty'], new Uint8Array(0));
        const loaded = await adapter.load(['doc', 'empty']);
        expect(loaded).toBeInstanceOf(Uint8Array);
        expect(loaded).toHaveLength(0);
        expect(await adapter.loadRange(['doc'])).toStrictEqual([
          { key: ['doc', 'empty'], data: new Uint8Array(0) },
        ]);
      });

      it('stores a copy: later changes to the saved or loaded arrays do not reach storage', async () => {
        const data = A();
        const pending = adapter.save(['k'], data);
        data[0] = 200;
        await pending;
        const loaded = (await adapter.load(['k']))!;
        loaded[1] = 200;
        expect(await adapter.load(['k'])).toStrictEqual(A());
      });

      it('loadRange of an empty store or unknown prefix gives []', async () => {
        expect(await adapter.loadRange(['AAAAA'])).toStrictEqual([]);
        await adapter.save(['BBBBB', 'x'], A());
        expect(await adapter.loadRange(['AAAAA'])).toStrictEqual([]);
      });

      it('loadRange returns exactly the keys under the prefix, in key order', async () => {
        await adapter.save(['AAAAA', 'sync-state', 'xxxxx'], A());
        await adapter.save(['AAAAA', 'snapshot', 'yyyyy'], B());
        await adapter.save(['AAAAA', 'sync-state', 'zzzzz'], C());
        await adapter.save(['BBBBB', 'sync-state', 'zzzzz'], C());
        expect(await adapter.loadRange(['AAAAA'])).toStrictEqual([
          { key: ['AAAAA', 'snapshot', 'yyyyy'], data: B() },
          { key: ['AAAAA', 'sync-state', 'xxxxx'], data: A() },
          { key: ['AAAAA', 'sync-state', 'zzzzz'], data: C() },
        ]);
        expect(await adapter.loadRange(['AAAAA', 'sync-state'])).toStrictEqual([
          { key: ['AAAAA', 'sync-state', 'xxxxx'], data: A() },
          { key: ['AAAAA', 'sync-state', 'zzzzz'], data: C() },
        ]);
        // A full key is a prefix of itself.
        expect(await adapter.loadRange(['AAAAA', 'snapshot', 'yyyyy'])).toStrictEqual([
          { key: ['AAAAA', 'snapshot', 'yyyyy'], data: B() },
        ]);
        // The empty prefix is everything.
        expect((await adapter.loadRange([])).map((c) => c.key)).toHaveLength(4);
      });

      it('loadRange never matches sibling prefixes that merely share characters', async () => {
        await adapter.save(['AAAAA', 'x'], A());
        await adapter.save(['AAAAAB', 'x'], B());
        await adapter.save(['AAAA', 'x'], C());
        await adapter.save(['a', 'b'], A());
        await adapter.save(['a', 'bc'], B());
        await adapter.save(['ab'], C());
        await adapter.save(['a', 'b', 'c'], C());
        expect((await adapter.loadRange(['AAAAA'])).map((c) => c.key)).toStrictEqual([['AAAAA', 'x']]);
        expect((await adapter.loadRange(['a', 'b'])).map((c) => c.key)).toStrictEqual([
          ['a', 'b'],
          ['a', 'b', 'c'],
        ]);
        expect((await adapter.loadRange(['a'])).map((c) => c.key)).toStrictEqual([
          ['a', 'b'],
          ['a', 'b', 'c'],
          ['a', 'bc'],
        ]);
      });

      it('keys may contain any character, including separators and escape bytes', async () => {
        const keys: string[][] = [
          ['a\u0000b'],
          ['a', 'b'],
          ['a\u0001', 'b'],
          ['a', '\u0000'],
          ['a', ''],
          ['a/b', 'c'],
          ['a', 'b/c'],
          ['', ''],
          ['\uffff', '😀'],
          ['a!b', '!'],
        ];
        for (const [i, key] of keys.entries()) await adapter.save(key, new Uint8Array([i]));
        for (const [i, key] of keys.entries())
          expect(await adapter.load(key)).toStrictEqual(new Uint8Array([i]));
        const all = await adapter.loadRange([]);
        expect(all.map((c) => c.key).sort(compareKeys)).toStrictEqual([...keys].sort(compareKeys));
        expect((await adapter.loadRange(['a'])).map((c) => c.key).sort(compareKeys)).toStrictEqual(
          keys.filter((k) => k[0] === 'a').sort(compareKeys),
        );
      });

      it('loadRange matches a model for random keys and prefixes', async () => {
        // Few distinct characters, so that shared prefixes and sibling segments are common.
        const segment = fc.string({
          unit: fc.constantFrom('a', 'b', '\u0000', '\u0001', '\u0002', 'é', '😀', '/', '\uffff'),
          maxLength: 3,
        });
        const key = fc.array(segment, { minLength: 1, maxLength: 3 });
        let run = 0;
        await fc.assert(
          fc.asyncProperty(
            fc.uniqueArray(key, { maxLength: 12, selector: (k) => JSON.stringify(k) }),
            fc.array(segment, { maxLength: 2 }),
            async (keys, prefix) => {
              const ns = `run-${run++}`;
              for (const [i, k] of keys.entries()) await adapter.save([ns, ...k], new Uint8Array([i]));
              const got = await adapter.loadRange([ns, ...prefix]);
              const want = keys
                .map((k, i) => ({ key: [ns, ...k], data: new Uint8Array([i]) }))
                .filter((c) => hasPrefix(c.key, [ns, ...prefix]))
                .sort((x, y) => compareKeys(x.key, y.key));
              expect(got).toStrictEqual(want);
            },
          ),
          { numRuns: 40 },
        );
      });

      it('remove deletes one key only; removing a missing key is fine', async () => {
        await adapter.save(['AAAAA', 'snapshot', 'xxxxx'], A());
        await adapter.save(['AAAAA', 'snapshot', 'xxxxx', 'child'], B());
        await adapter.remove(['AAAAA', 'snapshot', 'xxxxx']);
        await adapter.remove(['nothing', 'here']);
        expect(await adapter.load(['AAAAA', 'snapshot', 'xxxxx'])).toBeUndefined();
        expect(await adapter.loadRange(['AAAAA'])).toStrictEqual([
          { key: ['AAAAA', 'snapshot', 'xxxxx', 'child'], data: B() },
        ]);
      });

      it('save overwrites the value under the same key', async () => {
        await adapter.save(['AAAAA', 'sync-state', 'xxxxx'], A());
        await adapter.save(['AAAAA', 'sync-state', 'xxxxx'], B());
        expect(await adapter.loadRange(['AAAAA', 'sync-state'])).toStrictEqual([
          { key: ['AAAAA', 'sync-state', 'xxxxx'], data: B() },
        ]);
      });

      it('removeRange removes exactly the keys under the prefix', async () => {
        await adapter.save(['AAAAA', 'sync-state', 'xxxxx'], A());
        await adapter.save(['AAAAA', 'snapshot', 'yyyyy'], B());
        await adapter.save(['AAAAA', 'sync-state', 'zzzzz'], C());
        await adapter.save(['AAAAA', 'sync-stateX', 'q'], C());
        await adapter.save(['AAAAAB', 'sync-state', 'q'], C());
        await adapter.removeRange(['AAAAA', 'sync-state']);
        expect((await adapter.loadRange([])).map((c) => c.key)).toStrictEqual([
          ['AAAAA', 'snapshot', 'yyyyy'],
          ['AAAAA', 'sync-stateX', 'q'],
          ['AAAAAB', 'sync-state', 'q'],
        ]);
        await adapter.removeRange(['AAAAA']);
        expect((await adapter.loadRange([])).map((c) => c.key)).toStrictEqual([
          ['AAAAAB', 'sync-state', 'q'],
        ]);
        await adapter.removeRange([]);
        expect(await adapter.loadRange([])).toStrictEqual([]);
      });

      it('refuses keys it could not give back exactly', async () => {
        await expect(adapter.save([], A())).rejects.toBeInstanceOf(TypeError);
        await expect(adapter.save(['\ud800'], A())).rejects.toBeInstanceOf(TypeError);
        await expect(adapter.load([])).rejects.toThrow();
        expect(await adapter.loadRange([])).toStrictEqual([]);
      });
    });

    describe('durability and group commit', () => {
      it('coalesces 100 concurrent saves into a few synced batches', async () => {
        const before = adapter.stats();
        await Promise.all(
          Array.from({ length: 100 }, (_, i) =>
            adapter.save(['doc', 'incremental', String(i).padStart(3, '0')], new Uint8Array([i])),
          ),
        );
        const after = adapter.stats();
        expect(after.writes - before.writes).toBe(100);
        expect(after.batches - before.batches).toBeGreaterThanOrEqual(1);
        expect(after.batches - before.batches).toBeLessThanOrEqual(5);
        const chunks = await adapter.loadRange(['doc', 'incremental']);
        expect(chunks.map((c) => c.data)).toStrictEqual(
          Array.from({ length: 100 }, (_, i) => new Uint8Array([i])),
        );
      });

      it('applies concurrent saves, removes and removeRanges in call order (last write wins)', async () => {
        type Op =
          | { t: 'save'; k: string[]; v: number }
          | { t: 'remove'; k: string[] }
          | { t: 'removeRange'; k: string[] };
        const k = fc.array(fc.constantFrom('a', 'b', 'c'), { minLength: 1, maxLength: 3 });
        const op: fc.Arbitrary<Op> = fc.oneof(
          {
            weight: 5,
            arbitrary: fc.record({ t: fc.constant('save' as const), k, v: fc.integer({ min: 0, max: 255 }) }),
          },
          { weight: 2, arbitrary: fc.record({ t: fc.constant('remove' as const), k }) },
          {
            weight: 1,
            arbitrary: fc.record({
              t: fc.constant('removeRange' as const),
              k: fc.array(fc.constantFrom('a', 'b', 'c'), { maxLength: 2 }),
            }),
          },
        );
        let run = 0;
        await fc.assert(
          fc.asyncProperty(
            fc.array(op, { minLength: 1, maxLength: 40 }),
            fc.array(fc.nat({ max: 39 }), { maxLength: 3 }),
            async (ops, awaitPoints) => {
              const ns = `order-${run++}`;
              const model = new Map<string, { key: string[]; v: number }>();
              let pending: Promise<void>[] = [];
              for (const [i, o] of ops.entries()) {
                const key = [ns, ...o.k];
                if (o.t === 'save') {
                  pending.push(adapter.save(key, new Uint8Array([o.v])));
                  model.set(JSON.stringify(key), { key, v: o.v });
                } else if (o.t === 'remove') {
                  pending.push(adapter.remove(key));
                  model.delete(JSON.stringify(key));
                } else {
                  pending.push(adapter.removeRange(key));
                  for (const [s, e] of model) if (hasPrefix(e.key, key)) model.delete(s);
                }
                // Sometimes wait, so that later calls land in a later batch.
                if (awaitPoints.includes(i)) {
                  await Promise.all(pending);
                  pending = [];
                }
              }
              await Promise.all(pending);
              const want = [...model.values()]
                .sort((x, y) => compareKeys(x.key, y.key))
                .map((e) => ({ key: e.key, data: new Uint8Array([e.v]) }));
              expect(await adapter.loadRange([ns])).toStrictEqual(want);
            },
          ),
          { numRuns: 25 },
        );
      });

      it('close waits for pending writes, then refuses every call with STORAGE_CLOSED', async () => {
        const saves = Array.from({ length: 20 }, (_, i) =>
          adapter.save(['late', String(i)], new Uint8Array([i])),
        );
        await adapter.close();
        await expect(Promise.all(saves)).resolves.toHaveLength(20);
        await expectAccordError(adapter.load(['late', '1']), ErrorCode.STORAGE_CLOSED);
        await expectAccordError(adapter.save(['x'], A()), ErrorCode.STORAGE_CLOSED);
        await expectAccordError(adapter.remove(['x']), ErrorCode.STORAGE_CLOSED);
        await expectAccordError(adapter.loadRange(['late']), ErrorCode.STORAGE_CLOSED);
        await expectAccordError(adapter.removeRange(['late']), ErrorCode.STORAGE_CLOSED);
        await expectAccordError(adapter.scan(), ErrorCode.STORAGE_CLOSED);
        await adapter.close(); // idempotent
      });
    });

    describe('checksums', () => {
      for (const { name: damage, mutate } of CORRUPTIONS) {
        it(`load, loadRange and scan report ${damage} as STORAGE_CORRUPT`, async () => {
          const key = ['doc', 'incremental', 'h1'];
          await adapter.save(key, C());
          await adapter.save(['doc', 'incremental', 'h2'], B());
          await fx.corrupt(key, mutate);

          const err = await expectAccordError(adapter.load(key), ErrorCode.STORAGE_CORRUPT);
          expect(err.details['key']).toStrictEqual(key);
          const rangeErr = await expectAccordError(adapter.loadRange(['doc']), ErrorCode.STORAGE_CORRUPT);
          expect(rangeErr.details['key']).toStrictEqual(key);
          // The intact neighbour still loads.
          expect(await adapter.load(['doc', 'incremental', 'h2'])).toStrictEqual(B());

          const scan = await adapter.scan();
          expect(scan.corrupt).toStrictEqual([key]);
          expect(scan.checked).toBe(2);
          expect(reports.length).toBeGreaterThanOrEqual(3);
          expect(reports.every((r) => JSON.stringify(r.key) === JSON.stringify(key))).toBe(true);
        });
      }

      it('detects a valid frame copied under another key', async () => {
        await adapter.save(['doc', 'a'], A());
        await adapter.save(['doc', 'b'], B());
        let rawB: Uint8Array = new Uint8Array(0);
        await fx.corrupt(['doc', 'b'], (r) => (rawB = r));
        await fx.corrupt(['doc', 'a'], () => rawB);
        const err = await expectAccordError(adapter.load(['doc', 'a']), ErrorCode.STORAGE_CORRUPT);
        expect(err.details).toMatchObject({ key: ['doc', 'a'], reason: 'checksum' });
        expect(await adapter.load(['doc', 'b'])).toStrictEqual(B());
      });

      it('scan of an intact store lists nothing and throws for nothing', async () => {
        await adapter.save(['x', '1'], A());
        await adapter.save(['x', '2'], new Uint8Array(0));
        expect(await adapter.scan()).toStrictEqual({ corrupt: [], badKeys: [], checked: 2 });
        expect(reports).toStrictEqual([]);
      });

      it('a corrupt value can be replaced by saving it again', async () => {
        await adapter.save(['doc', 'a'], A());
        await fx.corrupt(['doc', 'a'], () => new Uint8Array(0));
        await adapter.save(['doc', 'a'], B());
        expect(await adapter.load(['doc', 'a'])).toStrictEqual(B());
        expect((await adapter.scan()).corrupt).toStrictEqual([]);
      });
    });
  });
}

// ---------------------------------------------------------------------------------------
// Event store conformance

const ev = (device: string, seq: number, tag = ''): StoredEvent => ({
  device,
  seq,
  id: `${device}-${seq}${tag}`,
  bytes: bytes(`event ${device}/${seq}${tag}`),
});

/**
 * The {@link EventStore} contract as a vitest suite: append/get/iterate, idempotence,
 * conflicts, group commit, integrity check (holes, corruption, index), meta, lifecycle
 * and reopen.
 *
 * @remarks Call at the top level of a test file. `setup` runs before each test.
 */
export function runEventStoreConformance(name: string, setup: EventStoreSetup): void {
  describe(`event store conformance: ${name}`, () => {
    let fx: EventStoreFixture;
    let store: EventStore;
    const reports: CorruptionReport[] = [];

    beforeEach(async () => {
      reports.length = 0;
      fx = await setup({ onCorruption: (r) => reports.push(r) });
      store = fx.store;
    });
    afterEach(async () => {
      await fx.teardown();
    });

    describe('append and read', () => {
      it('an empty store is empty and verifies clean', async () => {
        expect(await store.get('nope')).toBeUndefined();
        expect(await store.getBySeq('d1', 1)).toBeUndefined();
        expect(await store.highestSeq('d1')).toBe(0);
        expect(await store.devices()).toStrictEqual([]);
        expect(await store.count()).toBe(0);
        expect(await collect(store.iterate())).toStrictEqual([]);
        expect(await store.verify()).toStrictEqual({
          holes: [],
          corrupt: [],
          count: 0,
          index: [],
          badKeys: [],
        });
      });

      it('gives back appended events by id and by (device, seq), byte for byte', async () => {
        const events = [
          ev('d1', 1),
          ev('d1', 2),
          ev('d2', 1),
          { device: 'd3', seq: 1, id: 'empty', bytes: new Uint8Array(0) },
        ];
        await store.append(events);
        for (const e of events) {
          expect(await store.get(e.id)).toStrictEqual(e);
          expect(await store.getBySeq(e.device, e.seq)).toStrictEqual(e);
        }
        expect(await store.getBySeq('d1', 3)).toBeUndefined();
        expect(await store.count()).toBe(4);
      });

      it('stores copies: changing the appended or returned bytes changes nothing stored', async () => {
        const e = ev('d1', 1);
        const mine = { ...e, bytes: e.bytes.slice() };
        const pending = store.append([mine]);
        mine.bytes[0] = 0;
        await pending;
        const got = (await store.get(e.id))!;
        got.bytes[1] = 0;
        expect(await store.get(e.id)).toStrictEqual(e);
      });

      it('iterates by device then seq; filters by device and fromSeq; reports devices and highest seqs', async () => {
        const devices = ['b', 'a', 'ab', 'a\u0000', 'a!'];
        const all = devices.flatMap((d) => [1, 2, 3, 10].map((s) => ev(d, s)));
        // Appended shuffled, in several calls.
        const shuffled = [...all].sort(
          (x, y) => ((x.id.length * 31 + x.seq * 7) % 11) - ((y.id.length * 31 + y.seq * 7) % 11),
        );
        await Promise.all([
          store.append(shuffled.slice(0, 7)),
          store.append(shuffled.slice(7, 13)),
          store.append(shuffled.slice(13)),
        ]);
        const order = [...devices].sort(compareUtf8);
        const expected = order.flatMap((d) => [1, 2, 3, 10].map((s) => ev(d, s)));
        expect(await collect(store.iterate())).toStrictEqual(expected);
        expect(await collect(store.iterate({ device: 'a' }))).toStrictEqual(
          [1, 2, 3, 10].map((s) => ev('a', s)),
        );
        expect(await collect(store.iterate({ device: 'a', fromSeq: 3 }))).toStrictEqual([
          ev('a', 3),
          ev('a', 10),
        ]);
        expect(await collect(store.iterate({ fromSeq: 10 }))).toStrictEqual(order.map((d) => ev(d, 10)));
        expect(await collect(store.iterate({ device: 'zz' }))).toStrictEqual([]);
        expect(await store.devices()).toStrictEqual(order);
        for (const d of devices) expect(await store.highestSeq(d)).toBe(10);
        expect(await store.highestSeq('a\u0001')).toBe(0);
        expect(await store.count()).toBe(all.length);
        // 4..9 are missing on every device.
        expect((await store.verify()).holes).toStrictEqual(
          order.map((device) => ({ device, missing: [{ from: 4, to: 9 }] })),
        );
      });

      it('matches a model for random events appended concurrently in random chunks', async () => {
        const eventArb = fc.record({
          device: fc.constantFrom('d1', 'd2', 'd\u0000', 'e'),
          seq: fc.integer({ min: 1, max: 12 }),
        });
        let run = 0;
        await fc.assert(
          fc.asyncProperty(
            fc.uniqueArray(eventArb, { maxLength: 30, selector: (e) => `${e.device}/${e.seq}` }),
            fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 10 }),
            async (slots, chunkSizes) => {
              const ns = `r${run++}-`;
              const events = slots.map((s) => ev(ns + s.device, s.seq));
              const calls: Promise<void>[] = [];
              for (let i = 0, c = 0; i < events.length; c++) {
                const size = chunkSizes[c % chunkSizes.length]!;
                calls.push(store.append(events.slice(i, i + size)));
                i += size;
              }
              await Promise.all(calls);
              const devices = [...new Set(events.map((e) => e.device))].sort(compareUtf8);
              for (const d of devices) {
                const want = events.filter((e) => e.device === d).sort((x, y) => x.seq - y.seq);
                expect(await collect(store.iterate({ device: d }))).toStrictEqual(want);
                expect(await store.highestSeq(d)).toBe(want[want.length - 1]!.seq);
              }
            },
          ),
          { numRuns: 30 },
        );
      });

      it('refuses malformed events (programmer errors) and writes nothing', async () => {
        const bad: unknown[] = [
          { device: '', seq: 1, id: 'x', bytes: new Uint8Array(1) },
          { device: 'd', seq: 0, id: 'x', bytes: new Uint8Array(1) },
          { device: 'd', seq: 1.5, id: 'x', bytes: new Uint8Array(1) },
          { device: 'd', seq: -1, id: 'x', bytes: new Uint8Array(1) },
          { device: 'd', seq: 1, id: '', bytes: new Uint8Array(1) },
          { device: 'd', seq: 1, id: 'x', bytes: 'not bytes' },
          { device: 'd\ud800', seq: 1, id: 'x', bytes: new Uint8Array(1) },
          { device: 'd', seq: 1, id: '\udc00', bytes: new Uint8Array(1) },
        ];
        for (const b of bad)
          await expect(store.append([ev('ok', 1), b as StoredEvent])).rejects.toBeInstanceOf(TypeError);
        expect(await store.count()).toBe(0);
      });
    });

    describe('idempotence and conflicts', () => {
      it('re-appending identical events is a no-op', async () => {
        await store.append([ev('d1', 1), ev('d1', 2)]);
        await store.append([ev('d1', 1), ev('d1', 2), ev('d1', 2)]);
        await Promise.all([store.append([ev('d1', 3)]), store.append([ev('d1', 3)])]);
        expect(await store.count()).toBe(3);
        expect(await store.verify()).toMatchObject({ holes: [], corrupt: [], count: 3, index: [] });
      });

      it('an existing id with different bytes is STORAGE_CONFLICT and the whole call writes nothing', async () => {
        await store.append([ev('d1', 1)]);
        const changed = { ...ev('d1', 1), bytes: bytes('tampered') };
        const err = await expectAccordError(store.append([ev('d1', 2), changed]), STORAGE_CONFLICT);
        expect(err.details).toMatchObject({ id: 'd1-1', device: 'd1', seq: 1 });
        expect(await store.getBySeq('d1', 2)).toBeUndefined();
        expect(await store.get('d1-1')).toStrictEqual(ev('d1', 1));
      });

      it('an existing (device, seq) with another id is STORAGE_CONFLICT', async () => {
        await store.append([ev('d1', 1)]);
        await expectAccordError(store.append([ev('d1', 1, 'other')]), STORAGE_CONFLICT);
        expect(await store.get('d1-1other')).toBeUndefined();
        expect(await store.count()).toBe(1);
      });

      it('an existing id in another slot is STORAGE_CONFLICT', async () => {
        await store.append([ev('d1', 1)]);
        await expectAccordError(store.append([{ ...ev('d1', 1), seq: 2 }]), STORAGE_CONFLICT);
        expect(await store.getBySeq('d1', 2)).toBeUndefined();
      });

      it('contradictions inside one call are STORAGE_CONFLICT', async () => {
        await expectAccordError(
          store.append([ev('d1', 1), { ...ev('d1', 1), bytes: bytes('x') }]),
          STORAGE_CONFLICT,
        );
        await expectAccordError(store.append([ev('d1', 1), ev('d1', 1, 'b')]), STORAGE_CONFLICT);
        expect(await store.count()).toBe(0);
      });

      it('between concurrent calls in one batch, the first wins and the second is rejected alone', async () => {
        const [first, second, third] = await Promise.allSettled([
          store.append([ev('d1', 1), ev('d1', 2)]),
          store.append([ev('d2', 1), ev('d1', 2, 'rival')]),
          store.append([ev('d2', 2)]),
        ]);
        expect(first.status).toBe('fulfilled');
        expect(third.status).toBe('fulfilled');
        await expectAccordError(
          second.status === 'rejected' ? Promise.reject(second.reason as Error) : Promise.resolve(),
          STORAGE_CONFLICT,
        );
        expect(await collect(store.iterate())).toStrictEqual([ev('d1', 1), ev('d1', 2), ev('d2', 2)]);
      });
    });

    describe('durability and group commit', () => {
      it('200 concurrent appends are all stored, in a few synced batches', async () => {
        const before = store.stats();
        await Promise.all(Array.from({ length: 200 }, (_, i) => store.append([ev('d1', i + 1)])));
        const after = store.stats();
        expect(after.writes - before.writes).toBe(200);
        expect(after.batches - before.batches).toBeGreaterThanOrEqual(1);
        expect(after.batches - before.batches).toBeLessThanOrEqual(5);
        expect(await store.highestSeq('d1')).toBe(200);
        expect(await store.verify()).toMatchObject({ holes: [], corrupt: [], count: 200, index: [] });
      });

      it('appends issued while a batch is being written share the next batch', async () => {
        const first = store.append([ev('d1', 1)]);
        await Promise.resolve();
        await Promise.resolve();
        const rest = Array.from({ length: 50 }, (_, i) => store.append([ev('d1', i + 2)]));
        await Promise.all([first, ...rest]);
        expect(store.stats().batches).toBeLessThanOrEqual(3);
        expect(await store.count()).toBe(51);
      });

      it('close waits for pending appends, then refuses every call with STORAGE_CLOSED', async () => {
        const appends = Array.from({ length: 10 }, (_, i) => store.append([ev('d1', i + 1)]));
        const put = store.meta.put('k', bytes('v'));
        await store.close();
        await expect(Promise.all([...appends, put])).resolves.toHaveLength(11);
        await expectAccordError(store.append([ev('d1', 11)]), ErrorCode.STORAGE_CLOSED);
        await expectAccordError(store.get('d1-1'), ErrorCode.STORAGE_CLOSED);
        await expectAccordError(store.getBySeq('d1', 1), ErrorCode.STORAGE_CLOSED);
        await expectAccordError(store.highestSeq('d1'), ErrorCode.STORAGE_CLOSED);
        await expectAccordError(store.devices(), ErrorCode.STORAGE_CLOSED);
        await expectAccordError(store.count(), ErrorCode.STORAGE_CLOSED);
        await expectAccordError(store.verify(), ErrorCode.STORAGE_CLOSED);
        await expectAccordError(collect(store.iterate()), ErrorCode.STORAGE_CLOSED);
        await expectAccordError(store.meta.get('k'), ErrorCode.STORAGE_CLOSED);
        await expectAccordError(store.meta.put('k', bytes('w')), ErrorCode.STORAGE_CLOSED);
        await store.close(); // idempotent
      });

      it('a reopened store holds every event and meta value, and verifies clean', async () => {
        const events = [ev('d1', 1), ev('d1', 2), ev('d2', 1)];
        await store.append(events);
        await store.meta.put('device-key', bytes('secret'));
        await store.meta.put('empty', new Uint8Array(0));
        const again = await fx.reopen();
        expect(await collect(again.iterate())).toStrictEqual(events);
        expect(await again.get('d2-1')).toStrictEqual(ev('d2', 1));
        expect(await again.meta.get('device-key')).toStrictEqual(bytes('secret'));
        expect(await again.meta.get('empty')).toStrictEqual(new Uint8Array(0));
        expect(await again.verify()).toStrictEqual({
          holes: [],
          corrupt: [],
          count: 3,
          index: [],
          badKeys: [],
        });
        await again.append([ev('d1', 3)]);
        expect(await again.highestSeq('d1')).toBe(3);
      });
    });

    describe('integrity check', () => {
      it('verify() finds a hole made by deleting a stored event, and a re-append repairs it', async () => {
        await store.append([1, 2, 3, 4, 5].map((s) => ev('d1', s)));
        await store.append([ev('d2', 3)]);
        await fx.deleteRaw({ kind: 'event', device: 'd1', seq: 3 });
        const report = await store.verify();
        expect(report.holes).toStrictEqual([
          { device: 'd1', missing: [{ from: 3, to: 3 }] },
          { device: 'd2', missing: [{ from: 1, to: 2 }] },
        ]);
        expect(report.count).toBe(5);
        expect(report.corrupt).toStrictEqual([]);
        expect(report.index).toStrictEqual([{ id: 'd1-3', problem: 'dangling' }]);
        expect(await store.get('d1-3')).toBeUndefined();
        expect((await collect(store.iterate({ device: 'd1' }))).map((e) => e.seq)).toStrictEqual([
          1, 2, 4, 5,
        ]);
        await store.append([ev('d1', 3)]);
        expect((await store.verify()).holes).toStrictEqual([{ device: 'd2', missing: [{ from: 1, to: 2 }] }]);
        expect((await store.verify()).index).toStrictEqual([]);
      });

      for (const { name: damage, mutate } of CORRUPTIONS) {
        it(`verify(), get, getBySeq and iterate report ${damage} in an event`, async () => {
          await store.append([ev('d1', 1), ev('d1', 2), ev('d1', 3)]);
          await fx.corrupt({ kind: 'event', device: 'd1', seq: 2 }, mutate);
          const report = await store.verify();
          expect(report.corrupt.map(({ device, seq }) => ({ device, seq }))).toStrictEqual([
            { device: 'd1', seq: 2 },
          ]);
          expect(report.holes).toStrictEqual([]);
          expect(report.count).toBe(3);
          const byId = await expectAccordError(store.get('d1-2'), ErrorCode.STORAGE_CORRUPT);
          expect(byId.details['key']).toStrictEqual(['event', 'd1', '2']);
          const bySeq = await expectAccordError(store.getBySeq('d1', 2), ErrorCode.STORAGE_CORRUPT);
          expect(bySeq.details['key']).toStrictEqual(['event', 'd1', '2']);
          await expectAccordError(collect(store.iterate()), ErrorCode.STORAGE_CORRUPT);
          const skipped: { device: string; seq: number }[] = [];
          const intact = await collect(
            store.iterate({ skipCorrupt: true, onSkipped: (slot) => skipped.push({ ...slot }) }),
          );
          expect(intact).toStrictEqual([ev('d1', 1), ev('d1', 3)]);
          expect(skipped).toStrictEqual([{ device: 'd1', seq: 2 }]);
          expect(await store.get('d1-3')).toStrictEqual(ev('d1', 3));
          expect(reports.length).toBeGreaterThan(0);
          expect(reports.every((r) => JSON.stringify(r.key) === JSON.stringify(['event', 'd1', '2']))).toBe(
            true,
          );
        });
      }

      it('a corrupt event is repaired by appending the intact copy again (as from a peer)', async () => {
        await store.append([ev('d1', 1), ev('d1', 2)]);
        await fx.corrupt({ kind: 'event', device: 'd1', seq: 2 }, () => new Uint8Array(0));
        await store.append([ev('d1', 2)]);
        expect(await store.get('d1-2')).toStrictEqual(ev('d1', 2));
        expect(await store.verify()).toMatchObject({ holes: [], corrupt: [], index: [] });
      });

      it('detects an event value copied into another slot', async () => {
        await store.append([ev('d1', 1), ev('d1', 2)]);
        let raw1: Uint8Array = new Uint8Array(0);
        await fx.corrupt({ kind: 'event', device: 'd1', seq: 1 }, (r) => (raw1 = r));
        await fx.corrupt({ kind: 'event', device: 'd1', seq: 2 }, () => raw1);
        expect((await store.verify()).corrupt).toStrictEqual([{ device: 'd1', seq: 2, reason: 'checksum' }]);
      });

      it('verify() reports id-index damage; get() refuses a corrupt index entry; re-appending repairs it', async () => {
        await store.append([ev('d1', 1), ev('d1', 2)]);
        await fx.deleteRaw({ kind: 'index', id: 'd1-1' });
        await fx.corrupt({ kind: 'index', id: 'd1-2' }, (r) => flip(r, r.length - 1, 0x04));
        const report = await store.verify();
        expect(report.index).toStrictEqual([
          { id: 'd1-2', problem: 'corrupt' },
          { id: 'd1-1', problem: 'missing' },
        ]);
        expect(report.corrupt).toStrictEqual([]);
        expect(await store.get('d1-1')).toBeUndefined();
        const err = await expectAccordError(store.get('d1-2'), ErrorCode.STORAGE_CORRUPT);
        expect(err.details['key']).toStrictEqual(['index', 'd1-2']);
        await store.append([ev('d1', 1), ev('d1', 2)]);
        expect((await store.verify()).index).toStrictEqual([]);
        expect(await store.get('d1-2')).toStrictEqual(ev('d1', 2));
      });
    });

    describe('meta', () => {
      it('puts and gets small values durably, zero-length included; missing is undefined', async () => {
        expect(await store.meta.get('clock')).toBeUndefined();
        await store.meta.put('clock', bytes('1'));
        await store.meta.put('clock', bytes('2'));
        await store.meta.put('', new Uint8Array(0));
        await store.meta.put('odd\u0000key', bytes('x'));
        expect(await store.meta.get('clock')).toStrictEqual(bytes('2'));
        expect(await store.meta.get('')).toStrictEqual(new Uint8Array(0));
        expect(await store.meta.get('odd\u0000key')).toStrictEqual(bytes('x'));
        expect(await store.meta.get('odd')).toBeUndefined();
        // Meta values are not events.
        expect(await store.count()).toBe(0);
        expect((await store.verify()).count).toBe(0);
      });

      for (const { name: damage, mutate } of CORRUPTIONS) {
        it(`meta.get reports ${damage} as STORAGE_CORRUPT`, async () => {
          await store.meta.put('device-key', bytes('secret key material'));
          await fx.corrupt({ kind: 'meta', key: 'device-key' }, mutate);
          const err = await expectAccordError(store.meta.get('device-key'), ErrorCode.STORAGE_CORRUPT);
          expect(err.details['key']).toStrictEqual(['meta', 'device-key']);
          expect(reports.map((r) => r.key)).toStrictEqual([['meta', 'device-key']]);
        });
      }
    });
  });
}
