import fc from 'fast-check';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import type { EventId, SignedEvent } from '@accord/protocol';
import type { Projection } from './projection.js';
import {
  ProjectionFolder,
  classify,
  confirmed,
  tentative,
  tentativeOrder,
  type EventSource,
} from './status.js';
import type { EventStatusInfo } from './status.js';
import { EventFactory, TEST_RELAY, arbFacilityLog, logState, testDeviceId } from './testing.js';

// A full collection on demand (the folder must keep no reference to a relay batch's event).
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const dev = testDeviceId(1);
const dev2 = testDeviceId(2);
const intruder = testDeviceId(9);

const reg = (f: EventFactory, patientId: string, device = dev): SignedEvent =>
  f.event(device, 'PatientRegistered', {
    patientId,
    nationalId: `N-${patientId}`,
    givenName: 'Amina',
    familyName: 'Banda',
    birthDate: '2024-01-10',
    sex: 'female',
  });

const statusOf = (events: SignedEvent[], id: EventId, relay = TEST_RELAY): EventStatusInfo | undefined =>
  classify(logState(events, relay)).get(id);

const bytes = (p: Projection): string => JSON.stringify(p.toJSON());
const classifyJson = (m: Map<EventId, EventStatusInfo>): string =>
  JSON.stringify(
    [...m.entries()]
      .sort((a, b) => (a[0] < b[0] ? -1 : 1))
      .map(([k, v]) => [k, v.status, v.verdict?.id, v.resolvedBy]),
  );

function shuffled<T>(items: readonly T[], keys: readonly number[]): T[] {
  return items
    .map((item, i) => ({ item, k: keys[i % Math.max(1, keys.length)]! * 1_000_003 + i }))
    .sort((a, b) => a.k - b.k)
    .map((x) => x.item);
}

