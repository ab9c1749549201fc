import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { SignedEvent } from '@accord/protocol';
import { forEachVerdictIn } from '@accord/protocol';
import { ConfirmedFold } from './confirmed-fold.js';
import { Projection } from './projection.js';
import { confirmed } from './status.js';
import { EventFactory, arbFacility, logState, testDeviceId } from './testing.js';

const dev = testDeviceId(1);

const reg = (f: EventFactory, patientId: string, givenName = 'Amina'): SignedEvent =>
  f.event(dev, 'PatientRegistered', {
    patientId,
    nationalId: `N-${patientId}`,
    givenName,
    familyName: 'Banda',
    birthDate: '2024-01-10',
    sex: 'female',
  });
const rename = (f: EventFactory, patientId: string, givenName: string): SignedEvent =>
  f.event(dev, 'PatientDemographicsUpdated', { patientId, changes: { givenName } });

const bytes = (p: Projection): string => JSON.stringify(p.toJSON());

/** The definition: accepted events applied to an empty projection in (seq, id) order. */
function reference(accepted: readonly { event: SignedEvent; seq: number }[]): Projection {
  const p = Projection.empty();
  const sorted = [...accepted].sort(
    (a, b) => a.seq - b.seq || (a.event.id < b.event.id ? -1 : a.event.id > b.event.id ? 1 : 0),
  );
  for (const { event } of sorted) p.apply(event);
  return p;
}

function recording(): { fold: ConfirmedFold; folded: [string, number][]; refolded: () => number } {
  const folded: [string, number][] = [];
  let refolds = 0;
  const fold = new ConfirmedFold({
    onFold: (event, seq) => folded.push([event.id, seq]),
    onRefold: () => refolds++,
  });
  return { fold, folded, refolded: () => refolds };
}

