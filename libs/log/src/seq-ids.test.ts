import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EventId } from '@accord/protocol';
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
