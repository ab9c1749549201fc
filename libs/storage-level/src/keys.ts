/**
 * Order-preserving, prefix-exact binary encoding of key paths (`string[]`).
 *
 * Each segment is its UTF-8 bytes with 0x00 escaped as 0x01 0x01 and 0x01 as 0x01 0x02,
 * followed by a 0x00 terminator. Because 0x00 never occurs inside an escaped segment, the
 * encoding of `[a, b]` is a byte prefix of the encoding of `k` exactly when `k` starts with
 * the segments `a, b`: `["a", "b"]` never matches `["a", "bc"]` or `["ab"]`. Byte order of
 * encodings is segment-wise order (a segment sorts before its extensions).
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** Thrown (as a `TypeError`) for a key path that cannot be stored exactly. */
function assertSegment(segment: unknown): asserts segment is string {
  if (typeof segment !== 'string') throw new TypeError(`key segments must be strings, got ${typeof segment}`);
  // A lone surrogate would be replaced by U+FFFD by TextEncoder: two different keys
  // would collide. Refuse instead of storing under a key we cannot give back.
  if (!isWellFormed(segment))
    throw new TypeError('key segments must be well-formed UTF-16 (no lone surrogates)');
}

function isWellFormed(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (!(d >= 0xdc00 && d <= 0xdfff)) return false;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) return false;
  }
  return true;
}

/** Appends the escaped, terminated encoding of one segment to `out`. */
function pushSegment(out: number[], segment: string): void {
  assertSegment(segment);
  for (const b of encoder.encode(segment)) {
    if (b === 0x00) out.push(0x01, 0x01);
    else if (b === 0x01) out.push(0x01, 0x02);
    else out.push(b);
  }
  out.push(0x00);
}

/**
 * Encodes a key path (optionally after a one-byte namespace tag) into bytes.
 *
 * @remarks Throws `TypeError` for non-string segments or lone surrogates (programmer error).
 */
export function encodeSegments(segments: readonly string[], tag?: number): Uint8Array {
  // Fast path for the usual keys (ids, device ids, document ids): ASCII other than 00/01 needs no
  // escaping and is one byte per character, so the result is written directly.
  let length = tag === undefined ? 0 : 1;
  for (const s of segments) {
    if (typeof s !== 'string' || !isPlainAscii(s)) return encodeEscaped(segments, tag);
    length += s.length + 1;
  }
  const out = new Uint8Array(length); // zero-filled: every terminator is already in place
  let o = 0;
  if (tag !== undefined) out[o++] = tag;
  for (const s of segments) {
    for (let i = 0; i < s.length; i++) out[o++] = s.charCodeAt(i);
    o++;
  }
  return out;
}

/** True when every character of `s` is ASCII other than 0x00 and 0x01 (the escaped bytes). */
function isPlainAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x02 || c > 0x7f) return false;
  }
  return true;
}

function encodeEscaped(segments: readonly string[], tag: number | undefined): Uint8Array {
  const out: number[] = tag === undefined ? [] : [tag];
  for (const s of segments) pushSegment(out, s);
  return Uint8Array.from(out);
}

/**
 * Decodes bytes made by {@link encodeSegments} (from `offset`, to the end or `end`).
 *
 * @returns the segments, or `undefined` when the bytes are not a valid encoding.
 */
export function decodeSegments(bytes: Uint8Array, offset = 0, end = bytes.length): string[] | undefined {
  const segments: string[] = [];
  let start = offset;
  let escaped = false;
  for (let i = offset; i < end; i++) {
    const b = bytes[i]!;
    if (b === 0x01) {
      const next = bytes[i + 1];
      if (i + 1 >= end || (next !== 0x01 && next !== 0x02)) return undefined;
      escaped = true;
      i++;
    } else if (b === 0x00) {
      const segment = unescapeSegment(bytes.subarray(start, i), escaped);
      if (segment === undefined) return undefined;
      segments.push(segment);
      start = i + 1;
      escaped = false;
    }
  }
  return start === end ? segments : undefined;
}

function unescapeSegment(raw: Uint8Array, escaped: boolean): string | undefined {
  let utf8 = raw;
  if (escaped) {
    const out: number[] = [];
    for (let i = 0; i < raw.length; i++) {
      const b = raw[i]!;
      if (b === 0x01) out.push(raw[++i]! - 1);
      else out.push(b);
    }
    utf8 = Uint8Array.from(out);
  }
  try {
    return decoder.decode(utf8);
  } catch {
    return undefined;
  }
}

/** A half-open byte range `[gte, lt)`; a missing bound is unbounded. */
export interface ByteRange {
  readonly gte?: Uint8Array;
  readonly lt?: Uint8Array;
}

/**
 * The range of every key that starts with the byte string `prefix`.
 *
 * @remarks An empty prefix is the whole key space. The upper bound is the shortest byte
 * string greater than every extension of `prefix`.
 */
export function prefixRange(prefix: Uint8Array): ByteRange {
  if (prefix.length === 0) return {};
  let end = prefix.length;
  while (end > 0 && prefix[end - 1] === 0xff) end--;
  if (end === 0) return { gte: prefix };
  const lt = prefix.slice(0, end);
  lt[end - 1] = lt[end - 1]! + 1;
  return { gte: prefix, lt };
}

/** Concatenates byte arrays. */
export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = new Uint8Array(len);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Encodes a positive safe integer as 8 big-endian bytes (so byte order is numeric order). */
export function encodeSeq(seq: number): Uint8Array {
  const out = new Uint8Array(8);
  writeSeq(out, 0, seq);
  return out;
}

/** Writes `seq` as {@link encodeSeq} does, into `out` at `offset`. */
export function writeSeq(out: Uint8Array, offset: number, seq: number): void {
  const high = Math.floor(seq / 0x1_0000_0000);
  const low = seq >>> 0;
  out[offset] = high >>> 24;
  out[offset + 1] = high >>> 16;
  out[offset + 2] = high >>> 8;
  out[offset + 3] = high;
  out[offset + 4] = low >>> 24;
  out[offset + 5] = low >>> 16;
  out[offset + 6] = low >>> 8;
  out[offset + 7] = low;
}

/** Decodes 8 big-endian bytes at `offset` written by {@link encodeSeq}. */
export function decodeSeq(bytes: Uint8Array, offset: number): number | undefined {
  if (bytes.length - offset !== 8) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, 8);
  const seq = view.getUint32(0) * 0x1_0000_0000 + view.getUint32(4);
  return Number.isSafeInteger(seq) ? seq : undefined;
}

/** Compares byte strings lexicographically (LevelDB's default comparator). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** Lower-case hex of `bytes`, for error details and reports. */
export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}
