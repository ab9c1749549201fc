import { AccordError, ErrorCode } from './errors.js';
import { fromBase64Url } from './base64url.js';
import type { DeviceId, EventId } from './ids.js';
import { asciiString } from './flat-string.js';
import { randomBytes } from './webcrypto.js';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const CODES = Uint8Array.from(CROCKFORD, (c) => c.charCodeAt(0));
const VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < CROCKFORD.length; i++) VALUE[CROCKFORD.charCodeAt(i)] = i;

/** Largest timestamp (ms since the epoch) an event id can carry: 2^48 - 1. */
export const MAX_EVENT_ID_TIME = 2 ** 48 - 1;
/** Bytes of randomness in an event id. */
export const EVENT_ID_RANDOM_BYTES = 10;

// 10 time chars (48 bits, so the first char is 0-7) + 16 random chars (80 bits), uppercase only.
const EVENT_ID = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/;

// Random bytes for ids are drawn from the system's CSPRNG a page at a time: one
// getRandomValues call per id cost as much as the rest of making the id.
const POOL = new Uint8Array(4096);
let poolAt = POOL.length;
function pooledRandom(): Uint8Array {
  if (poolAt + EVENT_ID_RANDOM_BYTES > POOL.length) {
    POOL.set(randomBytes(POOL.length));
    poolAt = 0;
  }
  const out = POOL.subarray(poolAt, poolAt + EVENT_ID_RANDOM_BYTES);
  poolAt += EVENT_ID_RANDOM_BYTES;
  return out;
}

// Scratch space of the id being made (every append makes one): the string is built from it
// before newEventId returns, and nothing else writes it meanwhile.
const ID_CODES = new Uint8Array(26);
const TAIL = new Uint8Array(EVENT_ID_RANDOM_BYTES);

/**
 * A new time-sortable event id: 26 Crockford base32 characters in the ULID layout (48-bit
 * millisecond time, then 80 random bits).
 *
 * @remarks Ids sort as strings by creation time (to the millisecond); ids made in the same
 * millisecond are ordered randomly. Per-device order comes from `seq`, not from the id.
 * @throws AccordError `PROTOCOL_CLOCK` when `nowMs` is not an integer in 0..2^48-1;
 * `PROTOCOL_BAD_ENCODING` when `random` is not 10 bytes.
 */
export function newEventId(nowMs: number, random?: Uint8Array): EventId {
  if (!Number.isSafeInteger(nowMs) || nowMs < 0 || nowMs > MAX_EVENT_ID_TIME) {
    throw new AccordError(ErrorCode.PROTOCOL_CLOCK, `event id time out of range: ${nowMs}`);
  }
  const rnd = random ?? pooledRandom();
  if (rnd.length !== EVENT_ID_RANDOM_BYTES) {
    throw new AccordError(
      ErrorCode.PROTOCOL_BAD_ENCODING,
      `event id randomness must be ${EVENT_ID_RANDOM_BYTES} bytes`,
    );
  }
  const codes = ID_CODES;
  let t = nowMs;
  for (let i = 9; i >= 0; i--) {
    const d = t % 32;
    codes[i] = CODES[d]!;
    t = (t - d) / 32;
  }
  // 80 bits = 16 groups of 5 bits, taken from the bytes big-endian.
  let acc = 0;
  let bits = 0;
  let o = 10;
  for (let i = 0; i < EVENT_ID_RANDOM_BYTES; i++) {
    acc = ((acc << 8) | rnd[i]!) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      codes[o++] = CODES[(acc >>> bits) & 31]!;
    }
  }
  return asciiString(codes) as EventId;
}

/** Bytes of an event id's 80-bit tail taken from its author's public key (the rest is the seq). */
const AUTHOR_TAG_BYTES = 6;
const tagCache = new Map<string, Uint8Array>();
const MAX_TAG_CACHE = 4096;

/** The first 48 bits of the public key in a device id (`d` + base64url): its first 8 characters. */
function authorTag(device: string): Uint8Array | undefined {
  let tag = tagCache.get(device);
  if (tag !== undefined) return tag;
  if (device.length < 9 || device.charCodeAt(0) !== 0x64 /* d */) return undefined;
  try {
    tag = fromBase64Url(device.slice(1, 9));
  } catch {
    return undefined;
  }
  if (tagCache.size >= MAX_TAG_CACHE) tagCache.clear();
  tagCache.set(device, tag);
  return tag;
}

