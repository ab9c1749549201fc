import { join } from 'node:path';
import { Level } from 'level';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openLevel, type BinaryLevel } from './level-open.js';
import { LevelRawStore, type LevelDatabase } from './raw-store.js';
import { makeTempDir } from './testing.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (value: Uint8Array | undefined): string | undefined =>
  value === undefined ? undefined : new TextDecoder().decode(value);

describe('LevelRawStore.write on classic-level', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function open(): Promise<{ root: BinaryLevel; path: string }> {
    const dir = await makeTempDir('accord-raw-store-');
    const path = join(dir.path, 'db');
    const root = await openLevel(path);
    cleanups.push(async () => {
      if (root.status === 'open') await root.close();
      await dir.remove();
    });
    return { root, path };
  }

  const sublevelOf = (root: BinaryLevel): LevelDatabase =>
    root.sublevel<Uint8Array, Uint8Array>('events', { keyEncoding: 'view', valueEncoding: 'view' });

  it("writes through the root's chained batch, prefixed, durable across a reopen", async () => {
    const { root, path } = await open();
    const store = new LevelRawStore(sublevelOf(root));
    const chained = root.batch.bind(root) as () => { write(options: unknown): Promise<void> };
    const batch = vi.spyOn(root, 'batch');
    const writeOptions: unknown[] = [];
    batch.mockImplementation((() => {
      const made = chained();
      const write = made.write.bind(made);
      made.write = (options: unknown) => (writeOptions.push(options), write(options));
      return made;
    }) as unknown as typeof root.batch);
    await store.write([
      { type: 'put', key: bytes('a'), value: bytes('one') },
      { type: 'put', key: bytes('b'), value: bytes('two') },
    ]);
    await store.write([{ type: 'del', key: bytes('a') }]);
    // The chained form (no arguments), not the array form that copies every op twice; synced.
    expect(batch.mock.calls).toEqual([[], []]);
    expect(writeOptions).toEqual([{ sync: true }, { sync: true }]);
    expect(text(store.getSync(bytes('b')))).toBe('two');
    await root.close();
    const again = await openLevel(path);
    try {
      const reopened = new LevelRawStore(sublevelOf(again));
      expect(text(await reopened.get(bytes('b')))).toBe('two');
      expect(await reopened.get(bytes('a'))).toBeUndefined();
      // The sublevel's prefix was put on the key: nothing landed in the root's own key space.
      expect(await again.get(bytes('b'))).toBeUndefined();
    } finally {
      await again.close();
    }
  });

  it("tells the root's write listeners every op, with the sublevel's prefix", async () => {
    const { root } = await open();
    const store = new LevelRawStore(sublevelOf(root));
    const seen: string[] = [];
    root.on('write', (ops: readonly { type: string; key: Uint8Array }[]) => {
      for (const op of ops) seen.push(`${op.type} ${text(op.key)}`);
    });
    await store.write([
      { type: 'put', key: bytes('a'), value: bytes('one') },
      { type: 'del', key: bytes('b') },
    ]);
    expect(seen).toEqual(['put !events!a', 'del !events!b']);
  });

  it('puts the whole prefix of a nested sublevel on each key, as the sublevel itself would', async () => {
    const { root } = await open();
    const inner = root
      .sublevel<Uint8Array, Uint8Array>('outer', { keyEncoding: 'view', valueEncoding: 'view' })
      .sublevel<Uint8Array, Uint8Array>('inner', { keyEncoding: 'view', valueEncoding: 'view' });
    await inner.open();
    const store = new LevelRawStore(inner);
    const prefixKey = vi.spyOn(inner, 'prefixKey');
    await store.write([{ type: 'put', key: bytes('mine'), value: bytes('one') }]);
    // The prefix learnt once is put on each key here (no new key from the sublevel per op).
    expect(prefixKey).not.toHaveBeenCalled();
    await inner.put(bytes('theirs'), bytes('two'));
    const rootKeys: string[] = [];
    for await (const key of root.keys()) rootKeys.push(text(key)!);
    expect(rootKeys).toEqual(['!outer!!inner!mine', '!outer!!inner!theirs']);
    expect(text(await inner.get(bytes('mine')))).toBe('one');
  });

  it("asks the database for every key's prefix when it is not one fixed prefix", async () => {
    const { root } = await open();
    const calls: string[] = [];
    // Another implementation, whose prefix depends on the key: the keys it gives are used as they are.
    const odd = new Proxy(root, {
      get(target, name, receiver) {
        if (name === 'db') return root;
        if (name === 'prefixKey')
          return (key: Uint8Array): Uint8Array => {
            calls.push(text(key)!);
            return Uint8Array.of(key.length, ...key);
          };
        const value = Reflect.get(target, name, receiver) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    }) as unknown as LevelDatabase;
    const store = new LevelRawStore(odd);
    calls.length = 0;
    await store.write([{ type: 'put', key: bytes('ab'), value: bytes('one') }]);
    expect(calls).toEqual(['ab']);
    expect(text(await root.get(Uint8Array.of(2, ...bytes('ab'))))).toBe('one');
  });

  it('waits for a database still opening', async () => {
    const dir = await makeTempDir('accord-raw-store-');
    const root = new Level<Uint8Array, Uint8Array>(join(dir.path, 'db'), {
      keyEncoding: 'view',
      valueEncoding: 'view',
    });
    cleanups.push(async () => {
      await root.close();
      await dir.remove();
    });
    const opened = root.open();
    const store = new LevelRawStore(root);
    expect(root.status).toBe('opening');
    await store.write([{ type: 'put', key: bytes('a'), value: bytes('one') }]);
    await opened;
    expect(text(store.getSync(bytes('a')))).toBe('one');
  });

  it('stores the very bytes on a root whose default encodings are text', async () => {
    const dir = await makeTempDir('accord-raw-store-');
    const root = new Level(join(dir.path, 'db'));
    await root.open();
    cleanups.push(async () => {
      await root.close();
      await dir.remove();
    });
    const store = new LevelRawStore(root as unknown as LevelDatabase);
    // Not UTF-8: a text encoding on the way would replace these bytes.
    const key = Uint8Array.of(0xff, 0x00, 0xc3);
    const value = Uint8Array.of(0x80, 0xfe, 0x00);
    await store.write([{ type: 'put', key, value }]);
    expect(store.getSync(key)).toEqual(value);
    const stored: Uint8Array[] = [];
    for await (const k of store.keys({})) stored.push(k);
    expect(stored).toEqual([key]);
  });

  it("runs the root's prewrite hook on every op", async () => {
    const { root } = await open();
    const store = new LevelRawStore(sublevelOf(root));
    const seen: string[] = [];
    root.hooks.prewrite.add((op: { readonly type: string; readonly key: unknown }) => {
      seen.push(`${op.type} ${text(op.key as Uint8Array)?.slice(-1) ?? ''}`);
    });
    await store.write([{ type: 'put', key: bytes('a'), value: bytes('one') }]);
    expect(seen).toEqual(['put a']);
    expect(text(store.getSync(bytes('a')))).toBe('one');
  });

  it('refuses a key that is not bytes before anything is written', async () => {
    const { root } = await open();
    const store = new LevelRawStore(root);
    await expect(
      store.write([
        { type: 'put', key: bytes('a'), value: bytes('one') },
        { type: 'put', key: 'b' as unknown as Uint8Array, value: bytes('two') },
      ]),
    ).rejects.toThrow(TypeError);
    expect(store.getSync(bytes('a'))).toBeUndefined();
  });
});
