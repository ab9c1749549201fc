import { Cow } from './cow.js';

/** The patients filed under one hash: one id, or (keys sharing a hash, rare) several. */
type Owners = string | readonly string[];

/** 32-bit FNV-1a over UTF-16 code units. */
function hash(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * Which patient holds each normalised national id (the first to claim it), filed by a hash of the
 * key instead of the key itself.
 *
 * @remarks A map by key held one more string per patient (its normalised national id, 3 MB at
 * 100k patients) beside the record that has the national id already. Here a key is found by its
 * hash, and each patient filed there is checked against `keyOf` (its record's current key): a
 * patient stays filed under a key only while its record has it (the projection releases the old
 * key before an update changes it), so the check is exact. Copy-on-write like the projection's
 * maps ({@link NationalIdIndex.fork}); the owner lists are never changed in place.
 */
export class NationalIdIndex {
  readonly #byHash: Cow<number, Owners>;

  constructor(byHash: Cow<number, Owners> = new Cow()) {
    this.#byHash = byHash;
  }

  /** A second owner of the same index: both copy before their next write. */
  fork(): NationalIdIndex {
    return new NationalIdIndex(this.#byHash.fork());
  }

  /** The patient holding `key`; `keyOf` gives a patient's current normalised national id. */
  owner(key: string, keyOf: (patientId: string) => string | undefined): string | undefined {
    const owners = this.#byHash.r.get(hash(key));
    if (owners === undefined) return undefined;
    if (typeof owners === 'string') return keyOf(owners) === key ? owners : undefined;
    return owners.find((p) => keyOf(p) === key);
  }

  /** Files `patientId` under `key` unless another patient holds it. */
  claim(key: string, patientId: string, keyOf: (patientId: string) => string | undefined): void {
    if (this.owner(key, keyOf) !== undefined) return;
    const h = hash(key);
    const owners = this.#byHash.r.get(h);
    const next: Owners =
      owners === undefined
        ? patientId
        : typeof owners === 'string'
          ? [owners, patientId]
          : [...owners, patientId];
    this.#byHash.w.set(h, next);
  }

  /** Takes `patientId` off `key` if it holds it (call while its record still has that key). */
  release(key: string, patientId: string, keyOf: (patientId: string) => string | undefined): void {
    if (this.owner(key, keyOf) !== patientId) return;
    const h = hash(key);
    const owners = this.#byHash.r.get(h)!;
    const rest = typeof owners === 'string' ? [] : owners.filter((p) => p !== patientId);
    if (rest.length === 0) this.#byHash.w.delete(h);
    else this.#byHash.w.set(h, rest.length === 1 ? rest[0]! : rest);
  }
}
