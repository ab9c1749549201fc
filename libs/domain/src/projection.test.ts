import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EventId, SignedEvent } from '@accord/protocol';
import { EventNumbers } from './event-numbers.js';
import { Projection } from './projection.js';
import { EventFactory, arbFacility, buildFacility, testDeviceId } from './testing.js';

const dev = testDeviceId(1);
const other = testDeviceId(2);

function fold(events: readonly SignedEvent[]): Projection {
  const p = Projection.empty();
  for (const e of events) p.apply(e);
  return p;
}

const bytes = (p: Projection): string => JSON.stringify(p.toJSON());

function registration(
  f: EventFactory,
  patientId: string,
  extra: Partial<Record<string, string>> = {},
): SignedEvent {
  return f.event(dev, 'PatientRegistered', {
    patientId,
    nationalId: `N-${patientId}`,
    givenName: 'Amina',
    familyName: 'Banda',
    birthDate: '2024-01-10',
    sex: 'female',
    ...extra,
  });
}

describe('Projection: patients', () => {
  it('registers, updates field by field and records which event set each field', () => {
    const f = new EventFactory();
    const reg = registration(f, 'p1');
    const upd = f.event(dev, 'PatientDemographicsUpdated', {
      patientId: 'p1',
      changes: { familyName: 'Phiri' },
    });
    const p = fold([reg, upd]);
    expect(p.patient('p1')).toMatchObject({
      id: 'p1',
      givenName: 'Amina',
      familyName: 'Phiri',
      registeredBy: reg.id,
    });
    expect(p.fieldVersion({ kind: 'patient', id: 'p1' }, 'familyName')).toBe(upd.id);
    expect(p.fieldVersion({ kind: 'patient', id: 'p1' }, 'givenName')).toBe(reg.id);
    expect(p.fieldVersion({ kind: 'patient', id: 'p1' }, 'shoeSize')).toBeNull();
    expect(p.fieldVersion({ kind: 'patient', id: 'nobody' }, 'givenName')).toBeNull();
    expect(p.creatorOf({ kind: 'patient', id: 'p1' })).toBe(reg.id);
    expect(p.patientByNationalId('n-p1')).toBe('p1'); // natural key ignores case and dashes
  });

  it('finds a page of live patients by ids or by name terms, with how many matched', () => {
    const f = new EventFactory();
    const p = fold([
      registration(f, 'p1', { givenName: 'Amina', familyName: 'Kamau' }),
      registration(f, 'p2', { givenName: 'Baraka', familyName: 'Kamau' }),
      registration(f, 'p3', { givenName: 'Amina', familyName: 'Otieno', nationalId: 'NID-77' }),
      registration(f, 'p4', { givenName: 'Zawadi', familyName: 'Ouma' }),
      f.event(dev, 'PatientsMerged', { survivorId: 'p1', mergedId: 'p4' }),
    ]);
    const ids = (page: { patients: readonly { id: string }[] }) => page.patients.map((x) => x.id);
    expect(p.findPatients({})).toEqual({ total: 3, patients: p.patients() });
    // Terms are all required, in any order and case, over names, national id and id.
    expect(ids(p.findPatients({ text: 'kamau' }))).toEqual(['p1', 'p2']);
    expect(ids(p.findPatients({ text: '  KAM  amina ' }))).toEqual(['p1']);
    expect(ids(p.findPatients({ text: 'nid-77' }))).toEqual(['p3']);
    expect(p.findPatients({ text: 'nobody' })).toEqual({ total: 0, patients: [] });
    // A page: sorted by id, total counts every match.
    const page = p.findPatients({ offset: 1, limit: 1 });
    expect(page.total).toBe(3);
    expect(ids(page)).toEqual(['p2']);
    // By ids: unknown and merged-away ids name nobody; the survivor lists whom it absorbed.
    const byIds = p.findPatients({ ids: ['p4', 'p1', 'p1', 'ghost'] });
    expect(ids(byIds)).toEqual(['p1']);
    expect(byIds.patients[0]).toEqual(p.patient('p1'));
    expect(byIds.patients[0]!.mergedFrom).toEqual(['p4']);
  });

  it('moves the national id index when the national id changes', () => {
    const f = new EventFactory();
    const p = fold([
      registration(f, 'p1'),
      f.event(dev, 'PatientDemographicsUpdated', { patientId: 'p1', changes: { nationalId: 'NEW-1' } }),
    ]);
    expect(p.patientByNationalId('N-p1')).toBeUndefined();
    expect(p.patientByNationalId('NEW1')).toBe('p1');
  });

  it('keeps the first holder of a national id, also when two ids share a hash in its index', () => {
    // 'GH279218' and 'GH1311016' have the same 32-bit FNV-1a hash (the index files by hash).
    const f = new EventFactory();
    const events = [
      registration(f, 'p1', { nationalId: 'GH279218' }),
      registration(f, 'p2', { nationalId: 'GH1311016' }),
      registration(f, 'p3', { nationalId: 'gh-279218' }), // a duplicate of p1's: p1 keeps it
    ];
    const p = fold(events);
    expect(p.patientByNationalId('GH279218')).toBe('p1');
    expect(p.patientByNationalId('GH1311016')).toBe('p2');
    expect(p.patientByNationalId('GH-999')).toBeUndefined();
    // p1 moves away: its old id is free (p3 registered it second and holds nothing), its new one is p1's.
    const clone = p.clone();
    clone.apply(
      f.event(dev, 'PatientDemographicsUpdated', { patientId: 'p1', changes: { nationalId: 'GH1' } }),
    );
    expect(clone.patientByNationalId('GH279218')).toBeUndefined();
    expect(clone.patientByNationalId('GH1')).toBe('p1');
    expect(clone.patientByNationalId('GH1311016')).toBe('p2');
    // p2 takes p1's old id: the hash's list now holds p2 alone, under its new key.
    clone.apply(
      f.event(dev, 'PatientDemographicsUpdated', { patientId: 'p2', changes: { nationalId: 'GH279218' } }),
    );
    expect(clone.patientByNationalId('GH279218')).toBe('p2');
    expect(clone.patientByNationalId('GH1311016')).toBeUndefined();
    // The projection it was cloned from is untouched.
    expect(p.patientByNationalId('GH279218')).toBe('p1');
    expect(p.patientByNationalId('GH1311016')).toBe('p2');
  });

  it('merges: the loser redirects to the survivor, whose history includes the loser doses', () => {
    const f = new EventFactory();
    const lot = f.event(dev, 'StockReceived', {
      lot: 'L1',
      antigen: 'BCG',
      quantity: 5,
      expiry: '2025-01-01',
    });
    const vacc = f.event(dev, 'VaccinationAdministered', {
      patientId: 'p2',
      antigen: 'BCG',
      dose: 1,
      lot: 'L1',
      date: '2024-01-12',
    });
    const merge = f.event(dev, 'PatientsMerged', { survivorId: 'p1', mergedId: 'p2' });
    const late = f.event(other, 'PatientDemographicsUpdated', {
      patientId: 'p2',
      changes: { givenName: 'Grace' },
    });
    const p = fold([registration(f, 'p1'), registration(f, 'p2'), lot, vacc, merge, late]);
    expect(p.resolvePatient('p2')).toEqual({ id: 'p1', mergedInto: 'p1' });
    expect(p.resolvePatient('p1')).toEqual({ id: 'p1' });
    expect(p.resolvePatient('zz')).toBeUndefined();
    expect(p.patients().map((x) => x.id)).toEqual(['p1']);
    const survivor = p.patient('p2')!;
    expect(survivor.id).toBe('p1');
    expect(survivor.mergedFrom).toEqual(['p2']);
    expect(survivor.givenName).toBe('Grace'); // the late update of the loser redirected
    expect(survivor.immunizations).toEqual([
      { eventId: vacc.id, recordedFor: 'p2', antigen: 'BCG', dose: 1, lot: 'L1', date: '2024-01-12' },
    ]);
    expect(p.counters()).toMatchObject({
      'patients.active': 1,
      'patients.merged': 1,
      'patients.registered': 2,
    });
  });

  it('follows merge chains and refuses cycles', () => {
    const f = new EventFactory();
    const p = fold([
      registration(f, 'a'),
      registration(f, 'b'),
      registration(f, 'c'),
      f.event(dev, 'PatientsMerged', { survivorId: 'b', mergedId: 'a' }),
      f.event(dev, 'PatientsMerged', { survivorId: 'c', mergedId: 'b' }),
    ]);
    expect(p.resolvePatient('a')?.id).toBe('c');
    expect(p.patient('c')?.mergedFrom).toEqual(['a', 'b']);
    const cycle = f.event(dev, 'PatientsMerged', { survivorId: 'a', mergedId: 'c' });
    p.apply(cycle);
    expect(p.skipReason(cycle.id)).toBe('merge-cycle');
  });
});

