import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EventNumbers } from '@accord/domain';
import { testDeviceId } from '@accord/domain/testing';
import { eventIdFor, type EventId } from '@accord/protocol';
import { SeqIds } from './seq-ids.js';

describe('SeqIds', () => {
  it('answers like a Map for any mix of near, far and huge sequence numbers', () => {
    const seq = fc.oneof(
      fc.integer({ min: 1, max: 200 }),
      fc.integer({ min: 60_000, max: 140_000 }),
      fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    );
    fc.assert(
      fc.property(
        fc.uniqueArray(seq, { maxLength: 60 }),
        fc.array(seq, { maxLength: 20 }),
        (sets, probes) => {
          const ids = new SeqIds();
          const model = new Map<number, EventId>();
          for (const s of sets) {
            ids.set(s, `e${s}` as EventId);
            model.set(s, `e${s}` as EventId);
          }
          for (const s of [...sets, ...probes]) expect(ids.get(s)).toBe(model.get(s));
          expect(ids.max()).toBe(Math.max(0, ...model.keys()));
        },
      ),
    );
  });

  it('keeps numbers from a shared table and makes the ids again, equal to those given', () => {
    const numbers = new EventNumbers();
    const device = testDeviceId(3);
    const a = new SeqIds(numbers);
    const b = new SeqIds(numbers);
    for (let s = 1; s <= 5000; s++) {
      a.set(s, eventIdFor(1_700_000_000_000 + s, device, s));
      b.set(s, eventIdFor(1_700_000_000_000 + s, testDeviceId(4), s));
    }
    expect(numbers.size).toBe(10_000);
    const id = eventIdFor(1_700_000_000_777, device, 777);
    expect(a.get(777)).toBe(id);
    expect(a.holds(777, id)).toBe(true);
    expect(a.holds(778, id)).toBe(false);
    expect(b.holds(777, id)).toBe(false);
    expect(a.holds(5001, id)).toBe(false);
    expect(a.max()).toBe(5000);
  });

  it('fills a long contiguous run densely', () => {
    const ids = new SeqIds();
    for (let s = 1; s <= 100_000; s++) ids.set(s, `e${s}` as EventId);
    expect(ids.get(1)).toBe('e1');
    expect(ids.get(100_000)).toBe('e100000');
    expect(ids.get(100_001)).toBeUndefined();
    expect(ids.get(0)).toBeUndefined();
    expect(ids.max()).toBe(100_000);
  });
});
