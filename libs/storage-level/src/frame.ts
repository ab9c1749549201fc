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

/** CRC-32C over the key, the frame's first 6 header bytes and its payload (bytes 10 onwards). */
function checksum(key: Uint8Array, frame: Uint8Array): number {
  return crc32c(frame, crc32c(frame, crc32c(key), 0, 6), FRAME_HEADER_BYTES);
}

function writeUint32(out: Uint8Array, at: number, value: number): void {
  out[at] = value >>> 24;
  out[at + 1] = value >>> 16;
  out[at + 2] = value >>> 8;
  out[at + 3] = value;
}

function readUint32(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}

/**
 * Wraps `payload` (stored under the raw key `key`) in a checksummed frame.
 *
 * @remarks Copies `payload`: later changes by the caller do not reach storage.
 */
export function frameValue(key: Uint8Array, payload: Uint8Array): Uint8Array {
  const { frame, payload: room } = allocateFrame(payload.length);
  room.set(payload);
  return sealFrame(key, frame);
}

/** Transient frames (see {@link allocateFrame}) up to MAX_SLAB_PIECE bytes share slabs of SLAB_BYTES. */
const SLAB_BYTES = 64 * 1024;
const MAX_SLAB_PIECE = 4 * 1024;
let slab = new ArrayBuffer(0);
let slabUsed = 0;

/** The next `size` bytes of the current slab, or of a fresh one when it is full (pieces are never reused). */
function carve(size: number): Uint8Array {
  if (slabUsed + size > slab.byteLength) {
    slab = new ArrayBuffer(SLAB_BYTES);
    slabUsed = 0;
  }
  const piece = new Uint8Array(slab, slabUsed, size);
  slabUsed += (size + 7) & ~7; // 8-byte aligned pieces
  return piece;
}

/**
 * A frame with room for `length` payload bytes, to be filled in place and then sealed with
 * {@link sealFrame}: builds a value from several parts without an intermediate copy.
 *
 * @remarks With `transient`, a small frame is carved out of a shared slab instead of getting
 * an ArrayBuffer of its own (cheaper to allocate and to collect). Only for values that are
 * written and then dropped: a frame kept alive keeps its whole slab alive.
 */
export function allocateFrame(length: number, transient = false): { frame: Uint8Array; payload: Uint8Array } {
  const frame = newFrame(length, transient);
  return { frame, payload: frame.subarray(FRAME_HEADER_BYTES) };
}

/**
 * {@link allocateFrame}'s frame alone (its payload starts at {@link FRAME_HEADER_BYTES}): no
 * result object and no payload view, for the append path, which makes two frames an event.
 */
export function newFrame(length: number, transient = false): Uint8Array {
  if (length > FRAME_MAX_PAYLOAD) throw new RangeError(`value too large: ${length} bytes`);
  const size = FRAME_HEADER_BYTES + length;
  const frame = transient ? transientBytes(size) : new Uint8Array(size);
  frame[0] = FRAME_MAGIC;
  frame[1] = FRAME_VERSION;
  writeUint32(frame, 2, length);
  return frame;
}

/**
 * `size` zeroed bytes for a value or key that is handed to LevelDB and then dropped: carved out of
 * a shared slab up to 4 KB (see {@link allocateFrame}'s `transient`).
 *
 * @remarks Also what keeps a key from costing an ArrayBuffer of its own: V8 keeps a small typed
 * array's bytes on its heap until something asks for its buffer, and a native call (classic-level
 * copying it into its batch) does, which gives it one.
 */
export function transientBytes(size: number): Uint8Array {
  return size <= MAX_SLAB_PIECE ? carve(size) : new Uint8Array(size);
}

/** Writes the checksum of a frame made by {@link allocateFrame} (once its payload is filled in); returns it. */
export function sealFrame(key: Uint8Array, frame: Uint8Array): Uint8Array {
  writeUint32(frame, 6, checksum(key, frame));
  return frame;
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
  const length = readUint32(raw, 2);
  if (raw.length - FRAME_HEADER_BYTES !== length) return { ok: false, reason: 'length' };
  if (readUint32(raw, 6) !== checksum(key, raw)) return { ok: false, reason: 'checksum' };
  return { ok: true, payload: new Uint8Array(raw.buffer, raw.byteOffset + FRAME_HEADER_BYTES, length) };
}
