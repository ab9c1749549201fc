import fc from 'fast-check';
import type { DeviceId, EventId, FacilityId, Hlc, JsonValue, SignedEvent, Subject } from '@accord/protocol';
import {
  RejectionCode,
  SystemEventType,
  asFacilityId,
  deviceIdFromPublicKey,
  formatHlc,
  newEventId,
  parseHlc,
} from '@accord/protocol';
import { ANTIGEN_SCHEDULE } from './antigens.js';
import { checkEventData, DomainEventType, isDomainEventType } from './catalogue.js';
import { dateOfDay, dateStartMs, dayNumber } from './dates.js';
import { prepareDraft } from './draft.js';
import { Projection } from './projection.js';
import type { LogState } from './status.js';

/** The facility of generated events. */
export const TEST_FACILITY: FacilityId = asFacilityId('test-facility');
/** A well-formed placeholder signature: pure folds never verify signatures. */
export const TEST_SIG = 'A'.repeat(86);
/** "Today" of generated facilities. */
export const FACILITY_TODAY = '2024-06-01';
/** The relay clock for validating generated facilities: noon UTC on {@link FACILITY_TODAY}. */
export const FACILITY_NOW_MS = dateStartMs(FACILITY_TODAY) + 12 * 3_600_000;

/** A deterministic, well-formed device id for tests (`n` in 0..255). */
export function testDeviceId(n: number): DeviceId {
  return deviceIdFromPublicKey(new Uint8Array(32).fill(n & 0xff));
}

/** The relay's device id in tests. */
export const TEST_RELAY: DeviceId = testDeviceId(255);

const ID_EPOCH = Date.UTC(2024, 0, 1);

/**
 * A deterministic, well-formed event id; ids of one `salt` sort by `n`.
 *
 * @remarks The time part is `2024-01-01 + n ms`; the random part encodes `salt` and `n`, so two
 * factories with different salts never make the same id.
 */
export function testEventId(n: number, salt = 0): EventId {
  const rnd = new Uint8Array(10);
  rnd[0] = (salt >>> 8) & 0xff;
  rnd[1] = salt & 0xff;
  let x = n;
  for (let i = 9; i >= 2 && x > 0; i--) {
    rnd[i] = x % 256;
    x = Math.floor(x / 256);
  }
  return newEventId(ID_EPOCH + n, rnd);
}

/** Optional envelope fields for {@link EventFactory.event}. */
export interface EventExtras {
  readonly deps?: readonly EventId[];
  readonly basis?: Readonly<Record<string, EventId | null>>;
  readonly supersedes?: EventId;
  readonly schema?: number;
  readonly subject?: Subject;
  readonly hlc?: Hlc;
  readonly id?: EventId;
  readonly seq?: number;
}

/** Fields of a deadletter verdict made by {@link EventFactory.reject}. */
export interface RejectFields {
  readonly code?: RejectionCode;
  readonly rule?: string;
  readonly reason?: string;
  readonly details?: { readonly [k: string]: JsonValue };
}

/**
 * Builds unsigned-but-well-formed events for tests: ids, per-device `seq`, and one increasing
 * HLC clock shared by all devices (each event 1 s after the previous).
 *
 * @remarks Events carry {@link TEST_SIG}; pure folds take signatures as given. Verdicts are
 * "signed" by `relay` with contiguous relay `seq` and confirmed `seq` for accepted ones.
 */
export class EventFactory {
  static #instances = 1000;
  readonly relay: DeviceId;
  readonly facility: FacilityId;
  readonly salt: number;
  #n = 0;
  #clockMs: number;
  #counter = 0;
  #seqs = new Map<DeviceId, number>();
  #confirmedSeq = 0;

