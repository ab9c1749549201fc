import { describe, expect, it } from 'vitest';
import type { EventId, SignedEvent } from '@accord/protocol';
import { Projection, dateStartMs } from '@accord/domain';
import { EventFactory, FACILITY_NOW_MS, testDeviceId } from '@accord/domain/testing';
import {
  FUTURE_DATE_ALLOWANCE_MS,
  RULES,
  RULE_ALREADY_EXISTS,
  RULE_ALREADY_IN_QUEUE,
  RULE_BEFORE_BIRTH,
  RULE_DEPENDENCY_MISSING,
  RULE_DOSE_OUT_OF_SEQUENCE,
  RULE_DOSE_TOO_EARLY,
  RULE_DUPLICATE_NATIONAL_ID,
  RULE_INVALID_TRANSITION,
  RULE_IN_FUTURE,
  RULE_LOT_ANTIGEN_MISMATCH,
  RULE_LOT_EXPIRED,
  RULE_LOT_EXPIRY_MISMATCH,
  RULE_MERGED,
  RULE_NEGATIVE_STOCK,
  RULE_NOT_FOUND,
  RULE_SCHEMA,
  RULE_STALE_BASIS,
  RULE_SUBJECT_MISMATCH,
  RULE_UNKNOWN_ANTIGEN,
  RULE_UNKNOWN_TYPE,
  RULE_UNKNOWN_VERSION,
} from './rule-ids.js';
import { RULE_SET_VERSION, localWarnings, validate } from './validate.js';
import type { RuleVerdict } from './validate.js';

const dev = testDeviceId(1);
const dev2 = testDeviceId(2);
const ctx = { nowMs: FACILITY_NOW_MS }; // 2024-06-01T12:00Z

/** A confirmed state with patient p1 (born 2024-01-10), p2 and stock, built by accepting each event. */
function setup() {
  const f = new EventFactory();
  const state = Projection.empty();
  const commit = (e: SignedEvent): SignedEvent => {
    const v = validate(state, e, ctx);
    if (v.outcome !== 'accepted') throw new Error(`setup event rejected: ${v.reason}`);
    state.apply(e);
    return e;
  };
  const record = (type: string, data: unknown, device = dev): SignedEvent =>
    f.record(state, device, type, data);
  const register = (patientId: string, birthDate = '2024-01-10'): SignedEvent =>
    commit(
      record('PatientRegistered', {
        patientId,
        nationalId: `NID-${patientId}`,
        givenName: 'Amina',
        familyName: 'Banda',
        birthDate,
        sex: 'female',
      }),
    );
  const receive = (lot: string, antigen: string, quantity: number, expiry = '2024-12-31'): SignedEvent =>
    commit(record('StockReceived', { lot, antigen, quantity, expiry }));
  const vaccinate = (
    patientId: string,
    antigen: string,
    dose: number,
    lot: string,
    date: string,
  ): SignedEvent => record('VaccinationAdministered', { patientId, antigen, dose, lot, date });
  return { f, state, commit, record, register, receive, vaccinate };
}

function rejected(v: RuleVerdict): Extract<RuleVerdict, { outcome: 'deadletter' }> {
  if (v.outcome !== 'deadletter') throw new Error('expected a deadletter verdict, got accepted');
  expect(v.ruleSet).toBe(RULE_SET_VERSION);
  expect(v.code).toBe(RULES[v.rule]);
  expect(v.reason).toMatch(/[.]$/);
  return v;
}

describe('validate: accepted', () => {
  it('accepts a valid event and records the rule-set version', () => {
    const { state, record } = setup();
    const v = validate(
      state,
      record('PatientRegistered', {
        patientId: 'p9',
        nationalId: 'X',
        givenName: 'A',
        familyName: 'B',
        birthDate: '2020-02-29',
        sex: 'other',
      }),
      ctx,
    );
    expect(v).toEqual({ outcome: 'accepted', ruleSet: 'accord-rules/1' });
  });
});

