import { describe, expect, it } from 'vitest';
import {
  conflictFields,
  daysToResubmit,
  defaultRange,
  demographicChanges,
  describeCode,
  describeEvent,
  describeRule,
  discardNeedsAdmin,
  groupByCode,
  humanBytes,
  keepMine,
  patientNamer,
  stockCorrection,
  verdictHistory,
} from './describe.js';
import { en, syncCentreStrings } from './strings.js';

const name = patientNamer([{ id: 'P-1', givenName: 'Amina', familyName: 'Kamau' }]);

describe('describeEvent', () => {
  it('puts a vaccination in words with the patient’s short name and the lot', () => {
    expect(
      describeEvent(
        en,
        'VaccinationAdministered',
        { patientId: 'P-1', antigen: 'BCG', dose: 1, lot: 'M-442', date: '2026-01-01' },
        name,
      ),
    ).toBe('Vaccination: BCG dose 1 for Amina K., lot M-442');
  });

  it('names an unknown patient by id and an unknown type by its kind', () => {
    expect(describeEvent(en, 'PatientCheckedIn', { patientId: 'P-9', encounterId: 'E' }, name)).toBe(
      'Check-in: P-9',
    );
    expect(describeEvent(en, 'Mystery', {}, name)).toBe('Change of kind Mystery');
    expect(describeEvent(en, 'StockReceived', 'not an object', name)).toBe('Change of kind StockReceived');
  });
});

describe('describeRule and describeCode', () => {
  it('reads the numbers of a negative-stock verdict, and says when the relay re-judges it by itself', () => {
    expect(describeRule(en, 'RULE_NEGATIVE_STOCK', { lot: 'M-442', balance: 2, requested: 5 })).toEqual({
      name: 'Not enough stock',
      numbers: 'Lot M-442 would go to -3: 2 in stock, 5 requested.',
      heals: undefined,
    });
    const healing = { lot: 'M-442', balance: 2, requested: 5, retriesWhen: 'stock' };
    expect(describeRule(en, 'RULE_NEGATIVE_STOCK', healing).heals).toBe(
      'The server accepts it by itself, with no retry, once lot M-442 has enough stock.',
    );
    expect(describeRule(en, 'RULE_LOT_EXPIRED', { ...healing, expiry: '2020-01-01' }).heals).toBeUndefined();
  });

  it('shows a 409 field by field, a 404’s wait and a 410’s survivor', () => {
    const stale = {
      field: 'familyName',
      current: 'Otieno',
      proposed: 'Odhiambo',
      conflicts: [
        { field: 'familyName', current: 'Otieno', proposed: 'Odhiambo' },
        { field: 'birthDate', current: '2025-01-02', proposed: '2025-01-03' },
      ],
    };
    expect(describeRule(en, 'RULE_STALE_BASIS', stale).numbers).toBe(
      'familyName: yours "Odhiambo", now "Otieno"; birthDate: yours "2025-01-03", now "2025-01-02"',
    );
    expect(describeRule(en, 'RULE_DEPENDENCY_MISSING', { missing: ['a', 'b'] }).numbers).toBe(
      'Waits for 2 earlier changes; it is retried by itself when they arrive.',
    );
    expect(describeRule(en, 'RULE_MERGED', { survivorId: 'P-7' }).numbers).toBe(
      'Record it again on the surviving patient P-7.',
    );
  });

  it('has no numbers sentence when the details lack them, and a name for an unknown rule', () => {
    expect(describeRule(en, 'RULE_NEGATIVE_STOCK', { lot: 'M' }).numbers).toBeUndefined();
    expect(describeRule(en, 'RULE_FROM_THE_FUTURE', {}).name).toBe(en.unknownRule);
    expect(describeRule(en, null, null)).toEqual({
      name: en.unknownRule,
      numbers: undefined,
      heals: undefined,
    });
  });

  it('never leaves a code without its meaning', () => {
    for (const code of [500, 422, 409, 404, 410, 403, 499, null]) {
      expect(describeCode(en, code).meaning).not.toBe('');
    }
  });
});

describe('groupByCode', () => {
  it('groups in the order of the design’s table, unknown codes last', () => {
    const groups = groupByCode([
      { id: 'a', code: 404 },
      { id: 'b', code: 422 },
      { id: 'c', code: null },
      { id: 'd', code: 422 },
      { id: 'e', code: 500 },
    ]);
    expect(groups.map((g) => [g.code, g.items.map((i) => i.id)])).toEqual([
      [500, ['e']],
      [422, ['b', 'd']],
      [404, ['a']],
      [null, ['c']],
    ]);
  });
});

