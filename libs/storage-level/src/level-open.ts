import { Level } from 'level';
import { ioError } from './errors.js';

/** A LevelDB database whose default key and value encodings are bytes. */
export type BinaryLevel = Level<Uint8Array, Uint8Array>;

/**
 * Opens (creating if missing) a LevelDB database at `path` with byte encodings.
 *
 * @remarks Failures (lock held by another process, unreadable directory, damaged
 * manifest) throw `AccordError` STORAGE_IO with the level error as `cause`.
 */
export async function openLevel(path: string): Promise<BinaryLevel> {
  const db = new Level<Uint8Array, Uint8Array>(path, { keyEncoding: 'view', valueEncoding: 'view' });
  try {
    await db.open();
  } catch (err) {
    throw ioError(err, 'open');
  }
  return db;
}
