import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pathExists, writeJsonExclusive } from './json-file.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'accord-json-file-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('writeJsonExclusive', () => {
  it('lets exactly one of many racing writers publish, leaves no temporary files, and keeps the mode', async () => {
    const path = join(dir, 'key.json');
    const wins = await Promise.all(
      Array.from({ length: 16 }, (_, i) => writeJsonExclusive(path, { writer: i }, 0o600)),
    );
    expect(wins.filter(Boolean)).toHaveLength(1);
    const winner = wins.indexOf(true);
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({ writer: winner });
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual(['key.json']);
    expect(await writeJsonExclusive(path, { writer: 'late' })).toBe(false);
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({ writer: winner });
  });

  it('pathExists tells a missing path from a present one', async () => {
    expect(await pathExists(join(dir, 'nope'))).toBe(false);
    await writeJsonExclusive(join(dir, 'yes.json'), 1);
    expect(await pathExists(join(dir, 'yes.json'))).toBe(true);
  });
});