/**
 * The 10 bytes after the time of the id of `device`'s event `seq`, or undefined for a bad device
 * id. In scratch space: valid until the next call.
 */
function authorTail(device: string, seq: number): Uint8Array | undefined {
  const tag = authorTag(device);
  if (tag === undefined || !Number.isSafeInteger(seq) || seq < 0) return undefined;
  const tail = TAIL;
  tail.set(tag);
  const low = seq % 2 ** 32;
  tail[AUTHOR_TAG_BYTES] = (low >>> 24) & 0xff;
  tail[AUTHOR_TAG_BYTES + 1] = (low >>> 16) & 0xff;
  tail[AUTHOR_TAG_BYTES + 2] = (low >>> 8) & 0xff;
  tail[AUTHOR_TAG_BYTES + 3] = low & 0xff;
  return tail;
}

/**
 * The id of event `seq` of `device`, made at `nowMs`: an event id bound to its author.
 *
 * @remarks Same layout as {@link newEventId}, but the 80 bits after the time are the first 48
 * bits of the author's public key and then `seq` (mod 2^32) instead of random bits: unique per
 * device by its sequence, never equal to another device's ids, and checkable by anyone with
 * {@link isEventIdOf}. A device that re-signs another device's event id under its own key is
 * therefore caught as a forgery, and can never displace the author's own event (issue #13).
 * @throws AccordError `PROTOCOL_CLOCK` when `nowMs` is out of range; `PROTOCOL_BAD_KEY` when
 * `device` is not a device id or `seq` not a non-negative integer.
 */
export function eventIdFor(nowMs: number, device: DeviceId, seq: number): EventId {
  const tail = authorTail(device, seq);
  if (tail === undefined) {
    throw new AccordError(ErrorCode.PROTOCOL_BAD_KEY, 'an event id needs a device id and a sequence number');
  }
  return newEventId(nowMs, tail);
}

/**
 * True when `id` is bound to `device` and `seq` (see {@link eventIdFor}); the time part is free.
 *
 * @remarks Cheap (no hashing, a cached key prefix per device): checked on every event a peer delivers.
 */
export function isEventIdOf(id: string, device: string, seq: number): boolean {
  const tail = authorTail(device, seq);
  if (tail === undefined || id.length !== 26) return false;
  // The tail's 80 bits as newEventId writes them, compared character by character (no id built).
  let acc = 0;
  let bits = 0;
  let o = 10;
  for (let i = 0; i < EVENT_ID_RANDOM_BYTES; i++) {
    acc = ((acc << 8) | tail[i]!) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      if (id.charCodeAt(o++) !== CODES[(acc >>> bits) & 31]) return false;
    }
  }
  return true;
}

/**
 * The sequence number (mod 2^32) an author-bound id carries (see {@link eventIdFor}), or undefined
 * for a malformed id.
 *
 * @remarks Any well-formed id yields a number: only {@link isEventIdOf}, or a log that holds the
 * event at that number, says the id is really bound to it. Lets a log find where an event sits by
 * its id alone, with no index from ids to places and no read.
 */
export function eventIdSeq(id: string): number | undefined {
  if (!isEventId(id)) return undefined;
  // The last 32 of the 80 tail bits: the low 2 bits of char 19, then chars 20-25 (5 bits each).
  let low = VALUE[id.charCodeAt(19)]! & 3;
  for (let i = 20; i < 26; i++) low = low * 32 + VALUE[id.charCodeAt(i)]!;
  return low;
}

/** True when `s` is a well-formed event id (26 uppercase Crockford base32 chars, time ≤ 2^48-1). */
export function isEventId(s: string): s is EventId {
  return EVENT_ID.test(s);
}

/** The creation time (ms since the epoch) encoded in an event id. */
export function eventIdTime(id: EventId): number {
  let t = 0;
  for (let i = 0; i < 10; i++) {
    const c = id.charCodeAt(i);
    const v = c < 128 ? VALUE[c]! : -1;
    if (v < 0) throw new AccordError(ErrorCode.PROTOCOL_BAD_ENCODING, 'malformed event id');
    t = t * 32 + v;
  }
  return t;
}