  /**
   * @param opts.salt distinguishes this factory's event ids from other factories' (default: a
   * fresh number per factory, from 1001; {@link buildFacility} uses 0, {@link arbFacilityLog} 1).
   */
  constructor(opts: { startMs?: number; relay?: DeviceId; facility?: FacilityId; salt?: number } = {}) {
    this.salt = opts.salt ?? ++EventFactory.#instances;
    this.relay = opts.relay ?? TEST_RELAY;
    this.facility = opts.facility ?? TEST_FACILITY;
    this.#clockMs = opts.startMs ?? FACILITY_NOW_MS - 10 * 3_600_000;
  }

  /** Moves the shared clock forward so the next HLC sorts after `hlc`. */
  after(hlc: Hlc): void {
    const { wallMs } = parseHlc(hlc);
    if (wallMs >= this.#clockMs) {
      this.#clockMs = wallMs;
      this.#counter = 0;
    }
  }

  /** Advances the shared clock. */
  tick(ms: number): void {
    this.#clockMs += ms;
    this.#counter = 0;
  }

  /** The next HLC of the shared clock (1 s after the previous one). */
  nextHlc(): Hlc {
    this.#clockMs += 1000;
    return formatHlc(this.#clockMs, this.#counter);
  }

  /** The next confirmed sequence number an {@link EventFactory.accept} would use. */
  get nextConfirmedSeq(): number {
    return this.#confirmedSeq + 1;
  }

  /** A new event of any type; the subject is derived from the data when the data is valid. */
  event(device: DeviceId, type: string, data: unknown, extra: EventExtras = {}): SignedEvent {
    const seq = extra.seq ?? (this.#seqs.get(device) ?? 0) + 1;
    this.#seqs.set(device, Math.max(seq, this.#seqs.get(device) ?? 0));
    // Verdicts and other system events name their own subject; only domain data is checked.
    const checked =
      extra.subject === undefined && isDomainEventType(type)
        ? checkEventData(type, extra.schema ?? 1, data)
        : undefined;
    const subject =
      extra.subject ?? (checked?.ok === true ? checked.value.subject : { kind: 'unknown', id: 'unknown' });
    return {
      v: 1,
      id: extra.id ?? testEventId(++this.#n, this.salt),
      facility: this.facility,
      device,
      seq,
      hlc: extra.hlc ?? this.nextHlc(),
      type,
      schema: extra.schema ?? 1,
      subject: { kind: subject.kind, id: subject.id },
      deps: [...(extra.deps ?? [])],
      ...(extra.basis !== undefined ? { basis: { ...extra.basis } } : {}),
      ...(extra.supersedes !== undefined ? { supersedes: extra.supersedes } : {}),
      data: data as JsonValue,
      sig: TEST_SIG,
    };
  }

  /**
   * A domain event as a device would record it on `view`: deps and basis from `prepareDraft`.
   *
   * @throws Error when the draft is invalid (a test bug).
   */
  record(
    view: Projection,
    device: DeviceId,
    type: string,
    data: unknown,
    extra: EventExtras = {},
  ): SignedEvent {
    const prepared = prepareDraft(view, { type, data });
    if (!prepared.ok) throw new Error(`invalid draft ${type}: ${prepared.error.message}`);
    const p = prepared.value;
    return this.event(device, p.type, p.data, {
      deps: p.deps,
      ...(p.basis !== undefined ? { basis: p.basis } : {}),
      ...extra,
    });
  }

  #verdict(target: EventId, data: JsonValue, hlc?: Hlc): SignedEvent {
    return this.event(this.relay, SystemEventType.Verdict, data, {
      subject: { kind: 'event', id: target },
      deps: [target],
      ...(hlc !== undefined ? { hlc } : {}),
    });
  }

  /** A relay verdict accepting `target` with the next confirmed sequence number (or `seq`). */
  accept(target: SignedEvent | EventId, seq?: number): SignedEvent {
    const id = typeof target === 'string' ? target : target.id;
    const s = seq ?? ++this.#confirmedSeq;
    this.#confirmedSeq = Math.max(this.#confirmedSeq, s);
    return this.#verdict(id, { target: id, outcome: 'accepted', seq: s, ruleSet: 'accord-rules/1' });
  }

  /**
   * One relay `AcceptedVerdicts` event accepting `targets` in order, with the next confirmed
   * sequence numbers (or from `firstSeq`).
   */
  acceptAll(targets: readonly (SignedEvent | EventId)[], firstSeq?: number): SignedEvent {
    const ids = targets.map((t) => (typeof t === 'string' ? t : t.id));
    const first = firstSeq ?? this.#confirmedSeq + 1;
    this.#confirmedSeq = Math.max(this.#confirmedSeq, first + ids.length - 1);
    return this.event(
      this.relay,
      SystemEventType.AcceptedVerdicts,
      { ruleSet: 'accord-rules/1', firstSeq: first, targets: ids },
      { subject: { kind: 'verdicts', id: this.facility } },
    );
  }

  /** A relay verdict rejecting `target` (default: a 422 `RULE_TEST`). */
  reject(target: SignedEvent | EventId, fields: RejectFields = {}): SignedEvent {
    const id = typeof target === 'string' ? target : target.id;
    return this.#verdict(id, {
      target: id,
      outcome: 'deadletter',
      code: fields.code ?? RejectionCode.Rule,
      rule: fields.rule ?? 'RULE_TEST',
      reason: fields.reason ?? 'rejected by a test',
      details: fields.details ?? {},
      ruleSet: 'accord-rules/1',
    });
  }

