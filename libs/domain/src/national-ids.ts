/** The patients filed under one hash: one id, or (keys sharing a hash, rare) several. */
type Owners = string | readonly string[];

/** 32-bit FNV-1a over UTF-16 code units, as a signed 32-bit integer (what an `Int32Array` holds). */
export function nationalIdHash(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return h | 0;
}

/** Slots of a new table (a power of two). */
const MIN_CAPACITY = 16;
/** The table doubles before more than this share of its slots is used (linear probing stays short). */
const MAX_LOAD = 0.8;

/** The slots of a table: the hash in each used slot, and who is filed there (`undefined`: free). */
interface Slots {
  readonly hashes: Int32Array;
  readonly owners: (Owners | undefined)[];
  count: number;
}

function emptySlots(capacity: number): Slots {
  return {
    hashes: new Int32Array(capacity),
    owners: new Array<Owners | undefined>(capacity).fill(undefined),
    count: 0,
  };
}

/**
 * Which patient holds each normalised national id (the first to claim it), filed by a hash of the
 * key instead of the key itself, in an open-addressing table (linear probing).
 *
 * @remarks A map by key held one more string per patient (its normalised national id, 3 MB at
 * 100k patients) beside the record that has the national id already. Here a key is found by its
 * hash, and each patient filed there is checked against `keyOf` (its record's current key): a
 * patient stays filed under a key only while its record has it (the projection releases the old
 * key before an update changes it), so the check is exact. The hashes sit in an `Int32Array` and
 * the owners in a plain array beside it: 12 bytes a slot, where a `Map` by hash cost ≈ 37 bytes an
 * entry (its hash table) plus a heap number for each hash above 2³¹ (half of them); at 100k
 * patients 1.5 MB instead of 4.3. Copy-on-write like the projection's maps
 * ({@link NationalIdIndex.fork}); the owner lists are never changed in place.
 */
export class NationalIdIndex {
  #slots: Slots;
  /** The slots are shared with another index: copied before the next write. */
  #shared: boolean;

  constructor(slots: Slots = emptySlots(MIN_CAPACITY), shared = false) {
    this.#slots = slots;
    this.#shared = shared;
  }

  /** A second owner of the same index: both copy before their next write. */
  fork(): NationalIdIndex {
    this.#shared = true;
    return new NationalIdIndex(this.#slots, true);
  }

  /** Number of hashes filed (for tests). */
  get size(): number {
    return this.#slots.count;
  }

  /** The patient holding `key`; `keyOf` gives a patient's current normalised national id. */
  owner(key: string, keyOf: (patientId: string) => string | undefined): string | undefined {
    const owners = this.#slots.owners[this.#find(nationalIdHash(key))];
    if (owners === undefined) return undefined;
    if (typeof owners === 'string') return keyOf(owners) === key ? owners : undefined;
    return owners.find((p) => keyOf(p) === key);
  }

  /** Files `patientId` under `key` unless another patient holds it. */
  claim(key: string, patientId: string, keyOf: (patientId: string) => string | undefined): void {
    if (this.owner(key, keyOf) !== undefined) return;
    const h = nationalIdHash(key);
    const slots = this.#writable();
    let at = this.#find(h);
    const owners = slots.owners[at];
    if (owners === undefined) {
      if (slots.count + 1 > slots.hashes.length * MAX_LOAD) {
        this.#slots = rehash(slots, slots.hashes.length * 2);
        at = this.#find(h);
      }
      this.#slots.hashes[at] = h;
      this.#slots.owners[at] = patientId;
      this.#slots.count++;
    } else slots.owners[at] = typeof owners === 'string' ? [owners, patientId] : [...owners, patientId];
  }

  /** Takes `patientId` off `key` if it holds it (call while its record still has that key). */
  release(key: string, patientId: string, keyOf: (patientId: string) => string | undefined): void {
    if (this.owner(key, keyOf) !== patientId) return;
    const slots = this.#writable();
    const at = this.#find(nationalIdHash(key));
    const owners = slots.owners[at]!;
    const rest = typeof owners === 'string' ? [] : owners.filter((p) => p !== patientId);
    if (rest.length === 0) remove(slots, at);
    else slots.owners[at] = rest.length === 1 ? rest[0]! : rest;
  }

  /** The slot holding hash `h`, or the free slot where it would go. */
  #find(h: number): number {
    const { hashes, owners } = this.#slots;
    const mask = hashes.length - 1;
    let at = h & mask;
    while (owners[at] !== undefined && hashes[at] !== h) at = (at + 1) & mask;
    return at;
  }

  /** The slots, copied first if shared. */
  #writable(): Slots {
    if (this.#shared) {
      const { hashes, owners, count } = this.#slots;
      this.#slots = { hashes: hashes.slice(), owners: owners.slice(), count };
      this.#shared = false;
    }
    return this.#slots;
  }
}

/** The same entries in a table of `capacity` slots. */
function rehash(from: Slots, capacity: number): Slots {
  const to = emptySlots(capacity);
  const mask = capacity - 1;
  for (let i = 0; i < from.hashes.length; i++) {
    const owners = from.owners[i];
    if (owners === undefined) continue;
    let at = from.hashes[i]! & mask;
    while (to.owners[at] !== undefined) at = (at + 1) & mask;
    to.hashes[at] = from.hashes[i]!;
    to.owners[at] = owners;
  }
  to.count = from.count;
  return to;
}

/**
 * Frees slot `at`, moving back the entries after it that probed past it (backward-shift deletion:
 * no tombstones, so a lookup still stops at the first free slot).
 */
function remove(slots: Slots, at: number): void {
  const { hashes, owners } = slots;
  const mask = hashes.length - 1;
  let free = at;
  for (let j = (at + 1) & mask; owners[j] !== undefined; j = (j + 1) & mask) {
    const home = hashes[j]! & mask;
    // The entry at j may move to `free` unless its home lies cyclically in (free, j].
    const stays = free <= j ? free < home && home <= j : free < home || home <= j;
    if (stays) continue;
    hashes[free] = hashes[j]!;
    owners[free] = owners[j];
    free = j;
  }
  owners[free] = undefined;
  hashes[free] = 0;
  slots.count--;
}
