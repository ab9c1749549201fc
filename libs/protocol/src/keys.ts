import { fromBase64Url, toBase64Url } from './base64url.js';
import { AccordError, ErrorCode } from './errors.js';
import type { DeviceId } from './ids.js';
import { ED25519, subtle, type WebCryptoKey } from './webcrypto.js';

/** Length of a raw Ed25519 public key. */
export const PUBLIC_KEY_BYTES = 32;
/** Length of an Ed25519 signature. */
export const SIGNATURE_BYTES = 64;

/**
 * A device's Ed25519 key pair: its id (derived from the public key), the raw public key and the
 * WebCrypto private key handle (extractable, so it can be stored with {@link exportDeviceKey}).
 */
export interface DeviceKeyPair {
  readonly deviceId: DeviceId;
  readonly publicKey: Uint8Array;
  readonly privateKey: WebCryptoKey;
}

/** A device key pair in JSON-safe form: base64url of the raw public key and of the PKCS#8 private key. */
export interface StoredDeviceKey {
  readonly deviceId: string;
  readonly publicKey: string;
  readonly privateKey: string;
}

// 'd' + 43 base64url chars of 32 bytes; the last char carries 4 data bits and 2 zero bits.
const DEVICE_ID = /^d[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;

/** True when `id` is a well-formed device id: `d` + canonical base64url of 32 bytes. */
export function isDeviceId(id: string): id is DeviceId {
  return DEVICE_ID.test(id);
}

function badKey(message: string, cause?: unknown): AccordError {
  return new AccordError(ErrorCode.PROTOCOL_BAD_KEY, message, cause === undefined ? {} : { cause });
}

/**
 * The device id of a raw 32-byte Ed25519 public key: `'d' + base64url(raw)`.
 *
 * @throws AccordError `PROTOCOL_BAD_KEY` when `raw` is not 32 bytes.
 */
export function deviceIdFromPublicKey(raw: Uint8Array): DeviceId {
  if (raw.length !== PUBLIC_KEY_BYTES)
    throw badKey(`public key must be ${PUBLIC_KEY_BYTES} bytes, got ${raw.length}`);
  return ('d' + toBase64Url(raw)) as DeviceId;
}

/**
 * The raw 32-byte public key embedded in a device id.
 *
 * @throws AccordError `PROTOCOL_BAD_KEY` when `id` is not a well-formed device id.
 */
export function publicKeyFromDeviceId(id: string): Uint8Array {
  if (!isDeviceId(id)) throw badKey('malformed device id');
  return fromBase64Url(id.slice(1));
}

/** Generates a fresh device key pair (extractable, so it can be persisted). */
export async function generateDeviceKey(): Promise<DeviceKeyPair> {
  const pair = await subtle().generateKey(ED25519, true, ['sign', 'verify']);
  const publicKey = new Uint8Array(await subtle().exportKey('raw', pair.publicKey));
  return { deviceId: deviceIdFromPublicKey(publicKey), publicKey, privateKey: pair.privateKey };
}

// PKCS#8 wrapping of a raw 32-byte Ed25519 seed (RFC 8410): a fixed 16-byte header.
const PKCS8_ED25519_PREFIX = new Uint8Array([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);

/**
 * The key pair of a 32-byte Ed25519 seed: the same seed gives the same device, always.
 *
 * @remarks For reproducible simulations and tests (a seeded run must name its devices
 * the same way every time). Real devices use {@link generateDeviceKey}.
 * @throws AccordError `PROTOCOL_BAD_KEY` when `seed` is not 32 bytes.
 */
export async function deviceKeyFromSeed(seed: Uint8Array): Promise<DeviceKeyPair> {
  if (seed.length !== 32) throw badKey(`seed must be 32 bytes, got ${seed.length}`);
  const pkcs8 = new Uint8Array(PKCS8_ED25519_PREFIX.length + 32);
  pkcs8.set(PKCS8_ED25519_PREFIX);
  pkcs8.set(seed, PKCS8_ED25519_PREFIX.length);
  const privateKey = await subtle().importKey('pkcs8', pkcs8, ED25519, true, ['sign']);
  const jwk = (await subtle().exportKey('jwk', privateKey)) as { x?: string };
  if (typeof jwk.x !== 'string') throw badKey('cannot derive the public key');
  const publicKey = fromBase64Url(jwk.x);
  return { deviceId: deviceIdFromPublicKey(publicKey), publicKey, privateKey };
}

/**
 * The JSON-safe form of a key pair, for the device's key file.
 *
 * @throws AccordError `PROTOCOL_BAD_KEY` when the private key is not extractable.
 */
export async function exportDeviceKey(key: DeviceKeyPair): Promise<StoredDeviceKey> {
  let pkcs8: ArrayBuffer;
  try {
    pkcs8 = await subtle().exportKey('pkcs8', key.privateKey);
  } catch (cause) {
    throw badKey('cannot export the private key', cause);
  }
  return {
    deviceId: key.deviceId,
    publicKey: toBase64Url(key.publicKey),
    privateKey: toBase64Url(new Uint8Array(pkcs8)),
  };
}

const PAIR_CHECK = new TextEncoder().encode('accord key pair check');

/**
 * Restores a key pair from its stored form.
 *
 * @remarks Validates the shape, that the device id matches the public key, and that the private
 * key belongs to the public key (by signing and verifying a fixed message).
 * @throws AccordError `PROTOCOL_BAD_KEY` on any malformed or mismatched input.
 */
export async function importDeviceKey(stored: unknown): Promise<DeviceKeyPair> {
  if (typeof stored !== 'object' || stored === null) throw badKey('stored key must be an object');
  const { deviceId, publicKey, privateKey } = stored as Record<string, unknown>;
  if (typeof deviceId !== 'string' || typeof publicKey !== 'string' || typeof privateKey !== 'string') {
    throw badKey('stored key needs string deviceId, publicKey and privateKey');
  }
  let raw: Uint8Array;
  let pkcs8: Uint8Array;
  try {
    raw = fromBase64Url(publicKey);
    pkcs8 = fromBase64Url(privateKey);
  } catch (cause) {
    throw badKey('stored key is not base64url', cause);
  }
  const id = deviceIdFromPublicKey(raw);
  if (id !== deviceId) throw badKey('device id does not match the public key');
  let priv: WebCryptoKey;
  let pub: WebCryptoKey;
  try {
    priv = await subtle().importKey('pkcs8', pkcs8, ED25519, true, ['sign']);
    pub = await subtle().importKey('raw', raw, ED25519, true, ['verify']);
  } catch (cause) {
    throw badKey('stored key is not an Ed25519 key', cause);
  }
  let matches = false;
  try {
    const sig = new Uint8Array(await subtle().sign(ED25519, priv, PAIR_CHECK));
    matches = await subtle().verify(ED25519, pub, sig, PAIR_CHECK);
  } catch (cause) {
    throw badKey('stored key cannot sign', cause);
  }
  if (!matches) throw badKey('private key does not belong to the public key');
  return { deviceId: id, publicKey: raw, privateKey: priv };
}

/**
 * Signs bytes with a device key; returns the 64-byte Ed25519 signature.
 *
 * @throws AccordError `PROTOCOL_BAD_KEY` when the key cannot sign.
 */
export async function signBytes(key: DeviceKeyPair, bytes: Uint8Array): Promise<Uint8Array> {
  try {
    return new Uint8Array(await subtle().sign(ED25519, key.privateKey, bytes));
  } catch (cause) {
    throw badKey('signing failed', cause);
  }
}

/**
 * A bounded least-recently-used cache of imported Ed25519 public keys, by device id.
 *
 * @remarks Stores the import promise, so concurrent verifications for one device import its key
 * once. A device id whose key fails to import is cached as `null` (it will never verify).
 */
export class PublicKeyCache {
  readonly #limit: number;
  readonly #keys = new Map<string, Promise<WebCryptoKey | null>>();

  constructor(limit = 4096) {
    if (!Number.isSafeInteger(limit) || limit < 1)
      throw new RangeError('PublicKeyCache limit must be a positive integer');
    this.#limit = limit;
  }

  /** Number of cached device keys. */
  get size(): number {
    return this.#keys.size;
  }

  /** True when the key of `device` is cached (does not refresh its recency). */
  has(device: string): boolean {
    return this.#keys.has(device);
  }

  /** The imported public key of a well-formed device id, or null when it does not import. Never rejects. */
  get(device: DeviceId): Promise<WebCryptoKey | null> {
    let key = this.#keys.get(device);
    if (key !== undefined) {
      // Refresh recency: Map iteration order is insertion order, so the first entry is the LRU one.
      this.#keys.delete(device);
      this.#keys.set(device, key);
      return key;
    }
    key = importPublicKey(device);
    this.#keys.set(device, key);
    if (this.#keys.size > this.#limit) {
      const oldest = this.#keys.keys().next();
      if (oldest.done !== true) this.#keys.delete(oldest.value);
    }
    return key;
  }

  /** Forgets every cached key. */
  clear(): void {
    this.#keys.clear();
  }
}

async function importPublicKey(device: DeviceId): Promise<WebCryptoKey | null> {
  try {
    return await subtle().importKey('raw', publicKeyFromDeviceId(device), ED25519, true, ['verify']);
  } catch {
    return null;
  }
}

/** The process-wide cache used by {@link verifyBytes}. */
export const publicKeyCache = new PublicKeyCache();

/**
 * True when `signature` is the Ed25519 signature of `bytes` by the key embedded in `device`.
 *
 * @remarks Never throws or rejects: a malformed device id, a key that does not import, a signature
 * that is not 64 bytes or any WebCrypto failure gives `false`. Imported keys are cached in
 * {@link publicKeyCache} (bounded LRU).
 */
export async function verifyBytes(
  device: DeviceId | string,
  bytes: Uint8Array,
  signature: Uint8Array,
): Promise<boolean> {
  if (signature.length !== SIGNATURE_BYTES || !isDeviceId(device)) return false;
  try {
    const key = await publicKeyCache.get(device);
    if (key === null) return false;
    return await subtle().verify(ED25519, key, signature, bytes);
  } catch {
    return false;
  }
}