describe('validate: 500', () => {
  it('unknown type', () => {
    const { state, f } = setup();
    const v = rejected(validate(state, f.event(dev, 'PatientTeleported', { patientId: 'p1' }), ctx));
    expect(v).toMatchObject({ code: 500, rule: RULE_UNKNOWN_TYPE, details: { type: 'PatientTeleported' } });
  });

  it('wrong schema version', () => {
    const { state, f } = setup();
    const e = f.event(
      dev,
      'StockReceived',
      { lot: 'L', antigen: 'BCG', quantity: 1, expiry: '2025-01-01' },
      { schema: 2, subject: { kind: 'lot', id: 'L' } },
    );
    const v = rejected(validate(state, e, ctx));
    expect(v).toMatchObject({
      code: 500,
      rule: RULE_UNKNOWN_VERSION,
      details: { schema: 2, supported: [1] },
    });
    expect(v.reason).toContain('2');
  });

  it('invalid data lists the schema issues', () => {
    const { state, f } = setup();
    const v = rejected(
      validate(
        state,
        f.event(
          dev,
          'StockReceived',
          { lot: 'L', antigen: 'BCG', quantity: -5, expiry: '2025-02-30' },
          { subject: { kind: 'lot', id: 'L' } },
        ),
        ctx,
      ),
    );
    expect(v.code).toBe(500);
    expect(v.rule).toBe(RULE_SCHEMA);
    expect((v.details['issues'] as { path: string }[]).map((i) => i.path).sort()).toEqual([
      'expiry',
      'quantity',
    ]);
  });

  it('subject not equal to the subject derived from the data', () => {
    const { state, f } = setup();
    const e = f.event(
      dev,
      'StockConsumed',
      { lot: 'L1', quantity: 1 },
      { subject: { kind: 'lot', id: 'L2' } },
    );
    const v = rejected(validate(state, e, ctx));
    expect(v).toMatchObject({
      code: 500,
      rule: RULE_SUBJECT_MISMATCH,
      details: { expected: { kind: 'lot', id: 'L1' }, actual: { kind: 'lot', id: 'L2' } },
    });
  });

  it('verdicts cannot be submitted; retries and discards are checked for shape', () => {
    const { state, f, register } = setup();
    const p = register('p1');
    expect(rejected(validate(state, f.accept(p), ctx)).rule).toBe(RULE_UNKNOWN_TYPE);
    expect(rejected(validate(state, f.acceptAll([p]), ctx)).rule).toBe(RULE_UNKNOWN_TYPE);
    expect(validate(state, f.retry(dev, p), ctx).outcome).toBe('accepted');
    expect(validate(state, f.discard(dev, p), ctx).outcome).toBe('accepted');
    const badRetry = f.event(
      dev,
      'RetryRequested',
      { target: 'not-an-id' },
      { subject: { kind: 'event', id: 'x' } },
    );
    expect(rejected(validate(state, badRetry, ctx))).toMatchObject({ code: 500, rule: RULE_SCHEMA });
  });

  it('garbage instead of an event is a 500, not an exception', () => {
    const { state } = setup();
    for (const junk of [
      null,
      42,
      'x',
      {},
      { type: 7 },
      { type: 'StockConsumed', data: { lot: 'L', quantity: 1 }, subject: null, schema: 1 },
    ]) {
      const v = validate(state, junk as unknown as SignedEvent, ctx);
      expect(v.outcome === 'deadletter' && v.code).toBe(500);
    }
  });
});

