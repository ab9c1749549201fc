// Model-based test of the Adjudicator against a deliberately simple reference: a from-scratch
// recomputation that, at every step, first looks at every verdict for a negative-stock 422 due to
// be judged again (oldest verdict first), then scans every event for the smallest one it may judge
// (ready first, then expired with dependencies first), re-folds the confirmed state from all
// accepted events, and finds 404 re-validations by looking at every verdict. Random facility
// histories plus hostile and broken events are delivered in random order, with duplicates, echoes
// of the relay's own verdicts, retries, discards, amends, stock taken from and given to small lots,
// restarts from the relay's log and random decide() times.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DeviceId, EventId, JsonValue, RejectionCode, SignedEvent, VerdictData } from '@accord/protocol';
import { SystemEventType, asFacilityId, parseVerdictData } from '@accord/protocol';
import { Projection, compareTentative, isSystemEventType } from '@accord/domain';
import type { FacilityHistory } from '@accord/domain/testing';
import {
  EventFactory,
  FACILITY_NOW_MS,
  TEST_FACILITY,
  TEST_RELAY,
  arbFacility,
  testDeviceId,
  testEventId,
} from '@accord/domain/testing';
import type { RuleVerdict } from '@accord/rules';
import {
  RULE_DEPENDENCY_MISSING,
  RULE_DEVICE_REVOKED,
  RULE_NEGATIVE_STOCK,
  RULE_NOT_DEADLETTERED,
  RULE_NOT_FOUND,
  RULE_RELAY_ONLY,
  RULE_SET_VERSION,
  RULE_SUPERSEDES_ACCEPTED,
  RULE_UNKNOWN_DEVICE,
  RULE_WRONG_FACILITY,
  validate,
} from '@accord/rules';
import { Adjudicator } from './adjudicator.js';

const DEADLINE = 30_000;
const RELAY = TEST_RELAY;
const MEMBERS = [testDeviceId(1), testDeviceId(2), testDeviceId(3)];
const REVOKED = testDeviceId(9);
const STRANGER = testDeviceId(60);
const ROSTER = new Map<DeviceId, { revoked: boolean }>([
  ...MEMBERS.map((d): [DeviceId, { revoked: boolean }] => [d, { revoked: false }]),
  [REVOKED, { revoked: true }],
]);
const member = (d: DeviceId): { revoked: boolean } | undefined => ROSTER.get(d);

// ---------------------------------------------------------------------------------------------
// The reference: the semantics of the Adjudicator's @remarks, written as plainly as possible.

interface RefEvent {
  readonly e: SignedEvent;
  readonly addedAt: number;
}

type Outcome =
  | { outcome: 'accepted' }
  | { outcome: 'deadletter'; code: number; rule: string; details: { readonly [k: string]: JsonValue } };

class Reference {
  readonly #events = new Map<EventId, RefEvent>();
  readonly #history = new Map<EventId, { data: VerdictData; envSeq: number }>();
  readonly #issued = new Map<EventId, VerdictData[]>();
  /** When each target's latest issued verdict was issued (a count of issued verdicts). */
  readonly #issuedAt = new Map<EventId, number>();
  /** The lot record (JSON) an open negative-stock 422 was last judged again against, not accepted. */
  readonly #rejudgedAt = new Map<EventId, string>();
  #lastSeq = 0;
  #issuedCount = 0;
  #cache: Projection | undefined;

  add(e: SignedEvent, now: number): void {
    if (this.#events.has(e.id)) return;
    this.#events.set(e.id, { e, addedAt: now });
    this.#cache = undefined;
    if (e.device !== RELAY || e.type !== SystemEventType.Verdict || e.facility !== TEST_FACILITY) return;
    const r = parseVerdictData(e.data);
    if (!r.ok) return;
    const data = r.value;
    if (data.outcome === 'accepted') this.#lastSeq = Math.max(this.#lastSeq, data.seq);
    if (this.#issued.has(data.target)) return;
    const cur = this.#history.get(data.target);
    if (cur === undefined || cur.envSeq < e.seq) {
      this.#history.set(data.target, { data, envSeq: e.seq });
      this.#rejudgedAt.delete(data.target);
    }
  }

  latest(id: EventId): VerdictData | undefined {
    return this.#issued.get(id)?.at(-1) ?? this.#history.get(id)?.data;
  }

  get lastSeq(): number {
    return this.#lastSeq;
  }

  #submission(id: EventId): SignedEvent | undefined {
    const x = this.#events.get(id);
    return x !== undefined && x.e.device !== RELAY ? x.e : undefined;
  }

  #undecided(id: EventId): boolean {
    return this.#submission(id) !== undefined && this.latest(id) === undefined;
  }

