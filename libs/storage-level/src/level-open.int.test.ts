import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isLevelCorruption, openLevel, setAsideAndRepair } from './level-open.js';
import { makeTempDir } from './testing.js';

const key = (n: number): Uint8Array => new TextEncoder().encode(`key-${String(n).padStart(6, '0')}`);

async function readAll(path: string): Promise<number> {
  const db = await openLevel(path);
  try {
    let n = 0;
    for await (const _ of db.iterator()) n++;
    return n;
  } finally {
    await db.close();
  }
}

describe('setAsideAndRepair', () => {
  it('keeps an untouched copy of a damaged database and salvages its readable records', async () => {
    const dir = await makeTempDir('accord-level-open-');
    const path = join(dir.path, 'db');
    const db = await openLevel(path);
    for (let n = 0; n < 2000; n++) await db.put(key(n), new Uint8Array(200).fill(n % 251));
    await db.close();
    // Reopening moves the write-ahead log into a table file.
    await (await openLevel(path)).close();
    const tables = (await readdir(path)).filter((f) => f.endsWith('.ldb'));
    expect(tables.length).toBeGreaterThan(0);
    const sizes = await Promise.all(tables.map(async (t) => (await stat(join(path, t))).size));
    const table = join(path, tables[sizes.indexOf(Math.max(...sizes))]!);
    const bytes = new Uint8Array(await readFile(table));
    bytes[0] = bytes[0]! ^ 0xff; // the header of the first data block's first entry
    await writeFile(table, bytes);
    const damage = await readAll(path).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(isLevelCorruption(damage)).toBe(true);

    const result = await setAsideAndRepair(
      path,
      join(dir.path, 'quarantine'),
      new Date('2026-12-06T10:00:00Z'),
    );
    expect(result).toEqual({
      path: join(dir.path, 'quarantine', '2026-12-06T10-00-00-000Z', 'db'),
      repaired: true,
    });
    // The copy holds the damaged bytes as they were.
    expect(new Uint8Array(await readFile(join(result.path, table.slice(path.length + 1))))).toEqual(bytes);
    const kept = await readAll(path);
    expect(kept).toBeGreaterThan(1000);
    expect(kept).toBeLessThan(2000);
    await dir.remove();
  });

  it('tells LevelDB damage from other storage failures', () => {
    expect(isLevelCorruption(new Error('Corruption: bad entry in block'))).toBe(true);
    expect(isLevelCorruption({ code: 'STORAGE_IO', details: { levelCode: 'LEVEL_CORRUPTION' } })).toBe(true);
    expect(isLevelCorruption(new Error('wrapped', { cause: { code: 'LEVEL_CORRUPTION' } }))).toBe(true);
    expect(isLevelCorruption(new Error('IO error: lock db/LOCK: already held by process'))).toBe(false);
    expect(isLevelCorruption(undefined)).toBe(false);
  });
});
