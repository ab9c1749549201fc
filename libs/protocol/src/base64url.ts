import { AccordError, ErrorCode } from './errors.js';
import { asciiString } from './flat-string.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const CODES = Uint8Array.from(ALPHABET, (c) => c.charCodeAt(0));
// Char code → 6-bit value, or -1 for characters outside the alphabet.
const DECODE = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DECODE[ALPHABET.charCodeAt(i)] = i;

// Scratch space for texts up to this long (signatures, keys, digests): the string is built from
// it before toBase64Url returns, so an append's signature costs no buffer of its own.
const SCRATCH = new Uint8Array(1024);

/** Encodes bytes as unpadded base64url (RFC 4648 §5), as one flat string. */
export function toBase64Url(bytes: Uint8Array): string {
  const n = bytes.length;
  const whole = n - (n % 3);
  const rest = n - whole;
  const length = (whole / 3) * 4 + (rest === 0 ? 0 : rest + 1);
  const out = length <= SCRATCH.length ? SCRATCH : new Uint8Array(length);
  let o = 0;
  let i = 0;
  for (; i < whole; i += 3) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out[o++] = CODES[v >>> 18]!;
    out[o++] = CODES[(v >>> 12) & 63]!;
    out[o++] = CODES[(v >>> 6) & 63]!;
    out[o++] = CODES[v & 63]!;
  }
  if (rest === 1) {
    const v = bytes[i]!;
    out[o++] = CODES[v >>> 2]!;
    out[o++] = CODES[(v & 3) << 4]!;
  } else if (rest === 2) {
    const v = (bytes[i]! << 8) | bytes[i + 1]!;
    out[o++] = CODES[v >>> 10]!;
    out[o++] = CODES[(v >>> 4) & 63]!;
    out[o++] = CODES[(v & 15) << 2]!;
  }
  return asciiString(out, o);
}

function bad(text: string, why: string): AccordError {
  return new AccordError(ErrorCode.PROTOCOL_BAD_ENCODING, `invalid base64url: ${why}`, {
    details: { length: text.length },
  });
}

/**
 * Decodes unpadded base64url, strictly.
 *
 * @remarks Rejects padding, whitespace, characters outside the base64url alphabet, impossible
 * lengths (`length % 4 === 1`) and non-zero unused trailing bits, so every byte string has exactly
 * one accepted text form (a flipped bit in a signature's text can never decode to the same bytes).
 * @throws AccordError `PROTOCOL_BAD_ENCODING` on any invalid input.
 */
export function fromBase64Url(text: string): Uint8Array {
  const n = text.length;
  const rem = n % 4;
  if (rem === 1) throw bad(text, 'impossible length');
  const out = new Uint8Array(((n - rem) / 4) * 3 + (rem === 0 ? 0 : rem - 1));
  let o = 0;
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? DECODE[c]! : -1;
    if (v < 0) throw bad(text, `unexpected character at ${i}`);
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >>> bits) & 0xff;
    }
  }
  if ((acc & ((1 << bits) - 1)) !== 0) throw bad(text, 'non-zero trailing bits');
  return out;
}
