import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode, eventIdTime, isEventId, MAX_EVENT_ID_TIME, newEventId } from './index.js';

const arbTime = fc.integer({ min: 0, max: MAX_EVENT_ID_TIME });
const arbRandom = fc.uint8Array({ minLength: 10, maxLength: 10 });

describe('event ids', () => {
  it('are 26 Crockford base32 chars that carry their time', () => {
    fc.assert(
      fc.property(arbTime, arbRandom, (t, r) => {
        const id = newEventId(t, r);
        expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
        expect(isEventId(id)).toBe(true);
        expect(eventIdTime(id)).toBe(t);
      }),
    );
  });

  it('follow the ULID layout (reference vector)', () => {
    // ULID spec example: time 1469918176385 → "01ARYZ6S41"; 80 bits of 0xff → "ZZZZZZZZZZZZZZZZ".
    expect(newEventId(1469918176385, new Uint8Array(10).fill(0xff))).toBe('01ARYZ6S41ZZZZZZZZZZZZZZZZ');
    expect(newEventId(0, new Uint8Array(10))).toBe('0'.repeat(26));
    expect(newEventId(MAX_EVENT_ID_TIME, new Uint8Array(10))).toBe('7ZZZZZZZZZ' + '0'.repeat(16));
  });

  it('sort as strings by time', () => {
    fc.assert(
      fc.property(arbTime, arbTime, arbRandom, arbRandom, (t1, t2, r1, r2) => {
        fc.pre(t1 !== t2);
        const a = newEventId(t1, r1);
        const b = newEventId(t2, r2);
        expect(a < b).toBe(t1 < t2);
      }),
    );
  });

  it('are unique across 10k ids made in the same millisecond with default randomness', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 10_000; i++) ids.add(newEventId(1_767_225_600_000));
    expect(ids.size).toBe(10_000);
    const times = new Set([...ids].map((id) => id.slice(0, 10)));
    expect(times.size).toBe(1);
  });

  it('reject out-of-range times and wrong-size randomness', () => {
    for (const t of [-1, 1.5, MAX_EVENT_ID_TIME + 1, Number.NaN, Infinity]) {
      expect(() => newEventId(t)).toThrow(
        expect.objectContaining({ code: ErrorCode.PROTOCOL_CLOCK }) as Error,
      );
    }
    expect(() => newEventId(0, new Uint8Array(9))).toThrow(
      expect.objectContaining({ code: ErrorCode.PROTOCOL_BAD_ENCODING }) as Error,
    );
  });

  it('isEventId rejects lowercase, excluded letters, wrong length and overflowing time', () => {
    const good = newEventId(1469918176385, new Uint8Array(10).fill(1));
    for (const s of [
      good.toLowerCase(),
      good.slice(1),
      good + '0',
      'I' + good.slice(1),
      good.slice(0, -1) + 'U',
      '8' + good.slice(1),
      '',
    ]) {
      expect(isEventId(s)).toBe(false);
    }
  });
});
