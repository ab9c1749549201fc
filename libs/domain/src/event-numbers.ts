import type { EventId } from '@accord/protocol';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const CODES = Uint8Array.from(CROCKFORD, (c) => c.charCodeAt(0));
const VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < CROCKFORD.length; i++) VALUE[CROCKFORD.charCodeAt(i)] = i;

/** Ids per chunk of the packed ids (a power of two): chunks never move, so the store has no slack to copy. */
const CHUNK_BITS = 14;
const CHUNK = 1 << CHUNK_BITS;
/** Slots of a new index (a power of two). */
const MIN_CAPACITY = 1024;
/** The index doubles before more than this share of its slots is used (linear probing stays short). */
const MAX_LOAD = 0.8;

/** Scratch words of the id being looked up (no allocation per lookup). */
const W = new Uint32Array(4);
/** The id whose words (and hash) `W` holds, if one does. */
let packed: string | undefined;
let packedHash = 0;
const ID_CODES = new Uint8Array(26);
// ASCII is its own UTF-8: one flat one-byte string (see `@accord/protocol`'s flat-string).
const DECODER = new TextDecoder();

/**
 * Packs an event id (26 Crockford base32 characters, the first 0–7: 128 bits) into `W`; false when
 * `id` is not in that canonical form (lowercase, other letters, another length).
 *
 * @remarks Characters 0–5 (28 bits) and the three groups 6–11, 12–17, 18–23 (30 bits each) fill
 * the low bits of the four words; the last two characters (10 bits) fill the spare top bits.
 */
function pack(id: string): boolean {
  // The same id is often looked up several times in a row (a fold asks the tracker, the applied
  // set and the fold's own list about one event): its words are still in `W`.
  if (id === packed) return true;
  packed = undefined;
  if (id.length !== 26) return false;
  let w = 0;
  for (let i = 0; i < 26; i++) {
    const c = id.charCodeAt(i);
    const v = c < 128 ? VALUE[c]! : -1;
    if (v < 0 || (i === 0 && v > 7)) return false;
    if (i < 24) {
      w = w * 32 + v;
      if (i === 5 || i === 11 || i === 17 || i === 23) {
        W[i === 5 ? 0 : i === 11 ? 1 : i === 17 ? 2 : 3] = w;
        w = 0;
      }
    } else w = w * 32 + v;
  }
  // w: the 10 bits of characters 24 and 25.
  W[0] = (W[0]! | ((w & 0xf) << 28)) >>> 0;
  W[1] = (W[1]! | (((w >>> 4) & 3) << 30)) >>> 0;
  W[2] = (W[2]! | (((w >>> 6) & 3) << 30)) >>> 0;
  W[3] = (W[3]! | (((w >>> 8) & 3) << 30)) >>> 0;
  packedHash = hash(W[0], W[1], W[2], W[3]);
  packed = id;
  return true;
}

/** The id string of four packed words (the inverse of {@link pack}). */
function unpack(w0: number, w1: number, w2: number, w3: number): EventId {
  const tail =
    ((w0 >>> 28) & 0xf) | (((w1 >>> 30) & 3) << 4) | (((w2 >>> 30) & 3) << 6) | (((w3 >>> 30) & 3) << 8);
  let g = w0 & 0x0fffffff;
  for (let i = 5; i >= 0; i--, g = Math.floor(g / 32)) ID_CODES[i] = CODES[g & 31]!;
  const groups = [w1 & 0x3fffffff, w2 & 0x3fffffff, w3 & 0x3fffffff];
  for (let k = 0; k < 3; k++) {
    g = groups[k]!;
    for (let i = 6 * k + 11; i >= 6 * k + 6; i--, g >>>= 5) ID_CODES[i] = CODES[g & 31]!;
  }
  ID_CODES[24] = CODES[(tail >>> 5) & 31]!;
  ID_CODES[25] = CODES[tail & 31]!;
  return DECODER.decode(ID_CODES) as EventId;
}

/** A 32-bit hash of four words (murmur3's finalizer over a multiply-xor mix). */
function hash(w0: number, w1: number, w2: number, w3: number): number {
  let h = Math.imul(w0 ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ w1 ^ (h >>> 13), 0xc2b2ae35);
  h = Math.imul(h ^ w2 ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ w3 ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) | 0;
}

