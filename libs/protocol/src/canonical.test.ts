import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  canonicalDecode,
  canonicalEncode,
  canonicalStringify,
  ErrorCode,
  isAccordError,
  isJsonValue,
  MAX_EVENT_BYTES,
  MAX_JSON_DEPTH,
  type JsonValue,
} from './index.js';

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

// Unicode strings and keys (full code point range, no lone surrogates), nested.
const arbJson: fc.Arbitrary<JsonValue> = fc.jsonValue({
  maxDepth: 4,
  stringUnit: 'binary',
}) as fc.Arbitrary<JsonValue>;

/** Independent oracle: JSON.stringify of a deep copy whose keys were inserted in code-unit order. */
function sortedCopy(v: JsonValue): JsonValue {
  if (Array.isArray(v)) return v.map(sortedCopy);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, JsonValue> = {};
    for (const k of Object.keys(v).sort())
      Object.defineProperty(out, k, {
        value: sortedCopy((v as Record<string, JsonValue>)[k]!),
        enumerable: true,
      });
    return out;
  }
  return v;
}

function expectCode(r: ReturnType<typeof canonicalDecode>, code: ErrorCode): void {
  expect(r.ok).toBe(false);
  if (!r.ok) expect(r.error.code).toBe(code);
}

function expectThrowCode(f: () => unknown, code: ErrorCode): void {
  let caught: unknown;
  try {
    f();
  } catch (e) {
    caught = e;
  }
  expect(isAccordError(caught, code), `expected ${code}, got ${String(caught)}`).toBe(true);
}

function nest(depth: number): JsonValue {
  let v: JsonValue = 0;
  for (let i = 0; i < depth; i++) v = i % 2 === 0 ? [v] : { k: v };
  return v;
}