describe('Projection: leniency', () => {
  it('records invalid, unknown and dangling events as skipped and never throws', () => {
    const f = new EventFactory();
    const bad = [
      f.event(dev, 'PatientRegistered', { patientId: 'p1' }),
      f.event(dev, 'Teleported', {}),
      f.event(
        dev,
        'StockReceived',
        { lot: 'L', antigen: 'BCG', quantity: 1, expiry: '2025-01-01' },
        { schema: 9 },
      ),
      f.event(dev, 'StockConsumed', { lot: 'nope', quantity: 1 }),
      f.event(dev, 'EncounterStarted', { encounterId: 'nope' }),
      f.event(dev, 'PatientCheckedIn', { patientId: 'ghost', encounterId: 'e' }),
      f.event(
        dev,
        'StockReceived',
        { lot: 'L', antigen: 'BCG', quantity: 1, expiry: '2025-01-01' },
        { subject: { kind: 'lot', id: 'M' } },
      ),
    ];
    const p = fold(bad);
    expect(bad.map((e) => p.skipReason(e.id))).toEqual([
      'invalid-data',
      'unknown-type',
      'unknown-version',
      'missing-lot',
      'missing-encounter',
      'missing-patient',
      'subject-mismatch',
    ]);
    expect(p.appliedCount).toBe(0);
    // A totally malformed object is also absorbed.
    for (const junk of [
      { id: 'x' },
      null,
      42,
      {
        id: 'y',
        type: 'StockConsumed',
        get data(): never {
          throw new Error('boom');
        },
      },
    ]) {
      expect(() => p.apply(junk as unknown as SignedEvent)).not.toThrow();
    }
    expect(p.appliedCount).toBe(0);
  });

  it('ignores system events and applies an event id only once', () => {
    const f = new EventFactory();
    const reg = registration(f, 'p1');
    const p = fold([reg, f.accept(reg), f.retry(dev, reg)]);
    const once = bytes(p);
    p.apply(reg);
    expect(bytes(p)).toBe(once);
    expect(p.appliedCount).toBe(1);
  });

  it('records a vaccination from a lot it never received without touching stock', () => {
    const f = new EventFactory();
    const p = fold([
      registration(f, 'p1'),
      f.event(dev, 'VaccinationAdministered', {
        patientId: 'p1',
        antigen: 'BCG',
        dose: 1,
        lot: 'X',
        date: '2024-01-10',
      }),
    ]);
    expect(p.patient('p1')!.immunizations).toHaveLength(1);
    expect(p.stock().lots).toEqual([]);
  });
});