describe('syncCentreStrings', () => {
  it('falls back to English for a language without a catalogue', () => {
    expect(syncCentreStrings('sw-KE')).toBe(en);
    expect(syncCentreStrings(undefined)).toBe(en);
  });
});

/** A 409 stale basis as the relay words it (libs/rules `staleBasis`): two fields conflict. */
const stale = {
  id: 'E-mine',
  type: 'PatientDemographicsUpdated',
  rule: 'RULE_STALE_BASIS',
  data: { patientId: 'P-1', changes: { familyName: 'Odhiambo', birthDate: '2025-01-03', sex: 'female' } },
  details: {
    field: 'birthDate',
    current: '2025-01-02',
    currentEvent: 'E-theirs-2',
    proposed: '2025-01-03',
    basis: null,
    patientId: 'P-1',
    conflicts: [
      {
        field: 'birthDate',
        current: '2025-01-02',
        currentEvent: 'E-theirs-2',
        proposed: '2025-01-03',
        basis: null,
      },
      {
        field: 'familyName',
        current: 'Otieno',
        currentEvent: 'E-theirs-1',
        proposed: 'Odhiambo',
        basis: 'E-reg',
      },
    ],
  },
};

describe('conflictFields (409: mine against the confirmed value)', () => {
  it('lists a stale basis field by field, mine as proposed and the confirmed value as current', () => {
    expect(conflictFields(stale, [])).toEqual([
      { field: 'birthDate', mine: '2025-01-03', confirmed: '2025-01-02', differs: true },
      { field: 'familyName', mine: 'Odhiambo', confirmed: 'Otieno', differs: true },
    ]);
    // An older verdict without the list: its first field alone.
    const { conflicts: _, ...single } = stale.details;
    expect(conflictFields({ ...stale, details: single }, [])).toEqual([
      { field: 'birthDate', mine: '2025-01-03', confirmed: '2025-01-02', differs: true },
    ]);
  });

  it('compares a duplicate national id with the registered patient holding it', () => {
    const dup = {
      rule: 'RULE_DUPLICATE_NATIONAL_ID',
      data: {
        patientId: 'P-2',
        nationalId: 'NID-7',
        givenName: 'Grace',
        familyName: 'Wanjiru',
        birthDate: '2025-02-01',
        sex: 'female',
      },
      details: { nationalId: 'NID-7', existingPatientId: 'P-1', existingEvent: 'E-reg' },
    };
    const holder = {
      id: 'P-1',
      nationalId: 'NID-7',
      givenName: 'Grace',
      familyName: 'Njeri',
      birthDate: '2025-02-01',
      sex: 'female',
    };
    const rows = conflictFields(dup, [holder]);
    expect(rows.filter((r) => r.differs)).toEqual([
      { field: 'familyName', mine: 'Wanjiru', confirmed: 'Njeri', differs: true },
    ]);
    expect(rows.map((r) => r.field)).toEqual(['nationalId', 'givenName', 'familyName', 'birthDate', 'sex']);
    // The holder not (yet) on this tablet: every confirmed value unknown, never invented.
    expect(conflictFields(dup, []).every((r) => r.confirmed === null && r.differs)).toBe(true);
  });

  it('is empty for other rules and unreadable details', () => {
    expect(conflictFields({ rule: 'RULE_NEGATIVE_STOCK', data: {}, details: { lot: 'L' } }, [])).toEqual([]);
    expect(conflictFields({ ...stale, details: null }, [])).toEqual([]);
    expect(conflictFields({ ...stale, details: { conflicts: [7, { current: 'x' }] } }, [])).toEqual([]);
  });
});

describe('keepMine', () => {
  it('supersedes the rejected event with my data and names the confirmed events it must sit on', () => {
    const plan = keepMine(stale);
    expect(plan).toEqual({
      draft: { type: 'PatientDemographicsUpdated', data: stale.data, supersedes: 'E-mine' },
      basis: ['E-theirs-2', 'E-theirs-1'],
    });
    // A copy: the card's item is never changed by what is sent.
    expect(plan?.draft.data).not.toBe(stale.data);
  });

  it('offers nothing for a duplicate national id or any other rejection', () => {
    expect(keepMine({ ...stale, rule: 'RULE_DUPLICATE_NATIONAL_ID' })).toBeUndefined();
    expect(keepMine({ ...stale, rule: 'RULE_NEGATIVE_STOCK' })).toBeUndefined();
    expect(keepMine({ ...stale, data: 'not an object' })).toBeUndefined();
  });
});

