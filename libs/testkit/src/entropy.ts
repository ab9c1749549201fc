import { seededRandom } from './random.js';

/** Undoes {@link seedEntropy}. */
export interface SeededEntropy {
  /** Puts the original `crypto.getRandomValues` and `Math.random` back; safe to call twice. */
  restore(): void;
}

/**
 * Replaces `globalThis.crypto.getRandomValues` and `Math.random` with streams derived
 * from `seed`, so libraries that draw their own randomness (Automerge actor ids,
 * automerge-repo session ids) behave the same on every run.
 *
 * @remarks For deterministic simulations and tests only — never in production code:
 * the values are predictable. Restore in `finally`/`afterEach`. WebCrypto key
 * generation (`crypto.subtle`) is not affected. Calls do not nest: restore the first
 * before seeding again.
 */
export function seedEntropy(seed: number): SeededEntropy {
  const bytes = seededRandom(seed);
  const floats = bytes.fork();
  const crypto = globalThis.crypto;
  const ownGetRandomValues = Object.getOwnPropertyDescriptor(crypto, 'getRandomValues');
  const mathRandom = Math.random;

  const getRandomValues = <T extends ArrayBufferView | null>(array: T): T => {
    if (array === null) return array;
    const view = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
    for (let i = 0; i < view.length; i++) view[i] = bytes.int(256);
    return array;
  };
  Object.defineProperty(crypto, 'getRandomValues', {
    configurable: true,
    writable: true,
    value: getRandomValues,
  });
  Math.random = floats;

  let restored = false;
  return {
    restore(): void {
      if (restored) return;
      restored = true;
      if (ownGetRandomValues === undefined) delete (crypto as { getRandomValues?: unknown }).getRandomValues;
      else Object.defineProperty(crypto, 'getRandomValues', ownGetRandomValues);
      Math.random = mathRandom;
    },
  };
}