/**
 * Numbers for event ids: each id gets the next number (0, 1, 2, …) the first time it is numbered,
 * and the id string is made again from its number on demand.
 *
 * @remarks So that a device's indexes of its history (the status tracker, the confirmed fold, the
 * applied set, the log's ids by seq) hold a number per event in typed arrays instead of a 26-character
 * string (48 bytes in V8) and a hash-table entry (≈ 30–37 bytes). An id in the canonical form
 * (every id `eventIdFor` and `newEventId` make: 128 bits) is kept packed in four 32-bit words
 * (16 bytes, in fixed chunks) and found through an open-addressing index of numbers (4 bytes a
 * slot, load ≤ 0.8, linear probing; the hash is recomputed from the packed words, so the index
 * stores none). Any other string (only a hostile or test event has one) is kept as a string in a
 * side map. Numbers are never given back: the owner numbers what it keeps for good.
 */
export class EventNumbers {
  readonly #chunks: Uint32Array[] = [];
  #count = 0;
  /** Number + 1 of the canonical id filed in each slot (0: free). */
  #index = new Int32Array(MIN_CAPACITY);
  #filed = 0;
  /** Ids not in the canonical form, both ways (rare). */
  readonly #odd = new Map<string, number>();
  readonly #oddIds = new Map<number, EventId>();

  /** How many ids are numbered. */
  get size(): number {
    return this.#count;
  }

  /** The number of `id`, or undefined when it has none. */
  find(id: string): number | undefined {
    if (!pack(id)) return this.#odd.get(id);
    const n = this.#index[this.#slot(packedHash, W[0]!, W[1]!, W[2]!, W[3]!)]!;
    return n === 0 ? undefined : n - 1;
  }

  /** The number of `id`, given now (the next one) when it has none. */
  number(id: string): number {
    if (!pack(id)) {
      let n = this.#odd.get(id);
      if (n === undefined) {
        n = this.#next(0, 0, 0, 0);
        this.#odd.set(id, n);
        this.#oddIds.set(n, id as EventId);
      }
      return n;
    }
    const w0 = W[0]!;
    const w1 = W[1]!;
    const w2 = W[2]!;
    const w3 = W[3]!;
    const h = packedHash;
    let at = this.#slot(h, w0, w1, w2, w3);
    const known = this.#index[at]!;
    if (known !== 0) return known - 1;
    if (this.#filed + 1 > this.#index.length * MAX_LOAD) {
      this.#grow();
      at = this.#slot(h, w0, w1, w2, w3);
    }
    const n = this.#next(w0, w1, w2, w3);
    this.#index[at] = n + 1;
    this.#filed++;
    return n;
  }

  /** The id string of number `n` (a fresh string equal to the one numbered). */
  id(n: number): EventId {
    if (this.#oddIds.size > 0) {
      const odd = this.#oddIds.get(n);
      if (odd !== undefined) return odd;
    }
    if (!(n >= 0 && n < this.#count)) throw new RangeError(`EventNumbers.id: no id numbered ${n}`);
    const chunk = this.#chunks[n >>> CHUNK_BITS]!;
    const o = (n & (CHUNK - 1)) * 4;
    return unpack(chunk[o]!, chunk[o + 1]!, chunk[o + 2]!, chunk[o + 3]!);
  }

  /** Stores the packed words of the next number and returns it. */
  #next(w0: number, w1: number, w2: number, w3: number): number {
    const n = this.#count++;
    if ((n & (CHUNK - 1)) === 0) this.#chunks.push(new Uint32Array(CHUNK * 4));
    const chunk = this.#chunks[n >>> CHUNK_BITS]!;
    const o = (n & (CHUNK - 1)) * 4;
    chunk[o] = w0;
    chunk[o + 1] = w1;
    chunk[o + 2] = w2;
    chunk[o + 3] = w3;
    return n;
  }

  /** The slot holding the id with these words, or the free slot where it would go. */
  #slot(h: number, w0: number, w1: number, w2: number, w3: number): number {
    const index = this.#index;
    const mask = index.length - 1;
    for (let at = h & mask; ; at = (at + 1) & mask) {
      const v = index[at]!;
      if (v === 0) return at;
      const n = v - 1;
      const chunk = this.#chunks[n >>> CHUNK_BITS]!;
      const o = (n & (CHUNK - 1)) * 4;
      if (chunk[o] === w0 && chunk[o + 1] === w1 && chunk[o + 2] === w2 && chunk[o + 3] === w3) return at;
    }
  }

