import { readdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from './index.js';

describe('tempDir', () => {
  it('creates a fresh empty directory under the OS temp dir and removes it with its contents', async () => {
    const a = await tempDir('accord-testkit-');
    const b = await tempDir('accord-testkit-');
    try {
      expect(a.path).not.toBe(b.path);
      expect(dirname(a.path)).toBe(tmpdir());
      expect(basename(a.path).startsWith('accord-testkit-')).toBe(true);
      expect(await readdir(a.path)).toEqual([]);
      await writeFile(join(a.path, 'x.txt'), 'data');
    } finally {
      await a.cleanup();
      await b.cleanup();
    }
    await expect(stat(a.path)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(a.cleanup()).resolves.toBeUndefined(); // idempotent
  });
});