describe('Projection: stock', () => {
  it('keeps a balance per lot and per antigen', () => {
    const f = new EventFactory();
    const p = fold([
      registration(f, 'p1'),
      f.event(dev, 'StockReceived', { lot: 'L1', antigen: 'BCG', quantity: 10, expiry: '2025-01-01' }),
      f.event(dev, 'StockReceived', { lot: 'L1', antigen: 'BCG', quantity: 5, expiry: '2025-01-01' }),
      f.event(dev, 'StockReceived', { lot: 'L2', antigen: 'OPV', quantity: 20, expiry: '2025-02-01' }),
      f.event(dev, 'StockAdjusted', { lot: 'L1', delta: -2, reason: 'broken' }),
      f.event(dev, 'StockConsumed', { lot: 'L2', quantity: 4 }),
      f.event(dev, 'VaccinationAdministered', {
        patientId: 'p1',
        antigen: 'BCG',
        dose: 1,
        lot: 'L1',
        date: '2024-01-10',
      }),
    ]);
    const stock = p.stock();
    expect(
      stock.lots.map((l) => [l.lot, l.received, l.adjusted, l.consumed, l.administered, l.balance]),
    ).toEqual([
      ['L1', 15, -2, 0, 1, 12],
      ['L2', 20, 0, 4, 0, 16],
    ]);
    expect(stock.byAntigen).toEqual({ BCG: 12, OPV: 16 });
    expect(p.counters()).toMatchObject({
      'stock.doses': 28,
      'stock.BCG': 12,
      'stock.OPV': 16,
      'stock.lots': 2,
    });
  });

  it('skips a receipt that contradicts the lot', () => {
    const f = new EventFactory();
    const bad = f.event(dev, 'StockReceived', {
      lot: 'L1',
      antigen: 'OPV',
      quantity: 5,
      expiry: '2025-01-01',
    });
    const p = fold([
      f.event(dev, 'StockReceived', { lot: 'L1', antigen: 'BCG', quantity: 10, expiry: '2025-01-01' }),
      bad,
    ]);
    expect(p.skipReason(bad.id)).toBe('lot-mismatch');
    expect(p.lot('L1')?.balance).toBe(10);
  });
});

