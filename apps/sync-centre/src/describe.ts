// Turning the agent's JSON into words: pure functions, shared by the screens and unit-tested.
import type { Details, SyncCentreStrings } from './strings.js';

/** The part of a patient the page names people by. */
export interface PatientName {
  readonly id: string;
  readonly givenName: string;
  readonly familyName: string;
}

/** A function naming a patient id as "Amina K." (the id itself when the patient is unknown). */
export function patientNamer(patients: readonly PatientName[]): (id: unknown) => string {
  const byId = new Map(patients.map((p) => [p.id, p]));
  return (id) => {
    const p = typeof id === 'string' ? byId.get(id) : undefined;
    if (p === undefined) return typeof id === 'string' ? id : '?';
    return `${p.givenName} ${p.familyName.slice(0, 1)}.`;
  };
}

function isDetails(v: unknown): v is Details {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** One event in words: "Vaccination: BCG dose 1 for Amina K., lot M-442". */
export function describeEvent(
  t: SyncCentreStrings,
  type: string,
  data: unknown,
  patient: (id: unknown) => string,
): string {
  const words = t.events[type];
  if (words === undefined || !isDetails(data)) return t.unknownEvent(type);
  return words(data, patient);
}

/** A rule in plain language, and the sentence with the verdict's numbers when the rule has one. */
export function describeRule(
  t: SyncCentreStrings,
  rule: string | null,
  details: unknown,
): { readonly name: string; readonly numbers: string | undefined } {
  const known = rule === null ? undefined : t.rules[rule];
  const name = known?.name ?? t.unknownRule;
  const numbers = known?.numbers !== undefined && isDetails(details) ? known.numbers(details) : undefined;
  return { name, numbers };
}

/** What a rejection code means and how it is resolved (never the code alone). */
export function describeCode(t: SyncCentreStrings, code: number | null): { meaning: string; how: string } {
  const entry = code === null ? undefined : t.codes[String(code)];
  return entry ?? t.codes['unknown'] ?? { meaning: '', how: '' };
}

/** Items grouped by `code`, the groups in the order of DESIGN.md §4 (then any other code). */
export function groupByCode<T extends { readonly code: number | null }>(
  items: readonly T[],
): { readonly code: number | null; readonly items: readonly T[] }[] {
  const order = [500, 422, 409, 404, 410, 403];
  const groups = new Map<number | null, T[]>();
  for (const item of items) {
    const list = groups.get(item.code) ?? [];
    list.push(item);
    groups.set(item.code, list);
  }
  const rank = (c: number | null): number => {
    const i = c === null ? -1 : order.indexOf(c);
    return i === -1 ? order.length : i;
  };
  return [...groups.entries()]
    .sort(([a], [b]) => rank(a) - rank(b))
    .map(([code, list]) => ({ code, items: list }));
}

/** The wall time of an HLC (`2026-03-14T09:30:00.000Z…`) in ms, or NaN. */
export function hlcTime(hlc: string): number {
  return Date.parse(hlc.slice(0, 24));
}