describe('classify', () => {
  it('an event without a verdict is pending; verdicts are not classified', () => {
    const f = new EventFactory();
    const e = reg(f, 'p1');
    const v = f.accept(e);
    expect(statusOf([e], e.id)).toEqual({ status: 'pending' });
    const all = classify(logState([e, v]));
    expect(all.get(e.id)).toEqual({ status: 'accepted', verdict: v });
    expect(all.has(v.id)).toBe(false);
  });

  it('a rejection is a deadletter until discarded or amended', () => {
    const f = new EventFactory();
    const e = reg(f, 'p1');
    const v = f.reject(e, { code: 409, rule: 'RULE_DUPLICATE_NATIONAL_ID' });
    expect(statusOf([e, v], e.id)).toEqual({ status: 'deadletter', verdict: v });
    const d = f.discard(dev2, e);
    expect(statusOf([e, v, d], e.id)).toEqual({ status: 'resolved', verdict: v, resolvedBy: d.id });
    const amend = f.event(
      dev,
      'PatientRegistered',
      { ...(e.data as object), patientId: 'p1b' },
      { supersedes: e.id },
    );
    expect(statusOf([e, v, amend], e.id)).toEqual({ status: 'resolved', verdict: v, resolvedBy: amend.id });
    expect(statusOf([e, v, amend], amend.id)).toEqual({ status: 'pending' });
    // The earliest resolution (by HLC) is named.
    expect(statusOf([e, v, d, amend], e.id)?.resolvedBy).toBe(d.id);
  });

  it('a discard the relay rejected (e.g. 403, no elevation) does not resolve', () => {
    const f = new EventFactory();
    const e = reg(f, 'p1');
    const v = f.reject(e);
    const d = f.discard(dev2, e);
    const refused = f.reject(d, { code: 403, rule: 'RULE_ELEVATION' });
    expect(statusOf([e, v, d, refused], e.id)).toEqual({ status: 'deadletter', verdict: v });
    expect(statusOf([e, v, d, refused], d.id)?.status).toBe('deadletter');
    // Order of arrival does not matter.
    expect(statusOf([refused, d, v, e], e.id)).toEqual({ status: 'deadletter', verdict: v });
  });

  it('a retry newer than the latest verdict makes it pending; the answer to the retry wins', () => {
    const f = new EventFactory();
    const e = reg(f, 'p1');
    const v1 = f.reject(e, { code: 404 });
    const r = f.retry(dev, e);
    expect(statusOf([e, v1, r], e.id)).toEqual({ status: 'pending', verdict: v1 });
    const v2 = f.reject(e, { code: 422 });
    expect(statusOf([e, v1, r, v2], e.id)).toEqual({ status: 'deadletter', verdict: v2 });
    const v3 = f.accept(e);
    expect(statusOf([e, v1, r, v2, v3], e.id)).toEqual({ status: 'accepted', verdict: v3 });
  });

  it('a retry older than the verdict does not reopen it', () => {
    const f = new EventFactory();
    const e = reg(f, 'p1');
    const r = f.retry(dev, e); // made before the relay's (second) answer
    const v = f.reject(e);
    expect(statusOf([e, r, v], e.id)).toEqual({ status: 'deadletter', verdict: v });
  });

  it('the latest verdict is the relay’s highest seq, not the latest to arrive', () => {
    const f = new EventFactory();
    const e = reg(f, 'p1');
    const v1 = f.reject(e);
    const v2 = f.accept(e);
    expect(statusOf([e, v2, v1], e.id)).toEqual({ status: 'accepted', verdict: v2 });
  });

  it('ignores verdicts signed by any device other than the relay, and all verdicts without a relay', () => {
    const f = new EventFactory();
    const forger = new EventFactory({ relay: intruder });
    const e = reg(f, 'p1');
    const forged = forger.accept(e);
    expect(statusOf([e, forged], e.id)).toEqual({ status: 'pending' });
    const real = f.reject(e);
    expect(statusOf([e, forged, real], e.id)).toEqual({ status: 'deadletter', verdict: real });
    expect(statusOf([e, real], e.id, null as never)).toEqual({ status: 'pending' });
  });

  it('ignores malformed verdict data', () => {
    const f = new EventFactory();
    const e = reg(f, 'p1');
    const bad = f.event(TEST_RELAY, 'Verdict', { target: e.id, outcome: 'accepted', seq: -1 });
    const bad2 = f.event(TEST_RELAY, 'Verdict', { target: e.id, outcome: 'maybe' });
    const bad3 = f.event(TEST_RELAY, 'Verdict', null);
    expect(statusOf([e, bad, bad2, bad3], e.id)).toEqual({ status: 'pending' });
  });
});

describe('AcceptedVerdicts', () => {
  it('accepts each target with consecutive seqs; the batch is the verdict and has no status', () => {
    const f = new EventFactory();
    const a = reg(f, 'p1');
    const b = f.event(dev2, 'PatientDemographicsUpdated', { patientId: 'p1', changes: { givenName: 'B' } });
    const c = reg(f, 'p2');
    const batch = f.acceptAll([a, b, c]);
    const all = classify(logState([c, batch, b, a]));
    expect([...all.keys()].sort()).toEqual([a.id, b.id, c.id].sort());
    for (const e of [a, b, c]) expect(all.get(e.id)).toEqual({ status: 'accepted', verdict: batch });
    const folder = ProjectionFolder.from(logState([batch, a, b, c]));
    expect(folder.status(batch.id)).toBeUndefined();
    expect(confirmed(logState([b, batch, c, a])).patient('p1')?.givenName).toBe('B');
  });

  it('orders with single verdicts by relay envelope seq, in either direction', () => {
    const f = new EventFactory();
    const e = reg(f, 'p1');
    const rejected = f.reject(e);
    const retry = f.retry(dev, e);
    const accepted = f.acceptAll([retry, e]);
    expect(statusOf([accepted, e, retry, rejected], e.id)).toEqual({ status: 'accepted', verdict: accepted });
    const g = new EventFactory({ salt: 3 });
    const e2 = reg(g, 'p2');
    const first = g.acceptAll([e2]);
    const later = g.reject(e2);
    expect(statusOf([later, e2, first], e2.id)).toEqual({ status: 'deadletter', verdict: later });
  });

  it('ignores batches signed by another device, and malformed ones', () => {
    const f = new EventFactory();
    const forger = new EventFactory({ relay: intruder });
    const e = reg(f, 'p1');
    expect(statusOf([e, forger.acceptAll([e])], e.id)).toEqual({ status: 'pending' });
    const bad = f.event(TEST_RELAY, 'AcceptedVerdicts', { ruleSet: 'r', firstSeq: 0, targets: [e.id] });
    const bad2 = f.event(TEST_RELAY, 'AcceptedVerdicts', { ruleSet: 'r', firstSeq: 1, targets: e.id });
    expect(statusOf([e, bad, bad2], e.id)).toEqual({ status: 'pending' });
    expect(confirmed(logState([e, bad, bad2])).patient('p1')).toBeUndefined();
  });
});