describe('Projection: encounter queue', () => {
  it('moves encounters through waiting, in progress and done, by the UTC day of the check-in HLC', () => {
    const f = new EventFactory({ startMs: Date.UTC(2024, 5, 1, 23, 59, 0) });
    const events = [
      registration(f, 'p1'),
      registration(f, 'p2'),
      registration(f, 'p3'),
      f.event(dev, 'PatientCheckedIn', { patientId: 'p1', encounterId: 'e1' }), // 23:59:04 on 06-01
      f.event(dev, 'EncounterStarted', { encounterId: 'e1' }),
      f.event(dev, 'EncounterCompleted', { encounterId: 'e1' }),
    ];
    f.tick(60_000); // past midnight
    events.push(
      f.event(dev, 'PatientCheckedIn', { patientId: 'p2', encounterId: 'e2' }),
      f.event(dev, 'PatientCheckedIn', { patientId: 'p3', encounterId: 'e3' }),
      f.event(dev, 'EncounterStarted', { encounterId: 'e3' }),
      f.event(dev, 'PatientCheckedIn', { patientId: 'p1', encounterId: 'e4' }),
      f.event(dev, 'EncounterCancelled', { encounterId: 'e4', reason: 'left' }),
    );
    const p = fold(events);
    const day1 = p.queue('2024-06-01');
    expect(day1.done.map((e) => e.encounterId)).toEqual(['e1']);
    expect(day1.done[0]!.day).toBe('2024-06-01');
    expect(day1.waiting.map((e) => e.encounterId)).toEqual(['e2']); // open encounters show whatever the day
    expect(day1.inProgress.map((e) => e.encounterId)).toEqual(['e3']);
    expect(day1.cancelled).toEqual([]);
    const day2 = p.queue('2024-06-02');
    expect(day2.done).toEqual([]);
    expect(day2.cancelled).toMatchObject([{ encounterId: 'e4', reason: 'left', patientId: 'p1' }]);
    expect(p.openEncountersOf('p3')).toEqual(['e3']);
    expect(p.openEncountersOf('p1')).toEqual([]);
    expect(p.counters()).toMatchObject({
      'encounters.waiting': 1,
      'encounters.inProgress': 1,
      'encounters.completed': 1,
      'encounters.cancelled': 1,
    });
  });

  it('skips impossible transitions', () => {
    const f = new EventFactory();
    const completeWaiting = f.event(dev, 'EncounterCompleted', { encounterId: 'e1' });
    const p = fold([
      registration(f, 'p1'),
      f.event(dev, 'PatientCheckedIn', { patientId: 'p1', encounterId: 'e1' }),
      completeWaiting,
    ]);
    expect(p.skipReason(completeWaiting.id)).toBe('invalid-transition');
    expect(p.encounter('e1')?.state).toBe('waiting');
  });

  it('moves a merged patient’s open encounter to the survivor', () => {
    const f = new EventFactory();
    const p = fold([
      registration(f, 'p1'),
      registration(f, 'p2'),
      f.event(dev, 'PatientCheckedIn', { patientId: 'p2', encounterId: 'e1' }),
      f.event(dev, 'PatientsMerged', { survivorId: 'p1', mergedId: 'p2' }),
    ]);
    expect(p.openEncountersOf('p1')).toEqual(['e1']);
    expect(p.queue('2024-06-01').waiting[0]?.patientId).toBe('p1');
    p.apply(f.event(dev, 'EncounterCancelled', { encounterId: 'e1' }));
    expect(p.openEncountersOf('p1')).toEqual([]);
  });
});

