import { randomBytes, randomUUID } from 'node:crypto';
import { link, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Writes `value` as JSON to `path` atomically: a temporary file in the same folder,
 * fsynced, renamed over the target, then the folder fsynced.
 *
 * @remarks Readers see either the old or the new content, never a partial file, even
 * if the process is killed mid-write.
 */
export async function writeJsonAtomic(path: string, value: unknown, mode = 0o644): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(JSON.stringify(value, null, 2) + '\n', 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (cause) {
    await rm(tmp, { force: true });
    throw cause;
  }
  await syncDir(dirname(path));
}

/** Fsyncs a folder so that a rename or create inside it is durable (best effort where unsupported). */
export async function syncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // Some platforms cannot fsync a directory; the rename is still atomic.
  } finally {
    await fh?.close();
  }
}

/** The parsed JSON content of `path`, or undefined when the file does not exist. Throws on malformed JSON. */
export async function readJsonFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return undefined;
    throw e;
  }
  return JSON.parse(text) as unknown;
}

/** True when `e` is a Node.js system error with the given `code`. */
export function isErrno(e: unknown, code: string): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === code;
}

const LOCK_STALE_MS = 10_000;

/**
 * Runs `fn` while holding an exclusive lock file `path + '.lock'` (created with O_EXCL).
 *
 * @remarks Serializes read-modify-write of a shared file between processes and within
 * one process. A lock older than 10 s is considered abandoned (its holder crashed) and
 * broken. Waiting is a short retry with growing back-off, bounded by `timeoutMs`.
 */
export async function withFileLock<T>(path: string, fn: () => Promise<T>, timeoutMs = 15_000): Promise<T> {
  const lock = `${path}.lock`;
  const deadline = Date.now() + timeoutMs;
  let delay = 2;
  for (;;) {
    try {
      const fh = await open(lock, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (e) {
      if (!isErrno(e, 'EEXIST')) throw e;
      try {
        const s = await stat(lock);
        if (Date.now() - s.mtimeMs > LOCK_STALE_MS) {
          await rm(lock, { force: true });
          continue;
        }
      } catch (se) {
        if (isErrno(se, 'ENOENT')) continue;
        throw se;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for lock ${lock}`, { cause: e });
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 25);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { force: true });
  }
}

/**
 * Publishes `value` as JSON at `path` only if nothing is there yet: written beside it, then
 * hard-linked into place. Returns false (and leaves the existing file alone) when another writer,
 * in this process or another, got there first.
 *
 * @remarks Exactly one of several racing writers wins; readers never see a partial file.
 */
export async function writeJsonExclusive(path: string, value: unknown, mode = 0o644): Promise<boolean> {
  // Unique per call, not just per process: two writers in one process must not share it.
  const tmp = `${path}.${process.pid}.${randomUUID()}.tmp`;
  await writeJsonAtomic(tmp, value, mode);
  let won = true;
  try {
    await link(tmp, path);
  } catch (e) {
    if (!isErrno(e, 'EEXIST')) throw e;
    won = false;
  } finally {
    await rm(tmp, { force: true });
  }
  await syncDir(dirname(path));
  return won;
}

/** True when something exists at `path`; other errors than ENOENT are thrown. */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return false;
    throw e;
  }
}
