import { join } from 'node:path';
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

  it('hands a batch straight to classic-level, prefixed, durable across a reopen', async () => {
    const { root, path } = await open();
    const store = new LevelRawStore(sublevelOf(root));
    const batch = vi.spyOn(root, 'batch');
    await store.write([
      { type: 'put', key: bytes('a'), value: bytes('one') },
      { type: 'put', key: bytes('b'), value: bytes('two') },
    ]);
    await store.write([{ type: 'del', key: bytes('a') }]);
    // Not through abstract-level's public batch (its copy of every op is what this avoids).
    expect(batch).not.toHaveBeenCalled();
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

  it("takes abstract-level's batch when a prewrite hook is installed, so the hook still runs", async () => {
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