describe('validate: 404 and 410', () => {
  it('unknown patient, lot, encounter and appointment name what is missing', () => {
    const { state, f } = setup();
    const cases: [string, unknown, string, string][] = [
      ['PatientDemographicsUpdated', { patientId: 'ghost', changes: { sex: 'male' } }, 'patient', 'ghost'],
      [
        'VaccinationAdministered',
        { patientId: 'ghost', antigen: 'BCG', dose: 1, lot: 'L1', date: '2024-05-01' },
        'patient',
        'ghost',
      ],
      ['StockAdjusted', { lot: 'nolot', delta: 5, reason: 'count' }, 'lot', 'nolot'],
      ['StockConsumed', { lot: 'nolot', quantity: 1 }, 'lot', 'nolot'],
      ['EncounterStarted', { encounterId: 'noenc' }, 'encounter', 'noenc'],
      ['AppointmentCancelled', { appointmentId: 'noappt' }, 'appointment', 'noappt'],
      ['PatientCheckedIn', { patientId: 'ghost', encounterId: 'e1' }, 'patient', 'ghost'],
      ['PatientsMerged', { survivorId: 'ghost', mergedId: 'ghost2' }, 'patient', 'ghost2'],
    ];
    for (const [type, data, kind, id] of cases) {
      const v = rejected(validate(state, f.event(dev, type, data), ctx));
      expect(v, type).toMatchObject({ code: 404, rule: RULE_NOT_FOUND, details: { kind, id } });
      expect(v.reason).toContain(id);
    }
  });

  it('a missing dependency is a 404 naming it', () => {
    const { state, f, register } = setup();
    register('p1');
    const phantom = 'ZZZZZZZZZZZZZZZZZZZZZZZZZZ' as EventId;
    const e = f.event(
      dev,
      'PatientDemographicsUpdated',
      { patientId: 'p1', changes: { sex: 'male' } },
      { deps: [phantom, phantom] },
    );
    expect(rejected(validate(state, e, ctx))).toMatchObject({
      code: 404,
      rule: RULE_DEPENDENCY_MISSING,
      details: { missing: [phantom] },
    });
  });

  it('an update, vaccination or check-in of a merged patient is 410 with the survivor', () => {
    const { state, commit, record, register, receive } = setup();
    register('p1');
    register('p2');
    receive('L1', 'BCG', 5);
    const merge = commit(record('PatientsMerged', { survivorId: 'p1', mergedId: 'p2' }));
    for (const [type, data] of [
      ['PatientDemographicsUpdated', { patientId: 'p2', changes: { givenName: 'Grace' } }],
      [
        'VaccinationAdministered',
        { patientId: 'p2', antigen: 'BCG', dose: 1, lot: 'L1', date: '2024-05-01' },
      ],
      ['PatientCheckedIn', { patientId: 'p2', encounterId: 'e9' }],
      ['PatientsMerged', { survivorId: 'p1', mergedId: 'p2' }],
    ] as const) {
      const v = rejected(validate(state, record(type, data), ctx));
      expect(v, type).toMatchObject({
        code: 410,
        rule: RULE_MERGED,
        details: { id: 'p2', survivorId: 'p1', mergedBy: merge.id },
      });
    }
  });
});