describe('canonicalEncode', () => {
  it('round-trips arbitrary JSON values through decode, byte for byte', () => {
    fc.assert(
      fc.property(arbJson, (v) => {
        const bytes = canonicalEncode(v);
        const r = canonicalDecode(bytes, { maxBytes: Infinity });
        expect(r.ok).toBe(true);
        if (!r.ok) return;
        expect(r.value).toEqual(v);
        expect(canonicalEncode(r.value)).toEqual(bytes);
      }),
      { numRuns: 300 },
    );
  });

  it('equals JSON.stringify of the value with keys in UTF-16 code-unit order', () => {
    fc.assert(
      fc.property(arbJson, (v) => {
        expect(canonicalStringify(v)).toBe(JSON.stringify(sortedCopy(v)));
        expect(text(canonicalEncode(v))).toBe(JSON.stringify(sortedCopy(v)));
      }),
      { numRuns: 300 },
    );
  });

  it('is deterministic: the same entries inserted in any order give the same bytes', () => {
    const entries = fc.uniqueArray(fc.tuple(fc.string({ unit: 'binary', maxLength: 8 }), arbJson), {
      selector: ([k]) => k,
      maxLength: 10,
    });
    fc.assert(
      fc.property(entries, fc.infiniteStream(fc.nat()), (es, rnd) => {
        const shuffled = [...es];
        const it = rnd[Symbol.iterator]();
        for (let i = shuffled.length - 1; i > 0; i--) {
          const j = (it.next().value as number) % (i + 1);
          [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
        }
        const a: Record<string, JsonValue> = {};
        for (const [k, v] of es) Object.defineProperty(a, k, { value: v, enumerable: true });
        const b: Record<string, JsonValue> = {};
        for (const [k, v] of shuffled) Object.defineProperty(b, k, { value: v, enumerable: true });
        expect(canonicalEncode({ x: a })).toEqual(canonicalEncode({ x: b }));
      }),
      { numRuns: 200 },
    );
  });

  it('encodes a value already in canonical key order exactly as the same value in any other order', () => {
    // Built in canonical order, most objects take the encoder's JSON.stringify path; the same
    // entries in their generated order take the member-by-member path.
    fc.assert(
      fc.property(arbJson, (v) => {
        const ordered = sortedCopy(v);
        expect(canonicalStringify(ordered)).toBe(canonicalStringify(v));
      }),
      { numRuns: 300 },
    );
    expect(canonicalStringify({ a: -0, b: [1e21, 'é😀\n'], c: { toJSON: 1 } })).toBe(
      '{"a":0,"b":[1e+21,"é😀\\n"],"c":{"toJSON":1}}',
    );
    expectThrowCode(() => canonicalStringify({ a: 1, b: '\ud800' }), ErrorCode.PROTOCOL_BAD_ENCODING);
    expectThrowCode(
      () => canonicalStringify({ a: 1, b: undefined } as unknown as JsonValue),
      ErrorCode.PROTOCOL_BAD_ENCODING,
    );
    expectThrowCode(
      () => canonicalStringify({ a: 1, b: { toJSON: () => 'x' } } as unknown as JsonValue),
      ErrorCode.PROTOCOL_BAD_ENCODING,
    );
    expectThrowCode(
      () => canonicalStringify([1, , 3] as unknown as JsonValue),
      ErrorCode.PROTOCOL_BAD_ENCODING,
    );
  });

  it('sorts keys by UTF-16 code units (not code points), including integer-like keys', () => {
    // U+1F600 is D83D DE00 in UTF-16, below U+FFFF; integer-like keys sort as strings.
    expect(canonicalStringify({ '\uffff': 2, '\u{1F600}': 1, b: 0, a: 0, '10': 0, '9': 0, '': 0 })).toBe(
      '{"":0,"10":0,"9":0,"a":0,"b":0,"😀":1,"\uffff":2}',
    );
  });

  it('prints numbers in the shortest round-trip form and -0 as 0', () => {
    expect(canonicalStringify([-0, 0, 1, -1.5, 0.1, 1e21, 1e-7, 123456789012, 2 ** 53, 5e-324])).toBe(
      '[0,0,1,-1.5,0.1,1e+21,1e-7,123456789012,9007199254740992,5e-324]',
    );
  });

  it('escapes strings the standard JSON way and writes other characters as UTF-8', () => {
    const s = '"\\\b\f\n\r\t\u0000\u001f\u007f/é\u2028😀';
    expect(canonicalStringify(s)).toBe('"\\"\\\\\\b\\f\\n\\r\\t\\u0000\\u001f\u007f/é\u2028😀"');
    expect(Array.from(canonicalEncode('é😀'))).toEqual([0x22, 0xc3, 0xa9, 0xf0, 0x9f, 0x98, 0x80, 0x22]);
  });

  it('accepts null-prototype objects and exactly MAX_JSON_DEPTH levels of nesting', () => {
    const o = Object.create(null) as Record<string, JsonValue>;
    o['b'] = 1;
    o['a'] = [true, false, null];
    expect(canonicalStringify(o)).toBe('{"a":[true,false,null],"b":1}');
    expect(() => canonicalEncode(nest(MAX_JSON_DEPTH))).not.toThrow();
    expect(canonicalDecode(canonicalEncode(nest(MAX_JSON_DEPTH))).ok).toBe(true);
  });

  it('rejects everything that is not canonical JSON with PROTOCOL_BAD_ENCODING', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    class Point {
      x = 1;
    }
    const bad: unknown[] = [
      undefined,
      { a: undefined },
      [1, undefined],
      [1, , 2],
      NaN,
      Infinity,
      -Infinity,
      { n: NaN },
      () => 1,
      Symbol('s'),
      10n,
      new Date(0),
      new Map(),
      new Point(),
      new Uint8Array(2),
      cyclic,
      [cyclic],
      '\ud800',
      'a\udc00b',
      { '\ud83d': 1 },
      nest(MAX_JSON_DEPTH + 1),
    ];
    for (const v of bad) {
      expectThrowCode(() => canonicalEncode(v as JsonValue), ErrorCode.PROTOCOL_BAD_ENCODING);
      expect(isJsonValue(v)).toBe(false);
    }
  });

  it('names the path of the offending value', () => {
    try {
      canonicalEncode({ a: [0, { 'b"': NaN }] });
      expect.unreachable();
    } catch (e) {
      expect(isAccordError(e, ErrorCode.PROTOCOL_BAD_ENCODING)).toBe(true);
      if (isAccordError(e)) expect(e.details['path']).toBe('$["a"][1]["b\\""]');
    }
  });
});

