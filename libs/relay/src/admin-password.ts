import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { AccordError, ErrorCode } from '@accord/protocol';
import { writeJsonAtomic } from '@accord/storage-level';
import { invalidFile, readJsonObject, type RelayFolderLayout } from './relay-folder.js';

/** Shortest accepted admin password, in characters. */
export const MIN_ADMIN_PASSWORD = 8;
/** Longest accepted admin password, in characters (bounds the work of one check). */
export const MAX_ADMIN_PASSWORD = 1024;

/** scrypt cost parameters of new hashes: N = 2^15, r = 8, p = 1 (about 32 MiB, ~100 ms). */
export const ADMIN_SCRYPT = { N: 2 ** 15, r: 8, p: 1, keylen: 32 } as const;

// Hand-edited files must not make one check unbounded: cap what we accept from admin.json.
const MAX_N = 2 ** 20;
const MAX_R = 32;
const MAX_P = 16;
const MAX_MEMORY = 256 * 1024 * 1024;

/** The content of `admin.json`: an scrypt hash with its parameters. Never holds the password. */
export interface AdminPasswordFile {
  readonly v: 1;
  readonly algorithm: 'scrypt';
  readonly N: number;
  readonly r: number;
  readonly p: number;
  readonly keylen: number;
  /** base64 of the random 16-byte salt. */
  readonly salt: string;
  /** base64 of the derived key. */
  readonly hash: string;
  /** ISO 8601 time the password was set. */
  readonly updated: string;
}

function derive(
  password: string,
  salt: Buffer,
  params: { N: number; r: number; p: number; keylen: number },
): Promise<Buffer> {
  // scrypt needs 128 * N * r bytes; leave headroom above that.
  const options: ScryptOptions = { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r };
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, params.keylen, options, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

/**
 * Sets (or replaces) the admin password: stores its scrypt hash, a random 16-byte salt and the
 * parameters in `admin.json`, mode 0600, atomically.
 *
 * @remarks The password is NFC-normalized before hashing, so the same visible password typed on
 * another keyboard layout still matches.
 * @throws AccordError `RELAY_BAD_REQUEST` when the password is shorter than
 * {@link MIN_ADMIN_PASSWORD} or longer than {@link MAX_ADMIN_PASSWORD} characters.
 */
export async function setAdminPassword(
  layout: RelayFolderLayout,
  password: string,
  options: { clock?: () => number } = {},
): Promise<void> {
  const length = [...password].length;
  if (length < MIN_ADMIN_PASSWORD || length > MAX_ADMIN_PASSWORD) {
    throw new AccordError(
      ErrorCode.RELAY_BAD_REQUEST,
      `the admin password must be ${MIN_ADMIN_PASSWORD}-${MAX_ADMIN_PASSWORD} characters long`,
      { details: { min: MIN_ADMIN_PASSWORD, max: MAX_ADMIN_PASSWORD } },
    );
  }
  const salt = randomBytes(16);
  const hash = await derive(password, salt, ADMIN_SCRYPT);
  const file: AdminPasswordFile = {
    v: 1,
    algorithm: 'scrypt',
    ...ADMIN_SCRYPT,
    salt: salt.toString('base64'),
    hash: hash.toString('base64'),
    updated: new Date((options.clock ?? Date.now)()).toISOString(),
  };
  await mkdir(layout.dir, { recursive: true, mode: 0o700 });
  await writeJsonAtomic(layout.adminFile, file, 0o600);
}

/** True when an admin password has been set. @throws AccordError `RELAY_CONFIG_INVALID` when `admin.json` is malformed. */
export async function hasAdminPassword(layout: RelayFolderLayout): Promise<boolean> {
  return (await readAdminFile(layout)) !== undefined;
}

/**
 * True when `password` is the admin password; false when it is not or when none is set.
 *
 * @remarks Compares with `timingSafeEqual`. Each call costs one scrypt derivation (~100 ms of
 * CPU off the main thread): callers facing the network must rate-limit failures.
 * @throws AccordError `RELAY_CONFIG_INVALID` when `admin.json` is malformed.
 */
export async function verifyAdminPassword(layout: RelayFolderLayout, password: string): Promise<boolean> {
  const file = await readAdminFile(layout);
  if (file === undefined) return false;
  if ([...password].length > MAX_ADMIN_PASSWORD) return false;
  const expected = Buffer.from(file.hash, 'base64');
  const actual = await derive(password, Buffer.from(file.salt, 'base64'), file);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

async function readAdminFile(layout: RelayFolderLayout): Promise<AdminPasswordFile | undefined> {
  const path = layout.adminFile;
  const invalid = (what: string): AccordError => invalidFile(path, what);
  const raw = await readJsonObject(path);
  if (raw === undefined) return undefined;
  const { v, algorithm, N, r, p, keylen, salt, hash, updated } = raw;
  const intIn = (x: unknown, lo: number, hi: number): x is number =>
    typeof x === 'number' && Number.isInteger(x) && x >= lo && x <= hi;
  if (v !== 1 || algorithm !== 'scrypt') throw invalid('unsupported version or algorithm');
  if (!intIn(N, 2, MAX_N) || (N & (N - 1)) !== 0) throw invalid(`N must be a power of two up to ${MAX_N}`);
  if (!intIn(r, 1, MAX_R) || !intIn(p, 1, MAX_P)) throw invalid('r or p out of range');
  if (128 * N * r > MAX_MEMORY) throw invalid('N * r needs more memory than allowed');
  if (!intIn(keylen, 16, 64)) throw invalid('keylen out of range');
  if (typeof salt !== 'string' || typeof hash !== 'string' || typeof updated !== 'string') {
    throw invalid('salt, hash and updated must be strings');
  }
  if (Buffer.from(hash, 'base64').length !== keylen) throw invalid('hash length does not match keylen');
  return { v: 1, algorithm: 'scrypt', N, r, p, keylen, salt, hash, updated };
}
