import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AccordError,
  ENROLL_TOKEN_PATTERN,
  ErrorCode,
  isDeviceId,
  isFacilityId,
  toBase64Url,
  type DeviceId,
  type FacilityId,
} from '@accord/protocol';
import { isErrno, syncDir, writeJsonAtomic } from '@accord/storage-level';
import { invalidFile, readJsonObject, type RelayFolderLayout } from './relay-folder.js';

/** Default lifetime of an enrollment token: 24 hours. */
export const DEFAULT_TOKEN_TTL_MS = 24 * 60 * 60 * 1000;
/** Longest lifetime an enrollment token may be given: 30 days. */
export const MAX_TOKEN_TTL_MS = 30 * 24 * 60 * 60 * 1000;
/** How long {@link pruneEnrollmentTokens} keeps expired or used token files by default: 7 days. */
export const DEFAULT_TOKEN_KEEP_MS = 7 * 24 * 60 * 60 * 1000;

const TOKEN_PREFIX = 'acc1.';
const HASH_FILE = /^([0-9a-f]{64})\.json$/;

/** A freshly created enrollment token: the secret itself is shown once and never stored. */
export interface EnrollmentToken {
  /** The secret to hand to the new device: `acc1.` + 43 base64url characters (32 random bytes). */
  readonly token: string;
  readonly facility: FacilityId;
  /** ISO 8601 creation time. */
  readonly created: string;
  /** ISO 8601 time after which the token is refused. */
  readonly expires: string;
}

/** The content of a token file `tokens/<sha256>.json` (or `tokens/used/<sha256>.json`). */
export interface StoredEnrollmentToken {
  readonly v: 1;
  readonly facility: FacilityId;
  readonly created: string;
  readonly expires: string;
  /** Set once consumed: ISO 8601 time of use. */
  readonly used?: string;
  /** Set once consumed, when the consumer named it: the device that enrolled with it. */
  readonly device?: DeviceId;
}

/** A token not used yet, as listed by {@link listEnrollmentTokens} (never the secret). */
export interface PendingEnrollmentToken {
  /** The token's SHA-256, hex: its file name and the only handle the relay keeps. */
  readonly hash: string;
  readonly facility: FacilityId;
  readonly created: string;
  readonly expires: string;
  readonly expired: boolean;
}

/** Options of {@link createEnrollmentToken}. */
export interface CreateEnrollmentTokenOptions {
  /** Lifetime in ms (default {@link DEFAULT_TOKEN_TTL_MS}, at most {@link MAX_TOKEN_TTL_MS}). */
  readonly ttlMs?: number;
  /** Current time in ms (default Date.now()). */
  readonly now?: number;
}

/** The SHA-256 (hex) of an enrollment token: the name under which the relay stores it. */
export function enrollmentTokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

function tokenPaths(layout: RelayFolderLayout, hash: string): { pending: string; used: string } {
  return {
    pending: join(layout.tokensDir, `${hash}.json`),
    used: join(layout.tokensDir, 'used', `${hash}.json`),
  };
}

/**
 * Creates a one-time enrollment token for `facility`, valid for `ttlMs`.
 *
 * @remarks Only the token's SHA-256 is stored (`tokens/<hash>.json`, mode 0600), so the data
 * folder never holds a usable secret. Works whether or not a relay runs on the folder.
 * @throws AccordError `RELAY_BAD_REQUEST` for a malformed facility id or a ttl that is not a
 * positive integer up to {@link MAX_TOKEN_TTL_MS}.
 */
export async function createEnrollmentToken(
  layout: RelayFolderLayout,
  facility: string,
  options: CreateEnrollmentTokenOptions = {},
): Promise<EnrollmentToken> {
  if (!isFacilityId(facility)) {
    throw new AccordError(ErrorCode.RELAY_BAD_REQUEST, 'facility must be 1-64 letters, digits, "-" or "_"', {
      details: { facility },
    });
  }
  const ttlMs = options.ttlMs ?? DEFAULT_TOKEN_TTL_MS;
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0 || ttlMs > MAX_TOKEN_TTL_MS) {
    throw new AccordError(ErrorCode.RELAY_BAD_REQUEST, `ttl must be 1..${MAX_TOKEN_TTL_MS} ms`, {
      details: { ttlMs },
    });
  }
  const now = options.now ?? Date.now();
  const token = TOKEN_PREFIX + toBase64Url(randomBytes(32));
  const stored: StoredEnrollmentToken = {
    v: 1,
    facility,
    created: new Date(now).toISOString(),
    expires: new Date(now + ttlMs).toISOString(),
  };
  await mkdir(layout.tokensDir, { recursive: true, mode: 0o700 });
  await writeJsonAtomic(tokenPaths(layout, enrollmentTokenHash(token)).pending, stored, 0o600);
  return { token, facility, created: stored.created, expires: stored.expires };
}

/**
 * Consumes an enrollment token and returns its facility.
 *
 * @remarks Exactly once across processes: the winner atomically renames `tokens/<hash>.json` to
 * `tokens/used/<hash>.json`; every other consumer finds the source gone. An expired token is
 * refused and left in place (not consumed). `options.device` is recorded in the used file.
 * @throws AccordError `RELAY_TOKEN_INVALID` (malformed or unknown), `RELAY_TOKEN_EXPIRED`,
 * `RELAY_TOKEN_USED`, `RELAY_CONFIG_INVALID` (a token file is malformed).
 */
