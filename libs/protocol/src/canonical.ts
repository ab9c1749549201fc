import type { JsonValue } from './envelope.js';
import { AccordError, ErrorCode } from './errors.js';
import { err, ok, type Result } from './result.js';

/** Largest encoded signed event (bytes) that decoders accept by default. */
export const MAX_EVENT_BYTES = 65536;

/** Deepest nesting of arrays/objects that canonical encoding accepts (`[]` has depth 1). */
export const MAX_JSON_DEPTH = 64;

const ENCODER = new TextEncoder();
// fatal: invalid UTF-8 is an error, not U+FFFD; ignoreBOM: a BOM stays in the text (and then fails JSON.parse).
const DECODER = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

const LONE_SURROGATE = /\p{Cs}/u;
const nativeWellFormed = (String.prototype as { isWellFormed?: unknown }).isWellFormed;
/** True when `s` has no lone UTF-16 surrogate (so it has a UTF-8 encoding). */
const isWellFormed: (s: string) => boolean =
  typeof nativeWellFormed === 'function'
    ? (s) => (nativeWellFormed as (this: string) => boolean).call(s)
    : (s) => !LONE_SURROGATE.test(s);

// Raised deep in the encoder; each enclosing container prepends its path segment on the way out,
// so the success path never builds path strings.
class EncodeFailure extends Error {
  readonly segments: string[] = [];
}

function quote(s: string): string {
  if (!isWellFormed(s)) throw new EncodeFailure('string with a lone surrogate');
  // JSON.stringify of a well-formed string is exactly the escaping the spec prescribes:
  // `"` `\\` \b \f \n \r \t, other C0 controls as \u00xx (lowercase hex), everything else literal.
  return JSON.stringify(s);
}

function isPlainObject(v: object): boolean {
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Largest key count sorted by insertion: below it, Array.prototype.sort's work arrays cost more. */
const SMALL_OBJECT = 16;

/**
 * The own keys of `o` in canonical order (UTF-16 code units, as `<` on strings and the default sort
 * compare).
 *
 * @remarks An event holds a few small objects, some already in order (the envelope's halves when
 * signing): those are sorted by insertion, which allocates nothing beyond the key list.
 */
export function sortedKeys(o: object): string[] {
  const keys = Object.keys(o);
  const n = keys.length;
  if (n > SMALL_OBJECT) return keys.sort();
  for (let i = 1; i < n; i++) {
    const key = keys[i]!;
    let j = i - 1;
    while (j >= 0 && keys[j]! > key) {
      keys[j + 1] = keys[j]!;
      j--;
    }
    keys[j + 1] = key;
  }
  return keys;
}

/** Deepest level at which the encoder tries JSON.stringify on a subtree already in order (0 is the value). */
const READY_TRY_DEPTH = 2;

function encodeValue(v: unknown, depth: number): string {
  switch (typeof v) {
    case 'string':
      return quote(v);
    case 'number':
      if (!Number.isFinite(v)) throw new EncodeFailure(`non-finite number ${String(v)}`);
      // String(n) is the shortest round-trip form (as JSON.stringify); String(-0) === '0'.
      return String(v);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'object': {
      if (v === null) return 'null';
      if (depth >= MAX_JSON_DEPTH)
        throw new EncodeFailure(`nesting deeper than ${MAX_JSON_DEPTH} (or a cycle)`);
      // A subtree already in canonical order is JSON.stringify's text byte for byte, built natively in
      // one string instead of one concatenation per member (an append's largest source of garbage).
      // Tried near the top only (an event, its halves, its data, subject and deps): each try walks
      // the subtree, so trying at every level would cost hostile deep input depth × size.
      if (depth <= READY_TRY_DEPTH && checkValue(v, depth, true)) return JSON.stringify(v);
      if (Array.isArray(v)) {
        const n = v.length;
        if (n === 0) return '[]';
        let i = 0;
        try {
          let out = '[' + encodeValue(v[0], depth + 1);
          for (i = 1; i < n; i++) out += ',' + encodeValue(v[i], depth + 1);
          return out + ']';
        } catch (e) {
          if (e instanceof EncodeFailure) e.segments.push(`[${i}]`);
          throw e;
        }
      }
      if (!isPlainObject(v)) throw new EncodeFailure('not a plain object');
      const o = v as Record<string, unknown>;
      const keys = sortedKeys(o);
      const n = keys.length;
      if (n === 0) return '{}';
      let k = '';
      try {
        let out = '{';
        for (let i = 0; i < n; i++) {
          k = keys[i]!;
          if (i > 0) out += ',';
          out += quote(k) + ':' + encodeValue(o[k], depth + 1);
        }
        return out + '}';
      } catch (e) {
        if (e instanceof EncodeFailure) e.segments.push(`[${JSON.stringify(k)}]`);
        throw e;
      }
    }
    default:
      throw new EncodeFailure(`unsupported ${typeof v}`);
  }
}

function toAccordError(e: unknown): unknown {
  if (!(e instanceof EncodeFailure)) return e; // e.g. a throwing getter: not ours to rename
  const path = '$' + e.segments.reverse().join('');
  return new AccordError(ErrorCode.PROTOCOL_BAD_ENCODING, `${e.message} at ${path}`, { details: { path } });
}

function encodeText(value: unknown): string {
  try {
    return encodeValue(value, 0);
  } catch (e) {
    throw toAccordError(e);
  }
}

/**
 * The canonical JSON text of a value (see {@link canonicalEncode}), before UTF-8 encoding.
 *
 * @throws AccordError `PROTOCOL_BAD_ENCODING` for anything that is not a canonical JSON value.
 */
export function canonicalStringify(value: JsonValue): string {
  return encodeText(value);
}

/**
 * Deterministic JSON encoding: the same value always gives the same bytes.
 *
 * @remarks Object keys sorted by UTF-16 code units, no whitespace, numbers in the JavaScript
 * shortest round-trip form (`-0` as `0`), strings escaped as JSON.stringify does, UTF-8 output.
 * See the package README for the full specification.
 * @throws AccordError `PROTOCOL_BAD_ENCODING` for undefined, NaN, ±Infinity, bigint, symbols,
 * functions, non-plain objects (Date, Map, class instances, typed arrays), sparse array holes,
 * lone surrogates, nesting deeper than {@link MAX_JSON_DEPTH}, and cycles.
 */
export function canonicalEncode(value: JsonValue): Uint8Array {
  return ENCODER.encode(encodeText(value));
}

/**
 * True when `value` is a JSON value that {@link canonicalEncode} accepts.
 *
 * @remarks Same rules as the encoder, without building the text.
 */
export function isJsonValue(value: unknown): value is JsonValue {
  return checkValue(value, 0, false);
}

/**
 * True when `v` is a JSON value the encoder accepts; with `ordered`, also when JSON.stringify(v) is
 * its canonical text byte for byte: plain objects whose own keys already come in canonical order and
 * have no `toJSON`. (JSON.stringify lists keys as Object.keys does, escapes well-formed strings as
 * {@link quote} does and prints numbers, -0 included, as String does.)
 */
function checkValue(v: unknown, depth: number, ordered: boolean): boolean {
  switch (typeof v) {
    case 'string':
      return isWellFormed(v);
    case 'number':
      return Number.isFinite(v);
    case 'boolean':
      return true;
    case 'object': {
      if (v === null) return true;
      if (depth >= MAX_JSON_DEPTH) return false;
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) if (!checkValue(v[i], depth + 1, ordered)) return false;
        return true;
      }
      if (!isPlainObject(v) || (ordered && 'toJSON' in v)) return false;
      const o = v as Record<string, unknown>;
      let previous: string | undefined;
      for (const k of Object.keys(o)) {
        if (ordered && previous !== undefined && !(previous < k)) return false;
        if (!isWellFormed(k) || !checkValue(o[k], depth + 1, ordered)) return false;
        previous = k;
      }
      return true;
    }
    default:
      return false;
  }
}

