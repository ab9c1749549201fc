import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  deviceIdFromPublicKey,
  ErrorCode,
  eventIdFor,
  eventIdSeq,
  eventIdTime,
  isEventId,
  isEventIdOf,
  MAX_EVENT_ID_TIME,
  newEventId,
  type DeviceId,
} from './index.js';

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

describe('event ids bound to their author', () => {
  const arbDevice = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((raw) => deviceIdFromPublicKey(raw));
  const arbSeq = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER });

  it('are well-formed, carry their time, and check against their device and seq only', () => {
    fc.assert(
      fc.property(arbTime, arbDevice, arbSeq, arbTime, (t, device, seq, later) => {
        const id = eventIdFor(t, device, seq);
        expect(isEventId(id)).toBe(true);
        expect(eventIdTime(id)).toBe(t);
        expect(isEventIdOf(id, device, seq)).toBe(true);
        // The time part is the author's own business; the tail is not.
        expect(isEventIdOf(eventIdFor(later, device, seq), device, seq)).toBe(true);
        expect(isEventIdOf(id, device, seq + 1)).toBe(false);
        expect(eventIdSeq(id)).toBe(seq % 2 ** 32);
      }),
    );
  });

  it('eventIdSeq reads the low 32 bits of the seq back, and nothing from a malformed id', () => {
    const device = deviceIdFromPublicKey(new Uint8Array(32).fill(9));
    for (const seq of [0, 1, 31, 32, 1023, 1024, 2 ** 31, 2 ** 32 - 1, 2 ** 32 + 5])
      expect(eventIdSeq(eventIdFor(0, device, seq))).toBe(seq % 2 ** 32);
    for (const bad of ['', 'not-an-id', '0'.repeat(25), '8' + '0'.repeat(25), 'i'.repeat(26)])
      expect(eventIdSeq(bad)).toBeUndefined();
  });

  it("never match another device's ids, nor a random id", () => {
    fc.assert(
      fc.property(arbDevice, arbDevice, arbSeq, arbRandom, (a, b, seq, random) => {
        fc.pre(a.slice(1, 9) !== b.slice(1, 9));
        const id = eventIdFor(Date.UTC(2026, 0, 1), a, seq);
        expect(isEventIdOf(id, b, seq)).toBe(false);
        const unbound = newEventId(Date.UTC(2026, 0, 1), random);
        expect(isEventIdOf(unbound, a, seq)).toBe(unbound === eventIdFor(Date.UTC(2026, 0, 1), a, seq));
      }),
    );
  });

  it('are distinct for every seq of one device within 2^32', () => {
    const device = deviceIdFromPublicKey(new Uint8Array(32).fill(7));
    const ids = new Set<string>();
    for (let seq = 1; seq <= 10_000; seq++) ids.add(eventIdFor(0, device, seq));
    expect(ids.size).toBe(10_000);
  });

  it('refuse a malformed device id or seq with a code, and never match one', () => {
    for (const [device, seq] of [
      ['not-a-device', 1],
      ['d', 1],
      ['d' + 'A'.repeat(43), -1],
      ['d' + 'A'.repeat(43), 1.5],
    ] as const) {
      expect(() => eventIdFor(0, device as DeviceId, seq)).toThrow(
        expect.objectContaining({ code: ErrorCode.PROTOCOL_BAD_KEY }),
      );
      expect(isEventIdOf(newEventId(0), device, seq)).toBe(false);
    }
  });
});