describe('confirmed and tentative', () => {
  it('confirmed folds accepted events in relay seq order, whatever their HLC or arrival order', () => {
    const f = new EventFactory();
    const p = reg(f, 'p1');
    const u1 = f.event(dev, 'PatientDemographicsUpdated', {
      patientId: 'p1',
      changes: { givenName: 'First' },
    });
    const u2 = f.event(dev2, 'PatientDemographicsUpdated', {
      patientId: 'p1',
      changes: { givenName: 'Second' },
    });
    // The relay confirmed u2 before u1 (it saw u2 first): u1's value is the final one.
    const events = [f.accept(u1, 3), p, u2, f.accept(p, 1), u1, f.accept(u2, 2)];
    expect(confirmed(logState(events)).patient('p1')?.givenName).toBe('First');
    const swapped = [p, u1, u2, f.accept(p, 1), f.accept(u1, 2), f.accept(u2, 3)];
    expect(confirmed(logState(swapped)).patient('p1')?.givenName).toBe('Second');
  });

  it('tentative adds pending events in (HLC, device, seq) order and leaves out deadletters and resolved ones', () => {
    const f = new EventFactory();
    const p = reg(f, 'p1');
    const hlc = f.nextHlc();
    // Same HLC on two devices: the device id decides.
    const [lo, hi] = [dev, dev2].sort();
    const fromHi = f.event(
      hi!,
      'PatientDemographicsUpdated',
      { patientId: 'p1', changes: { givenName: 'Hi' } },
      { hlc },
    );
    const fromLo = f.event(
      lo!,
      'PatientDemographicsUpdated',
      { patientId: 'p1', changes: { givenName: 'Lo' } },
      { hlc },
    );
    const rejected = f.event(dev, 'PatientDemographicsUpdated', {
      patientId: 'p1',
      changes: { familyName: 'Rejected' },
    });
    const discarded = f.event(dev, 'PatientDemographicsUpdated', {
      patientId: 'p1',
      changes: { sex: 'male' },
    });
    const retried = f.event(dev, 'PatientDemographicsUpdated', {
      patientId: 'p1',
      changes: { birthDate: '2024-01-11' },
    });
    const events = [
      p,
      f.accept(p),
      fromHi,
      fromLo,
      rejected,
      f.reject(rejected),
      discarded,
      f.reject(discarded),
      f.discard(dev, discarded),
      retried,
      f.reject(retried),
      f.retry(dev, retried),
    ];
    const t = tentative(logState(events));
    expect(t.patient('p1')).toMatchObject({
      givenName: 'Hi',
      familyName: 'Banda',
      sex: 'female',
      birthDate: '2024-01-11',
    });
    const c = confirmed(logState(events));
    expect(c.patient('p1')).toMatchObject({ givenName: 'Amina', birthDate: '2024-01-10' });
  });

  it('classify, confirmed and tentative do not depend on the map’s insertion order', () => {
    fc.assert(
      fc.property(
        arbFacilityLog({ maxOps: 30 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 50 }),
        ({ events }, keys) => {
          const a = logState(events);
          const b = logState(shuffled(events, keys));
          expect(classifyJson(classify(b))).toBe(classifyJson(classify(a)));
          expect(bytes(confirmed(b))).toBe(bytes(confirmed(a)));
          expect(bytes(tentative(b))).toBe(bytes(tentative(a)));
        },
      ),
      { numRuns: 80 },
    );
  });

  it('the tentative fold of verdict-free events is the same for any order they arrived in', () => {
    fc.assert(
      fc.property(
        arbFacilityLog({ maxOps: 30 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 50 }),
        ({ history }, keys) => {
          const reference = tentative(logState(history.events));
          const view = tentative(logState(shuffled(history.events, keys)));
          expect(bytes(view)).toBe(bytes(reference));
          expect(view.appliedCount).toBe(history.events.length);
        },
      ),
      { numRuns: 80 },
    );
  });

  it('verdicts signed by a non-relay device change nothing', () => {
    fc.assert(
      fc.property(
        arbFacilityLog({ maxOps: 20 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 20 }),
        ({ events }, flips) => {
          const forger = new EventFactory({ relay: intruder });
          const domain = events.filter(
            (e) => e.type !== 'Verdict' && e.type !== 'RetryRequested' && e.type !== 'DeadletterDiscarded',
          );
          const forged = domain.map((e, i) =>
            flips[i % flips.length] ? forger.accept(e, 1 + i) : forger.reject(e),
          );
          const a = logState(events);
          const b = logState([...forged, ...events]);
          expect(classifyJson(classify(b))).toBe(classifyJson(classify(a)));
          expect(bytes(confirmed(b))).toBe(bytes(confirmed(a)));
          expect(bytes(tentative(b))).toBe(bytes(tentative(a)));
        },
      ),
      { numRuns: 50 },
    );
  });
});

