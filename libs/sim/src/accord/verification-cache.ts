/**
 * Answers of signature checks, keyed by the exact bytes that were checked, for the simulated
 * devices of one run to share (issue #11: a verification is a pure function of an event's bytes).
 *
 * @remarks An entry is found by the event's signature and then compared byte for byte with the
 * bytes asked about, so a copy with one byte changed (signature kept) is never answered from the
 * cache: it is a miss and gets checked itself. Bounded: past `limit` entries the oldest is
 * dropped (first in, first out; the devices of a run check an event within a short span of each
 * other, so recency of insertion is recency of use).
 */
export class VerificationCache {
  readonly #limit: number;
  readonly #entries = new Map<string, { readonly bytes: Uint8Array; readonly ok: boolean }>();
  hits = 0;
  misses = 0;

  constructor(limit: number) {
    if (!Number.isSafeInteger(limit) || limit < 1)
      throw new RangeError(`cache limit must be ≥ 1, got ${limit}`);
    this.#limit = limit;
  }

  /** Entries held now (at most the limit). */
  get size(): number {
    return this.#entries.size;
  }

  /** The answer kept for exactly these bytes under this signature, or undefined. */
  get(sig: string, bytes: Uint8Array): boolean | undefined {
    const e = this.#entries.get(sig);
    if (e === undefined || !sameBytes(e.bytes, bytes)) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    return e.ok;
  }

  /** Keeps the answer for these bytes (a copy: the caller's buffer may be a view of a larger one). */
  set(sig: string, bytes: Uint8Array, ok: boolean): void {
    this.#entries.delete(sig);
    if (this.#entries.size >= this.#limit) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(sig, { bytes: bytes.slice(), ok });
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}