  /** A `RetryRequested` for `target` from `device`. */
  retry(device: DeviceId, target: SignedEvent | EventId): SignedEvent {
    const id = typeof target === 'string' ? target : target.id;
    return this.event(
      device,
      SystemEventType.RetryRequested,
      { target: id },
      { subject: { kind: 'event', id }, deps: [id] },
    );
  }

  /** A `DeadletterDiscarded` for `target` from `device`. */
  discard(device: DeviceId, target: SignedEvent | EventId, reason = 'keep theirs'): SignedEvent {
    const id = typeof target === 'string' ? target : target.id;
    return this.event(
      device,
      SystemEventType.DeadletterDiscarded,
      { target: id, reason },
      { subject: { kind: 'event', id }, deps: [id] },
    );
  }
}

/** A {@link LogState} over `events` (later duplicates of an id are ignored). */
export function logState(events: Iterable<SignedEvent>, relay: DeviceId | null = TEST_RELAY): LogState {
  const map = new Map<EventId, SignedEvent>();
  for (const e of events) if (!map.has(e.id)) map.set(e.id, e);
  return { events: map, relay };
}

// ---------------------------------------------------------------------------------------------
// A small facility generator.

/** Kinds of operation the facility generator interprets. */
export const FACILITY_OP_KINDS = [
  'register',
  'update',
  'receive',
  'vaccinate',
  'consume',
  'adjust',
  'checkIn',
  'advance',
  'schedule',
  'cancelAppointment',
  'merge',
] as const;
/** One of {@link FACILITY_OP_KINDS}. */
export type FacilityOpKind = (typeof FACILITY_OP_KINDS)[number];

/** An abstract operation: a kind, the acting device and three selectors the interpreter reduces modulo what exists. */
export interface FacilityOp {
  readonly kind: FacilityOpKind;
  readonly device: number;
  readonly a: number;
  readonly b: number;
  readonly c: number;
}

/** Options of the facility generator. */
export interface FacilityOptions {
  /** Number of devices recording events (default 3). */
  readonly devices?: number;
  /** Most operations (default 40); some operations produce nothing when nothing fits. */
  readonly maxOps?: number;
  /** Whether patients get merged (default true). */
  readonly merges?: boolean;
}

/** Generated facility history: events in causal (generation) order and the devices that made them. */
export interface FacilityHistory {
  readonly events: readonly SignedEvent[];
  readonly devices: readonly DeviceId[];
}

