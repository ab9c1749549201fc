import { cp, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Level } from 'level';
import { ioError } from './errors.js';
import { syncDir } from './json-file.js';

/** A LevelDB database whose default key and value encodings are bytes. */
export type BinaryLevel = Level<Uint8Array, Uint8Array>;

/**
 * Opens (creating if missing) a LevelDB database at `path` with byte encodings.
 *
 * @remarks Failures (lock held by another process, unreadable directory, damaged
 * manifest) throw `AccordError` STORAGE_IO with the level error as `cause`.
 *
 * classic-level does not expose LevelDB's `paranoid_checks`, and even with it LevelDB treats a
 * write-ahead log cut short at its end as a crash mid-write and drops the torn tail silently on
 * open: synced, acknowledged writes can vanish without an error. The device log therefore never
 * takes its next sequence number from the store alone (see `OwnSeqMark` in `@accord/log`).
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

/**
 * True when `err` (or a cause of it) is LevelDB reporting damaged files (`LEVEL_CORRUPTION`, or
 * a "Corruption:" status), as opposed to a lock or a missing directory.
 */
export function isLevelCorruption(err: unknown): boolean {
  for (let e = err, depth = 0; typeof e === 'object' && e !== null && depth < 8; depth++) {
    const { code, message, details, cause } = e as {
      code?: unknown;
      message?: unknown;
      details?: { levelCode?: unknown };
      cause?: unknown;
    };
    if (code === 'LEVEL_CORRUPTION' || details?.levelCode === 'LEVEL_CORRUPTION') return true;
    if (typeof message === 'string' && /\bCorruption: /.test(message)) return true;
    e = cause;
  }
  return false;
}

/** Where {@link setAsideAndRepair} put the damaged copy, and whether LevelDB's repair kept the rest. */
export interface SetAsideResult {
  /** The folder holding the untouched damaged copy (`<quarantine>/<timestamp>/db`). */
  readonly path: string;
  /** True when the database was repaired in place (readable records kept); false when it was emptied. */
  readonly repaired: boolean;
}

/**
 * Sets a damaged LevelDB database aside and salvages what is readable: the whole folder is
 * copied, untouched, to `<quarantine>/<timestamp>/db`, then LevelDB's repair rebuilds `path`
 * from the readable records (a damaged block's records are dropped; peers supply them again).
 * When even the repair fails, `path` is emptied so the device can start afresh.
 *
 * @remarks The database must be closed. The copy is made before anything is changed, so an
 * operator can always go back to the bytes that were on disk.
 */
export async function setAsideAndRepair(
  path: string,
  quarantine: string,
  now: Date = new Date(),
): Promise<SetAsideResult> {
  const stamp = now.toISOString().replace(/[:.]/g, '-');
  const dest = join(quarantine, stamp);
  await mkdir(dest, { recursive: true, mode: 0o700 });
  const copy = join(dest, 'db');
  try {
    await cp(path, copy, { recursive: true, errorOnExist: true, force: false });
    await syncDir(dest);
  } catch (err) {
    throw ioError(err, 'set aside');
  }
  try {
    // `level` re-exports classic-level's ClassicLevel on Node, whose static `repair` (LevelDB's
    // RepairDB) its browser-neutral type declarations leave out.
    await (Level as unknown as { repair(location: string): Promise<void> }).repair(path);
    return { path: copy, repaired: true };
  } catch {
    await rm(path, { recursive: true, force: true });
    return { path: copy, repaired: false };
  }
}