/**
 * An {@link EventSource} over `events` that hands out a fresh copy on every read (as a store
 * decoding bytes does), counting reads: a folder that kept or compared object identities would
 * show it.
 */
function copyingSource(events: readonly SignedEvent[]): EventSource & { reads: number } {
  const byId = new Map(events.map((e) => [e.id, e]));
  return {
    reads: 0,
    event(id) {
      this.reads++;
      const e = byId.get(id);
      if (e === undefined) throw new Error(`no event ${id} in the source`);
      return structuredClone(e);
    },
  };
}

describe('ProjectionFolder', () => {
  it.each([
    ['holding its events', false],
    ['reading plain domain events from a source', true],
  ])(
    'incremental adds in any order, with queries in between, equal the from-scratch folds (%s)',
    (_, withSource) => {
      fc.assert(
        fc.property(
          arbFacilityLog({ maxOps: 30 }),
          fc.array(fc.nat(), { minLength: 1, maxLength: 40 }),
          fc.array(fc.nat(), { maxLength: 6 }),
          ({ events }, keys, queryAt) => {
            const order = shuffled(events, keys);
            const folder = new ProjectionFolder(TEST_RELAY, withSource ? copyingSource(events) : undefined);
            const queries = new Set(queryAt.map((q) => q % (order.length + 1)));
            order.forEach((e, i) => {
              if (queries.has(i)) {
                // Intermediate answers equal the from-scratch answer for the prefix.
                const prefix = logState(order.slice(0, i));
                expect(bytes(folder.tentative())).toBe(bytes(tentative(prefix)));
                expect(bytes(folder.confirmed())).toBe(bytes(confirmed(prefix)));
              }
              folder.add(e);
              folder.add(e); // duplicates are ignored
            });
            const state = logState(events);
            expect(bytes(folder.confirmed())).toBe(bytes(confirmed(state)));
            expect(bytes(folder.tentative())).toBe(bytes(tentative(state)));
            expect(classifyJson(folder.classify())).toBe(classifyJson(classify(state)));
            expect(folder.size).toBe(state.events.size);
          },
        ),
        { numRuns: 60 },
      );
    },
  );

  it('querying after every single add (the incremental path) ends where the from-scratch fold does', () => {
    fc.assert(
      fc.property(
        arbFacilityLog({ maxOps: 30 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 40 }),
        fc.boolean(),
        ({ events }, keys, inOrder) => {
          const order = inOrder ? events : shuffled(events, keys);
          const folder = new ProjectionFolder(TEST_RELAY);
          for (const e of order) {
            folder.add(e);
            folder.confirmed();
            if (e.seq % 3 === 0) folder.tentative();
          }
          const state = logState(events);
          expect(bytes(folder.confirmed())).toBe(bytes(confirmed(state)));
          expect(bytes(folder.tentative())).toBe(bytes(tentative(state)));
          expect(folder.pending().map((e) => e.id)).toEqual(
            [...classify(state)]
              .filter(
                ([id, s]) =>
                  s.status === 'pending' &&
                  !['RetryRequested', 'DeadletterDiscarded'].includes(state.events.get(id)!.type),
              )
              .map(([id]) => id)
              .sort((a, b) => {
                const x = state.events.get(a)!;
                const y = state.events.get(b)!;
                return x.hlc < y.hlc
                  ? -1
                  : x.hlc > y.hlc
                    ? 1
                    : x.device < y.device
                      ? -1
                      : x.device > y.device
                        ? 1
                        : x.seq - y.seq;
              }),
          );
        },
      ),
      { numRuns: 60 },
    );
  });

  it('applies verdicts arriving in seq order without rebuilding, and rebuilds when one overtakes', () => {
    const f = new EventFactory();
    const a = reg(f, 'a');
    const b = reg(f, 'b');
    const c = reg(f, 'c');
    const folder = new ProjectionFolder(TEST_RELAY);
    for (const e of [a, b, c]) folder.add(e);
    const conf = folder.confirmed();
    folder.add(f.accept(a, 1));
    expect(folder.confirmed()).toBe(conf); // same object, updated in place
    expect(conf.hasEvent(a.id)).toBe(true);
    folder.add(f.accept(c, 3));
    folder.add(f.accept(b, 2)); // arrives after seq 3 was folded
    expect(folder.confirmed().appliedCount).toBe(3);
    expect(bytes(folder.confirmed())).toBe(
      bytes(confirmed(logState([a, b, c, f.accept(a, 1), f.accept(b, 2), f.accept(c, 3)]))),
    );
    expect(folder.pending()).toEqual([]);
    expect(folder.status(b.id)?.status).toBe('accepted');
  });

  it('with a source, holds plain domain events by id and reads them back to fold (and refold)', () => {
    const f = new EventFactory();
    const a = reg(f, 'a');
    const b = reg(f, 'b');
    const c = reg(f, 'c');
    const source = copyingSource([a, b, c]);
    const folder = new ProjectionFolder(TEST_RELAY, source);
    for (const e of [a, b, c]) folder.add(e);
    expect(folder.has(b.id)).toBe(true);
    expect(folder.idOf(b.id)).toBe(b.id);
    // Not the object it was given: a copy read from the source.
    const read = folder.event(b.id);
    expect(read).toEqual(b);
    expect(read).not.toBe(b);
    const reads = source.reads;
    const view = folder.tentative();
    expect(source.reads).toBe(reads + 3); // three pending events read back to fold them
    // Each patient is held as its registration's id: its record is read back for the view.
    expect(view.patients().map((p) => p.nationalId)).toEqual(['N-a', 'N-b', 'N-c']);
    expect(source.reads).toBe(reads + 6);
    const accepts = [f.accept(a, 1), f.accept(c, 3), f.accept(b, 2)];
    for (const v of accepts) folder.add(v);
    // Verdicts (system events) are resident: reading one does not touch the source.
    const before = source.reads;
    expect(folder.event(accepts[0]!.id)).toBe(accepts[0]);
    expect(source.reads).toBe(before);
    expect(bytes(folder.confirmed())).toBe(bytes(confirmed(logState([a, b, c, ...accepts]))));
    folder.add(f.accept(a, 4)); // a's acceptance moves: a refold, which reads the folded events again
    expect(bytes(folder.confirmed())).toBe(bytes(confirmed(logState([a, b, c, ...accepts, f.accept(a, 4)]))));
    expect(source.reads).toBeGreaterThan(before + 3);
  });

  it('with a source, keeps at most maxInHand events whole: accepted events waiting behind a gap past it wait by id and are read back', () => {
    // A log opening on a history whose verdicts it read first, with the first accepted event
    // missing until the end: every other event waits in the fold. Whole up to the limit, by id after.
    const f = new EventFactory();
    const events = Array.from({ length: 12 }, (_, i) => reg(f, `p${i}`));
    const verdict = f.acceptAll(events, 1);
    const run = (maxInHand: number) => {
      const source = copyingSource(events);
      const folder = new ProjectionFolder(TEST_RELAY, source, { maxInHand });
      folder.add(verdict);
      for (const e of events.slice(1)) folder.add(e); // seq 1 (events[0]) not yet here
      const beforeGap = source.reads;
      folder.add(events[0]!);
      const view = folder.confirmed(); // folds the run (reading back what waited by id)
      const readBack = source.reads - beforeGap;
      // (Serializing reads every patient's record back: registration-only patients are held by id.)
      expect(bytes(view)).toBe(bytes(confirmed(logState([verdict, ...events]))));
      return { beforeGap, readBack };
    };
    const limited = run(4);
    expect(limited.beforeGap).toBe(0); // waiting, not folded: nothing read yet
    // Syncs run at every 4th add: the first 4 wait whole, every later one (the gap's own event
    // included, it arrived at the third sync) waits by id and is read back once to be folded.
    expect(limited.readBack).toBe(events.length - 4);
    const unlimited = run(100);
    expect(unlimited.readBack).toBe(0); // all in hand until the query, folded without a read
  });

  it('keeps a batch-accepted event as its seq alone, and answers as a record would, in either arrival order', () => {
    // The compact entry (see Tracker) must give the same statuses as the full record it replaces:
    // the batch as the verdict, its seq to the fold, and a later verdict or retry taking over.
    const f = new EventFactory();
    const [a, b, c] = [reg(f, 'a'), reg(f, 'b'), reg(f, 'c')];
    const batch = f.acceptAll([a, b, c]);
    const restated = f.acceptAll([b], 2); // the relay states b's acceptance again (same seq)
    const rejected = f.reject(c); // a later verdict on c: deadletter
    const retry = f.retry(dev, c);
    for (const order of [
      [batch, a, b, c, restated, rejected, retry],
      [a, b, c, batch, rejected, restated, retry],
      [rejected, retry, restated, c, b, a, batch],
    ]) {
      const folder = new ProjectionFolder(TEST_RELAY, copyingSource([a, b, c]));
      for (const e of order) folder.add(e);
      expect(folder.status(a.id)).toEqual({ status: 'accepted', verdict: batch });
      expect(folder.status(b.id)).toEqual({ status: 'accepted', verdict: restated });
      expect(folder.status(c.id)).toEqual({ status: 'pending', verdict: rejected });
      expect(folder.targeted(a.id)).toBe(true);
      expect(folder.sharedId(a.id)).toBe(a.id);
      expect(bytes(folder.confirmed())).toBe(bytes(confirmed(logState(order))));
      expect(folder.confirmed().hasEvent(c.id)).toBe(false);
      expect(folder.confirmed().appliedCount).toBe(2);
    }
  });

  it('holds no AcceptedVerdicts event (nor its id strings), and answers with the same event made again', async () => {
    // The batch keeps its targets as numbers (see AcceptedBatch): once the caller drops the event
    // it gave, the folder holds none of it, yet every answer names an equal event, one object.
    for (const batchFirst of [true, false]) {
      const f = new EventFactory({ salt: 11 });
      const [a, b] = [reg(f, 'a'), reg(f, 'b')];
      const folder = new ProjectionFolder(TEST_RELAY, copyingSource([a, b]));
      const addBatch = (): { json: string; id: EventId; ref: WeakRef<SignedEvent> } => {
        const batch = f.acceptAll([a, b]);
        folder.add(structuredClone(batch)); // the copy is the folder's: the test keeps none
        return { json: JSON.stringify(batch), id: batch.id, ref: new WeakRef(folder.resident(batch.id)!) };
      };
      if (!batchFirst) [a, b].forEach((e) => folder.add(structuredClone(e)));
      const { json, id, ref } = addBatch();
      if (batchFirst) [a, b].forEach((e) => folder.add(structuredClone(e)));
      expect(bytes(folder.confirmed())).toBe(bytes(confirmed(logState([a, b, JSON.parse(json)]))));
      await new Promise((resolve) => setImmediate(resolve)); // a WeakRef read keeps its target for the job
      gc();
      expect(ref.deref()).toBeUndefined();
      expect(folder.has(id)).toBe(true);
      expect(folder.idOf(id)).toBe(id);
      expect(folder.idOf(a.id)).toBe(a.id);
      const verdict = folder.status(a.id)!.verdict!;
      expect(JSON.stringify(verdict)).toBe(json);
      expect(folder.status(b.id)!.verdict).toBe(verdict);
      expect(folder.resident(id)).toBe(verdict);
      expect([...folder.residentEvents()]).toEqual([verdict]);
      expect([...folder.ids()].sort()).toEqual([a.id, b.id, id].sort());
      expect(folder.status(id)).toBeUndefined(); // a relay statement has no status
      expect(folder.sharedId(a.id)).toBe(a.id);
      // A retry names b: its record is made again from the batch, with the same verdict.
      folder.add(f.retry(dev, b));
      expect(folder.status(b.id)).toEqual({ status: 'accepted', verdict });
      expect(folder.status(b.id)!.verdict).toBe(verdict);
    }
  });

  it('lists, asked what names one event, only the accepted-verdict batches that name it, and every other resident event', () => {
    const f = new EventFactory({ salt: 12 });
    const [a, b, c, d] = [reg(f, 'a'), reg(f, 'b'), reg(f, 'c'), reg(f, 'd')];
    const folder = new ProjectionFolder(TEST_RELAY, copyingSource([a, b, c, d]));
    for (const e of [a, b, c, d]) folder.add(e);
    const first = f.acceptAll([a, b]);
    const second = f.acceptAll([c]);
    const rejected = f.reject(d);
    const retry = f.retry(dev, d);
    for (const e of [first, second, rejected, retry]) folder.add(e);
    const ids = (naming?: EventId): string[] => [...folder.residentEvents(naming)].map((e) => e.id).sort();
    expect(ids()).toEqual([first.id, second.id, rejected.id, retry.id].sort());
    expect(ids(b.id)).toEqual([first.id, rejected.id, retry.id].sort());
    expect(ids(c.id)).toEqual([second.id, rejected.id, retry.id].sort());
    // Not an event any batch names (nor one the folder has numbered): no batch at all.
    expect(ids(d.id)).toEqual([rejected.id, retry.id].sort());
    expect(ids('01NOSUCHEVENT0000000000000' as EventId)).toEqual([rejected.id, retry.id].sort());
  });

  it('with a source that cannot read an event, a fold throws its error rather than folding without it', () => {
    const f = new EventFactory();
    const a = reg(f, 'a');
    const damaged = Object.assign(new Error('damaged'), { code: 'STORAGE_CORRUPT' });
    const folder = new ProjectionFolder(TEST_RELAY, {
      event: () => {
        throw damaged;
      },
    });
    folder.add(a);
    expect(folder.status(a.id)?.status).toBe('pending'); // statuses need no read
    expect(() => folder.tentative()).toThrow(damaged);
  });

  it('tentative() returns an independent projection each time', () => {
    const f = new EventFactory();
    const folder = new ProjectionFolder(TEST_RELAY);
    folder.add(reg(f, 'a'));
    const t1 = folder.tentative();
    t1.apply(reg(f, 'b'));
    expect(
      folder
        .tentative()
        .patients()
        .map((p) => p.id),
    ).toEqual(['a']);
    expect(folder.confirmed().patients()).toEqual([]);
  });
});