const GIVEN = ['Amina', 'Chikondi', 'Grace', 'John', 'Kondwani', 'Mphatso', 'Tiyamike', 'Yamikani'];
const FAMILY = ['Banda', 'Phiri', 'Mwale', 'Tembo', 'Chirwa', 'Gondwe'];
const SEXES = ['female', 'male', 'other', 'unknown'] as const;
const ANTIGENS = Object.keys(ANTIGEN_SCHEDULE).sort();

/**
 * Turns abstract operations into a valid facility history: every reference exists, and every
 * event passes the rules of `@accord/rules` when validated in order against the state of the
 * events before it (with `nowMs` = {@link FACILITY_NOW_MS}); deps and basis come from
 * `prepareDraft` on that state.
 *
 * @remarks Deterministic; operations that cannot apply (no patient yet, no stock) produce nothing.
 */
export function buildFacility(ops: readonly FacilityOp[], opts: FacilityOptions = {}): FacilityHistory {
  const deviceCount = Math.max(1, opts.devices ?? 3);
  const devices = Array.from({ length: deviceCount }, (_, i) => testDeviceId(i + 1));
  const factory = new EventFactory({ salt: 0 });
  const view = Projection.empty();
  const events: SignedEvent[] = [];
  const live: string[] = [];
  const lots: string[] = [];
  const lotsByAntigen = new Map<string, string[]>();
  const open: string[] = [];
  const booked: string[] = [];
  const today = dayNumber(FACILITY_TODAY);
  let n = 0;

  const emit = (device: DeviceId, type: string, data: unknown): void => {
    const e = factory.record(view, device, type, data);
    view.apply(e);
    events.push(e);
  };
  const pick = <T>(list: readonly T[], k: number): T | undefined =>
    list.length === 0 ? undefined : list[k % list.length];

  for (const op of ops) {
    const device = devices[op.device % deviceCount]!;
    n++;
    switch (op.kind) {
      case 'register': {
        const patientId = `P${n}`;
        emit(device, DomainEventType.PatientRegistered, {
          patientId,
          nationalId: `NID${n}`,
          givenName: GIVEN[op.b % GIVEN.length]!,
          familyName: FAMILY[op.c % FAMILY.length]!,
          birthDate: dateOfDay(today - (op.a % 2000)),
          sex: SEXES[(op.a + op.b) % SEXES.length]!,
        });
        live.push(patientId);
        break;
      }
      case 'update': {
        const patientId = pick(live, op.a);
        if (patientId === undefined) break;
        const choice = op.b % 4;
        const changes =
          choice === 0
            ? { givenName: GIVEN[op.c % GIVEN.length]! }
            : choice === 1
              ? { familyName: FAMILY[op.c % FAMILY.length]! }
              : choice === 2
                ? { sex: SEXES[op.c % SEXES.length]! }
                : { givenName: GIVEN[op.c % GIVEN.length]!, nationalId: `NID${n}u` };
        emit(device, DomainEventType.PatientDemographicsUpdated, { patientId, changes });
        break;
      }
      case 'receive': {
        const existing = op.a % 3 === 0 ? pick(lots, op.b) : undefined;
        const lot = existing === undefined ? undefined : view.lot(existing);
        if (lot !== undefined) {
          emit(device, DomainEventType.StockReceived, {
            lot: lot.lot,
            antigen: lot.antigen,
            quantity: 1 + (op.c % 50),
            expiry: lot.expiry,
          });
        } else {
          const id = `L${n}`;
          emit(device, DomainEventType.StockReceived, {
            lot: id,
            antigen: ANTIGENS[op.b % ANTIGENS.length]!,
            quantity: 1 + (op.c % 50),
            expiry: dateOfDay(today + 30 + (op.c % 400)),
          });
          lots.push(id);
          const antigen = ANTIGENS[op.b % ANTIGENS.length]!;
          lotsByAntigen.set(antigen, [...(lotsByAntigen.get(antigen) ?? []), id]);
        }
        break;
      }
      case 'vaccinate': {
        const patientId = pick(live, op.a);
        if (patientId === undefined) break;
        const birth = dayNumber(view.patientField(patientId, 'birthDate')!);
        const given = view.immunizationsOf(patientId);
        // The first antigen (from a rotating start) whose next dose is due by today; when no lot
        // of it is in stock, the device receives one first.
        for (let k = 0; k < ANTIGENS.length; k++) {
          const antigen = ANTIGENS[(op.b + k) % ANTIGENS.length]!;
          const schedule = ANTIGEN_SCHEDULE[antigen]!;
          const mine = given.filter((i) => i.antigen === antigen);
          const highest = mine.reduce((m, i) => Math.max(m, i.dose), 0);
          if (highest >= schedule.doses) continue;
          const previous = mine.reduce((m, i) => Math.max(m, dayNumber(i.date)), -Infinity);
          // After a merge the previous dose may predate the survivor's birth date: never go before birth.
          const earliest = Math.max(
            birth,
            highest === 0 ? birth + schedule.minAgeDays : previous + schedule.minIntervalDays,
          );
          if (earliest > today) continue;
          const day = earliest + (op.c % (today - earliest + 1));
          const date = dateOfDay(day);
          // Newest lots first, and only a few: keeps generation linear for 100k-event facilities.
          const candidates = (lotsByAntigen.get(antigen) ?? []).slice(-8).reverse();
          let lot = candidates.map((l) => view.lot(l)!).find((l) => l.balance >= 1 && l.expiry >= date)?.lot;
          if (lot === undefined) {
            lot = `L${n}`;
            emit(device, DomainEventType.StockReceived, {
              lot,
              antigen,
              quantity: 1 + (op.c % 20),
              expiry: dateOfDay(today + 30 + (op.a % 400)),
            });
            lots.push(lot);
            lotsByAntigen.set(antigen, [...(lotsByAntigen.get(antigen) ?? []), lot]);
          }
          emit(device, DomainEventType.VaccinationAdministered, {
            patientId,
            antigen,
            dose: highest + 1,
            lot,
            date,
            ...(op.a % 2 === 0 ? { performer: `nurse-${op.device % 4}` } : {}),
          });
          break;
        }
        break;
      }
      case 'consume': {
        const id = pick(lots, op.a);
        const lot = id === undefined ? undefined : view.lot(id);
        if (lot === undefined || lot.balance < 1) break;
        emit(device, DomainEventType.StockConsumed, {
          lot: lot.lot,
          quantity: 1 + (op.c % lot.balance),
          ...(op.b % 2 === 0 ? { reason: 'wastage' } : {}),
        });
        break;
      }
      case 'adjust': {
        const id = pick(lots, op.a);
        if (id === undefined) break;
        const lot = view.lot(id)!;
        let delta = (op.c % 21) - 10;
        if (lot.balance + delta < 0) delta = -lot.balance;
        if (delta === 0) delta = 1;
        emit(device, DomainEventType.StockAdjusted, { lot: id, delta, reason: 'physical count' });
        break;
      }
      case 'checkIn': {
        const patientId = pick(live, op.a);
        if (patientId === undefined || view.openEncountersOf(patientId).length > 0) break;
        const encounterId = `E${n}`;
        emit(device, DomainEventType.PatientCheckedIn, { patientId, encounterId });
        open.push(encounterId);
        break;
      }
      case 'advance': {
        if (open.length === 0) break;
        const i = op.a % open.length;
        const encounterId = open[i]!;
        const enc = view.encounter(encounterId)!;
        const cancel = op.b % 4 === 0;
        if (cancel) {
          emit(device, DomainEventType.EncounterCancelled, {
            encounterId,
            ...(op.c % 2 === 0 ? { reason: 'left' } : {}),
          });
        } else {
          emit(
            device,
            enc.state === 'waiting' ? DomainEventType.EncounterStarted : DomainEventType.EncounterCompleted,
            {
              encounterId,
            },
          );
        }
        if (cancel || enc.state === 'in-progress') open.splice(i, 1);
        break;
      }
      case 'schedule': {
        const patientId = pick(live, op.a);
        if (patientId === undefined) break;
        const antigen = ANTIGENS[op.b % ANTIGENS.length]!;
        const highest = view
          .immunizationsOf(patientId)
          .reduce((m, i) => (i.antigen === antigen ? Math.max(m, i.dose) : m), 0);
        if (highest >= ANTIGEN_SCHEDULE[antigen]!.doses) break;
        const birth = view.patientField(patientId, 'birthDate')!;
        const proposed = dateOfDay(today + (op.c % 60) - 10);
        const appointmentId = `A${n}`;
        emit(device, DomainEventType.AppointmentScheduled, {
          appointmentId,
          patientId,
          antigen,
          dose: highest + 1,
          date: proposed < birth ? birth : proposed,
        });
        booked.push(appointmentId);
        break;
      }
      case 'cancelAppointment': {
        if (booked.length === 0) break;
        const i = op.a % booked.length;
        emit(device, DomainEventType.AppointmentCancelled, {
          appointmentId: booked[i]!,
          ...(op.b % 2 === 0 ? { reason: 'rescheduled' } : {}),
        });
        booked.splice(i, 1);
        break;
      }
      case 'merge': {
        if (opts.merges === false || live.length < 2) break;
        const i = op.a % live.length;
        const j = (i + 1 + (op.b % (live.length - 1))) % live.length;
        emit(device, DomainEventType.PatientsMerged, { survivorId: live[i]!, mergedId: live[j]! });
        live.splice(j, 1);
        break;
      }
    }
  }
  return { events, devices };
}

