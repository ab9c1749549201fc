import { DAY_MS } from '@accord/domain';

const UNITS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: DAY_MS,
};

/**
 * Milliseconds of a scenario duration or instant: a number (ms), `"90s"`, `"15m"`, `"36h"`,
 * `"2.5d"`, `"500ms"`, or `"day N"`, the start of the N-th simulated day (`"day 1"` is 0).
 *
 * @returns undefined when the text is none of these (the caller reports where).
 */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  const day = /^day\s+(\d+(?:\.\d+)?)$/i.exec(text);
  if (day !== null) {
    const n = Number(day[1]);
    return n >= 1 ? Math.round((n - 1) * DAY_MS) : undefined;
  }
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/.exec(text);
  if (m === null) return undefined;
  return Math.round(Number(m[1]) * UNITS[m[2]!]!);
}