describe('validate: 409', () => {
  it('a second registration with an existing national id carries the existing patient and its registration', () => {
    const { state, record, register } = setup();
    const first = register('p1');
    const v = rejected(
      validate(
        state,
        record('PatientRegistered', {
          patientId: 'p2',
          nationalId: 'nid p1',
          givenName: 'A',
          familyName: 'B',
          birthDate: '2024-01-10',
          sex: 'male',
        }),
        ctx,
      ),
    );
    expect(v).toMatchObject({
      code: 409,
      rule: RULE_DUPLICATE_NATIONAL_ID,
      details: { existingPatientId: 'p1', existingEvent: first.id },
    });
  });

  it('changing a national id to one another patient holds is a duplicate too', () => {
    const { state, record, register } = setup();
    const p2 = register('p2');
    register('p1');
    const v = rejected(
      validate(
        state,
        record('PatientDemographicsUpdated', { patientId: 'p1', changes: { nationalId: 'NID-p2' } }),
        ctx,
      ),
    );
    expect(v).toMatchObject({
      code: 409,
      rule: RULE_DUPLICATE_NATIONAL_ID,
      details: { existingPatientId: 'p2', existingEvent: p2.id },
    });
  });

  it('re-using a record id is RULE_ALREADY_EXISTS', () => {
    const { state, record, register } = setup();
    const first = register('p1');
    const v = rejected(
      validate(
        state,
        record('PatientRegistered', {
          patientId: 'p1',
          nationalId: 'OTHER',
          givenName: 'A',
          familyName: 'B',
          birthDate: '2024-01-10',
          sex: 'male',
        }),
        ctx,
      ),
    );
    expect(v).toMatchObject({
      code: 409,
      rule: RULE_ALREADY_EXISTS,
      details: { kind: 'patient', id: 'p1', existingEvent: first.id },
    });
  });

  it('same-field concurrent update on a stale basis: 409 with both values and the event that set the current one', () => {
    const { state, commit, record, register } = setup();
    const reg = register('p1');
    // Both devices saw only the registration.
    const mine = record(
      'PatientDemographicsUpdated',
      { patientId: 'p1', changes: { familyName: 'Phiri' } },
      dev,
    );
    const theirs = record(
      'PatientDemographicsUpdated',
      { patientId: 'p1', changes: { familyName: 'Tembo' } },
      dev2,
    );
    expect(mine.basis).toEqual({ familyName: reg.id });
    commit(theirs);
    const v = rejected(validate(state, mine, ctx));
    expect(v).toMatchObject({
      code: 409,
      rule: RULE_STALE_BASIS,
      details: {
        field: 'familyName',
        current: 'Tembo',
        currentEvent: theirs.id,
        proposed: 'Phiri',
        basis: reg.id,
        patientId: 'p1',
      },
    });
    expect(v.reason).toContain('Tembo');
    expect(v.reason).toContain('Phiri');
  });

  it('different-field concurrent updates are both accepted and both changes are visible', () => {
    const { state, commit, record, register } = setup();
    register('p1');
    const a = record(
      'PatientDemographicsUpdated',
      { patientId: 'p1', changes: { familyName: 'Phiri' } },
      dev,
    );
    const b = record(
      'PatientDemographicsUpdated',
      { patientId: 'p1', changes: { givenName: 'Grace' } },
      dev2,
    );
    commit(a);
    expect(validate(state, b, ctx).outcome).toBe('accepted');
    commit(b);
    expect(state.patient('p1')).toMatchObject({ familyName: 'Phiri', givenName: 'Grace' });
  });

  it('a stale basis proposing the value already there is not a conflict; a missing basis counts as null', () => {
    const { state, f, commit, record, register } = setup();
    register('p1');
    const same1 = record(
      'PatientDemographicsUpdated',
      { patientId: 'p1', changes: { familyName: 'Phiri' } },
      dev,
    );
    const same2 = record(
      'PatientDemographicsUpdated',
      { patientId: 'p1', changes: { familyName: 'Phiri' } },
      dev2,
    );
    commit(same1);
    expect(validate(state, same2, ctx).outcome).toBe('accepted');
    const noBasis = f.event(dev, 'PatientDemographicsUpdated', { patientId: 'p1', changes: { sex: 'male' } });
    expect(rejected(validate(state, noBasis, ctx))).toMatchObject({
      rule: RULE_STALE_BASIS,
      details: { basis: null },
    });
  });
});