/** Arbitrary {@link FacilityOp} (registrations, stock and vaccinations weighted up). */
export function arbFacilityOp(opts: FacilityOptions = {}): fc.Arbitrary<FacilityOp> {
  const kinds: FacilityOpKind[] = [
    'register',
    'register',
    'register',
    'update',
    'update',
    'receive',
    'receive',
    'vaccinate',
    'vaccinate',
    'vaccinate',
    'consume',
    'adjust',
    'checkIn',
    'checkIn',
    'advance',
    'advance',
    'schedule',
    'cancelAppointment',
    ...(opts.merges === false ? [] : (['merge'] as const)),
  ];
  return fc.record({
    kind: fc.constantFrom(...kinds),
    device: fc.nat({ max: Math.max(0, (opts.devices ?? 3) - 1) }),
    a: fc.nat({ max: 1_000 }),
    b: fc.nat({ max: 1_000 }),
    c: fc.nat({ max: 1_000 }),
  });
}

/** Arbitrary valid facility history (see {@link buildFacility}); shrinks by dropping operations. */
export function arbFacility(opts: FacilityOptions = {}): fc.Arbitrary<FacilityHistory> {
  return fc
    .array(arbFacilityOp(opts), { maxLength: opts.maxOps ?? 40, size: 'max' })
    .map((ops) => buildFacility(ops, opts));
}