describe('ConfirmedFold', () => {
  it('folds acceptances arriving in seq order on top, in place, reporting each one', () => {
    const f = new EventFactory();
    const [a, b, c] = [reg(f, 'a'), reg(f, 'b'), reg(f, 'c')];
    const { fold, folded, refolded } = recording();
    const p = fold.projection();
    fold.set(a, 1);
    expect(fold.projection()).toBe(p);
    expect(p.hasEvent(a.id)).toBe(true);
    // Two at once, handed over out of order: still above everything folded, so no refold.
    fold.set(c, 3);
    fold.set(b, 2);
    expect(fold.projection()).toBe(p);
    expect(folded).toEqual([
      [a.id, 1],
      [b.id, 2],
      [c.id, 3],
    ]);
    expect(refolded()).toBe(0);
    expect(fold.refolds).toBe(0);
    expect(fold.lastSeq).toBe(3);
    expect(fold.size).toBe(3);
  });

  it('refolds from scratch when an acceptance arrives below the folded seq', () => {
    const f = new EventFactory();
    const r = reg(f, 'p1');
    const u1 = rename(f, 'p1', 'Grace');
    const u2 = rename(f, 'p1', 'Tiyamike');
    const { fold, folded, refolded } = recording();
    fold.set(r, 1);
    fold.set(u2, 3);
    const before = fold.projection();
    expect(before.patient('p1')?.givenName).toBe('Tiyamike');
    // u1 was accepted at seq 2, between the two: its rename comes before u2's.
    fold.set(u1, 2);
    const after = fold.projection();
    expect(after).not.toBe(before);
    // Appended in arrival order, Grace would win; in seq order Tiyamike's rename comes last.
    expect(after.patient('p1')?.givenName).toBe('Tiyamike');
    expect(bytes(after)).toBe(
      bytes(
        reference([
          { event: r, seq: 1 },
          { event: u1, seq: 2 },
          { event: u2, seq: 3 },
        ]),
      ),
    );
    expect(refolded()).toBe(1);
    // The refold reports once, not per event.
    expect(folded.map(([id]) => id)).toEqual([r.id, u2.id]);
    expect(fold.lastSeq).toBe(3);
  });

  it('ignores duplicates and repeated acceptances at the same seq', () => {
    const f = new EventFactory();
    const [a, b] = [reg(f, 'a'), reg(f, 'b')];
    const { fold, folded } = recording();
    fold.set(a, 1);
    fold.set(a, 1);
    fold.projection();
    fold.set(a, 1);
    fold.set(b, 2);
    fold.set(a, 1);
    const p = fold.projection();
    expect(folded).toEqual([
      [a.id, 1],
      [b.id, 2],
    ]);
    expect(fold.refolds).toBe(0);
    expect(p.appliedCount).toBe(2);
    expect(fold.size).toBe(2);
  });

  it('takes the last word for an event not yet folded, without refolding', () => {
    const f = new EventFactory();
    const [a, b] = [reg(f, 'a'), reg(f, 'b')];
    const fold = new ConfirmedFold();
    fold.set(a, 5);
    fold.set(a, 1); // moved before it was folded
    fold.set(b, 2);
    fold.set(b, undefined); // withdrawn before it was folded
    const p = fold.projection();
    expect(p.hasEvent(a.id)).toBe(true);
    expect(p.hasEvent(b.id)).toBe(false);
    expect(fold.lastSeq).toBe(1);
    expect(fold.refolds).toBe(0);
  });

  it('refolds without an event whose acceptance is withdrawn, and at its new place when its seq moves', () => {
    const f = new EventFactory();
    const r = reg(f, 'p1');
    const u = rename(f, 'p1', 'Grace');
    const other = reg(f, 'p2');
    const fold = new ConfirmedFold();
    fold.set(r, 1);
    fold.set(u, 2);
    fold.set(other, 3);
    expect(fold.projection().patient('p1')?.givenName).toBe('Grace');
    fold.set(u, undefined);
    expect(fold.projection().patient('p1')?.givenName).toBe('Amina');
    expect(fold.projection().hasEvent(u.id)).toBe(false);
    expect(fold.projection().hasEvent(other.id)).toBe(true);
    expect(fold.refolds).toBe(1);
    // Accepted again, now before the registration: the rename finds no patient and is skipped.
    fold.set(u, 1);
    fold.set(r, 4);
    const p = fold.projection();
    expect(p.skipReason(u.id)).toBe('missing-patient');
    expect(p.patient('p1')?.givenName).toBe('Amina');
    expect(bytes(p)).toBe(
      bytes(
        reference([
          { event: u, seq: 1 },
          { event: other, seq: 3 },
          { event: r, seq: 4 },
        ]),
      ),
    );
    // Withdrawing the only folded event leaves an empty projection, not a stale one.
    const lone = new ConfirmedFold();
    lone.set(r, 1);
    expect(lone.projection().patient('p1')).toBeDefined();
    lone.set(r, undefined);
    expect(lone.projection().patient('p1')).toBeUndefined();
    expect(lone.size).toBe(0);
    expect(lone.lastSeq).toBe(0);
  });

  it('ignores system events: they never change the projection', () => {
    const f = new EventFactory();
    const a = reg(f, 'a');
    const retry = f.retry(dev, a);
    const verdict = f.accept(a, 1);
    const fold = new ConfirmedFold();
    fold.set(a, 2);
    fold.projection();
    fold.set(retry, 1);
    fold.set(verdict, 1);
    expect(fold.projection().appliedCount).toBe(1);
    expect(fold.size).toBe(1);
    expect(fold.refolds).toBe(0);
  });

  it('folds batched and single verdicts read by the one verdict reader, like confirmed()', () => {
    const f = new EventFactory();
    const r = reg(f, 'p1');
    const u1 = rename(f, 'p1', 'Grace');
    const u2 = rename(f, 'p1', 'Tiyamike');
    const c = reg(f, 'p2');
    const batch = f.acceptAll([r, u1], 1); // seq 1, 2
    const single = f.accept(u2, 3);
    const late = f.acceptAll([c], 4);
    const byId = new Map([r, u1, u2, c].map((e) => [e.id, e]));
    const feed = (fold: ConfirmedFold, verdict: SignedEvent): void => {
      forEachVerdictIn(verdict, (v) => {
        fold.set(byId.get(v.target)!, v.outcome === 'accepted' ? v.seq : undefined);
      });
    };
    const expected = bytes(confirmed(logState([r, u1, u2, c, batch, single, late])));
    for (const order of [
      [batch, single, late],
      [late, single, batch],
      [single, batch, late],
    ]) {
      const fold = new ConfirmedFold();
      for (const v of order) {
        feed(fold, v);
        fold.projection();
      }
      expect(bytes(fold.projection())).toBe(expected);
      expect(fold.lastSeq).toBe(4);
    }
  });

  it('any arrival order, with repeats, withdrawals and queries in between, gives the seq-order fold', () => {
    // Each step hands one event's standing to the fold; the last word per event is what counts.
    const arbCase = arbFacility({ maxOps: 25 }).chain(({ events }) => {
      const n = Math.max(1, events.length);
      const step = fc.record({
        index: fc.nat({ max: n - 1 }),
        // Seqs from a small range: ties (equal seqs) and moves happen too.
        seq: fc.option(fc.integer({ min: 1, max: 2 * n }), { freq: 6 }),
        query: fc.boolean(),
      });
      return fc.record({
        events: fc.constant(events),
        steps: fc.array(step, { maxLength: 3 * n }),
        order: fc.shuffledSubarray(
          events.map((_, i) => i),
          { minLength: events.length },
        ),
        arrival: fc.array(fc.nat(), { minLength: n, maxLength: n }),
        queries: fc.array(fc.boolean(), { minLength: 1, maxLength: n }),
        early: fc.array(fc.boolean(), { minLength: 1, maxLength: n }),
      });
    });
    fc.assert(
      fc.property(arbCase, ({ events, steps, order, arrival, queries, early }) => {
        if (events.length === 0) return;
        const fold = new ConfirmedFold();
        const last = new Map<number, number | undefined>();
        // Every event accepted once, at seq = its place in the relay's order (`order`), the
        // acceptances arriving in another random order (`arrival`), with queries in between…
        const seqOf = new Map(order.map((index, position) => [index, position + 1]));
        const arriving = order
          .map((index, i) => ({ index, key: arrival[i]! }))
          .sort((a, b) => a.key - b.key)
          .map((a) => a.index);
        arriving.forEach((index, i) => {
          const seq = seqOf.get(index)!;
          fold.set(events[index]!, seq);
          last.set(index, seq);
          if (queries[i % queries.length]) fold.projection();
          // …and the gapless run folded early now and then (as a log opening does)…
          else if (early[i % early.length]) fold.foldContiguous();
        });
        // …then revised at random (withdrawn, moved, repeated), with queries in between.
        steps.forEach(({ index, seq, query }, i) => {
          fold.set(events[index]!, seq ?? undefined);
          last.set(index, seq ?? undefined);
          if (query) fold.projection();
          else if (early[i % early.length]) fold.foldContiguous();
        });
        const accepted = [...last].flatMap(([index, seq]) =>
          seq === undefined ? [] : [{ event: events[index]!, seq }],
        );
        expect(bytes(fold.projection())).toBe(bytes(reference(accepted)));
        expect(fold.size).toBe(accepted.length);
        expect(fold.lastSeq).toBe(Math.max(0, ...accepted.map((a) => a.seq)));
      }),
      { numRuns: fc.readConfigureGlobal().numRuns ?? 100 },
    );
  });

  it('folds the gapless run after the last folded seq early, in place, and leaves the rest waiting', () => {
    const f = new EventFactory();
    const [a, b, c, d, e, x, y] = ['a', 'b', 'c', 'd', 'e', 'x', 'y'].map((id) => reg(f, id)) as [
      SignedEvent,
      SignedEvent,
      SignedEvent,
      SignedEvent,
      SignedEvent,
      SignedEvent,
      SignedEvent,
    ];
    const { fold, folded, refolded } = recording();
    const p = fold.projection();
    fold.set(d, 4);
    fold.set(b, 2);
    fold.set(a, 1);
    fold.set(e, 5);
    fold.foldContiguous();
    expect(folded).toEqual([
      [a.id, 1],
      [b.id, 2],
    ]);
    expect(fold.waiting).toBe(2); // d and e wait for c
    fold.set(c, 3);
    fold.foldContiguous();
    expect(folded.map(([, seq]) => seq)).toEqual([1, 2, 3, 4, 5]);
    expect(fold.waiting).toBe(0);
    // A seq given twice is not folded early: the next query folds both, in (seq, id) order.
    fold.set(y, 6);
    fold.set(x, 6);
    fold.foldContiguous();
    expect(fold.waiting).toBe(2);
    expect(fold.projection()).toBe(p); // still in place: nothing was folded out of order
    expect(refolded()).toBe(0);
    expect(bytes(p)).toBe(
      bytes(reference([a, b, c, d, e, x, y].map((event, i) => ({ event, seq: Math.min(i + 1, 6) })))),
    );
  });

  it('acceptances in seq order never refold, whatever is queried when', () => {
    fc.assert(
      fc.property(
        arbFacility({ maxOps: 25 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 80 }),
        ({ events }, queries) => {
          const fold = new ConfirmedFold();
          events.forEach((e, i) => {
            fold.set(e, i + 1);
            if (queries[i % queries.length]) fold.projection();
          });
          expect(bytes(fold.projection())).toBe(
            bytes(reference(events.map((event, i) => ({ event, seq: i + 1 })))),
          );
          expect(fold.refolds).toBe(0);
        },
      ),
      { numRuns: fc.readConfigureGlobal().numRuns ?? 100 },
    );
  });
});
