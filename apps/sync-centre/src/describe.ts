// Turning the agent's JSON into words: pure functions, shared by the screens and unit-tested.
import type { Details, SyncCentreStrings } from './strings.js';

/** The part of a patient the page names people by. */
export interface PatientName {
  readonly id: string;
  readonly givenName: string;
  readonly familyName: string;
}

/** A function naming a patient id as "Amina K." (the id itself when the patient is unknown). */
export function patientNamer(
  patients: readonly PatientName[] | ((id: string) => PatientName | undefined),
): (id: unknown) => string {
  const byId =
    typeof patients === 'function'
      ? patients
      : (
          (m) => (id: string) =>
            m.get(id)
        )(new Map(patients.map((p) => [p.id, p])));
  return (id) => {
    const p = typeof id === 'string' ? byId(id) : undefined;
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

/**
 * A rule in plain language, the sentence with the verdict's numbers when the rule has one, and
 * whether the relay re-judges it by itself (a 422 negative stock once its lot has stock).
 */
export function describeRule(
  t: SyncCentreStrings,
  rule: string | null,
  details: unknown,
): { readonly name: string; readonly numbers: string | undefined; readonly heals: string | undefined } {
  const known = rule === null ? undefined : t.rules[rule];
  const name = known?.name ?? t.unknownRule;
  const numbers = known?.numbers !== undefined && isDetails(details) ? known.numbers(details) : undefined;
  const heals = known?.heals !== undefined && isDetails(details) ? known.heals(details) : undefined;
  return { name, numbers, heals };
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

function field(d: Details, key: string): unknown {
  return Object.hasOwn(d, key) ? d[key] : undefined;
}

/** One field of a 409: my value against the confirmed one. */
export interface FieldConflict {
  readonly field: string;
  readonly mine: unknown;
  readonly confirmed: unknown;
  /** False for a field both sides hold alike (shown for context, e.g. the rest of a registration). */
  readonly differs: boolean;
}

/** The fields of a registration compared with the patient that holds its national id. */
const REGISTRATION_FIELDS = ['nationalId', 'givenName', 'familyName', 'birthDate', 'sex'] as const;

/**
 * Mine against the confirmed value, field by field, for a 409: a stale basis from the verdict's
 * `details.conflicts` (`proposed` is mine, `current` the confirmed value), a duplicate national id
 * against the registered patient that holds it (from `patients`, the agent's current view).
 *
 * @remarks Empty for any other rule, or when the details say nothing usable.
 */
export function conflictFields(
  item: { readonly rule: string | null; readonly data: unknown; readonly details: unknown },
  patients: readonly { readonly id: string }[],
): FieldConflict[] {
  if (!isDetails(item.details)) return [];
  if (item.rule === 'RULE_STALE_BASIS') {
    const listed = field(item.details, 'conflicts');
    const conflicts = Array.isArray(listed) ? (listed as unknown[]) : [item.details];
    return conflicts.flatMap((c) => {
      if (!isDetails(c) || typeof c['field'] !== 'string') return [];
      const mine = field(c, 'proposed') ?? null;
      const confirmed = field(c, 'current') ?? null;
      return [{ field: c['field'], mine, confirmed, differs: mine !== confirmed }];
    });
  }
  if (item.rule === 'RULE_DUPLICATE_NATIONAL_ID' && isDetails(item.data)) {
    const holderId = field(item.details, 'existingPatientId');
    const holder = patients.find((p) => p.id === holderId) as Details | undefined;
    const data = item.data;
    return REGISTRATION_FIELDS.map((f) => {
      const mine = field(data, f) ?? null;
      const confirmed = holder === undefined ? null : (field(holder, f) ?? null);
      return { field: f, mine, confirmed, differs: mine !== confirmed };
    });
  }
  return [];
}

/** What **Keep mine** records for a 409 stale basis, and the confirmed events the device must hold first. */
export interface KeepMinePlan {
  /** The `POST /api/events` body: my data again, superseding the rejected event. */
  readonly draft: { readonly type: string; readonly data: Details; readonly supersedes: string };
  /**
   * The events that set the confirmed values (`details.conflicts[].currentEvent`): the device
   * takes the basis of a new update from its own view, so once it holds these, the amend is on
   * the current confirmed basis and is not refused for the same reason again.
   */
  readonly basis: readonly string[];
}

/**
 * The one-tap "keep mine" of a 409 stale basis: an amend carrying my values, judged on the basis
 * the device holds now; undefined for any other rejection (a duplicate national id kept as it is
 * would be refused again: that one is edited).
 */
export function keepMine(item: {
  readonly id: string;
  readonly type: string;
  readonly rule: string | null;
  readonly data: unknown;
  readonly details: unknown;
}): KeepMinePlan | undefined {
  if (item.rule !== 'RULE_STALE_BASIS' || !isDetails(item.data) || !isDetails(item.details)) return undefined;
  const listed = field(item.details, 'conflicts');
  const conflicts = Array.isArray(listed) ? (listed as unknown[]) : [item.details];
  const basis = new Set<string>();
  for (const c of conflicts) {
    const current = isDetails(c) ? c['currentEvent'] : undefined;
    if (typeof current === 'string' && current !== '') basis.add(current);
  }
  return { draft: { type: item.type, data: { ...item.data }, supersedes: item.id }, basis: [...basis] };
}

/** One verdict about an event, as Inspect lists them (oldest first). */
export interface VerdictEntry {
  readonly verdictId?: string;
  readonly seq?: number;
  readonly outcome: 'accepted' | 'deadletter';
  readonly code?: number;
  readonly rule?: string;
  readonly reason?: string;
  readonly details?: Details;
  /** ISO time, or ms; absent when unknown. */
  readonly at?: string | number;
}

function verdictEntry(v: unknown): VerdictEntry | undefined {
  if (!isDetails(v) || (v['outcome'] !== 'accepted' && v['outcome'] !== 'deadletter')) return undefined;
  const entry: {
    -readonly [K in keyof VerdictEntry]: VerdictEntry[K];
  } = { outcome: v['outcome'] };
  if (typeof v['verdictId'] === 'string') entry.verdictId = v['verdictId'];
  if (typeof v['seq'] === 'number') entry.seq = v['seq'];
  if (typeof v['code'] === 'number') entry.code = v['code'];
  if (typeof v['rule'] === 'string') entry.rule = v['rule'];
  if (typeof v['reason'] === 'string') entry.reason = v['reason'];
  if (isDetails(v['details'])) entry.details = v['details'];
  if (typeof v['at'] === 'string' || typeof v['at'] === 'number') entry.at = v['at'];
  return entry;
}

/**
 * The verdicts of an event, oldest first: the agent's `verdicts` when it sends them, else (an
 * older agent) the latest verdict alone, timed by its HLC.
 *
 * @remarks Entries that do not read as a verdict are left out rather than shown half.
 */
export function verdictHistory(info: {
  readonly verdicts?: unknown;
  readonly verdictData?: unknown;
  readonly verdict?: { readonly id: string; readonly hlc: string };
}): VerdictEntry[] {
  if (Array.isArray(info.verdicts)) {
    return (info.verdicts as unknown[]).flatMap((v) => {
      const e = verdictEntry(v);
      return e === undefined ? [] : [e];
    });
  }
  const latest = verdictEntry(info.verdictData);
  if (latest === undefined) return [];
  const at = info.verdict === undefined ? undefined : hlcTime(info.verdict.hlc);
  return [
    {
      ...latest,
      ...(info.verdict === undefined ? {} : { verdictId: info.verdict.id }),
      ...(at === undefined || Number.isNaN(at) ? {} : { at }),
    },
  ];
}

/** A byte count in human units (powers of 1000): "812 B", "1.4 kB", "23 MB", "1.2 GB". */
export function humanBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '?';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  // 999.5 and up would round to "1000": shown in the next unit instead.
  while (value >= 999.5 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  // Three significant digits at most, and no ".0" on whole numbers.
  const shown = unit === 0 || value >= 100 ? String(Math.round(value)) : String(Number(value.toPrecision(2)));
  return `${shown} ${units[unit] ?? ''}`;
}

/**
 * Event types whose "leave server version" the relay's default policy guards with the admin's
 * password (clinical records; libs/relay `DEFAULT_FACILITY_POLICY`): the page asks for it up front
 * for these, and offers it for any other.
 */
export const ADMIN_DISCARD_TYPES: readonly string[] = [
  'VaccinationAdministered',
  'PatientRegistered',
  'PatientCheckedIn',
  'EncounterStarted',
  'EncounterCompleted',
  'EncounterCancelled',
];

/** True when leaving the server version of an event of `type` needs the admin's password. */
export function discardNeedsAdmin(type: string): boolean {
  return ADMIN_DISCARD_TYPES.includes(type);
}

/** The UTC day (YYYY-MM-DD) of `ms`. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** The range the integrity screen opens with: the 30 UTC days up to the day of `nowMs` (the agent's default). */
export function defaultRange(nowMs: number): { from: string; to: string } {
  return { from: utcDay(nowMs - 29 * 86_400_000), to: utcDay(nowMs) };
}

/** The days of an integrity comparison where the tablet and the server differ, in day order. */
export function daysToResubmit(days: readonly { readonly day: string; readonly match: boolean }[]): string[] {
  return days
    .filter((d) => !d.match)
    .map((d) => d.day)
    .sort();
}

/**
 * A stock correction from the form: the signed `delta` of a `StockAdjusted` (undefined unless
 * `doses` is a whole number 1 or more) and the lot's balance after it (undefined when unknown).
 */
export function stockCorrection(
  balance: number | undefined,
  direction: 'remove' | 'add',
  doses: string,
): { readonly delta: number | undefined; readonly after: number | undefined } {
  const n = /^\d{1,7}$/.test(doses.trim()) ? Number(doses.trim()) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1) return { delta: undefined, after: undefined };
  const delta = direction === 'remove' ? -n : n;
  return { delta, after: balance === undefined ? undefined : balance + delta };
}

/** The fields of a patient the edit form changed (trimmed; unchanged and emptied fields left out). */
export function demographicChanges<K extends string>(
  before: { readonly [field in NoInfer<K>]?: unknown },
  after: { readonly [field in K]: string },
): Partial<Record<K, string>> {
  const changes: Partial<Record<K, string>> = {};
  for (const k of Object.keys(after) as K[]) {
    const v = after[k].trim();
    if (v !== '' && v !== before[k]) changes[k] = v;
  }
  return changes;
}