describe('Projection: appointments', () => {
  it('splits appointments into upcoming, missed, cancelled and fulfilled relative to today', () => {
    const f = new EventFactory();
    const appt = (id: string, date: string, antigen = 'OPV', dose = 1): SignedEvent =>
      f.event(dev, 'AppointmentScheduled', { appointmentId: id, patientId: 'p1', antigen, dose, date });
    const p = fold([
      registration(f, 'p1'),
      appt('a1', '2024-06-01'),
      appt('a2', '2024-05-31'),
      appt('a3', '2024-06-10'),
      appt('a4', '2024-05-01', 'BCG'),
      f.event(dev, 'AppointmentCancelled', { appointmentId: 'a3', reason: 'moved' }),
      f.event(dev, 'StockReceived', { lot: 'L1', antigen: 'BCG', quantity: 1, expiry: '2025-01-01' }),
      f.event(dev, 'VaccinationAdministered', {
        patientId: 'p1',
        antigen: 'BCG',
        dose: 1,
        lot: 'L1',
        date: '2024-05-02',
      }),
    ]);
    const v = p.appointments('2024-06-01');
    expect(v.upcoming.map((a) => a.appointmentId)).toEqual(['a1']);
    expect(v.missed.map((a) => a.appointmentId)).toEqual(['a2']);
    expect(v.cancelled).toMatchObject([{ appointmentId: 'a3', reason: 'moved', status: 'cancelled' }]);
    expect(v.fulfilled.map((a) => a.appointmentId)).toEqual(['a4']);
    expect(p.counters()).toMatchObject({
      'appointments.total': 4,
      'appointments.scheduled': 2,
      'appointments.cancelled': 1,
      'appointments.fulfilled': 1,
    });
  });
});

describe('Projection: clone', () => {
  it('is independent of its origin in both directions', () => {
    const f = new EventFactory();
    const base = fold([
      registration(f, 'p1'),
      f.event(dev, 'StockReceived', { lot: 'L1', antigen: 'BCG', quantity: 3, expiry: '2025-01-01' }),
    ]);
    const before = bytes(base);
    const copy = base.clone();
    const e1 = f.event(dev, 'StockConsumed', { lot: 'L1', quantity: 1 });
    copy.apply(e1);
    copy.apply(registration(f, 'p2'));
    expect(bytes(base)).toBe(before);
    expect(base.hasEvent(e1.id)).toBe(false);
    expect(copy.hasEvent(e1.id)).toBe(true);
    const copyBytes = bytes(copy);
    base.apply(f.event(dev, 'StockAdjusted', { lot: 'L1', delta: 7, reason: 'count' }));
    expect(bytes(copy)).toBe(copyBytes);
    expect(base.lot('L1')?.balance).toBe(10);
    expect(copy.lot('L1')?.balance).toBe(2);
  });

  it('a chain of clones and applies equals one straight fold', () => {
    fc.assert(
      fc.property(arbFacility({ maxOps: 40 }), fc.array(fc.nat(), { maxLength: 8 }), ({ events }, cuts) => {
        // Fold with a clone at every cut: applies continue on clones and originals alike.
        let p = Projection.empty();
        const keep: Projection[] = [];
        const cutSet = new Set(cuts.map((c) => c % (events.length + 1)));
        events.forEach((e, i) => {
          if (cutSet.has(i)) {
            keep.push(p);
            p = p.clone();
          }
          p.apply(e);
        });
        expect(bytes(p)).toBe(bytes(fold(events)));
        // Originals kept their prefix state.
        for (const k of keep) expect(k.appliedCount).toBeLessThanOrEqual(p.appliedCount);
      }),
      { numRuns: 50 },
    );
  });
});

