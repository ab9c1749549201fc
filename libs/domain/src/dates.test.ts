import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  dateOfDay,
  dateStartMs,
  dayNumber,
  daysBetween,
  isIsoDate,
  isTimeZone,
  utcDate,
  zonedDate,
} from './dates.js';

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

// Issue #13: business dates follow the facility's time zone, not UTC.
describe('zonedDate', () => {
  const at2330Utc = Date.UTC(2026, 11, 31, 23, 30);

  it("gives the facility's calendar date: 23:30 UTC is already the next day in Nairobi (UTC+3)", () => {
    expect(zonedDate(at2330Utc, 'Africa/Nairobi')).toBe('2027-01-01');
    expect(zonedDate(at2330Utc, 'UTC')).toBe('2026-12-31');
    expect(zonedDate(at2330Utc)).toBe('2026-12-31');
    // West of Greenwich the date lags: 02:00 UTC on 1 March is still 28 February in Lima (UTC-5).
    expect(zonedDate(Date.UTC(2027, 2, 1, 2, 0), 'America/Lima')).toBe('2027-02-28');
  });

  it('agrees with UTC for the UTC zone over the whole HLC range', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 253_402_300_799_999 }), (ms) => {
        expect(zonedDate(ms, 'UTC')).toBe(utcDate(ms));
        expect(zonedDate(ms, 'Etc/UTC')).toBe(utcDate(ms));
      }),
    );
  });

  it('is within a day of the UTC date in any zone, and a valid calendar date', () => {
    const zones = ['Africa/Nairobi', 'Pacific/Kiritimati', 'Pacific/Pago_Pago', 'Asia/Kathmandu'];
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 253_402_300_799_999 }), fc.constantFrom(...zones), (ms, zone) => {
        const date = zonedDate(ms, zone);
        expect(isIsoDate(date)).toBe(true);
        expect(Math.abs(daysBetween(utcDate(ms), date))).toBeLessThanOrEqual(1);
      }),
    );
  });

  it('falls back to the UTC date for an unknown zone', () => {
    expect(zonedDate(at2330Utc, 'Mars/Olympus_Mons')).toBe('2026-12-31');
    expect(isTimeZone('Mars/Olympus_Mons')).toBe(false);
    expect(isTimeZone('')).toBe(false);
    expect(isTimeZone(3)).toBe(false);
    expect(isTimeZone('Africa/Nairobi')).toBe(true);
    expect(isTimeZone('UTC')).toBe(true);
  });
});
