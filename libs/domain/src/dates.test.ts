import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dateOfDay, dateStartMs, dayNumber, daysBetween, isIsoDate, utcDate } from './dates.js';

describe('isIsoDate', () => {
  it('accepts real calendar dates, including leap days', () => {
    for (const d of ['2024-02-29', '2000-02-29', '1999-12-31', '0001-01-01', '2024-04-30'])
      expect(isIsoDate(d)).toBe(true);
  });

  it('refuses impossible dates and other shapes', () => {
    for (const d of [
      '2023-02-29',
      '1900-02-29',
      '2024-04-31',
      '2024-13-01',
      '2024-00-10',
      '2024-01-00',
      '2024-1-01',
      '20240101',
      '2024-01-01T00:00Z',
      ' 2024-01-01',
      20240101,
      null,
    ]) {
      expect(isIsoDate(d)).toBe(false);
    }
  });
});

describe('day arithmetic', () => {
  it('agrees with Date for known days', () => {
    expect(dayNumber('1970-01-01')).toBe(0);
    expect(dayNumber('2024-03-01') - dayNumber('2024-02-28')).toBe(2);
    expect(dateStartMs('2024-06-01')).toBe(Date.UTC(2024, 5, 1));
    expect(utcDate(Date.UTC(2024, 5, 1, 23, 59, 59, 999))).toBe('2024-06-01');
    expect(daysBetween('2024-01-01', '2024-01-29')).toBe(28);
    expect(daysBetween('2024-01-29', '2024-01-01')).toBe(-28);
  });

  it('dateOfDay inverts dayNumber and matches Date for every day in 1900..2199', () => {
    fc.assert(
      fc.property(fc.integer({ min: -25567, max: 84000 }), (day) => {
        const date = dateOfDay(day);
        expect(isIsoDate(date)).toBe(true);
        expect(dayNumber(date)).toBe(day);
        expect(date).toBe(new Date(day * 86_400_000).toISOString().slice(0, 10));
      }),
    );
  });
});