export async function consumeEnrollmentToken(
  layout: RelayFolderLayout,
  token: string,
  now: number = Date.now(),
  options: { device?: DeviceId } = {},
): Promise<FacilityId> {
  if (!ENROLL_TOKEN_PATTERN.test(token)) {
    throw new AccordError(ErrorCode.RELAY_TOKEN_INVALID, 'malformed enrollment token');
  }
  const paths = tokenPaths(layout, enrollmentTokenHash(token));
  const stored = await readTokenFile(paths.pending);
  if (stored === undefined) throw await missing(paths.used);
  if (now >= Date.parse(stored.expires)) {
    throw new AccordError(ErrorCode.RELAY_TOKEN_EXPIRED, `enrollment token expired at ${stored.expires}`, {
      details: { expires: stored.expires },
    });
  }
  await mkdir(join(layout.tokensDir, 'used'), { recursive: true, mode: 0o700 });
  try {
    await rename(paths.pending, paths.used);
  } catch (e) {
    // The source is gone: another consumer renamed it between our read and our rename.
    if (isErrno(e, 'ENOENT')) throw await missing(paths.used);
    throw e;
  }
  await syncDir(layout.tokensDir);
  const used: StoredEnrollmentToken = {
    ...stored,
    used: new Date(now).toISOString(),
    ...(options.device === undefined ? {} : { device: options.device }),
  };
  // Only the winner ever writes this path; if we crash first, the file keeps the original content.
  await writeJsonAtomic(paths.used, used, 0o600);
  return stored.facility;
}

async function missing(usedPath: string): Promise<AccordError> {
  try {
    await stat(usedPath);
    return new AccordError(ErrorCode.RELAY_TOKEN_USED, 'enrollment token was already used');
  } catch (e) {
    if (!isErrno(e, 'ENOENT')) throw e;
    return new AccordError(ErrorCode.RELAY_TOKEN_INVALID, 'unknown enrollment token');
  }
}

/** The tokens not used yet (expired ones flagged), oldest first. */
export async function listEnrollmentTokens(
  layout: RelayFolderLayout,
  now: number = Date.now(),
): Promise<PendingEnrollmentToken[]> {
  const out: PendingEnrollmentToken[] = [];
  for (const hash of await hashesIn(layout.tokensDir)) {
    const stored = await readTokenFile(tokenPaths(layout, hash).pending);
    if (stored === undefined) continue; // consumed meanwhile
    const { facility, created, expires } = stored;
    out.push({ hash, facility, created, expires, expired: now >= Date.parse(expires) });
  }
  return out.sort((a, b) => a.created.localeCompare(b.created) || a.hash.localeCompare(b.hash));
}

/**
 * Deletes token files that expired (unused) or were used more than `keepMs` ago; returns how many.
 *
 * @remarks Until pruned, an expired token answers `RELAY_TOKEN_EXPIRED` and a used one
 * `RELAY_TOKEN_USED`; after, both answer `RELAY_TOKEN_INVALID`.
 */
export async function pruneEnrollmentTokens(
  layout: RelayFolderLayout,
  now: number = Date.now(),
  keepMs: number = DEFAULT_TOKEN_KEEP_MS,
): Promise<number> {
  let removed = 0;
  const usedDir = join(layout.tokensDir, 'used');
  for (const [dir, field] of [
    [layout.tokensDir, 'expires'],
    [usedDir, 'used'],
  ] as const) {
    for (const hash of await hashesIn(dir)) {
      const path = join(dir, `${hash}.json`);
      let stored: StoredEnrollmentToken | undefined;
      try {
        stored = await readTokenFile(path);
      } catch {
        continue; // leave malformed files for a human to look at
      }
      const at = Date.parse(stored?.[field] ?? stored?.expires ?? '');
      if (stored !== undefined && Number.isFinite(at) && now - at > keepMs) {
        await rm(path, { force: true });
        removed++;
      }
    }
  }
  return removed;
}

async function hashesIn(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return [];
    throw e;
  }
  return names.flatMap((n) => {
    const m = HASH_FILE.exec(n);
    return m?.[1] === undefined ? [] : [m[1]];
  });
}

async function readTokenFile(path: string): Promise<StoredEnrollmentToken | undefined> {
  const invalid = (what: string): AccordError => invalidFile(path, what);
  const raw = await readJsonObject(path);
  if (raw === undefined) return undefined;
  const { v, facility, created, expires, used, device } = raw;
  if (v !== 1) throw invalid('unsupported version');
  if (typeof facility !== 'string' || !isFacilityId(facility))
    throw invalid('facility must be a facility id');
  if (typeof created !== 'string' || typeof expires !== 'string' || !Number.isFinite(Date.parse(expires))) {
    throw invalid('created and expires must be ISO 8601 times');
  }
  if (used !== undefined && typeof used !== 'string') throw invalid('used must be a string');
  if (device !== undefined && (typeof device !== 'string' || !isDeviceId(device))) {
    throw invalid('device must be a device id');
  }
  return {
    v: 1,
    facility,
    created,
    expires,
    ...(used === undefined ? {} : { used }),
    ...(device === undefined ? {} : { device }),
  };
}
