import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A temporary directory and the way to remove it. */
export interface TempDir {
  /** Absolute path of the new, empty directory. */
  readonly path: string;
  /** Removes the directory and everything in it; safe to call twice. */
  cleanup(): Promise<void>;
}

/**
 * Creates a fresh empty directory under `os.tmpdir()` whose name starts with `prefix`.
 *
 * @remarks Intended for `*.int.test.ts` (real LevelDB): create in the test or `beforeEach`,
 * call `cleanup()` in `finally`/`afterEach`.
 */
export async function tempDir(prefix: string): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return {
    path,
    cleanup: () => rm(path, { recursive: true, force: true }),
  };
}
