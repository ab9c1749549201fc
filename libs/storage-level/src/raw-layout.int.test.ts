import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as store from './index.js';
import { writeRawLayout } from './fixtures/raw-layout.js';
import { makeTempDir } from './testing.js';

describe('what LevelDB holds', () => {
  it('is byte for byte what the code before session 15 stored for the same writes', async () => {
    const expected = JSON.parse(
      await readFile(new URL('./fixtures/raw-layout.json', import.meta.url), 'utf8'),
    ) as [string, string][];
    const dir = await makeTempDir('accord-raw-layout-');
    try {
      const pairs = await writeRawLayout(store, join(dir.path, 'db'));
      // Both sublevels, repairs, a reindex, meta values and removals are in it.
      expect(expected.length).toBe(118);
      expect(pairs).toEqual(expected);
    } finally {
      await dir.remove();
    }
  });
});