  /** Doubles the index and files every canonical id again. */
  #grow(): void {
    const old = this.#index;
    const index = new Int32Array(old.length * 2);
    const mask = index.length - 1;
    for (const v of old) {
      if (v === 0) continue;
      const n = v - 1;
      const chunk = this.#chunks[n >>> CHUNK_BITS]!;
      const o = (n & (CHUNK - 1)) * 4;
      let at = hash(chunk[o]!, chunk[o + 1]!, chunk[o + 2]!, chunk[o + 3]!) & mask;
      while (index[at] !== 0) at = (at + 1) & mask;
      index[at] = v;
    }
    this.#index = index;
  }
}

const COLUMN_BITS = 12;
const COLUMN_CHUNK = 1 << COLUMN_BITS;

/**
 * A column of 32-bit integers indexed by number (0 where nothing was set), in fixed chunks of
 * 4096 made on first write: 4 bytes an entry, no copy as it grows, no slack beyond one chunk.
 */
export class Int32Column {
  readonly #chunks: (Int32Array | undefined)[] = [];

  /** The integer at `i` (0 when never set). */
  get(i: number): number {
    const chunk = this.#chunks[i >>> COLUMN_BITS];
    return chunk === undefined ? 0 : chunk[i & (COLUMN_CHUNK - 1)]!;
  }

  /** Sets the integer at `i` (`v` a signed 32-bit integer). */
  set(i: number, v: number): void {
    let chunk = this.#chunks[i >>> COLUMN_BITS];
    if (chunk === undefined) {
      if (v === 0) return;
      while (this.#chunks.length < i >>> COLUMN_BITS) this.#chunks.push(undefined);
      chunk = this.#chunks[i >>> COLUMN_BITS] = new Int32Array(COLUMN_CHUNK);
    }
    chunk[i & (COLUMN_CHUNK - 1)] = v;
  }
}

/**
 * A set of event ids kept as one bit per {@link EventNumbers} number, copy-on-write like the
 * projection's maps ({@link NumberedIdSet.fork} is O(1); the first write through either owner
 * copies the bits: n / 8 bytes).
 */
export class NumberedIdSet {
  readonly #numbers: EventNumbers;
  #bits: Uint32Array<ArrayBuffer>;
  #shared: boolean;
  #size: number;

  constructor(
    numbers: EventNumbers,
    bits: Uint32Array<ArrayBuffer> = new Uint32Array(1024),
    size = 0,
    shared = false,
  ) {
    this.#numbers = numbers;
    this.#bits = bits;
    this.#size = size;
    this.#shared = shared;
  }

  /** Number of ids. */
  get size(): number {
    return this.#size;
  }

  /** True when `id` was added. */
  has(id: EventId): boolean {
    const n = this.#numbers.find(id);
    if (n === undefined) return false;
    const word = this.#bits[n >>> 5];
    return word !== undefined && (word & (1 << (n & 31))) !== 0;
  }

  /** Adds `id` (numbering it: the owner numbers what it folds). */
  add(id: EventId): void {
    const n = this.#numbers.number(id);
    const w = n >>> 5;
    const bit = 1 << (n & 31);
    if (w < this.#bits.length && (this.#bits[w]! & bit) !== 0) return;
    if (this.#shared || w >= this.#bits.length) {
      let length = this.#bits.length;
      while (length <= w) length *= 2;
      const bits = new Uint32Array(length);
      bits.set(this.#bits);
      this.#bits = bits;
      this.#shared = false;
    }
    this.#bits[w] = this.#bits[w]! | bit;
    this.#size++;
  }

  /** A second owner of the same bits: both copy before their next write. */
  fork(): NumberedIdSet {
    this.#shared = true;
    return new NumberedIdSet(this.#numbers, this.#bits, this.#size, true);
  }
}
