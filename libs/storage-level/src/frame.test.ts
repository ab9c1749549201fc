import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32c } from './crc32c.js';
import {
  allocateFrame,
  FRAME_HEADER_BYTES,
  frameValue,
  newFrame,
  sealFrame,
  transientBytes,
  unframeValue,
} from './frame.js';

const enc = new TextEncoder();

describe('crc32c', () => {
  it('matches the published check values', () => {
    expect(crc32c(enc.encode('123456789'))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(new Uint8Array(0))).toBe(0);
  });

  it('over a range of bytes equals the checksum of that subarray, whatever the previous value', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), fc.nat(), fc.nat(), fc.nat(), (data, a, b, previous) => {
        const start = a % (data.length + 1);
        const end = start + (b % (data.length - start + 1));
        const prev = previous >>> 0;
        expect(crc32c(data, prev, start, end)).toBe(crc32c(data.subarray(start, end), prev));
      }),
    );
  });

  it('can be continued across chunks, whatever the split', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), fc.uint8Array({ maxLength: 100 }), (a, b) => {
        const all = new Uint8Array([...a, ...b]);
        expect(crc32c(b, crc32c(a))).toBe(crc32c(all));
      }),
    );
  });
});

describe('frame', () => {
  const key = enc.encode('k');

  it('round-trips any payload, the empty one included', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (payload) => {
        const framed = frameValue(key, payload);
        expect(framed.length).toBe(FRAME_HEADER_BYTES + payload.length);
        const out = unframeValue(key, framed);
        expect(out.ok && Array.from(out.payload)).toStrictEqual(Array.from(payload));
      }),
    );
  });

  it('detects every single-bit flip anywhere in the frame', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 64 }),
        fc.nat(),
        fc.integer({ min: 0, max: 7 }),
        (payload, at, bit) => {
          const framed = frameValue(key, payload);
          const i = at % framed.length;
          framed[i] = framed[i]! ^ (1 << bit);
          expect(unframeValue(key, framed).ok).toBe(false);
        },
      ),
    );
  });

  it('detects any truncation or extension, and the same frame under another key', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.nat(), (payload, cut) => {
        const framed = frameValue(key, payload);
        expect(unframeValue(key, framed.slice(0, cut % framed.length)).ok).toBe(false);
        expect(unframeValue(key, new Uint8Array([...framed, cut & 0xff])).ok).toBe(false);
        expect(unframeValue(enc.encode('other'), framed).ok).toBe(false);
      }),
    );
  });

  it('frames and transient bytes built in place, in a shared slab or not, equal frameValue and never overlap', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            payload: fc.uint8Array({ maxLength: 6000 }),
            transient: fc.boolean(),
            how: fc.constantFrom('allocateFrame', 'newFrame', 'transientBytes'),
          }),
          { minLength: 1, maxLength: 40 },
        ),
        (values) => {
          const made = values.map(({ payload, transient, how }) => {
            if (how === 'transientBytes') {
              const bytes = transientBytes(payload.length);
              expect(bytes.every((b) => b === 0)).toBe(true);
              bytes.set(payload);
              return bytes;
            }
            if (how === 'newFrame') {
              const frame = newFrame(payload.length, transient);
              frame.set(payload, FRAME_HEADER_BYTES);
              return sealFrame(key, frame);
            }
            const { frame, payload: room } = allocateFrame(payload.length, transient);
            room.set(payload);
            return sealFrame(key, frame);
          });
          // Written one after another: had two of them shared bytes, an earlier one would have changed.
          values.forEach(({ payload, how }, i) => {
            if (how === 'transientBytes') {
              expect(Array.from(made[i]!)).toStrictEqual(Array.from(payload));
              return;
            }
            expect(Array.from(made[i]!)).toStrictEqual(Array.from(frameValue(key, payload)));
            const out = unframeValue(key, made[i]!);
            expect(out.ok && Array.from(out.payload)).toStrictEqual(Array.from(payload));
          });
        },
      ),
      { numRuns: 50 },
    );
  });

  it('names the damage', () => {
    const framed = frameValue(key, enc.encode('payload'));
    expect(unframeValue(key, new Uint8Array(0))).toStrictEqual({ ok: false, reason: 'empty' });
    expect(unframeValue(key, framed.slice(0, 9))).toStrictEqual({ ok: false, reason: 'short' });
    expect(unframeValue(key, Uint8Array.from([0, ...framed.slice(1)]))).toStrictEqual({
      ok: false,
      reason: 'magic',
    });
    expect(unframeValue(key, Uint8Array.from([framed[0]!, 9, ...framed.slice(2)]))).toStrictEqual({
      ok: false,
      reason: 'version',
    });
    expect(unframeValue(key, framed.slice(0, -1))).toStrictEqual({ ok: false, reason: 'length' });
    const flipped = framed.slice();
    flipped[12] = flipped[12]! ^ 1;
    expect(unframeValue(key, flipped)).toStrictEqual({ ok: false, reason: 'checksum' });
  });
});
