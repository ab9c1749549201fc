/**
 * The checksummed frame around every stored value:
 *
 * ```
 * offset 0  magic    0xAC
 * offset 1  version  0x01
 * offset 2  length   u32 big-endian, payload length in bytes
 * offset 6  crc      u32 big-endian, CRC-32C over (storage key bytes ‖ bytes 0..5 ‖ payload)
 * offset 10 payload
 * ```
 *
 * The checksum covers the key too, so a value copied or moved under another key is
 * detected as well as flipped, truncated or zero-length bytes.
 */
import { crc32c } from './crc32c.js';

/** First byte of every frame. */
export const FRAME_MAGIC = 0xac;
/** Frame layout version. */
export const FRAME_VERSION = 0x01;
/** Bytes before the payload. */
export const FRAME_HEADER_BYTES = 10;
/** Largest payload a frame can describe (u32 length). */
export const FRAME_MAX_PAYLOAD = 0xffff_ffff;

/** Why a stored value was rejected. */
export type CorruptionReason =
  'empty' | 'short' | 'magic' | 'version' | 'length' | 'checksum' | 'key' | 'record';

/** The result of {@link unframeValue}. */
export type Unframed =
  | { readonly ok: true; readonly payload: Uint8Array }
  | { readonly ok: false; readonly reason: CorruptionReason };

function checksum(key: Uint8Array, frame: Uint8Array, payload: Uint8Array): number {
  return crc32c(payload, crc32c(frame.subarray(0, 6), crc32c(key)));
}

/**
 * Wraps `payload` (stored under the raw key `key`) in a checksummed frame.
 *
 * @remarks Copies `payload`: later changes by the caller do not reach storage.
 */
export function frameValue(key: Uint8Array, payload: Uint8Array): Uint8Array {
  if (payload.length > FRAME_MAX_PAYLOAD) throw new RangeError(`value too large: ${payload.length} bytes`);
  const out = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  const view = new DataView(out.buffer);
  out[0] = FRAME_MAGIC;
  out[1] = FRAME_VERSION;
  view.setUint32(2, payload.length);
  out.set(payload, FRAME_HEADER_BYTES);
  view.setUint32(6, checksum(key, out, payload));
  return out;
}

/**
 * Checks and strips the frame of a value read under the raw key `key`.
 *
 * @remarks Never returns a shorter or empty payload for a damaged value: a zero-length raw
 * value, a value shorter than the header, a wrong magic or version, a length that does not
 * match, or a checksum mismatch are all reported as corrupt. The payload is a plain
 * `Uint8Array` view on `raw`.
 */
export function unframeValue(key: Uint8Array, raw: Uint8Array): Unframed {
  if (raw.length === 0) return { ok: false, reason: 'empty' };
  if (raw.length < FRAME_HEADER_BYTES) return { ok: false, reason: 'short' };
  if (raw[0] !== FRAME_MAGIC) return { ok: false, reason: 'magic' };
  if (raw[1] !== FRAME_VERSION) return { ok: false, reason: 'version' };
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const length = view.getUint32(2);
  if (raw.length - FRAME_HEADER_BYTES !== length) return { ok: false, reason: 'length' };
  const payload = new Uint8Array(raw.buffer, raw.byteOffset + FRAME_HEADER_BYTES, length);
  if (view.getUint32(6) !== checksum(key, raw, payload)) return { ok: false, reason: 'checksum' };
  return { ok: true, payload };
}