  #satisfied(id: EventId): boolean {
    const x = this.#events.get(id);
    return x !== undefined && (x.e.device === RELAY || this.latest(id) !== undefined);
  }

  #waitOn(e: SignedEvent): EventId[] {
    const out = new Set<EventId>(e.deps);
    const t = targetOf(e);
    if (t !== undefined) out.add(t);
    if (typeof e.supersedes === 'string') out.add(e.supersedes);
    return [...out];
  }

  resolved(x: EventId): boolean {
    for (const { e } of this.#events.values()) {
      if (e.device === RELAY || this.latest(e.id)?.outcome !== 'accepted') continue;
      if (e.type === SystemEventType.DeadletterDiscarded && targetOf(e) === x) return true;
      if (!isSystemEventType(e.type) && e.supersedes === x) return true;
    }
    return false;
  }

  confirmed(): Projection {
    if (this.#cache !== undefined) return this.#cache;
    const accepted: { e: SignedEvent; seq: number }[] = [];
    for (const { e } of this.#events.values()) {
      const l = this.latest(e.id);
      if (e.device !== RELAY && l?.outcome === 'accepted') accepted.push({ e, seq: l.seq });
    }
    accepted.sort((a, b) => a.seq - b.seq || (a.e.id < b.e.id ? -1 : 1));
    const p = Projection.empty();
    for (const { e } of accepted) p.apply(e);
    this.#cache = p;
    return p;
  }

  #eligible(id: EventId, c: Projection): boolean {
    const l = this.latest(id);
    if (l?.outcome !== 'deadletter' || l.code !== 404 || l.rule !== RULE_DEPENDENCY_MISSING) return false;
    const m = l.details['missing'];
    const missing = Array.isArray(m) ? m.filter((x): x is string => typeof x === 'string') : [];
    return missing.length > 0 && missing.every((x) => c.hasEvent(x as EventId)) && !this.resolved(id);
  }

  /**
   * The negative-stock 422 to judge again now, if any: the oldest verdict (history by relay seq,
   * then issued ones in issue order) of an unresolved domain event whose lot's confirmed balance
   * covers what it requested and whose lot record is not the one it was last judged again against.
   */
  #restockable(c: Projection): { e: SignedEvent; lotKey: string } | undefined {
    let best: { e: SignedEvent; lotKey: string; age: [number, number] } | undefined;
    for (const { e } of this.#events.values()) {
      if (e.device === RELAY || isSystemEventType(e.type)) continue;
      const l = this.latest(e.id);
      if (l?.outcome !== 'deadletter' || l.code !== 422 || l.rule !== RULE_NEGATIVE_STOCK) continue;
      const { lot, requested } = l.details;
      if (typeof lot !== 'string' || typeof requested !== 'number') continue;
      const rec = c.lot(lot);
      if (rec === undefined || rec.balance < requested || this.resolved(e.id)) continue;
      const lotKey = JSON.stringify(rec);
      if (this.#rejudgedAt.get(e.id) === lotKey) continue;
      const issuedAt = this.#issuedAt.get(e.id);
      const age: [number, number] =
        issuedAt !== undefined ? [1, issuedAt] : [0, this.#history.get(e.id)!.envSeq];
      if (best === undefined || age[0] < best.age[0] || (age[0] === best.age[0] && age[1] < best.age[1])) {
        best = { e, lotKey, age };
      }
    }
    return best;
  }

  stats(): { waiting: number; deadletters: number } {
    let waiting = 0;
    for (const id of this.#events.keys()) if (this.#undecided(id)) waiting++;
    const targets = new Set([...this.#issued.keys(), ...this.#history.keys()]);
    let deadletters = 0;
    for (const t of targets) if (this.latest(t)?.outcome === 'deadletter' && !this.resolved(t)) deadletters++;
    return { waiting, deadletters };
  }

  decide(now: number, limit = Infinity): VerdictData[] {
    const out: VerdictData[] = [];
    const min = (xs: SignedEvent[]): SignedEvent | undefined =>
      xs.reduce<SignedEvent | undefined>(
        (m, e) => (m === undefined || compareTentative(e, m) < 0 ? e : m),
        undefined,
      );
    while (out.length < limit) {
      const c = this.confirmed();
      const restock = this.#restockable(c);
      if (restock !== undefined) {
        // Only an acceptance is recorded; otherwise it waits for the next change of its lot.
        const o = this.#outcome(restock.e, now);
        if (o.outcome === 'accepted') this.#issue(restock.e, o, out);
        else this.#rejudgedAt.set(restock.e.id, restock.lotKey);
        continue;
      }
      const ready: SignedEvent[] = [];
      for (const { e } of this.#events.values()) {
        if (e.device === RELAY) continue;
        if (
          this.#undecided(e.id) ? this.#waitOn(e).every((d) => this.#satisfied(d)) : this.#eligible(e.id, c)
        ) {
          ready.push(e);
        }
      }
      const next = min(ready);
      if (next !== undefined) {
        this.#judge(next, now, out);
        continue;
      }
      const expired = (id: EventId): boolean =>
        this.#undecided(id) && this.#events.get(id)!.addedAt + DEADLINE <= now;
      let cur = min([...this.#events.values()].filter((x) => expired(x.e.id)).map((x) => x.e));
      if (cur === undefined) break;
      const visited = new Set([cur.id]);
      for (;;) {
        const down = min(
          this.#waitOn(cur)
            .filter((d) => expired(d) && !visited.has(d))
            .map((d) => this.#events.get(d)!.e),
        );
        if (down === undefined) break;
        visited.add(down.id);
        cur = down;
      }
      this.#judge(cur, now, out);
    }
    return out;
  }

  #forbidden(e: SignedEvent): Outcome | undefined {
    const m = member(e.device);
    const forbidden =
      m === undefined
        ? RULE_UNKNOWN_DEVICE
        : m.revoked
          ? RULE_DEVICE_REVOKED
          : e.facility !== TEST_FACILITY
            ? RULE_WRONG_FACILITY
            : e.type === SystemEventType.Verdict || e.type === SystemEventType.RosterUpdated
              ? RULE_RELAY_ONLY
              : undefined;
    return forbidden === undefined
      ? undefined
      : { outcome: 'deadletter', code: 403, rule: forbidden, details: {} };
  }

  /** The outcome of judging a domain event (or an amend) now. */
  #outcome(e: SignedEvent, now: number): Outcome {
    const forbidden = this.#forbidden(e);
    if (forbidden !== undefined) return forbidden;
    const o = fromRules(validate(this.confirmed(), e, { nowMs: now }));
    if (
      typeof e.supersedes === 'string' &&
      (o.outcome === 'accepted' || o.code === 409 || o.code === 422) &&
      this.latest(e.supersedes)?.outcome === 'accepted'
    ) {
      return { outcome: 'deadletter', code: 409, rule: RULE_SUPERSEDES_ACCEPTED, details: {} };
    }
    return o;
  }

  #judge(e: SignedEvent, now: number, out: VerdictData[]): void {
    const forbidden = this.#forbidden(e);
    if (forbidden !== undefined) {
      this.#issue(e, forbidden, out);
      return;
    }
    if (e.type === SystemEventType.RetryRequested || e.type === SystemEventType.DeadletterDiscarded) {
      const v = validate(this.confirmed(), e, { nowMs: now });
      if (v.outcome === 'deadletter') {
        this.#issue(e, fromRules(v), out);
        return;
      }
      const target = targetOf(e)!;
      const l = this.latest(target);
      const status =
        l === undefined
          ? 'pending'
          : l.outcome === 'accepted'
            ? 'accepted'
            : this.resolved(target)
              ? 'resolved'
              : 'deadletter';
      if (status !== 'deadletter') {
        this.#issue(
          e,
          { outcome: 'deadletter', code: 409, rule: RULE_NOT_DEADLETTERED, details: { status } },
          out,
        );
        return;
      }
      const t = this.#submission(target);
      if (e.type === SystemEventType.RetryRequested && t === undefined) {
        this.#issue(e, { outcome: 'deadletter', code: 404, rule: RULE_NOT_FOUND, details: {} }, out);
        return;
      }
      this.#issue(e, { outcome: 'accepted' }, out);
      if (t !== undefined && e.type === SystemEventType.RetryRequested) this.#judge(t, now, out);
      return;
    }
    this.#issue(e, this.#outcome(e, now), out);
  }

  #issue(e: SignedEvent, o: Outcome, out: VerdictData[]): void {
    const data: VerdictData =
      o.outcome === 'accepted'
        ? { target: e.id, outcome: 'accepted', seq: ++this.#lastSeq, ruleSet: RULE_SET_VERSION }
        : {
            target: e.id,
            outcome: 'deadletter',
            code: o.code as RejectionCode,
            rule: o.rule,
            reason: '',
            details: o.details,
            ruleSet: RULE_SET_VERSION,
          };
    const list = this.#issued.get(e.id);
    if (list === undefined) this.#issued.set(e.id, [data]);
    else list.push(data);
    this.#issuedAt.set(e.id, ++this.#issuedCount);
    this.#rejudgedAt.delete(e.id);
    this.#cache = undefined;
    out.push(data);
  }
}

function fromRules(r: RuleVerdict): Outcome {
  return r.outcome === 'accepted'
    ? { outcome: 'accepted' }
    : { outcome: 'deadletter', code: r.code, rule: r.rule, details: r.details };
}

function targetOf(e: SignedEvent): EventId | undefined {
  if (e.type !== SystemEventType.RetryRequested && e.type !== SystemEventType.DeadletterDiscarded)
    return undefined;
  const d = e.data;
  if (typeof d !== 'object' || d === null || Array.isArray(d)) return undefined;
  const t = (d as { target?: unknown }).target;
  return typeof t === 'string' ? (t as EventId) : undefined;
}

/** What the two implementations must agree on (reasons are prose; the reference does not write them). */
function key(v: VerdictData | undefined): string {
  if (v === undefined) return 'none';
  if (v.outcome === 'accepted') return `${v.target} accepted ${v.seq} ${v.ruleSet}`;
  const { missing, status } = v.details;
  return `${v.target} ${v.code} ${v.rule} ${JSON.stringify({ missing, status })} ${v.ruleSet}`;
}

// ---------------------------------------------------------------------------------------------
// The world: a pool of events to deliver, the two implementations, and the verdict record.

interface World {
  readonly pool: Map<EventId, SignedEvent>;
  readonly undelivered: EventId[];
  readonly delivered: EventId[];
  /** The relay's own verdict events (one per issued verdict, relay seq in issue order). */
  readonly own: SignedEvent[];
  /** Own verdict events not yet fed back to the running instances. */
  echoes: SignedEvent[];
  /** Every verdict issued, in order, across restarts. */
  readonly verdicts: VerdictData[];
  readonly latest: Map<EventId, VerdictData>;
  readonly devices: EventFactory;
  readonly relay: EventFactory;
  now: number;
  adj: Adjudicator;
  ref: Reference;
}

function newAdjudicator(): Adjudicator {
  return new Adjudicator({ relay: RELAY, facility: TEST_FACILITY, member, dependencyDeadlineMs: DEADLINE });
}

function deliver(w: World, e: SignedEvent): void {
  w.adj.add(e, w.now);
  w.ref.add(e, w.now);
}

/** A fresh dynamic event (retry, discard, amend) joins the pool, delivered at once. */
function create(w: World, e: SignedEvent): void {
  w.pool.set(e.id, e);
  w.delivered.push(e.id);
  deliver(w, e);
}

/** Submissions with a verdict, sorted by id; deadletters only when `deadletters`. */
function judged(w: World, deadletters: boolean): SignedEvent[] {
  const out: SignedEvent[] = [];
  for (const id of [...w.latest.keys()].sort()) {
    const e = w.pool.get(id);
    if (e === undefined) continue;
    if (!deadletters || w.latest.get(id)!.outcome === 'deadletter') out.push(e);
  }
  return out;
}

/** Checks one batch of verdicts and records it. */
function record(w: World, batch: readonly VerdictData[]): void {
  batch.forEach((v, i) => {
    const prev = w.latest.get(v.target);
    if (prev !== undefined) {
      // A second verdict only by a documented re-validation: right after an accepted retry of it,
      // superseding a 404 RULE_DEPENDENCY_MISSING, or accepting a 422 RULE_NEGATIVE_STOCK.
      expect(prev.outcome).toBe('deadletter');
      const before = i > 0 ? batch[i - 1] : undefined;
      const retried =
        before?.outcome === 'accepted' &&
        w.pool.get(before.target)?.type === SystemEventType.RetryRequested &&
        targetOf(w.pool.get(before.target)!) === v.target;
      const revalidated = prev.outcome === 'deadletter' && prev.rule === RULE_DEPENDENCY_MISSING;
      const restocked =
        prev.outcome === 'deadletter' && prev.rule === RULE_NEGATIVE_STOCK && v.outcome === 'accepted';
      expect(retried || revalidated || restocked).toBe(true);
    }
    expect(w.pool.has(v.target)).toBe(true);
    expect(v.ruleSet).toBe(RULE_SET_VERSION);
    w.latest.set(v.target, v);
    w.verdicts.push(v);
    const own = w.relay.event(RELAY, SystemEventType.Verdict, v, {
      subject: { kind: 'event', id: v.target },
      deps: [v.target],
    });
    w.own.push(own);
    w.echoes.push(own);
  });
  // Accepted seqs are contiguous from 1 across the whole run (restarts included).
  const seqs = w.verdicts.flatMap((v) => (v.outcome === 'accepted' ? [v.seq] : []));
  expect(seqs).toEqual(seqs.map((_, i) => i + 1));
}

type Cmd = fc.Command<World, World>;

class Deliver implements Cmd {
  constructor(readonly k: number) {}
  check(w: Readonly<World>): boolean {
    return w.undelivered.length > 0;
  }
  run(w: World): void {
    const [id] = w.undelivered.splice(this.k % w.undelivered.length, 1);
    w.delivered.push(id!);
    deliver(w, w.pool.get(id!)!);
  }
  toString(): string {
    return `deliver(${this.k})`;
  }
}

class Redeliver implements Cmd {
  constructor(readonly k: number) {}
  check(w: Readonly<World>): boolean {
    return w.delivered.length > 0;
  }
  run(w: World): void {
    const e = w.pool.get(w.delivered[this.k % w.delivered.length]!)!;
    deliver(w, { ...e }); // a copy: duplicates are recognised by id, not by object
  }
  toString(): string {
    return `redeliver(${this.k})`;
  }
}

class Echo implements Cmd {
  constructor(readonly k: number) {}
  check(w: Readonly<World>): boolean {
    return w.echoes.length > 0;
  }
  run(w: World): void {
    const [e] = w.echoes.splice(this.k % w.echoes.length, 1);
    deliver(w, e!);
  }
  toString(): string {
    return `echo(${this.k})`;
  }
}

class Decide implements Cmd {
  constructor(
    readonly dt: number,
    readonly limit = Infinity,
  ) {}
  check(): boolean {
    return true;
  }
  run(w: World): void {
    w.now += this.dt;
    // With a limit, the relay may stop (or crash) between rounds: the rest comes later.
    const expected = w.ref.decide(w.now, this.limit);
    const actual = w.adj.decide(w.now, this.limit);
    expect(actual.map(key)).toEqual(expected.map(key));
    record(w, actual);
    expect(w.adj.lastSeq).toBe(w.ref.lastSeq);
    const s = w.adj.stats();
    expect({ waiting: s.waiting, deadletters: s.deadletters }).toEqual(w.ref.stats());
    const next = w.adj.nextDeadline();
    if (next !== undefined) expect(next).toBeGreaterThan(w.now);
  }
  toString(): string {
    return `decide(+${this.dt}${this.limit === Infinity ? '' : `, ${this.limit}`})`;
  }
}

class Retry implements Cmd {
  constructor(
    readonly k: number,
    readonly device: number,
    readonly anyTarget: boolean,
  ) {}
  check(w: Readonly<World>): boolean {
    return w.latest.size > 0;
  }
  run(w: World): void {
    const dl = judged(w, true);
    const list = this.anyTarget || dl.length === 0 ? judged(w, false) : dl;
    const target = list[this.k % list.length]!;
    create(w, w.devices.retry(MEMBERS[this.device % MEMBERS.length]!, target));
  }
  toString(): string {
    return `retry(${this.k}, ${this.device}, ${this.anyTarget})`;
  }
}

class Discard implements Cmd {
  constructor(
    readonly k: number,
    readonly anyTarget: boolean,
  ) {}
  check(w: Readonly<World>): boolean {
    return w.latest.size > 0;
  }
  run(w: World): void {
    const dl = judged(w, true);
    const list = this.anyTarget || dl.length === 0 ? judged(w, false) : dl;
    create(w, w.devices.discard(MEMBERS[this.k % MEMBERS.length]!, list[this.k % list.length]!));
  }
  toString(): string {
    return `discard(${this.k}, ${this.anyTarget})`;
  }
}

class Amend implements Cmd {
  constructor(readonly k: number) {}
  check(w: Readonly<World>): boolean {
    return w.latest.size > 0;
  }
  run(w: World): void {
    const list = judged(w, false).filter((e) => !isSystemEventType(e.type) && ROSTER.has(e.device));
    if (list.length === 0) return;
    const e = list[this.k % list.length]!;
    create(
      w,
      w.devices.event(e.device, e.type, e.data, {
        deps: e.deps,
        ...(e.basis !== undefined ? { basis: e.basis } : {}),
        supersedes: e.id,
      }),
    );
  }
  toString(): string {
    return `amend(${this.k})`;
  }
}

/** The lots the stock commands use: LS starts with one dose, LT is never received until restocked. */
const STOCK_LOTS = ['LS', 'LT'] as const;
/** Patients registered by the scenario for the vaccinations of {@link Take}. */
const STOCK_PATIENTS = ['PV1', 'PV2', 'PV3'] as const;

/** A device takes stock from a small lot: a BCG dose 1, a consumption or a negative adjustment (often a 422). */
class Take implements Cmd {
  constructor(
    readonly k: number,
    readonly lot: number,
    readonly quantity: number,
    readonly kind: 'vaccinate' | 'consume' | 'adjust',
  ) {}
  check(): boolean {
    return true;
  }
  run(w: World): void {
    const lot = STOCK_LOTS[this.lot % STOCK_LOTS.length]!;
    const device = MEMBERS[this.k % MEMBERS.length]!;
    if (this.kind === 'vaccinate') {
      // A patient vaccinated twice: the second dose is out of sequence once the first is accepted.
      const patientId = STOCK_PATIENTS[this.k % STOCK_PATIENTS.length]!;
      const reg = [...w.pool.values()].find(
        (e) => e.type === 'PatientRegistered' && (e.data as { patientId?: unknown }).patientId === patientId,
      )!;
      const data = { patientId, antigen: 'BCG', dose: 1, lot, date: '2024-05-01' };
      create(w, w.devices.event(device, 'VaccinationAdministered', data, { deps: [reg.id] }));
    } else if (this.kind === 'consume') {
      create(w, w.devices.event(device, 'StockConsumed', { lot, quantity: this.quantity }));
    } else {
      const data = { lot, delta: -this.quantity, reason: 'breakage' };
      create(w, w.devices.event(device, 'StockAdjusted', data));
    }
  }
  toString(): string {
    return `take(${this.k}, ${this.lot}, ${this.quantity}, ${this.kind})`;
  }
}

/** Stock arrives for a small lot: a receipt, or a positive adjustment (of a lot already received). */
class Restock implements Cmd {
  constructor(
    readonly k: number,
    readonly lot: number,
    readonly quantity: number,
    readonly adjust: boolean,
  ) {}
  check(): boolean {
    return true;
  }
  run(w: World): void {
    const lot = STOCK_LOTS[this.lot % STOCK_LOTS.length]!;
    const device = MEMBERS[this.k % MEMBERS.length]!;
    create(
      w,
      this.adjust
        ? w.devices.event(device, 'StockAdjusted', { lot, delta: this.quantity, reason: 'recount' })
        : w.devices.event(device, 'StockReceived', {
            lot,
            antigen: 'BCG',
            quantity: this.quantity,
            expiry: '2030-01-01',
          }),
    );
  }
  toString(): string {
    return `restock(${this.k}, ${this.lot}, ${this.quantity}, ${this.adjust})`;
  }
}

/** The relay restarts: a fresh instance (and reference) is fed the whole log, shuffled. */
class Restart implements Cmd {
  constructor(readonly seed: number) {}
  check(): boolean {
    return true;
  }
  run(w: World): void {
    const log = [...w.delivered.map((id) => w.pool.get(id)!), ...w.own];
    let x = this.seed | 1;
    for (let i = log.length - 1; i > 0; i--) {
      x = (Math.imul(x, 1103515245) + 12345) | 0;
      const j = (x >>> 0) % (i + 1);
      [log[i], log[j]] = [log[j]!, log[i]!];
    }
    const old = w.adj;
    w.adj = newAdjudicator();
    w.ref = new Reference();
    w.echoes = [];
    // Fed in two parts with a look at the confirmed state between: later history may sort below
    // what was folded, and 404s may look re-validatable before their newer verdicts arrive.
    const split = (x >>> 0) % (log.length + 1);
    log.slice(0, split).forEach((e) => deliver(w, e));
    w.adj.confirmed();
    log.slice(split).forEach((e) => deliver(w, e));
    expect(w.adj.lastSeq).toBe(old.lastSeq);
    expect(w.adj.confirmed().toJSON()).toEqual(old.confirmed().toJSON());
    for (const id of w.latest.keys()) expect(key(w.adj.verdictFor(id))).toBe(key(w.latest.get(id)));
  }
  toString(): string {
    return `restart(${this.seed})`;
  }
}

// ---------------------------------------------------------------------------------------------
// Scenarios: a valid generated facility plus events that must be refused, wait, or fail a rule.

function scenario(history: FacilityHistory): SignedEvent[] {
  const f = new EventFactory({ salt: 4 });
  for (const e of history.events) f.after(e.hlc);
  const [d1, d2] = MEMBERS as [DeviceId, DeviceId];
  const reg = (device: DeviceId, patientId: string, nationalId: string, deps: EventId[] = []): SignedEvent =>
    f.event(
      device,
      'PatientRegistered',
      { patientId, nationalId, givenName: 'A', familyName: 'B', birthDate: '2020-01-01', sex: 'male' },
      { deps },
    );
  const ghost = f.event(d2, 'StockReceived', {
    lot: 'LG',
    antigen: 'BCG',
    quantity: 3,
    expiry: '2025-01-01',
  });
  const px = reg(d1, 'PX', 'NX', [ghost.id]); // waits for the ghost, often past the deadline
  const checkIn = f.event(d2, 'PatientCheckedIn', { patientId: 'PX', encounterId: 'EX' }, { deps: [px.id] });
  const r1 = f.event(d1, 'StockReceived', { lot: 'LZ', antigen: 'BCG', quantity: 1, expiry: '2025-01-01' });
  const c1 = f.event(d2, 'StockConsumed', { lot: 'LZ', quantity: 2 }, { deps: [r1.id] }); // 422 until r2
  const r2 = f.event(d1, 'StockReceived', { lot: 'LZ', antigen: 'BCG', quantity: 5, expiry: '2025-01-01' });
  const ls = f.event(d1, 'StockReceived', { lot: 'LS', antigen: 'BCG', quantity: 1, expiry: '2030-01-01' });
  const first = history.events[0];
  const extras = [
    ls,
    ...STOCK_PATIENTS.map((id) => reg(d2, id, `N${id}`)),
    ghost,
    px,
    checkIn,
    r1,
    c1,
    r2,
    reg(STRANGER, 'PS', 'NS'),
    reg(REVOKED, 'PR', 'NR'),
    { ...reg(d1, 'PF', 'NF'), facility: asFacilityId('elsewhere') },
    reg(d2, 'PD', 'NX'), // the national id of PX: 409 when PX is confirmed first
    reg(d1, 'PO', 'NO', [testEventId(424_242, 99)]), // a dependency that never arrives
  ];
  if (first !== undefined) {
    extras.push(
      f.event(
        d1,
        SystemEventType.Verdict,
        { target: first.id, outcome: 'accepted', seq: 1, ruleSet: RULE_SET_VERSION },
        { subject: { kind: 'event', id: first.id }, deps: [first.id] },
      ),
    );
  }
  return [...history.events, ...extras];
}

const commands = fc.commands(
  [
    fc.nat({ max: 1000 }).map((k): Cmd => new Deliver(k)),
    fc.nat({ max: 1000 }).map((k): Cmd => new Deliver(k)),
    fc.nat({ max: 1000 }).map((k): Cmd => new Deliver(k)),
    fc.nat({ max: 1000 }).map((k): Cmd => new Redeliver(k)),
    fc.nat({ max: 1000 }).map((k): Cmd => new Echo(k)),
    fc.constantFrom(0, 0, 1_000, 10_000, DEADLINE, 2 * DEADLINE).map((dt): Cmd => new Decide(dt)),
    fc.constantFrom(0, 1_000, DEADLINE).map((dt): Cmd => new Decide(dt)),
    fc
      .tuple(fc.constantFrom(0, 1_000), fc.integer({ min: 1, max: 3 }))
      .map(([dt, n]): Cmd => new Decide(dt, n)),
    fc
      .tuple(fc.nat({ max: 1000 }), fc.nat({ max: 2 }), fc.boolean())
      .map(([k, d, any]): Cmd => new Retry(k, d, any)),
    fc.tuple(fc.nat({ max: 1000 }), fc.boolean()).map(([k, any]): Cmd => new Discard(k, any)),
    fc.nat({ max: 1000 }).map((k): Cmd => new Amend(k)),
    fc.integer().map((s): Cmd => new Restart(s)),
    fc
      .tuple(
        fc.nat({ max: 1000 }),
        fc.nat({ max: 1 }),
        fc.integer({ min: 1, max: 3 }),
        fc.constantFrom('vaccinate', 'vaccinate', 'consume', 'adjust'),
      )
      .map(([k, lot, q, kind]): Cmd => new Take(k, lot, q, kind)),
    fc
      .tuple(fc.nat({ max: 1000 }), fc.nat({ max: 1 }), fc.integer({ min: 1, max: 3 }), fc.boolean())
      .map(([k, lot, q, adjust]): Cmd => new Restock(k, lot, q, adjust)),
  ],
  { maxCommands: 100, size: 'max' },
);

describe('Adjudicator (model-based)', () => {
  it('issues exactly the verdicts of the reference, in the same order, whatever the delivery', () => {
    fc.assert(
      fc.property(arbFacility({ devices: 3, maxOps: 20 }), commands, (history, cmds) => {
        const pool = scenario(history);
        const world: World = {
          pool: new Map(pool.map((e) => [e.id, e])),
          undelivered: pool.map((e) => e.id),
          delivered: [],
          own: [],
          echoes: [],
          verdicts: [],
          latest: new Map(),
          devices: new EventFactory({ salt: 5, startMs: FACILITY_NOW_MS }),
          relay: new EventFactory({ salt: 3, relay: RELAY, startMs: FACILITY_NOW_MS }),
          now: FACILITY_NOW_MS,
          adj: newAdjudicator(),
          ref: new Reference(),
        };
        for (const e of pool) world.devices.after(e.hlc);
        fc.modelRun(() => ({ model: world, real: world }), cmds);
        // Everything delivered, the deadline passed: every submission has exactly its verdicts.
        for (const id of world.undelivered.splice(0)) {
          world.delivered.push(id);
          deliver(world, world.pool.get(id)!);
        }
        new Decide(DEADLINE).run(world);
        expect(world.adj.stats().waiting).toBe(0);
        expect(world.adj.nextDeadline()).toBeUndefined();
        const submissions = world.delivered.filter((id) => world.pool.get(id)!.device !== RELAY);
        for (const id of submissions) expect(world.adj.verdictFor(id)).toBeDefined();
        expect(new Set(world.verdicts.map((v) => v.target))).toEqual(new Set(submissions));
        for (const id of submissions) expect(key(world.adj.verdictFor(id))).toBe(key(world.ref.latest(id)));
      }),
      { numRuns: fc.readConfigureGlobal().numRuns ?? 150 },
    );
  });
});