/**
 * Deterministic pseudo-random operations for large facilities (benchmarks, 100k-event folds)
 * without fast-check: a seeded xorshift, weighted like {@link arbFacilityOp}.
 */
export function randomFacilityOps(count: number, seed = 1, opts: FacilityOptions = {}): FacilityOp[] {
  let x = seed | 0 || 1;
  const next = (): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % 1_000_000;
  };
  const weights: [FacilityOpKind, number][] = [
    ['register', 4],
    ['update', 2],
    ['receive', 2],
    ['vaccinate', 4],
    ['consume', 1],
    ['adjust', 1],
    ['checkIn', 2],
    ['advance', 3],
    ['schedule', 2],
    ['cancelAppointment', 1],
    ['merge', opts.merges === false ? 0 : 1],
  ];
  const total = weights.reduce((s, [, w]) => s + w, 0);
  const devices = Math.max(1, opts.devices ?? 3);
  const out: FacilityOp[] = [];
  for (let i = 0; i < count; i++) {
    let r = next() % total;
    let kind: FacilityOpKind = 'register';
    for (const [k, w] of weights) {
      if (r < w) {
        kind = k;
        break;
      }
      r -= w;
    }
    out.push({ kind, device: next() % devices, a: next(), b: next(), c: next() });
  }
  return out;
}

