import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  deviceIdFromPublicKey,
  eventIdFor,
  formatHlc,
  type DeviceId,
  type EventId,
  type FacilityId,
  type SignedEvent,
} from '@accord/protocol';
import { VisibleSet } from './visible-set.js';

const FACILITY = 'visible-unit' as FacilityId;
const A: DeviceId = deviceIdFromPublicKey(new Uint8Array(32).fill(1));
const B: DeviceId = deviceIdFromPublicKey(new Uint8Array(32).fill(2));
const T0 = Date.UTC(2026, 10, 26);

/** An event of `device` with `seq` (unsigned: the visible set never looks at signatures). */
function event(device: DeviceId, seq: number, givenName = 'Ama'): SignedEvent {
  const id = `${device}-${seq}`;
  return {
    v: 1,
    id: eventIdFor(T0 + seq, device, seq),
    facility: FACILITY,
    device,
    seq,
    hlc: formatHlc(T0 + seq, 0),
    type: 'PatientRegistered',
    schema: 1,
    subject: { kind: 'patient', id },
    deps: [],
    data: {
      patientId: id,
      nationalId: `N-${id}`,
      givenName,
      familyName: 'Mensah',
      birthDate: '2019-05-04',
      sex: 'female',
    },
    sig: 'unsigned',
  };
}

/**
 * A visible set over a stand-in for the event store: `add` stores a copy of the event first (as
 * the log does), and reads hand back fresh copies (as decoding stored bytes does), counted.
 */
function visibleSet(
  relay: DeviceId | null = null,
  opts: { readonly resident?: boolean } = {},
): {
  set: VisibleSet;
  add: (e: SignedEvent, onRelease?: (e: SignedEvent) => void) => SignedEvent[] | undefined;
  reads: () => number;
} {
  const stored = new Map<string, SignedEvent>();
  let reads = 0;
  const set = new VisibleSet(
    relay,
    {
      event: (id) => {
        reads++;
        const e = stored.get(id);
        if (e === undefined) throw new Error(`event ${id} was never stored`);
        return structuredClone(e);
      },
    },
    opts,
  );
  return {
    set,
    add: (e, onRelease) => {
      if (!stored.has(e.id)) stored.set(e.id, structuredClone(e));
      return set.add(e, onRelease);
    },
    reads: () => reads,
  };
}

const seqsOf = (events: readonly SignedEvent[] | undefined): number[] | undefined =>
  events?.map((e) => e.seq);