describe('validate: 422 stock', () => {
  it('stock may reach exactly zero; one more is refused with lot, balance and requested', () => {
    const { state, record, receive } = setup();
    receive('L1', 'OPV', 3);
    expect(validate(state, record('StockConsumed', { lot: 'L1', quantity: 3 }), ctx).outcome).toBe(
      'accepted',
    );
    expect(
      validate(state, record('StockAdjusted', { lot: 'L1', delta: -3, reason: 'count' }), ctx).outcome,
    ).toBe('accepted');
    const v = rejected(validate(state, record('StockConsumed', { lot: 'L1', quantity: 4 }), ctx));
    expect(v).toMatchObject({
      code: 422,
      rule: RULE_NEGATIVE_STOCK,
      details: { lot: 'L1', balance: 3, requested: 4, retriesWhen: 'stock' },
    });
    expect(v.reason).toMatch(/3 doses.*4.*-1/);
    expect(
      rejected(validate(state, record('StockAdjusted', { lot: 'L1', delta: -4, reason: 'count' }), ctx))
        .details,
    ).toEqual({ lot: 'L1', balance: 3, requested: 4, retriesWhen: 'stock' });
  });

  it('names the lot, the stock on hand and the quantity requested, and that stock arriving re-judges it', () => {
    const { state, record, receive } = setup();
    receive('M-442', 'OPV', 2);
    const v = rejected(validate(state, record('StockConsumed', { lot: 'M-442', quantity: 5 }), ctx));
    // What the Sync Centre reads to say "Lot M-442 would go to -3: 2 in stock, 5 requested".
    expect(v.details).toEqual({ lot: 'M-442', balance: 2, requested: 5, retriesWhen: 'stock' });
    expect(v.reason).toBe('Lot "M-442" has 2 doses in stock; taking 5 would leave -3.');
    receive('M-442', 'OPV', 3);
    expect(validate(state, record('StockConsumed', { lot: 'M-442', quantity: 5 }), ctx).outcome).toBe(
      'accepted',
    );
  });

  it('the last dose of a lot can be given, not one more', () => {
    const { state, commit, register, receive, vaccinate } = setup();
    register('p1');
    register('p2');
    receive('L1', 'BCG', 1);
    commit(vaccinate('p1', 'BCG', 1, 'L1', '2024-01-10'));
    expect(state.lot('L1')?.balance).toBe(0);
    const v = rejected(validate(state, vaccinate('p2', 'BCG', 1, 'L1', '2024-01-10'), ctx));
    expect(v).toMatchObject({
      rule: RULE_NEGATIVE_STOCK,
      details: { lot: 'L1', balance: 0, requested: 1, retriesWhen: 'stock' },
    });
  });

  it('a vaccination from a lot never received is RULE_NEGATIVE_STOCK with balance 0, and succeeds once received', () => {
    const { state, register, receive, vaccinate } = setup();
    register('p1');
    const e = vaccinate('p1', 'BCG', 1, 'NEW', '2024-01-10');
    expect(rejected(validate(state, e, ctx))).toMatchObject({
      code: 422,
      rule: RULE_NEGATIVE_STOCK,
      details: { lot: 'NEW', balance: 0, requested: 1, retriesWhen: 'stock' },
    });
    receive('NEW', 'BCG', 10);
    expect(validate(state, e, ctx).outcome).toBe('accepted');
  });

  it('receipts must agree with the lot and name a scheduled antigen', () => {
    const { state, record, receive } = setup();
    receive('L1', 'BCG', 3, '2025-01-01');
    expect(
      validate(
        state,
        record('StockReceived', { lot: 'L1', antigen: 'BCG', quantity: 2, expiry: '2025-01-01' }),
        ctx,
      ).outcome,
    ).toBe('accepted');
    expect(
      rejected(
        validate(
          state,
          record('StockReceived', { lot: 'L1', antigen: 'OPV', quantity: 2, expiry: '2025-01-01' }),
          ctx,
        ),
      ),
    ).toMatchObject({
      rule: RULE_LOT_ANTIGEN_MISMATCH,
      details: { lot: 'L1', lotAntigen: 'BCG', antigen: 'OPV' },
    });
    expect(
      rejected(
        validate(
          state,
          record('StockReceived', { lot: 'L1', antigen: 'BCG', quantity: 2, expiry: '2025-02-01' }),
          ctx,
        ),
      ),
    ).toMatchObject({
      rule: RULE_LOT_EXPIRY_MISMATCH,
      details: { lotExpiry: '2025-01-01', expiry: '2025-02-01' },
    });
    expect(
      rejected(
        validate(
          state,
          record('StockReceived', { lot: 'L2', antigen: 'Smallpox', quantity: 2, expiry: '2025-02-01' }),
          ctx,
        ),
      ),
    ).toMatchObject({
      rule: RULE_UNKNOWN_ANTIGEN,
      details: { antigen: 'Smallpox' },
    });
  });
});