/** True when `v` (fresh from JSON.parse) has sorted keys, well-formed strings and bounded depth. */
function isCanonicalShape(v: unknown, depth: number): boolean {
  if (typeof v === 'string') return isWellFormed(v);
  if (typeof v !== 'object' || v === null) return true;
  if (depth >= MAX_JSON_DEPTH) return false;
  if (Array.isArray(v)) {
    for (const item of v) if (!isCanonicalShape(item, depth + 1)) return false;
    return true;
  }
  let previous: string | undefined;
  for (const key in v) {
    if (previous !== undefined && !(previous < key)) return false;
    if (!isWellFormed(key) || !isCanonicalShape((v as Record<string, unknown>)[key], depth + 1)) return false;
    previous = key;
  }
  return true;
}

/**
 * Decodes canonical JSON bytes, accepting only the exact canonical encoding of the value.
 *
 * @remarks Never throws. Errors: `PROTOCOL_TOO_LARGE` above `maxBytes` (default
 * {@link MAX_EVENT_BYTES}); `PROTOCOL_BAD_ENCODING` for invalid UTF-8 (including a BOM), invalid
 * JSON, numbers out of range, escaped lone surrogates and nesting deeper than {@link MAX_JSON_DEPTH};
 * `PROTOCOL_NOT_CANONICAL` for valid JSON that is not its value's canonical encoding (whitespace,
 * key order, duplicate keys, number or escape forms).
 */
export function canonicalDecode(bytes: Uint8Array, opts: { maxBytes?: number } = {}): Result<JsonValue> {
  const maxBytes = opts.maxBytes ?? MAX_EVENT_BYTES;
  if (bytes.length > maxBytes) {
    return err(
      new AccordError(
        ErrorCode.PROTOCOL_TOO_LARGE,
        `${bytes.length} bytes exceeds the limit of ${maxBytes}`,
        {
          details: { size: bytes.length, maxBytes },
        },
      ),
    );
  }
  let text: string;
  try {
    text = DECODER.decode(bytes);
  } catch (cause) {
    return err(new AccordError(ErrorCode.PROTOCOL_BAD_ENCODING, 'invalid UTF-8', { cause }));
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    return err(new AccordError(ErrorCode.PROTOCOL_BAD_ENCODING, 'invalid JSON', { cause }));
  }
  // Fast path: for a parsed value whose object keys are already in canonical order, whose
  // strings are well formed and whose depth is within bounds, the native serializer
  // produces exactly the canonical text (same escaping, same number forms). Anything else,
  // including every rejection, takes the full re-encoding below.
  if (isCanonicalShape(value, 0) && JSON.stringify(value) === text) return ok(value as JsonValue);
  let again: string;
  try {
    again = encodeText(value);
  } catch (cause) {
    if (cause instanceof AccordError) return err(cause);
    return err(new AccordError(ErrorCode.PROTOCOL_BAD_ENCODING, 'unencodable value', { cause }));
  }
  // UTF-8 (fatal) decoding is one-to-one, so comparing texts is comparing bytes.
  if (again !== text) {
    return err(
      new AccordError(
        ErrorCode.PROTOCOL_NOT_CANONICAL,
        'valid JSON but not canonical (whitespace, key order, duplicate keys, number or escape form)',
      ),
    );
  }
  return ok(value as JsonValue);
}
