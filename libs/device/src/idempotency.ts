import { AccordError, ErrorCode, type JsonValue } from '@accord/protocol';
import { frameValue, unframeValue, type BinaryLevel } from '@accord/storage-level';

/**
 * What the agent remembers of the first answer to a write sent with an `Idempotency-Key`.
 *
 * @remarks Kept small on purpose: the status and the ids of the events the write recorded, never
 * the events themselves (a replay re-reads them from the log, which never forgets an event).
 */
export interface IdempotentAnswer {
  /** SHA-256 (base64url) of the first request's method, path and body: another body is a mismatch. */
  readonly fingerprint: string;
  /** The first answer's HTTP status. */
  readonly status: number;
  /** The ids the answer is rebuilt from (shape owned by the route: an event id, or retry-all's lists). */
  readonly result: JsonValue;
  /** Wall time of the first answer, in ms since the epoch (entries older than the retention are pruned). */
  readonly at: number;
}

/**
 * A durable map from `Idempotency-Key` to the first answer given for it.
 *
 * @remarks `put` resolves once the entry is durable. Only answers that recorded something are
 * put: a refused request may be sent again with the same key.
 */
export interface IdempotencyStore {
  get(key: string): Promise<IdempotentAnswer | undefined>;
  put(key: string, answer: IdempotentAnswer): Promise<void>;
}

/** Longest accepted `Idempotency-Key` (a UUID is 36 characters). */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 128;

const KEY_PATTERN = /^[A-Za-z0-9._:~-]+$/;

/** True for a well-formed `Idempotency-Key`: 1-128 characters of `A-Z a-z 0-9 . _ : ~ -`. */
export function isIdempotencyKey(key: string): boolean {
  return key.length > 0 && key.length <= MAX_IDEMPOTENCY_KEY_LENGTH && KEY_PATTERN.test(key);
}

/** How long an entry is kept by default: a tablet re-sends a form within minutes, not weeks. */
export const DEFAULT_IDEMPOTENCY_RETENTION_MS = 7 * 24 * 3600_000;

/**
 * An in-memory {@link IdempotencyStore} holding at most `maxEntries` keys (the oldest are
 * forgotten first): for tests and for an `HttpApi` without a database. Not durable.
 */
export class MemoryIdempotencyStore implements IdempotencyStore {
  readonly #entries = new Map<string, IdempotentAnswer>();
  readonly #max: number;

  constructor(maxEntries = 1000) {
    this.#max = maxEntries;
  }

  get(key: string): Promise<IdempotentAnswer | undefined> {
    return Promise.resolve(this.#entries.get(key));
  }

  put(key: string, answer: IdempotentAnswer): Promise<void> {
    this.#entries.delete(key);
    this.#entries.set(key, answer);
    if (this.#entries.size > this.#max) {
      const oldest = this.#entries.keys().next();
      if (oldest.done !== true) this.#entries.delete(oldest.value);
    }
    return Promise.resolve();
  }

  /** Number of keys held. */
  get size(): number {
    return this.#entries.size;
  }
}

/** The sublevel of the device database that holds the keys. */
const SUBLEVEL = 'idempotency';

// `sync` (fsync before resolving) is a classic-level option that sublevels pass through to their
// parent; abstract-level's types do not list it, so it goes in a variable, not a literal.
const DURABLE = { keyEncoding: 'view', valueEncoding: 'view', sync: true } as const;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

type Sublevel = ReturnType<typeof sublevelOf>;

function sublevelOf(db: BinaryLevel) {
  return db.sublevel<Uint8Array, Uint8Array>(SUBLEVEL, { keyEncoding: 'view', valueEncoding: 'view' });
}

function parseAnswer(bytes: Uint8Array): IdempotentAnswer | undefined {
  try {
    const v = JSON.parse(decoder.decode(bytes)) as Partial<IdempotentAnswer> | null;
    if (
      v === null ||
      typeof v !== 'object' ||
      typeof v.fingerprint !== 'string' ||
      typeof v.status !== 'number' ||
      typeof v.at !== 'number' ||
      v.result === undefined
    )
      return undefined;
    return { fingerprint: v.fingerprint, status: v.status, result: v.result, at: v.at };
  } catch {
    return undefined;
  }
}

/**
 * The device's durable {@link IdempotencyStore}: a sublevel `idempotency` of its LevelDB, one
 * checksummed entry per key (the storage package's frame), written with `sync`.
 *
 * @remarks Entries older than the retention (default 7 days) are deleted when the store opens,
 * so the sublevel holds at most a week of keys; nothing is held in memory. A damaged entry is
 * never taken for "no entry" (that would record the write twice): `get` throws `STORAGE_CORRUPT`
 * and the request is answered 500; pruning leaves damaged entries alone.
 */
export class LevelIdempotencyStore implements IdempotencyStore {
  readonly #db: Sublevel;

  private constructor(db: Sublevel) {
    this.#db = db;
  }

  /**
   * Opens the store on `db` (the device database's root, opened by `openDeviceDatabase`) and
   * prunes expired entries. Open it after the log's start-up scan (`unmapTables` reopens the
   * root and does not reopen sublevels made before).
   */
  static async open(
    db: BinaryLevel,
    opts: { readonly retentionMs?: number; readonly clock?: () => number } = {},
  ): Promise<LevelIdempotencyStore> {
    const sub = sublevelOf(db);
    await sub.open();
    const store = new LevelIdempotencyStore(sub);
    await store.prune((opts.clock ?? Date.now)() - (opts.retentionMs ?? DEFAULT_IDEMPOTENCY_RETENTION_MS));
    return store;
  }

  /** Deletes the entries recorded before `before` (ms since the epoch); returns how many. */
  async prune(before: number): Promise<number> {
    const expired: Uint8Array[] = [];
    for await (const [key, value] of this.#db.iterator()) {
      const framed = unframeValue(key, value);
      if (!framed.ok) continue;
      const answer = parseAnswer(framed.payload);
      if (answer !== undefined && answer.at < before) expired.push(key);
    }
    if (expired.length > 0) {
      await this.#db.batch(
        expired.map((key) => ({ type: 'del' as const, key })),
        DURABLE,
      );
    }
    return expired.length;
  }

  async get(key: string): Promise<IdempotentAnswer | undefined> {
    const k = encoder.encode(key);
    const value = await this.#db.get(k);
    if (value === undefined) return undefined;
    const framed = unframeValue(k, value);
    const answer = framed.ok ? parseAnswer(framed.payload) : undefined;
    if (answer === undefined) {
      throw new AccordError(
        ErrorCode.STORAGE_CORRUPT,
        `the stored answer of Idempotency-Key ${key} is damaged`,
        {
          details: { key: `idempotency/${key}` },
        },
      );
    }
    return answer;
  }

  async put(key: string, answer: IdempotentAnswer): Promise<void> {
    const k = encoder.encode(key);
    await this.#db.put(k, frameValue(k, encoder.encode(JSON.stringify(answer))), DURABLE);
  }
}
