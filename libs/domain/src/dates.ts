/** Milliseconds in one day. */
export const DAY_MS = 86_400_000;

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

function isLeap(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return isLeap(year) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/**
 * True when `s` is an ISO calendar date `YYYY-MM-DD` that exists (no 2023-02-29, no month 13).
 *
 * @remarks Pure integer arithmetic: `Date.UTC` maps years 0–99 to 1900–1999, so it is not used here.
 */
export function isIsoDate(s: unknown): s is string {
  if (typeof s !== 'string') return false;
  const m = ISO_DATE.exec(s);
  if (m === null) return false;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  return month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth(year, month);
}

/**
 * Days since 1970-01-01 of a valid ISO date (negative before the epoch).
 *
 * @remarks Howard Hinnant's `days_from_civil`; the caller guarantees `isIsoDate(date)`.
 */
export function dayNumber(date: string): number {
  let y = Number(date.slice(0, 4));
  const m = Number(date.slice(5, 7));
  const d = Number(date.slice(8, 10));
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** The ISO date of a day number (inverse of {@link dayNumber}). */
export function dateOfDay(days: number): string {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp + (mp < 10 ? 3 : -9);
  const y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  return `${String(y).padStart(4, '0')}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
}

/** The UTC calendar date (`YYYY-MM-DD`) of a Unix time in milliseconds. */
export function utcDate(ms: number): string {
  return dateOfDay(Math.floor(ms / DAY_MS));
}

/** Unix milliseconds of 00:00 UTC on a valid ISO date. */
export function dateStartMs(date: string): number {
  return dayNumber(date) * DAY_MS;
}

/** Whole days from `from` to `to` (both valid ISO dates); negative when `to` is earlier. */
export function daysBetween(from: string, to: string): number {
  return dayNumber(to) - dayNumber(from);
}

/** The time zone of a facility that set none: business dates are UTC dates. */
export const DEFAULT_TIME_ZONE = 'UTC';

// One formatter per zone: building an Intl.DateTimeFormat costs far more than using one.
const zoneFormats = new Map<string, Intl.DateTimeFormat>();

function zoneFormat(timeZone: string): Intl.DateTimeFormat | undefined {
  let format = zoneFormats.get(timeZone);
  if (format === undefined) {
    try {
      format = new Intl.DateTimeFormat('en-US', {
        timeZone,
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        era: 'short',
        calendar: 'gregory',
        numberingSystem: 'latn',
      });
    } catch {
      return undefined;
    }
    // Unbounded input (a config file) could otherwise grow the cache without limit.
    if (zoneFormats.size < 64) zoneFormats.set(timeZone, format);
  }
  return format;
}

/** True when `s` is a time zone the platform knows (an IANA name such as `Africa/Nairobi`, or `UTC`). */
export function isTimeZone(s: unknown): s is string {
  return typeof s === 'string' && s.length > 0 && s.length <= 64 && zoneFormat(s) !== undefined;
}

/**
 * The calendar date (`YYYY-MM-DD`) at Unix time `ms` in the IANA time zone `timeZone`: the
 * facility's business date ("today" of the queue and the appointments).
 *
 * @remarks Pure (`Intl`, no clock). An unknown zone, or a time outside years 1–9999, falls back to
 * the UTC date, so a bad setting shows UTC days rather than failing a screen.
 */
export function zonedDate(ms: number, timeZone: string = DEFAULT_TIME_ZONE): string {
  const format = timeZone === DEFAULT_TIME_ZONE ? undefined : zoneFormat(timeZone);
  if (format === undefined || !Number.isFinite(ms)) return utcDate(ms);
  let year = '';
  let month = '';
  let day = '';
  let era = '';
  for (const part of format.formatToParts(ms)) {
    if (part.type === 'year') year = part.value;
    else if (part.type === 'month') month = part.value;
    else if (part.type === 'day') day = part.value;
    else if (part.type === 'era') era = part.value;
  }
  const date = `${year.padStart(4, '0')}-${month}-${day}`;
  return era === 'AD' && isIsoDate(date) ? date : utcDate(ms);
}