describe('validate: 422 vaccinations', () => {
  it('dose numbers must follow the schedule', () => {
    const { state, commit, register, receive, vaccinate } = setup();
    register('p1');
    receive('L1', 'OPV', 10);
    receive('B1', 'BCG', 10);
    const skip = rejected(validate(state, vaccinate('p1', 'OPV', 2, 'L1', '2024-05-01'), ctx));
    expect(skip).toMatchObject({
      code: 422,
      rule: RULE_DOSE_OUT_OF_SEQUENCE,
      details: { antigen: 'OPV', dose: 2, expected: 1, doses: 3 },
    });
    const d1 = commit(vaccinate('p1', 'OPV', 1, 'L1', '2024-03-01'));
    const again = rejected(validate(state, vaccinate('p1', 'OPV', 1, 'L1', '2024-05-01'), ctx));
    expect(again.details).toMatchObject({
      expected: 2,
      given: [{ dose: 1, date: '2024-03-01', eventId: d1.id }],
    });
    commit(vaccinate('p1', 'BCG', 1, 'B1', '2024-01-10'));
    expect(
      rejected(validate(state, vaccinate('p1', 'BCG', 2, 'B1', '2024-05-01'), ctx)).details,
    ).toMatchObject({ dose: 2, doses: 1 });
  });

  it('a dose on the minimum-interval day is accepted, one day earlier is too early', () => {
    const { state, commit, register, receive, vaccinate } = setup();
    register('p1');
    receive('L1', 'Penta', 10);
    commit(vaccinate('p1', 'Penta', 1, 'L1', '2024-03-01'));
    expect(validate(state, vaccinate('p1', 'Penta', 2, 'L1', '2024-03-29'), ctx).outcome).toBe('accepted');
    const v = rejected(validate(state, vaccinate('p1', 'Penta', 2, 'L1', '2024-03-28'), ctx));
    expect(v).toMatchObject({
      code: 422,
      rule: RULE_DOSE_TOO_EARLY,
      details: {
        constraint: 'min-interval',
        minIntervalDays: 28,
        intervalDays: 27,
        previousDate: '2024-03-01',
        earliestDate: '2024-03-29',
      },
    });
    expect(v.reason).toMatch(/27 days.*28 days/);
  });

  it('dose 1 respects the minimum age (42 days for OPV, 270 for Measles)', () => {
    const { state, register, receive, vaccinate } = setup();
    register('p1'); // born 2024-01-10
    receive('L1', 'OPV', 10);
    expect(validate(state, vaccinate('p1', 'OPV', 1, 'L1', '2024-02-21'), ctx).outcome).toBe('accepted'); // 42 days
    expect(rejected(validate(state, vaccinate('p1', 'OPV', 1, 'L1', '2024-02-20'), ctx))).toMatchObject({
      rule: RULE_DOSE_TOO_EARLY,
      details: { constraint: 'min-age', minAgeDays: 42, ageDays: 41 },
    });
  });

  it('a vaccination before birth is refused; on the birth day it is fine', () => {
    const { state, register, receive, vaccinate } = setup();
    register('p1');
    receive('B1', 'BCG', 10);
    expect(validate(state, vaccinate('p1', 'BCG', 1, 'B1', '2024-01-10'), ctx).outcome).toBe('accepted');
    const v = rejected(validate(state, vaccinate('p1', 'BCG', 1, 'B1', '2024-01-09'), ctx));
    expect(v).toMatchObject({
      code: 422,
      rule: RULE_BEFORE_BIRTH,
      details: { date: '2024-01-09', birthDate: '2024-01-10' },
    });
    expect(v.reason).toContain('1 day');
  });

  it('a date in the future: exactly at the allowance is accepted, one ms beyond is refused', () => {
    const { state, register, receive, vaccinate } = setup();
    register('p1');
    receive('B1', 'BCG', 10);
    const e = vaccinate('p1', 'BCG', 1, 'B1', '2024-06-02');
    const boundary = dateStartMs('2024-06-02') - FUTURE_DATE_ALLOWANCE_MS; // = 2024-06-01T00:00Z
    expect(validate(state, e, { nowMs: boundary }).outcome).toBe('accepted');
    const v = rejected(validate(state, e, { nowMs: boundary - 1 }));
    expect(v).toMatchObject({
      code: 422,
      rule: RULE_IN_FUTURE,
      details: {
        date: '2024-06-02',
        allowanceMs: FUTURE_DATE_ALLOWANCE_MS,
        aheadMs: FUTURE_DATE_ALLOWANCE_MS + 1,
      },
    });
    // One day further is refused at any time of today.
    expect(
      rejected(
        validate(state, vaccinate('p1', 'BCG', 1, 'B1', '2024-06-03'), {
          nowMs: dateStartMs('2024-06-02') - 1,
        }),
      ).rule,
    ).toBe(RULE_IN_FUTURE);
  });

  it('a dose on the expiry day is allowed, the day after is refused; the lot must hold the antigen', () => {
    const { state, register, receive, vaccinate } = setup();
    register('p1');
    receive('B1', 'BCG', 10, '2024-05-01');
    expect(validate(state, vaccinate('p1', 'BCG', 1, 'B1', '2024-05-01'), ctx).outcome).toBe('accepted');
    expect(rejected(validate(state, vaccinate('p1', 'BCG', 1, 'B1', '2024-05-02'), ctx))).toMatchObject({
      code: 422,
      rule: RULE_LOT_EXPIRED,
      details: { lot: 'B1', expiry: '2024-05-01', date: '2024-05-02' },
    });
    receive('O1', 'OPV', 10);
    expect(rejected(validate(state, vaccinate('p1', 'BCG', 1, 'O1', '2024-05-01'), ctx))).toMatchObject({
      rule: RULE_LOT_ANTIGEN_MISMATCH,
      details: { lot: 'O1', lotAntigen: 'OPV', antigen: 'BCG' },
    });
    expect(rejected(validate(state, vaccinate('p1', 'Smallpox', 1, 'O1', '2024-05-01'), ctx)).rule).toBe(
      RULE_UNKNOWN_ANTIGEN,
    );
  });
});