describe('verdictHistory', () => {
  it('takes the agent’s history as it is, oldest first, leaving out entries that are not verdicts', () => {
    const verdicts = [
      {
        verdictId: 'V1',
        seq: 3,
        outcome: 'deadletter',
        code: 422,
        rule: 'RULE_NEGATIVE_STOCK',
        at: '2026-01-01T10:00:00.000Z',
      },
      { bogus: true },
      { verdictId: 'V2', seq: 4, outcome: 'accepted', at: '2026-01-01T11:00:00.000Z' },
    ];
    expect(verdictHistory({ verdicts, verdictData: { outcome: 'accepted', seq: 99 } })).toEqual([
      {
        verdictId: 'V1',
        seq: 3,
        outcome: 'deadletter',
        code: 422,
        rule: 'RULE_NEGATIVE_STOCK',
        at: '2026-01-01T10:00:00.000Z',
      },
      { verdictId: 'V2', seq: 4, outcome: 'accepted', at: '2026-01-01T11:00:00.000Z' },
    ]);
  });

  it('falls back to the latest verdict alone for an older agent, timed by its HLC', () => {
    const hlc = '2026-03-14T09:30:00.000Z-0001-abc';
    expect(
      verdictHistory({
        verdictData: { outcome: 'deadletter', code: 409, rule: 'RULE_STALE_BASIS', details: { field: 'x' } },
        verdict: { id: 'V9', hlc },
      }),
    ).toEqual([
      {
        outcome: 'deadletter',
        code: 409,
        rule: 'RULE_STALE_BASIS',
        details: { field: 'x' },
        verdictId: 'V9',
        at: Date.parse('2026-03-14T09:30:00.000Z'),
      },
    ]);
    expect(verdictHistory({})).toEqual([]);
  });
});

describe('small helpers', () => {
  it('puts byte counts in human units', () => {
    expect([0, 812, 1000, 1400, 23_456_789, 1_234_567_890, 999_999].map(humanBytes)).toEqual([
      '0 B',
      '812 B',
      '1 kB',
      '1.4 kB',
      '23 MB',
      '1.2 GB',
      '1 MB',
    ]);
    expect(humanBytes(-1)).toBe('?');
  });

  it('asks the admin password up front for clinical records only', () => {
    expect(discardNeedsAdmin('VaccinationAdministered')).toBe(true);
    expect(discardNeedsAdmin('PatientRegistered')).toBe(true);
    expect(discardNeedsAdmin('StockAdjusted')).toBe(false);
    expect(discardNeedsAdmin('PatientDemographicsUpdated')).toBe(false);
  });

  it('opens the integrity screen on the 30 UTC days up to today and re-submits only differing days', () => {
    expect(defaultRange(Date.parse('2026-03-01T23:59:00Z'))).toEqual({
      from: '2026-01-31',
      to: '2026-03-01',
    });
    expect(
      daysToResubmit([
        { day: '2026-01-03', match: false },
        { day: '2026-01-01', match: false },
        { day: '2026-01-02', match: true },
      ]),
    ).toEqual(['2026-01-01', '2026-01-03']);
  });

  it('turns the adjustment form into a signed delta and the balance after it', () => {
    expect(stockCorrection(5, 'remove', '2')).toEqual({ delta: -2, after: 3 });
    expect(stockCorrection(5, 'add', ' 10 ')).toEqual({ delta: 10, after: 15 });
    expect(stockCorrection(1, 'remove', '3')).toEqual({ delta: -3, after: -2 });
    expect(stockCorrection(undefined, 'add', '3')).toEqual({ delta: 3, after: undefined });
    for (const bad of ['0', '', '-2', '1.5', 'x', '99999999']) {
      expect(stockCorrection(5, 'remove', bad), bad).toEqual({ delta: undefined, after: undefined });
    }
  });

  it('sends only the demographic fields the form changed', () => {
    const before = { id: 'P-1', givenName: 'Amina', familyName: 'Kamau', sex: 'female' };
    expect(demographicChanges(before, { givenName: 'Amina', familyName: ' Otieno ', sex: '' })).toEqual({
      familyName: 'Otieno',
    });
    expect(demographicChanges(before, { givenName: 'Amina' })).toEqual({});
  });
});
