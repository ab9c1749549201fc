import { AccordError, ErrorCode } from './errors.js';

/**
 * A WebCrypto `CryptoKey`, typed structurally so this package compiles with or without the DOM
 * lib (Node's types only declare `webcrypto.CryptoKey`).
 */
export interface WebCryptoKey {
  readonly type: string;
  readonly extractable: boolean;
  readonly algorithm: { readonly name: string };
  readonly usages: readonly string[];
}

/** The slice of `SubtleCrypto` this package uses (Ed25519, and SHA-256 digests). */
export interface Ed25519Subtle {
  digest(algorithm: 'SHA-256', data: Uint8Array): Promise<ArrayBuffer>;
  generateKey(
    algorithm: { name: 'Ed25519' },
    extractable: boolean,
    usages: readonly string[],
  ): Promise<{ publicKey: WebCryptoKey; privateKey: WebCryptoKey }>;
  importKey(
    format: 'raw' | 'pkcs8',
    keyData: Uint8Array,
    algorithm: { name: 'Ed25519' },
    extractable: boolean,
    usages: readonly string[],
  ): Promise<WebCryptoKey>;
  exportKey(format: 'raw' | 'pkcs8', key: WebCryptoKey): Promise<ArrayBuffer>;
  exportKey(format: 'jwk', key: WebCryptoKey): Promise<object>;
  sign(algorithm: { name: 'Ed25519' }, key: WebCryptoKey, data: Uint8Array): Promise<ArrayBuffer>;
  verify(
    algorithm: { name: 'Ed25519' },
    key: WebCryptoKey,
    signature: Uint8Array,
    data: Uint8Array,
  ): Promise<boolean>;
}

interface MinimalCrypto {
  readonly subtle?: Ed25519Subtle;
  getRandomValues?<T extends Uint8Array>(array: T): T;
}

/** The Ed25519 algorithm identifier for WebCrypto calls. */
export const ED25519 = { name: 'Ed25519' } as const;

function webCrypto(): MinimalCrypto {
  const c = (globalThis as { crypto?: MinimalCrypto }).crypto;
  if (c === undefined)
    throw new AccordError(ErrorCode.PROTOCOL_BAD_KEY, 'WebCrypto (globalThis.crypto) is unavailable');
  return c;
}

/**
 * `globalThis.crypto.subtle`, typed for Ed25519.
 *
 * @throws AccordError `PROTOCOL_BAD_KEY` when WebCrypto is unavailable.
 */
export function subtle(): Ed25519Subtle {
  const s = webCrypto().subtle;
  if (s === undefined) throw new AccordError(ErrorCode.PROTOCOL_BAD_KEY, 'WebCrypto subtle is unavailable');
  return s;
}

/** Fills a new array of `n` bytes from `crypto.getRandomValues`. */
export function randomBytes(n: number): Uint8Array {
  const c = webCrypto();
  if (c.getRandomValues === undefined)
    throw new AccordError(ErrorCode.PROTOCOL_BAD_KEY, 'crypto.getRandomValues is unavailable');
  return c.getRandomValues(new Uint8Array(n));
}