describe('canonicalDecode', () => {
  it('rejects non-canonical whitespace with PROTOCOL_NOT_CANONICAL', () => {
    for (const s of ['{"a": 1}', '{ "a":1}', '[1, 2]', ' 1', '1\n', '{"a":1 }', '[\t]']) {
      expectCode(canonicalDecode(utf8(s)), ErrorCode.PROTOCOL_NOT_CANONICAL);
    }
    fc.assert(
      fc.property(arbJson, (v) => {
        const pretty = JSON.stringify(sortedCopy(v), null, 1);
        fc.pre(pretty !== canonicalStringify(v));
        expectCode(canonicalDecode(utf8(pretty), { maxBytes: Infinity }), ErrorCode.PROTOCOL_NOT_CANONICAL);
      }),
      { numRuns: 200 },
    );
  });

  it('rejects unsorted keys with PROTOCOL_NOT_CANONICAL', () => {
    expectCode(canonicalDecode(utf8('{"b":1,"a":2}')), ErrorCode.PROTOCOL_NOT_CANONICAL);
    expectCode(canonicalDecode(utf8('{"\uffff":1,"😀":2}')), ErrorCode.PROTOCOL_NOT_CANONICAL);
    fc.assert(
      fc.property(fc.dictionary(fc.string({ unit: 'binary' }), arbJson, { minKeys: 2, maxKeys: 6 }), (o) => {
        const insertionOrder = JSON.stringify(o);
        fc.pre(insertionOrder !== canonicalStringify(o));
        expectCode(
          canonicalDecode(utf8(insertionOrder), { maxBytes: Infinity }),
          ErrorCode.PROTOCOL_NOT_CANONICAL,
        );
      }),
      { numRuns: 200 },
    );
  });

  it('rejects duplicate keys with PROTOCOL_NOT_CANONICAL', () => {
    for (const s of ['{"a":1,"a":1}', '{"a":1,"a":2}', '{"a":{"x":1,"x":1}}', '[{"k":0,"k":0}]']) {
      expectCode(canonicalDecode(utf8(s)), ErrorCode.PROTOCOL_NOT_CANONICAL);
    }
  });

  it('rejects non-shortest numbers and needless escapes with PROTOCOL_NOT_CANONICAL', () => {
    for (const s of ['1.0', '1e2', '1E+21', '-0', '0.10', '"\\u0041"', '"\\/"', '"\\u00e9"', '"\\u001F"']) {
      expectCode(canonicalDecode(utf8(s)), ErrorCode.PROTOCOL_NOT_CANONICAL);
    }
  });

  it('rejects input over maxBytes with PROTOCOL_TOO_LARGE before looking at it', () => {
    const big = utf8(JSON.stringify('x'.repeat(MAX_EVENT_BYTES)));
    expectCode(canonicalDecode(big), ErrorCode.PROTOCOL_TOO_LARGE);
    expect(canonicalDecode(big, { maxBytes: big.length }).ok).toBe(true);
    expectCode(canonicalDecode(utf8('[1,2,3]'), { maxBytes: 6 }), ErrorCode.PROTOCOL_TOO_LARGE);
    // Even garbage is answered by size first.
    expectCode(canonicalDecode(new Uint8Array(MAX_EVENT_BYTES + 1).fill(0xff)), ErrorCode.PROTOCOL_TOO_LARGE);
    const exactly = utf8(JSON.stringify('y'.repeat(MAX_EVENT_BYTES - 2)));
    expect(exactly.length).toBe(MAX_EVENT_BYTES);
    expect(canonicalDecode(exactly).ok).toBe(true);
  });

  it('rejects invalid UTF-8 and a BOM with PROTOCOL_BAD_ENCODING', () => {
    const cases = [
      [0x22, 0xff, 0x22], // invalid byte
      [0x22, 0xc0, 0x80, 0x22], // overlong NUL
      [0x22, 0xed, 0xa0, 0x80, 0x22], // UTF-8 encoded surrogate
      [0x22, 0xe2, 0x82, 0x22], // truncated sequence
      [0x22, 0xf4, 0x90, 0x80, 0x80, 0x22], // above U+10FFFF
      [0xef, 0xbb, 0xbf, 0x31], // BOM + "1"
    ];
    for (const c of cases) expectCode(canonicalDecode(new Uint8Array(c)), ErrorCode.PROTOCOL_BAD_ENCODING);
  });

  it('rejects invalid JSON, out-of-range numbers and escaped lone surrogates with PROTOCOL_BAD_ENCODING', () => {
    for (const s of [
      '',
      '{',
      '[1,]',
      "{'a':1}",
      'NaN',
      'undefined',
      '01',
      '{"a"}',
      '1e400',
      '"\\ud800"',
      '{"\\udc00":1}',
    ]) {
      expectCode(canonicalDecode(utf8(s)), ErrorCode.PROTOCOL_BAD_ENCODING);
    }
  });

  it('rejects nesting deeper than MAX_JSON_DEPTH with PROTOCOL_BAD_ENCODING, without blowing the stack', () => {
    const deep = (n: number): Uint8Array => utf8('['.repeat(n) + ']'.repeat(n));
    expect(canonicalDecode(deep(MAX_JSON_DEPTH)).ok).toBe(true);
    expectCode(canonicalDecode(deep(MAX_JSON_DEPTH + 1)), ErrorCode.PROTOCOL_BAD_ENCODING);
    expectCode(canonicalDecode(deep(MAX_EVENT_BYTES / 2)), ErrorCode.PROTOCOL_BAD_ENCODING);
    expectCode(canonicalDecode(deep(100_000), { maxBytes: Infinity }), ErrorCode.PROTOCOL_BAD_ENCODING);
    expectCode(
      canonicalDecode(utf8('{"a":'.repeat(65) + '0' + '}'.repeat(65))),
      ErrorCode.PROTOCOL_BAD_ENCODING,
    );
  });

  it('never throws on arbitrary bytes, and accepts only exact canonical encodings', () => {
    const jsonish = fc
      .array(fc.constantFrom(...'{}[]",:0123456789-.eE truefalsn\\u\t\nab'.split('')), { maxLength: 40 })
      .map((cs) => utf8(cs.join('')));
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), jsonish), (bytes) => {
        const r = canonicalDecode(bytes);
        if (r.ok) expect(canonicalEncode(r.value)).toEqual(bytes);
        else expect(isAccordError(r.error)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('any single-byte change of a canonical encoding fails or decodes to a different value', () => {
    fc.assert(
      fc.property(arbJson, fc.nat(), fc.integer({ min: 1, max: 255 }), (v, at, x) => {
        const bytes = canonicalEncode(v);
        const mutated = bytes.slice();
        const i = at % mutated.length;
        mutated[i] = mutated[i]! ^ x;
        const r = canonicalDecode(mutated, { maxBytes: Infinity });
        if (r.ok) expect(canonicalEncode(r.value)).not.toEqual(bytes);
      }),
      { numRuns: 500 },
    );
  });
});

describe('canonicalDecode fast path', () => {
  it('accepts exactly the texts the canonical encoder produces, whatever key order a text uses', () => {
    fc.assert(
      fc.property(arbJson, (v) => {
        // JSON.stringify keeps insertion order, so this text is canonical only by chance.
        const text = JSON.stringify(v);
        const canonical = new TextDecoder().decode(canonicalEncode(v));
        const decoded = canonicalDecode(new TextEncoder().encode(text));
        expect(decoded.ok).toBe(text === canonical);
        if (decoded.ok) expect(decoded.value).toEqual(JSON.parse(text));
      }),
      { numRuns: 500 },
    );
  });

  it('still rejects an escaped lone surrogate and over-deep nesting that the native serializer would accept', () => {
    const lone = canonicalDecode(new TextEncoder().encode('{"a":"\\ud800"}'));
    expect(lone.ok).toBe(false);
    const deep = canonicalDecode(new TextEncoder().encode('['.repeat(70) + ']'.repeat(70)));
    expect(deep.ok).toBe(false);
  });
});
