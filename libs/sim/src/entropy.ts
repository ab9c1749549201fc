import nodeCrypto from 'node:crypto';
import { generateAutomergeUrl } from '@automerge/automerge-repo';
import type { Prng } from './prng.js';

type Uuid = `${string}-${string}-${string}-${string}-${string}`;

/**
 * Puts streams of `prng` in place of `crypto.getRandomValues`, `crypto.randomUUID` and
 * `Math.random`, and of `node:crypto`'s `randomFillSync` and `randomUUID`, so libraries that draw
 * their own randomness (Automerge actor ids, automerge-repo document and session ids, event ids
 * made without an explicit random source) give the same bytes on every run of a seed; returns the
 * function that puts the originals back.
 *
 * @remarks For the simulator only: the values are predictable. `node:crypto` matters because
 * automerge-repo's `Repo.create` makes document ids with the `uuid` package, whose Node build
 * fills a 256-byte pool with `randomFillSync` (`uuid/dist/rng.js`), not WebCrypto: left real, a
 * replay's document id differed, and with it the length of its base58 form in every sync frame
 * (27 or 28 characters), so frame sizes, link timing and frame counts drifted. The pool outlives
 * a run, so installing also draws ids until the pool refills from the seed
 * ({@link realignIdPool}): every installation then starts from the same pool. Not reached:
 * `uuid`'s argument-less `v4()` calls the `randomUUID` it read from `node:crypto` when first
 * imported (`uuid/dist/native.js`); automerge-repo draws a new storage's id with it
 * (`StorageSubsystem.id()`), so a simulated node with storage needs its `storage-adapter-id`
 * saved from the seed beforehand. WebCrypto key generation (`crypto.subtle`) is not affected;
 * make keys from seeds (`deviceKeyFromSeed`). One installation at a time. The test kit's
 * `seedEntropy` does the same for tests, which this library cannot import.
 */
export function installSimEntropy(prng: Prng): () => void {
  const bytes = prng.stream('entropy/bytes');
  const floats = prng.stream('entropy/floats');
  let draws = 0;
  const fill = (view: Uint8Array): void => {
    draws++;
    view.set(bytes.bytes(view.length));
  };
  const getRandomValues = <T extends ArrayBufferView | null>(array: T): T => {
    if (array !== null) fill(new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
    return array;
  };
  /** `node:crypto`'s form: offset and size count elements of a typed array, bytes otherwise. */
  const randomFillSync = <T extends ArrayBufferView | ArrayBuffer>(buf: T, offset = 0, size?: number): T => {
    const view = ArrayBuffer.isView(buf)
      ? new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
      : new Uint8Array(buf);
    const unit = ArrayBuffer.isView(buf)
      ? ((buf as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT ?? 1)
      : 1;
    const start = offset * unit;
    fill(view.subarray(start, size === undefined ? view.length : start + size * unit));
    return buf;
  };
  const randomUUID = (): Uuid => {
    draws++;
    const b = bytes.bytes(16);
    b[6] = (b[6]! & 0x0f) | 0x40;
    b[8] = (b[8]! & 0x3f) | 0x80;
    const hex = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  };
  const restoreWeb = replace(globalThis.crypto, { getRandomValues, randomUUID });
  const restoreNode = replace(nodeCrypto, { randomFillSync, randomUUID });
  const mathRandom = Math.random;
  Math.random = () => floats.float();
  realignIdPool(() => draws);
  let restored = false;
  return () => {
    if (restored) return;
    restored = true;
    restoreWeb();
    restoreNode();
    Math.random = mathRandom;
  };
}

/**
 * Makes automerge-repo draw document ids until one draw reaches the seeded sources (`draws`
 * changes), so ids drawn from a pool filled earlier in the process (`uuid` hands out 16 bytes of
 * a 256-byte pool per id, refilling when it runs low) are used up and the next ids come from the
 * seed. At most 17 draws with today's pool; an id source that never reaches the seeded ones stops
 * the loop at 64 and stays unseeded.
 */
function realignIdPool(draws: () => number): void {
  const before = draws();
  for (let i = 0; i < 64 && draws() === before; i++) generateAutomergeUrl();
}

/** Sets `values` as own properties of `target`; returns the function that puts the old ones back. */
function replace(target: object, values: Record<string, unknown>): () => void {
  const saved = Object.keys(values).map(
    (key) => [key, Object.getOwnPropertyDescriptor(target, key)] as const,
  );
  for (const [key, value] of Object.entries(values))
    Object.defineProperty(target, key, { configurable: true, writable: true, enumerable: true, value });
  return () => {
    for (const [key, d] of saved) {
      if (d === undefined) delete (target as Record<string, unknown>)[key];
      else Object.defineProperty(target, key, d);
    }
  };
}
