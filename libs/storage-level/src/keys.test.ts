import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareBytes, decodeSegments, decodeSeq, encodeSegments, encodeSeq, prefixRange } from './keys.js';

const segment = fc.string({
  unit: fc.constantFrom('a', 'b', '\u0000', '\u0001', '\u0002', 'é', '😀', '\uffff'),
  maxLength: 4,
});
const key = fc.array(segment, { maxLength: 4 });
/** Any Unicode scalar value (no lone surrogates). */
const anyCodePoint = fc
  .integer({ min: 0, max: 0x10ffff - 0x800 })
  .map((n) => String.fromCodePoint(n >= 0xd800 ? n + 0x800 : n));

function segmentOrder(a: readonly string[], b: readonly string[]): number {
  const enc = new TextEncoder();
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const d = compareBytes(enc.encode(a[i]), enc.encode(b[i]));
    if (d !== 0) return Math.sign(d);
  }
  return Math.sign(a.length - b.length);
}

describe('key encoding', () => {
  it('round-trips every key path', () => {
    fc.assert(
      fc.property(key, (k) => {
        expect(decodeSegments(encodeSegments(k))).toStrictEqual(k);
      }),
    );
    fc.assert(
      fc.property(fc.array(fc.string({ unit: anyCodePoint, maxLength: 6 }), { maxLength: 3 }), (k) => {
        expect(decodeSegments(encodeSegments(k))).toStrictEqual(k);
      }),
      {
        numRuns: 200,
      },
    );
  });

  it('a key falls in the prefix range of p exactly when its segments start with p', () => {
    fc.assert(
      fc.property(key, key, (k, p) => {
        const bytes = encodeSegments(k);
        const range = prefixRange(encodeSegments(p));
        const inRange =
          (range.gte === undefined || compareBytes(bytes, range.gte) >= 0) &&
          (range.lt === undefined || compareBytes(bytes, range.lt) < 0);
        const startsWith = p.length <= k.length && p.every((s, i) => k[i] === s);
        expect(inRange).toBe(startsWith);
      }),
      { numRuns: 500 },
    );
  });

  it('byte order of encodings is segment-wise UTF-8 order', () => {
    fc.assert(
      fc.property(key, key, (a, b) => {
        expect(Math.sign(compareBytes(encodeSegments(a), encodeSegments(b)))).toBe(segmentOrder(a, b));
      }),
      { numRuns: 500 },
    );
  });

  it('encodes ASCII segments (the fast path) exactly as the general escaping rule does', () => {
    // The rule of the module comment, spelled out: UTF-8 bytes, 0x00 → 01 01, 0x01 → 01 02, then 0x00.
    const reference = (segments: readonly string[], tag?: number): number[] => {
      const out = tag === undefined ? [] : [tag];
      for (const s of segments) {
        for (const b of new TextEncoder().encode(s)) out.push(...(b < 2 ? [0x01, b + 1] : [b]));
        out.push(0x00);
      }
      return out;
    };
    const ascii = fc.string({ unit: fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c)) });
    const mixed = fc.oneof(ascii, segment);
    fc.assert(
      fc.property(
        fc.array(mixed, { maxLength: 4 }),
        fc.option(fc.integer({ min: 0, max: 0xff })),
        (k, tag) => {
          const bytes = tag === null ? encodeSegments(k) : encodeSegments(k, tag);
          expect(Array.from(bytes)).toStrictEqual(reference(k, tag ?? undefined));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('refuses lone surrogates and non-strings; rejects malformed encodings', () => {
    expect(() => encodeSegments(['a\ud800b'])).toThrow(TypeError);
    expect(() => encodeSegments(['\udc00'])).toThrow(TypeError);
    expect(() => encodeSegments([1 as unknown as string])).toThrow(TypeError);
    expect(decodeSegments(Uint8Array.of(0x61))).toBeUndefined(); // no terminator
    expect(decodeSegments(Uint8Array.of(0x01, 0x03, 0x00))).toBeUndefined(); // bad escape
    expect(decodeSegments(Uint8Array.of(0xff, 0x00))).toBeUndefined(); // not UTF-8
    expect(decodeSegments(new Uint8Array(0))).toStrictEqual([]);
  });

  it('prefix ranges handle 0xff tails and the empty prefix', () => {
    expect(prefixRange(new Uint8Array(0))).toStrictEqual({});
    expect(prefixRange(Uint8Array.of(1, 0xff))).toStrictEqual({
      gte: Uint8Array.of(1, 0xff),
      lt: Uint8Array.of(2),
    });
    expect(prefixRange(Uint8Array.of(0xff))).toStrictEqual({ gte: Uint8Array.of(0xff) });
  });

  it('sequence numbers encode in numeric order and round-trip up to MAX_SAFE_INTEGER', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        (a, b) => {
          expect(decodeSeq(encodeSeq(a), 0)).toBe(a);
          expect(Math.sign(compareBytes(encodeSeq(a), encodeSeq(b)))).toBe(Math.sign(a - b));
        },
      ),
    );
  });
});
