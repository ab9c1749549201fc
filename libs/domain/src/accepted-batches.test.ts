import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import type { EventId, SignedEvent } from '@accord/protocol';
import { AcceptedBatches } from './accepted-batches.js';
import { EventNumbers } from './event-numbers.js';
import { EventFactory } from './testing.js';

// A full collection on demand, to see that a batch no longer holds the event it was made from.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
/** Collects once the current job is over (a WeakRef read in a job keeps its target for the job). */
const collect = async (): Promise<void> => {
  await new Promise((resolve) => setImmediate(resolve));
  gc();
};

const id = (f: EventFactory, i: number): EventId => f.event(f.relay, 'PatientRegistered', { i }).id;

describe('AcceptedBatches', () => {
  it('holds no reference to the event it was given, and makes the same event again, field for field', async () => {
    const f = new EventFactory({ salt: 3 });
    const numbers = new EventNumbers();
    const batches = new AcceptedBatches(numbers);
    const [a, b] = [id(f, 1), id(f, 2)];
    // A target that is no canonical id (a hostile relay's) comes back as given too.
    const odd = 'not-an-event-id' as EventId;
    const made = (): SignedEvent => {
      const e = f.acceptAll([a, odd, b], 5);
      return { ...e, data: { ...(e.data as object), targets: [a, odd, b] } };
    };
    // Made and added in a function of its own: the test keeps only a weak reference to it.
    const addOne = (): { json: string; ref: WeakRef<SignedEvent> } => {
      const given = made();
      const added = batches.add(given)!;
      expect(added.id).toBe(given.id);
      expect(added.targets).toEqual(Int32Array.from([a, odd, b], (t) => numbers.find(t)!));
      return { json: JSON.stringify(given), ref: new WeakRef(given) };
    };
    const { json, ref } = addOne();
    // While the caller holds the event, it is the one every look-up returns.
    expect(batches.stating(b, 7)).toBe(ref.deref());
    await collect();
    expect(ref.deref()).toBeUndefined();
    const again = batches.stating(a, 5)!;
    expect(JSON.stringify(again)).toBe(json);
    // One object while held: statements compare verdicts by identity.
    expect(batches.stating(odd, 6)).toBe(again);
    expect(batches.stating(b, 7)).toBe(again);
    expect(batches.stating(b, 6)).toBeUndefined();
    expect(batches.stating(id(f, 3), 5)).toBeUndefined(); // never numbered
  });

  it('of two batches stating one acceptance, gives the later; a target at another seq is no statement', () => {
    const f = new EventFactory({ salt: 4 });
    const batches = new AcceptedBatches(new EventNumbers());
    const [a, b, c] = [id(f, 1), id(f, 2), id(f, 3)];
    const first = f.acceptAll([a, b], 1);
    const restated = f.acceptAll([c, b], 1); // b again at 2, and c at 1 (a at 1 still stands)
    batches.add(restated);
    batches.add(first); // added after, yet the earlier by the relay's seq
    expect(batches.stating(a, 1)).toBe(first);
    expect(batches.stating(c, 1)).toBe(restated);
    expect(batches.stating(b, 2)).toBe(restated);
    expect(batches.states(b, 1)).toBe(false);
    expect(batches.states(a, 2)).toBe(false);
    expect(batches.add(f.reject(id(f, 4)))).toBeUndefined(); // not an AcceptedVerdicts: ignored
  });
});