/** A projection that reads its events back from a copy of `events` by id, counting the reads. */
function loading(
  events: readonly SignedEvent[],
  numbers?: EventNumbers,
): { p: Projection; reads: () => number } {
  const stored = new Map(events.map((e) => [e.id, JSON.stringify(e)]));
  let reads = 0;
  const load = (id: EventId): SignedEvent => {
    reads++;
    const json = stored.get(id);
    if (json === undefined) throw Object.assign(new Error(`no event ${id}`), { code: 'STORAGE_CORRUPT' });
    return JSON.parse(json) as SignedEvent;
  };
  const p = Projection.empty(numbers === undefined ? { load } : { load, numbers });
  return { p, reads: () => reads };
}

describe('Projection: with load (records read back)', () => {
  it.each([
    ['ids', false],
    ['numbers (applied set and registrations)', true],
  ])('answers every view and lookup as a resident projection does, through clones (by %s)', (_, numbered) => {
    fc.assert(
      fc.property(arbFacility({ maxOps: 60 }), fc.nat(), ({ events }, cut) => {
        const resident = fold(events);
        const { p: base } = loading(events, numbered ? new EventNumbers() : undefined);
        const at = cut % (events.length + 1);
        for (const e of events.slice(0, at)) base.apply(e);
        const p = base.clone(); // a tentative view: a clone that goes on folding, reading back too
        for (const e of events.slice(at)) p.apply(e);
        expect(bytes(p)).toBe(bytes(resident));
        expect(p.appliedCount).toBe(resident.appliedCount);
        expect(events.filter((e) => p.hasEvent(e.id))).toEqual(events.filter((e) => resident.hasEvent(e.id)));
        expect(base.appliedCount).toBeLessThanOrEqual(p.appliedCount);
        expect(p.patients()).toEqual(resident.patients());
        // A search reads names back; a page by ids reads only its own patients.
        const some = resident.patients().filter((_, i) => i % 2 === 0);
        for (const query of [
          { text: some[0]?.familyName ?? 'x' },
          { text: some[0]?.nationalId.slice(-3) ?? 'x', limit: 2 },
          { ids: some.map((v) => v.id), offset: 1 },
        ])
          expect(p.findPatients(query)).toEqual(resident.findPatients(query));
        for (const view of resident.patients()) {
          expect(p.patientRecord(view.id)).toEqual(resident.patientRecord(view.id));
          expect(p.patientByNationalId(view.nationalId)).toBe(resident.patientByNationalId(view.nationalId));
          expect(p.patientField(view.id, 'birthDate')).toBe(view.birthDate);
        }
      }),
      { numRuns: 40 },
    );
  });

  it('holds a registration-only patient as its id: reads it back only when a field is asked for', () => {
    const f = new EventFactory();
    const regs = [registration(f, 'p1'), registration(f, 'p2')];
    const upd = f.event(dev, 'PatientDemographicsUpdated', {
      patientId: 'p2',
      changes: { givenName: 'Grace' },
    });
    const { p, reads } = loading([...regs, upd]);
    for (const e of regs) p.apply(e);
    // Counters, merges and creators need no field: nothing is read.
    expect(p.counters()['patients.registered']).toBe(2);
    expect(p.creatorOf({ kind: 'patient', id: 'p1' })).toBe(regs[0]!.id);
    expect(p.resolvePatient('p1')).toEqual({ id: 'p1' });
    expect(reads()).toBe(0);
    expect(p.patient('p1')?.nationalId).toBe('N-p1');
    expect(reads()).toBe(1);
    // An update makes the record resident (it is no longer what the registration says).
    p.apply(upd);
    const after = reads();
    expect(p.patient('p2')?.givenName).toBe('Grace');
    expect(reads()).toBe(after);
  });

  it('throws what load throws, from apply and from views, instead of skipping the event', () => {
    const f = new EventFactory();
    const reg = registration(f, 'p1');
    const upd = f.event(dev, 'PatientDemographicsUpdated', { patientId: 'p1', changes: { sex: 'male' } });
    const { p } = loading([upd]); // the registration is not in the store (damaged)
    p.apply(reg);
    expect(() => p.patients()).toThrow(expect.objectContaining({ code: 'STORAGE_CORRUPT' }));
    expect(() => p.apply(upd)).toThrow(expect.objectContaining({ code: 'STORAGE_CORRUPT' }));
    expect(p.skipReason(upd.id)).toBeUndefined();
    expect(p.hasEvent(upd.id)).toBe(false);
  });
});