describe('tentative order with a clock far ahead', () => {
  it('folds an event after the pending events it depends on, whatever their HLC', () => {
    const f = new EventFactory();
    // Tablet 2's clock runs two years ahead; tablet 1 records a vaccination for its patient, with
    // an earlier stamp (its clock may not adopt one beyond the drift bound) but depending on it.
    const registration = f.event(
      dev2,
      'PatientRegistered',
      {
        patientId: 'p-future',
        nationalId: 'N-F',
        givenName: 'Amina',
        familyName: 'Banda',
        birthDate: '2024-01-10',
        sex: 'female',
      },
      { hlc: '2028-12-05T10:00:00.000Z/000000' as SignedEvent['hlc'] },
    );
    const lot = f.event(dev, 'StockReceived', {
      lot: 'L1',
      antigen: 'BCG',
      quantity: 5,
      expiry: '2030-01-01',
    });
    const vaccination = f.event(
      dev,
      'VaccinationAdministered',
      { patientId: 'p-future', antigen: 'BCG', dose: 1, lot: 'L1', date: '2026-12-01' },
      { deps: [registration.id, lot.id] },
    );
    expect(vaccination.hlc < registration.hlc).toBe(true);
    for (const order of [
      [registration, lot, vaccination],
      [vaccination, lot, registration],
    ]) {
      const view = tentative(logState(order));
      expect(view.patient('p-future')?.immunizations).toHaveLength(1);
    }
  });

  it('is a deterministic order of any set, respecting every acyclic dependency', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 50 }), fc.array(fc.nat(30), { maxLength: 3 })), {
          minLength: 1,
          maxLength: 30,
        }),
        fc.nat(),
        (specs, shuffleSeed) => {
          const f = new EventFactory();
          const events: SignedEvent[] = [];
          for (const [wall, deps] of specs) {
            // Dependencies on earlier events only (as honest devices make them), any HLC.
            const depIds = deps.filter((d) => d < events.length).map((d) => events[d]!.id);
            const hlc =
              `2026-01-01T00:00:${String(wall % 60).padStart(2, '0')}.000Z/000000` as SignedEvent['hlc'];
            events.push(
              f.event(
                dev,
                'StockReceived',
                { lot: 'L', antigen: 'BCG', quantity: 1, expiry: '2030-01-01' },
                { hlc, deps: depIds },
              ),
            );
          }
          const shuffled = [...events].sort(
            (a, b) => ((a.seq * 2654435761 + shuffleSeed) % 97) - ((b.seq * 2654435761 + shuffleSeed) % 97),
          );
          const order = tentativeOrder(shuffled);
          expect(order.map((e) => e.id)).toEqual(tentativeOrder(events).map((e) => e.id));
          const at = new Map(order.map((e, i) => [e.id, i]));
          for (const e of order) for (const d of e.deps) expect(at.get(d)!).toBeLessThan(at.get(e.id)!);
        },
      ),
    );
  });

  it('breaks a dependency cycle (only a hostile device can make one) the same way for any input order', () => {
    const f = new EventFactory();
    const a = f.event(dev, 'StockReceived', { lot: 'A', antigen: 'BCG', quantity: 1, expiry: '2030-01-01' });
    const b = f.event(
      dev2,
      'StockReceived',
      { lot: 'B', antigen: 'BCG', quantity: 1, expiry: '2030-01-01' },
      { deps: [a.id] },
    );
    const cyclic = { ...a, deps: [b.id] } as SignedEvent;
    expect(tentativeOrder([cyclic, b]).map((e) => e.id)).toEqual(
      tentativeOrder([b, cyclic]).map((e) => e.id),
    );
    expect(tentativeOrder([cyclic, b])).toHaveLength(2);
  });
});