/** What the simulated relay does with one event in {@link buildLog}. */
export type VerdictPlan =
  | 'none'
  | 'accept'
  | 'accept-batch'
  | 'reject'
  | 'reject-retry'
  | 'reject-discard'
  | 'reject-amend'
  | 'reject-retry-accept';

/** All {@link VerdictPlan}s. */
export const VERDICT_PLANS: readonly VerdictPlan[] = [
  'none',
  'accept',
  'accept-batch',
  'reject',
  'reject-retry',
  'reject-discard',
  'reject-amend',
  'reject-retry-accept',
];

/**
 * Adds relay verdicts and resolutions to `events` (in order) following `plans` (cycled): accepted
 * verdicts get confirmed `seq` 1, 2, … in the order they are issued (a run of `accept-batch`
 * plans shares one `AcceptedVerdicts` event, as the relay writes them); retries and discards come
 * from the event's own device; an amend is a copy of the event (new id) that `supersedes` it.
 *
 * @remarks The relay here does not run the rules: an event may be accepted although something it
 * depends on was rejected (the fold then skips it). Returns the domain events followed by the
 * sync events, all with HLCs after the domain events'.
 */
export function buildLog(
  events: readonly SignedEvent[],
  plans: readonly VerdictPlan[],
  factory: EventFactory = new EventFactory(),
): SignedEvent[] {
  const out: SignedEvent[] = [...events];
  for (const e of events) factory.after(e.hlc);
  let batch: SignedEvent[] = [];
  const flush = (): void => {
    if (batch.length > 0) out.push(factory.acceptAll(batch));
    batch = [];
  };
  events.forEach((e, i) => {
    const plan = plans.length === 0 ? 'none' : plans[i % plans.length]!;
    if (plan === 'none') return;
    if (plan === 'accept-batch') {
      batch.push(e);
      return;
    }
    flush();
    if (plan === 'accept') {
      out.push(factory.accept(e));
      return;
    }
    out.push(factory.reject(e));
    if (plan === 'reject-retry' || plan === 'reject-retry-accept') out.push(factory.retry(e.device, e));
    if (plan === 'reject-retry-accept') out.push(factory.accept(e));
    if (plan === 'reject-discard') out.push(factory.discard(e.device, e));
    if (plan === 'reject-amend') {
      out.push(
        factory.event(e.device, e.type, e.data, {
          deps: e.deps,
          ...(e.basis !== undefined ? { basis: e.basis } : {}),
          supersedes: e.id,
        }),
      );
    }
  });
  flush();
  return out;
}

/** A generated facility log: domain events plus relay verdicts and resolutions (see {@link buildLog}). */
export interface FacilityLog {
  readonly history: FacilityHistory;
  readonly events: readonly SignedEvent[];
}

/** Arbitrary {@link FacilityLog}, mostly accepted, with every kind of verdict and resolution. */
export function arbFacilityLog(opts: FacilityOptions = {}): fc.Arbitrary<FacilityLog> {
  const plan = fc.oneof(
    { weight: 4, arbitrary: fc.constant<VerdictPlan>('accept') },
    { weight: 4, arbitrary: fc.constant<VerdictPlan>('accept-batch') },
    { weight: 2, arbitrary: fc.constant<VerdictPlan>('none') },
    { weight: 3, arbitrary: fc.constantFrom<VerdictPlan>(...VERDICT_PLANS) },
  );
  return fc
    .tuple(arbFacility(opts), fc.array(plan, { minLength: 1, maxLength: 30 }))
    .map(([history, plans]) => ({
      history,
      events: buildLog(history.events, plans, new EventFactory({ salt: 1 })),
    }));
}