describe('Projection: properties', () => {
  it('is deterministic: the same events give byte-identical JSON (fresh objects too)', () => {
    fc.assert(
      fc.property(arbFacility(), ({ events }) => {
        const copy = JSON.parse(JSON.stringify(events)) as SignedEvent[];
        const a = fold(events);
        expect(bytes(a)).toBe(bytes(fold(copy)));
        expect(JSON.stringify(a.counters())).toBe(JSON.stringify(fold(copy).counters()));
        expect(a.appliedCount).toBe(events.length); // generated facilities are valid
      }),
      { numRuns: 60 },
    );
  });

  it('field-disjoint concurrent updates commute', () => {
    const fields = {
      givenName: fc.constantFrom('Grace', 'John', 'Yamikani'),
      familyName: fc.constantFrom('Tembo', 'Mwale'),
      birthDate: fc.constantFrom('2023-01-01', '2022-12-31'),
      sex: fc.constantFrom('male', 'female', 'other', 'unknown'),
      nationalId: fc.constantFrom('X-1', 'Y-2'),
    };
    const arbChanges = fc.record(fields, { requiredKeys: [] }).filter((c) => Object.keys(c).length > 0);
    fc.assert(
      fc.property(arbChanges, arbChanges, (c1, c2) => {
        // Make the two change sets disjoint: drop from c2 what c1 changes.
        const d2 = Object.fromEntries(Object.entries(c2).filter(([k]) => !(k in c1)));
        fc.pre(Object.keys(d2).length > 0);
        const f = new EventFactory();
        const reg = registration(f, 'p1');
        const u1 = f.event(dev, 'PatientDemographicsUpdated', { patientId: 'p1', changes: c1 });
        const u2 = f.event(other, 'PatientDemographicsUpdated', { patientId: 'p1', changes: d2 });
        const ab = fold([reg, u1, u2]);
        const ba = fold([reg, u2, u1]);
        expect(bytes(ab)).toBe(bytes(ba));
        expect(ab.patient('p1')).toMatchObject({ ...c1, ...d2 });
      }),
    );
  });

  it('generated facilities fold without skips and keep stock non-negative', () => {
    fc.assert(
      fc.property(arbFacility({ maxOps: 60 }), ({ events }) => {
        const p = fold(events);
        expect(p.appliedCount).toBe(events.length);
        for (const l of p.stock().lots) expect(l.balance).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: 60 },
    );
  });
});

describe('buildFacility', () => {
  it('is deterministic and makes causally ordered events (deps precede)', () => {
    const ops = fc.sample(
      fc.array(
        fc.record({
          kind: fc.constantFrom(
            'register',
            'vaccinate',
            'receive',
            'update',
            'checkIn',
            'advance',
            'merge' as const,
          ),
          device: fc.nat(2),
          a: fc.nat(99),
          b: fc.nat(99),
          c: fc.nat(99),
        }),
        { minLength: 50, maxLength: 50 },
      ),
      { seed: 7, numRuns: 1 },
    )[0]!;
    const a = buildFacility(ops);
    const b = buildFacility(ops);
    expect(JSON.stringify(a.events)).toBe(JSON.stringify(b.events));
    const seen = new Set<string>();
    for (const e of a.events) {
      for (const d of e.deps) expect(seen.has(d)).toBe(true);
      seen.add(e.id);
    }
  });
});
