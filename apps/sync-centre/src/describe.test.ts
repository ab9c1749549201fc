import { describe, expect, it } from 'vitest';
import { describeCode, describeEvent, describeRule, groupByCode, patientNamer } from './describe.js';
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
  it('reads the numbers of a negative-stock verdict', () => {
    expect(describeRule(en, 'RULE_NEGATIVE_STOCK', { lot: 'M-442', balance: 2, requested: 5 })).toEqual({
      name: 'Not enough stock',
      numbers: 'Lot M-442 would go to -3: 2 in stock, 5 requested.',
    });
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
    expect(describeRule(en, null, null)).toEqual({ name: en.unknownRule, numbers: undefined });
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
