import type { Prng } from './prng.js';

/**
 * Puts streams of `prng` in place of `crypto.getRandomValues`, `crypto.randomUUID` and
 * `Math.random`, so libraries that draw their own randomness (Automerge actor ids, automerge-repo
 * document and session ids, event ids made without an explicit random source) give the same
 * bytes on every run of a seed; returns the function that puts the originals back.
 *
 * @remarks For the simulator only: the values are predictable. WebCrypto key generation
 * (`crypto.subtle`) is not affected; make keys from seeds (`deviceKeyFromSeed`). One installation
 * at a time. The test kit's `seedEntropy` does the same for tests, which this library cannot import.
 */
export function installSimEntropy(prng: Prng): () => void {
  const bytes = prng.stream('entropy/bytes');
  const floats = prng.stream('entropy/floats');
  const crypto = globalThis.crypto;
  const own = {
    getRandomValues: Object.getOwnPropertyDescriptor(crypto, 'getRandomValues'),
    randomUUID: Object.getOwnPropertyDescriptor(crypto, 'randomUUID'),
  };
  const mathRandom = Math.random;
  const getRandomValues = <T extends ArrayBufferView | null>(array: T): T => {
    if (array === null) return array;
    const view = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
    view.set(bytes.bytes(view.length));
    return array;
  };
  const randomUUID = (): `${string}-${string}-${string}-${string}-${string}` => {
    const b = bytes.bytes(16);
    b[6] = (b[6]! & 0x0f) | 0x40;
    b[8] = (b[8]! & 0x3f) | 0x80;
    const hex = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  };
  Object.defineProperty(crypto, 'getRandomValues', {
    configurable: true,
    writable: true,
    value: getRandomValues,
  });
  Object.defineProperty(crypto, 'randomUUID', { configurable: true, writable: true, value: randomUUID });
  Math.random = () => floats.float();
  let restored = false;
  return () => {
    if (restored) return;
    restored = true;
    for (const key of ['getRandomValues', 'randomUUID'] as const) {
      const d = own[key];
      if (d === undefined) delete (crypto as unknown as Record<string, unknown>)[key];
      else Object.defineProperty(crypto, key, d);
    }
    Math.random = mathRandom;
  };
}