describe('VisibleSet', () => {
  it('shows each device its contiguous prefix and holds back what follows a hole until it fills', () => {
    const { set, add } = visibleSet();
    expect(seqsOf(add(event(A, 1)))).toEqual([1]);
    expect(seqsOf(add(event(A, 3)))).toEqual([]); // behind the hole at 2
    expect(seqsOf(add(event(A, 4)))).toEqual([]);
    expect(seqsOf(add(event(B, 1)))).toEqual([1]); // another device is not held back
    expect(set.contiguous(A)).toBe(1);
    expect(set.visible(event(A, 3).id)).toBeUndefined();
    expect(set.known(event(A, 3).id)?.seq).toBe(3);
    expect(set.has(event(A, 3).id)).toBe(true);
    expect(set.has(event(A, 2).id)).toBe(false);
    expect(set.holes()).toEqual([{ device: A, missing: [2] }]);
    expect(set.withheld(() => false)).toEqual([
      { device: A, from: 2, reason: 'hole', missing: [2], heldBack: 2 },
    ]);
    expect(set.withheld((device) => device === A)).toEqual([]);
    expect(set.folder.size).toBe(2);

    const released: number[] = [];
    // The held events are read back as they are released, whole.
    const releasedEvents = add(event(A, 2), (e) => released.push(e.seq));
    expect(releasedEvents).toEqual([2, 3, 4].map((seq) => event(A, seq)));
    expect(released).toEqual([2, 3, 4]);
    expect(set.contiguous(A)).toBe(4);
    expect(set.holes()).toEqual([]);
    expect(set.withheld(() => false)).toEqual([]);
    expect(set.size).toBe(5);
    expect(add(event(A, 2))).toBeUndefined(); // already held
  });

  it('withholds a device from its equivocation barrier on, and keeps later events behind it', () => {
    const { set, add } = visibleSet();
    for (let seq = 1; seq <= 4; seq++) add(event(A, seq));
    add(event(B, 1));
    set.setBarrier(A, 3);
    expect(set.withholdFrom(A, 3)).toBe(true);
    expect(set.contiguous(A)).toBe(2);
    expect([...set.visibleEvents()].map((e) => `${e.device}/${e.seq}`).sort()).toEqual([
      `${A}/1`,
      `${A}/2`,
      `${B}/1`,
    ]);
    expect(set.withheld(() => false)).toEqual([
      { device: A, from: 3, reason: 'equivocation', missing: [], heldBack: 2 },
    ]);
    expect(add(event(A, 5))).toEqual([]);
    expect(set.size).toBe(6);
    // Nothing visible beyond a barrier set ahead of the prefix: no change to report.
    set.setBarrier(B, 7);
    expect(set.withholdFrom(B, 7)).toBe(false);
    expect(set.barriers()).toEqual(
      new Map([
        [A, 3],
        [B, 7],
      ]),
    );
  });

  it('gives a segment only when every one of its events is visible', () => {
    const { set, add } = visibleSet();
    for (const seq of [1, 2, 3, 5, 6]) add(event(A, seq));
    expect(set.complete(A, 0, 3)).toBe(true);
    expect(seqsOf(set.segmentEvents(A, 0, 3))).toEqual([1, 2, 3]);
    expect(set.complete(A, 1, 3)).toBe(false);
    expect(set.segmentEvents(A, 1, 3)).toBeUndefined();
    add(event(A, 4));
    expect(seqsOf(set.segmentEvents(A, 1, 3))).toEqual([4, 5, 6]);
    expect([...set.visibleIds(A)]).toEqual([1, 2, 3, 4, 5, 6].map((seq) => event(A, seq).id));
    expect(set.maxSeq(A)).toBe(6);
    expect(set.idAt(A, 4)).toBe(event(A, 4).id);
    expect([...set.devices()]).toEqual([A]);
  });

  it('locates a visible event by its id alone, reading nothing, and no held or unknown one', () => {
    const { set, add, reads } = visibleSet();
    for (const seq of [1, 2, 4]) add(event(A, seq));
    add(event(B, 1));
    expect(set.locate(event(A, 2).id)).toEqual({ device: A, seq: 2 });
    expect(set.locate(event(B, 1).id)).toEqual({ device: B, seq: 1 });
    expect(set.locate(event(A, 4).id)).toBeUndefined(); // held behind the hole at 3
    expect(set.locate(event(A, 3).id)).toBeUndefined(); // never added
    expect(set.locate(event(B, 2).id)).toBeUndefined();
    expect(set.locate('not-an-id' as EventId)).toBeUndefined();
    // A's id at seq 1 names no event of B's, though B holds a seq 1.
    expect(set.locate(eventIdFor(T0, A, 1))).toBeUndefined();
    expect(reads()).toBe(0);
    // Withheld again behind an equivocation barrier: no longer visible, so no longer located.
    set.setBarrier(A, 2);
    set.withholdFrom(A, 2);
    expect(set.locate(event(A, 2).id)).toBeUndefined();
    expect(set.locate(event(A, 1).id)).toEqual({ device: A, seq: 1 });
  });

  it('shares repeated strings between the events it is given (interning in place)', () => {
    const { add } = visibleSet();
    const first = event(A, 1);
    const second = event(A, 2);
    add(first);
    add(second);
    expect(first.deps).toBe(second.deps);
    expect(Object.isFrozen(second.deps)).toBe(true);
  });

  it('keeps no plain domain event: reads each one back from the store, and keeps system events', () => {
    const { set, add, reads } = visibleSet();
    const e = event(A, 1);
    add(e);
    const roster: SignedEvent = { ...event(A, 2), type: 'RosterUpdated', data: { version: 1 } };
    add(roster);
    const before = reads();
    const read = set.visible(e.id);
    expect(read).toEqual(event(A, 1));
    expect(read).not.toBe(e); // a copy read back, not the object added
    expect(reads()).toBe(before + 1);
    // System events stay in memory: listed without a read.
    expect([...set.visibleEvents(true)]).toEqual([roster]);
    expect(set.visible(roster.id)).toBe(roster);
    expect(reads()).toBe(before + 1);
  });

  it('with resident events (the relay), keeps visible events and reads back only held ones as they are released', () => {
    const { set, add, reads } = visibleSet(null, { resident: true });
    const first = event(A, 1);
    add(first);
    expect(set.visible(first.id)).toBe(first);
    expect(reads()).toBe(0);
    const third = event(A, 3);
    add(third); // held behind the hole at 2
    expect(seqsOf(add(event(A, 2)))).toEqual([2, 3]);
    expect(reads()).toBe(1); // the held event, once, as it joins the fold
    expect(set.visible(third.id)).toEqual(third);
    expect([...set.folder.ids()].map((id) => set.visible(id)!.seq).sort()).toEqual([1, 2, 3]);
    expect(reads()).toBe(1);
  });

  it('in any arrival order, shows exactly the contiguous prefix below the first missing seq', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 30 }).chain((n) =>
          fc.tuple(
            fc.constant(n),
            fc.shuffledSubarray(
              Array.from({ length: n }, (_, i) => i + 1),
              { minLength: 0, maxLength: n },
            ),
          ),
        ),
        ([n, arrived]) => {
          const { set, add } = visibleSet();
          const releasedOrder: number[] = [];
          for (const seq of arrived) releasedOrder.push(...(seqsOf(add(event(A, seq))) ?? []));
          const present = new Set(arrived);
          let prefix = 0;
          while (present.has(prefix + 1)) prefix++;
          expect(set.contiguous(A)).toBe(prefix);
          expect(releasedOrder).toEqual(Array.from({ length: prefix }, (_, i) => i + 1));
          expect(set.folder.size).toBe(prefix);
          expect(set.size).toBe(arrived.length);
          const max = Math.max(0, ...arrived);
          const missing = Array.from({ length: max }, (_, i) => i + 1).filter((s) => !present.has(s));
          expect(set.holes()).toEqual(missing.length === 0 ? [] : [{ device: A, missing }]);
          expect(n).toBeGreaterThanOrEqual(max);
        },
      ),
    );
  });
});