describe('validate: 422 patients, encounters and appointments', () => {
  it('birth dates cannot be in the future nor after a recorded dose', () => {
    const { state, commit, record, register, receive, vaccinate } = setup();
    const tooLate = record('PatientRegistered', {
      patientId: 'p5',
      nationalId: 'N5',
      givenName: 'A',
      familyName: 'B',
      birthDate: '2024-06-03',
      sex: 'male',
    });
    expect(rejected(validate(state, tooLate, ctx))).toMatchObject({
      rule: RULE_IN_FUTURE,
      details: { field: 'birthDate' },
    });
    register('p1');
    receive('B1', 'BCG', 10);
    const dose = commit(vaccinate('p1', 'BCG', 1, 'B1', '2024-01-15'));
    expect(
      rejected(
        validate(
          state,
          record('PatientDemographicsUpdated', { patientId: 'p1', changes: { birthDate: '2024-01-16' } }),
          ctx,
        ),
      ),
    ).toMatchObject({
      rule: RULE_BEFORE_BIRTH,
      details: { birthDate: '2024-01-16', vaccinationDate: '2024-01-15', vaccinationEvent: dose.id },
    });
    expect(
      validate(
        state,
        record('PatientDemographicsUpdated', { patientId: 'p1', changes: { birthDate: '2024-01-15' } }),
        ctx,
      ).outcome,
    ).toBe('accepted');
  });

  it('a patient already waiting or in progress cannot check in again', () => {
    const { state, commit, record, register } = setup();
    register('p1');
    commit(record('PatientCheckedIn', { patientId: 'p1', encounterId: 'e1' }));
    expect(
      rejected(validate(state, record('PatientCheckedIn', { patientId: 'p1', encounterId: 'e2' }), ctx)),
    ).toMatchObject({
      code: 422,
      rule: RULE_ALREADY_IN_QUEUE,
      details: { patientId: 'p1', encounterId: 'e1', state: 'waiting' },
    });
    commit(record('EncounterStarted', { encounterId: 'e1' }));
    expect(
      rejected(validate(state, record('PatientCheckedIn', { patientId: 'p1', encounterId: 'e2' }), ctx))
        .details['state'],
    ).toBe('in-progress');
    commit(record('EncounterCompleted', { encounterId: 'e1' }));
    expect(
      validate(state, record('PatientCheckedIn', { patientId: 'p1', encounterId: 'e2' }), ctx).outcome,
    ).toBe('accepted');
    expect(
      rejected(validate(state, record('PatientCheckedIn', { patientId: 'p1', encounterId: 'e1' }), ctx)).rule,
    ).toBe(RULE_ALREADY_EXISTS);
  });

  it('invalid encounter and appointment transitions', () => {
    const { state, commit, record, register } = setup();
    register('p1');
    commit(record('PatientCheckedIn', { patientId: 'p1', encounterId: 'e1' }));
    expect(rejected(validate(state, record('EncounterCompleted', { encounterId: 'e1' }), ctx))).toMatchObject(
      {
        code: 422,
        rule: RULE_INVALID_TRANSITION,
        details: { encounterId: 'e1', from: 'waiting', to: 'completed', allowedFrom: ['in-progress'] },
      },
    );
    commit(record('EncounterCancelled', { encounterId: 'e1', reason: 'left' }));
    for (const type of ['EncounterStarted', 'EncounterCompleted', 'EncounterCancelled']) {
      expect(rejected(validate(state, record(type, { encounterId: 'e1' }), ctx)).details['from'], type).toBe(
        'cancelled',
      );
    }
    commit(
      record('AppointmentScheduled', {
        appointmentId: 'a1',
        patientId: 'p1',
        antigen: 'OPV',
        dose: 1,
        date: '2024-06-10',
      }),
    );
    commit(record('AppointmentCancelled', { appointmentId: 'a1' }));
    expect(rejected(validate(state, record('AppointmentCancelled', { appointmentId: 'a1' }), ctx)).rule).toBe(
      RULE_INVALID_TRANSITION,
    );
  });

  it('appointments name a scheduled antigen and dose, not before birth', () => {
    const { state, record, register } = setup();
    register('p1');
    const appt = (antigen: string, dose: number, date: string) =>
      validate(
        state,
        record('AppointmentScheduled', { appointmentId: 'a1', patientId: 'p1', antigen, dose, date }),
        ctx,
      );
    expect(appt('Measles', 2, '2024-12-01').outcome).toBe('accepted');
    expect(rejected(appt('Measles', 3, '2024-12-01'))).toMatchObject({
      rule: RULE_DOSE_OUT_OF_SEQUENCE,
      details: { doses: 2 },
    });
    expect(rejected(appt('Plague', 1, '2024-12-01')).rule).toBe(RULE_UNKNOWN_ANTIGEN);
    expect(rejected(appt('OPV', 1, '2024-01-01'))).toMatchObject({
      rule: RULE_BEFORE_BIRTH,
      details: { date: '2024-01-01', birthDate: '2024-01-10' },
    });
  });
});

describe('localWarnings', () => {
  it('runs the same checks against the tentative view', () => {
    const { state, record, receive } = setup();
    receive('L1', 'OPV', 1);
    const e = record('StockConsumed', { lot: 'L1', quantity: 2 });
    expect(localWarnings(state, e, ctx)).toEqual(validate(state, e, ctx));
    expect(localWarnings(state, e, ctx).outcome).toBe('deadletter');
  });
});
