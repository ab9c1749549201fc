import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DeviceId, EventId, JsonValue, SignedEvent, VerdictData } from '@accord/protocol';
import {
  canonicalEncode,
  MAX_EVENT_BYTES,
  parseVerdictData,
  RejectionCode,
  SystemEventType,
  asFacilityId,
  verdictsIn,
} from '@accord/protocol';
import { makeTestDevice } from '@accord/protocol/testing';
import type { TestDevice } from '@accord/protocol/testing';
import { Projection } from '@accord/domain';
import {
  EventFactory,
  FACILITY_NOW_MS,
  TEST_FACILITY,
  buildFacility,
  randomFacilityOps,
  testDeviceId,
  testEventId,
} from '@accord/domain/testing';
import {
  RULES,
  RULE_DEPENDENCY_MISSING,
  RULE_DEVICE_REVOKED,
  RULE_DOSE_OUT_OF_SEQUENCE,
  RULE_NEGATIVE_STOCK,
  RULE_NOT_DEADLETTERED,
  RULE_RELAY_ONLY,
  RULE_SET_VERSION,
  RULE_SUPERSEDES_ACCEPTED,
  RULE_UNKNOWN_DEVICE,
  RULE_UNPROCESSABLE,
  RULE_WRONG_FACILITY,
} from '@accord/rules';
import { Adjudicator, DEFAULT_DEPENDENCY_DEADLINE_MS } from './adjudicator.js';
import { verdictDrafts } from './verdict-events.js';

const D1 = testDeviceId(1);
const D2 = testDeviceId(2);
const REVOKED = testDeviceId(9);
const STRANGER = testDeviceId(50);
const ROSTER = new Map<DeviceId, { revoked: boolean }>([
  [D1, { revoked: false }],
  [D2, { revoked: false }],
  [testDeviceId(3), { revoked: false }],
  [REVOKED, { revoked: true }],
]);
const T0 = FACILITY_NOW_MS;
const DEADLINE = DEFAULT_DEPENDENCY_DEADLINE_MS;

/** A relay with a real key, a factory whose verdicts it signs, and a device-side view for deps. */
async function setup() {
  const relayDevice = await makeTestDevice();
  const relay = relayDevice.deviceId;
  const f = new EventFactory({ relay });
  const adj = new Adjudicator({ relay, facility: TEST_FACILITY, member: (d) => ROSTER.get(d) });
  /** What the devices see: every event they recorded, so deps point at earlier records. */
  const view = Projection.empty();
  const record = (type: string, data: unknown, device: DeviceId = D1): SignedEvent => {
    const e = f.record(view, device, type, data);
    view.apply(e);
    return e;
  };
  const register = (patientId: string, device: DeviceId = D1): SignedEvent =>
    record(
      'PatientRegistered',
      {
        patientId,
        nationalId: `NID-${patientId}`,
        givenName: 'Amina',
        familyName: 'Banda',
        birthDate: '2024-01-10',
        sex: 'female',
      },
      device,
    );
  const receive = (lot: string, quantity = 10): SignedEvent =>
    record('StockReceived', { lot, antigen: 'BCG', quantity, expiry: '2024-12-31' });
  const vaccinate = (patientId: string, lot: string): SignedEvent =>
    record('VaccinationAdministered', { patientId, antigen: 'BCG', dose: 1, lot, date: '2024-05-01' });
  return { relayDevice, relay, f, adj, view, record, register, receive, vaccinate };
}

/** Adds events at `now` and decides at `now`. */
function feed(adj: Adjudicator, events: readonly SignedEvent[], now = T0): VerdictData[] {
  for (const e of events) adj.add(e, now);
  return adj.decide(now);
}

function accepted(v: VerdictData | undefined): Extract<VerdictData, { outcome: 'accepted' }> {
  if (v?.outcome !== 'accepted') throw new Error(`expected accepted, got ${JSON.stringify(v)}`);
  expect(v.ruleSet).toBe(RULE_SET_VERSION);
  return v;
}

function rejected(v: VerdictData | undefined): Extract<VerdictData, { outcome: 'deadletter' }> {
  if (v?.outcome !== 'deadletter') throw new Error(`expected deadletter, got ${JSON.stringify(v)}`);
  expect(v.ruleSet).toBe(RULE_SET_VERSION);
  expect(RULES[v.rule]).toBe(v.code);
  expect(v.reason).toMatch(/[.]$/);
  return v;
}

/** The relay's own verdict event for `data`, signed with the relay key (as the lead appends it). */
async function signedVerdict(relay: TestDevice, f: EventFactory, data: VerdictData): Promise<SignedEvent> {
  const unsigned = f.event(relay.deviceId, SystemEventType.Verdict, data, {
    subject: { kind: 'event', id: data.target },
    deps: [data.target],
  });
  const { sig, ...envelope } = unsigned;
  void sig;
  return relay.sign(envelope);
}

describe('Adjudicator: acceptance and order', () => {
  it('accepts valid events in causal order with contiguous seqs after the highest seen', async () => {
    const { adj, register, receive, vaccinate } = await setup();
    const p = register('p1');
    const lot = receive('L1');
    const v = vaccinate('p1', 'L1');
    expect(v.deps).toContain(p.id);
    // Delivered in reverse: the vaccination waits for the patient.
    const out = feed(adj, [v, lot, p]);
    expect(out.map((x) => x.target)).toEqual([p.id, lot.id, v.id]);
    expect(out.map((x) => accepted(x).seq)).toEqual([1, 2, 3]);
    expect(adj.lastSeq).toBe(3);
    expect(adj.confirmed().lot('L1')?.balance).toBe(9);
    expect(adj.stats()).toEqual({ events: 3, verdicts: 3, waiting: 0, deadletters: 0 });
  });

  it('holds a dependent that arrives before its dependency until the dependency is judged', async () => {
    const { adj, register, vaccinate, receive } = await setup();
    const p = register('p1');
    receive('L1');
    const v = vaccinate('p1', 'L1');
    expect(feed(adj, [v])).toEqual([]);
    expect(adj.stats().waiting).toBe(1);
    expect(adj.nextDeadline()).toBe(T0 + DEADLINE);
    const out = feed(adj, [p], T0 + 1000);
    expect(out.map((x) => x.target)).toEqual([p.id]);
    expect(adj.verdictFor(v.id)).toBeUndefined();
    expect(adj.stats().waiting).toBe(1);
  });

  it('judges dependencies first even when the dependent sorts earlier', async () => {
    const { adj, f } = await setup();
    const reg = f.event(D1, 'PatientRegistered', {
      patientId: 'p1',
      nationalId: 'N1',
      givenName: 'A',
      familyName: 'B',
      birthDate: '2020-01-01',
      sex: 'male',
    });
    // The check-in's HLC sorts before the registration's, but it depends on it.
    const checkIn = f.event(
      D2,
      'PatientCheckedIn',
      { patientId: 'p1', encounterId: 'e1' },
      { deps: [reg.id] },
    );
    const early = { ...checkIn, hlc: '2024-05-31T00:00:00.000Z/000000' } as SignedEvent;
    const out = feed(adj, [early, reg]);
    expect(out.map((x) => [x.target, x.outcome])).toEqual([
      [reg.id, 'accepted'],
      [early.id, 'accepted'],
    ]);
  });

  it('orders ready events by (hlc, device, seq, id), not by arrival', async () => {
    const { adj, register } = await setup();
    const a = register('p1', D2);
    const b = register('p2', D1);
    const c = register('p3', D2);
    const out = feed(adj, [c, b, a]);
    expect(out.map((x) => x.target)).toEqual([a.id, b.id, c.id]);
  });

  it('ignores duplicate ids: one verdict per submission', async () => {
    const { adj, register } = await setup();
    const p = register('p1');
    expect(feed(adj, [p, p])).toHaveLength(1);
    expect(feed(adj, [p, { ...p }], T0 + 1)).toEqual([]);
    expect(adj.decide(T0 + 10 * DEADLINE)).toEqual([]);
    expect(adj.stats()).toEqual({ events: 1, verdicts: 1, waiting: 0, deadletters: 0 });
  });
});

describe('Adjudicator: 403', () => {
  it('refuses unknown and revoked devices, foreign facilities and device-signed relay types', async () => {
    const { adj, f } = await setup();
    const data = (n: number) => ({
      patientId: `p${n}`,
      nationalId: `N${n}`,
      givenName: 'A',
      familyName: 'B',
      birthDate: '2020-01-01',
      sex: 'male',
    });
    const unknown = f.event(STRANGER, 'PatientRegistered', data(1));
    const revoked = f.event(REVOKED, 'PatientRegistered', data(2));
    const foreign = { ...f.event(D1, 'PatientRegistered', data(3)), facility: asFacilityId('elsewhere') };
    const good = f.event(D1, 'PatientRegistered', data(4));
    // A device forges a verdict accepting `good` and a roster: neither counts, both are refused.
    const forged = f.event(
      D2,
      SystemEventType.Verdict,
      { target: good.id, outcome: 'accepted', seq: 1, ruleSet: RULE_SET_VERSION },
      { subject: { kind: 'event', id: good.id }, deps: [good.id] },
    );
    const roster = f.event(
      D2,
      SystemEventType.RosterUpdated,
      { version: 9, devices: [{ id: STRANGER, name: 'x', revoked: false }] },
      { subject: { kind: 'roster', id: TEST_FACILITY } },
    );
    const forgedBatch = new EventFactory({ relay: D2 }).acceptAll([good]);
    const out = feed(adj, [unknown, revoked, foreign, good, forged, roster, forgedBatch]);
    const by = new Map(out.map((v) => [v.target, v]));
    expect(rejected(by.get(unknown.id)).rule).toBe(RULE_UNKNOWN_DEVICE);
    expect(rejected(by.get(revoked.id)).rule).toBe(RULE_DEVICE_REVOKED);
    const wrong = rejected(by.get(foreign.id));
    expect([wrong.code, wrong.rule]).toEqual([RejectionCode.Forbidden, RULE_WRONG_FACILITY]);
    expect(rejected(by.get(forged.id)).rule).toBe(RULE_RELAY_ONLY);
    expect(rejected(by.get(roster.id)).rule).toBe(RULE_RELAY_ONLY);
    expect(rejected(by.get(forgedBatch.id)).rule).toBe(RULE_RELAY_ONLY);
    // `good` is judged by the relay itself, and only once.
    expect(accepted(by.get(good.id)).seq).toBe(1);
    expect(out).toHaveLength(7);
    expect(adj.confirmed().patient('p1')).toBeUndefined();
    expect(adj.confirmed().patient('p4')).toBeDefined();
  });

  it('treats the relay’s own RosterUpdated as no submission', async () => {
    const { adj, f, relay } = await setup();
    const roster = f.event(
      relay,
      SystemEventType.RosterUpdated,
      { version: 1, devices: [] },
      { subject: { kind: 'roster', id: TEST_FACILITY } },
    );
    expect(feed(adj, [roster])).toEqual([]);
    expect(adj.stats()).toEqual({ events: 1, verdicts: 0, waiting: 0, deadletters: 0 });
  });
});

describe('Adjudicator: 404 and the dependency deadline', () => {
  it('answers 404 after the deadline, then re-validates when the dependency is accepted', async () => {
    const { adj, register, receive, vaccinate } = await setup();
    const p = register('p1');
    const lot = receive('L1');
    const v = vaccinate('p1', 'L1');
    expect(feed(adj, [lot, v])).toHaveLength(1); // the lot; v waits for p
    expect(adj.nextDeadline()).toBe(T0 + DEADLINE);
    expect(adj.decide(T0 + DEADLINE - 1)).toEqual([]);
    const [miss] = adj.decide(T0 + DEADLINE);
    const r = rejected(miss);
    expect([r.target, r.code, r.rule]).toEqual([v.id, RejectionCode.NotFound, RULE_DEPENDENCY_MISSING]);
    expect(r.details).toEqual({ missing: [p.id] });
    expect(adj.nextDeadline()).toBeUndefined();
    expect(adj.stats().deadletters).toBe(1);
    // The patient arrives late: accepted, and the 404 is superseded automatically.
    const out = feed(adj, [p], T0 + DEADLINE + 5000);
    expect(out.map((x) => [x.target, x.outcome])).toEqual([
      [p.id, 'accepted'],
      [v.id, 'accepted'],
    ]);
    expect(out.map((x) => accepted(x).seq)).toEqual([2, 3]);
    expect(accepted(adj.verdictFor(v.id)).seq).toBe(3);
    expect(adj.stats()).toEqual({ events: 3, verdicts: 4, waiting: 0, deadletters: 0 });
  });

  it('does not re-validate a 404 when the named dependency is itself rejected', async () => {
    const { adj, f, register } = await setup();
    const p = { ...register('p1'), device: STRANGER }; // will be a 403
    const c = f.event(D1, 'PatientCheckedIn', { patientId: 'p1', encounterId: 'e1' }, { deps: [p.id] });
    const out = feed(adj, [c, p]);
    expect(out.map((x) => [x.target, x.outcome])).toEqual([
      [p.id, 'deadletter'],
      [c.id, 'deadletter'],
    ]);
    expect(rejected(out[1]).details).toEqual({ missing: [p.id] });
    expect(adj.decide(T0 + 10 * DEADLINE)).toEqual([]);
  });

  it('judges an expired dependency before its expired dependent', async () => {
    const { adj, f } = await setup();
    const ghost = testEventId(999_999, 77);
    const reg = f.event(
      D1,
      'PatientRegistered',
      {
        patientId: 'p1',
        nationalId: 'N1',
        givenName: 'A',
        familyName: 'B',
        birthDate: '2020-01-01',
        sex: 'male',
      },
      { deps: [ghost] },
    );
    const checkIn = f.event(
      D1,
      'PatientCheckedIn',
      { patientId: 'p1', encounterId: 'e1' },
      { deps: [reg.id] },
    );
    const early = { ...checkIn, hlc: '2024-05-01T00:00:00.000Z/000000' } as SignedEvent;
    expect(feed(adj, [early, reg])).toEqual([]);
    const out = adj.decide(T0 + DEADLINE);
    expect(out.map((x) => [x.target, (x as { details?: unknown }).details])).toEqual([
      [reg.id, { missing: [ghost] }],
      [early.id, { missing: [reg.id] }],
    ]);
  });
});

describe('Adjudicator: decisions in rounds', () => {
  it('gives the same verdicts in the same order when decided a few at a time', async () => {
    const whole = await setup();
    const parts = await setup();
    const events: SignedEvent[] = [];
    for (let i = 0; i < 12; i++) events.push(whole.register(`p${i}`));
    events.push(whole.receive('lot-1', 3));
    for (let i = 0; i < 6; i++) events.push(whole.vaccinate(`p${i}`, 'lot-1'));
    // The same submissions, scrambled, to a second adjudicator that decides 4 at a time.
    const expected = feed(whole.adj, [...events].reverse());
    for (const e of events) parts.adj.add(e, T0);
    const got: VerdictData[] = [];
    for (let round = 0; round < 20; round++) {
      const batch = parts.adj.decide(T0, 4);
      expect(batch.length).toBeLessThanOrEqual(4);
      if (batch.length === 0) break;
      got.push(...batch);
    }
    expect(got).toEqual(expected);
    expect(expected.filter((v) => v.outcome === 'deadletter')).toHaveLength(3);
  });
});

describe('Adjudicator: resolutions', () => {
  it('accepts a retry of a 422 and judges the target again (still short: a new 422)', async () => {
    const { adj, f, register, vaccinate } = await setup();
    const p = register('p1');
    const v = vaccinate('p1', 'L1'); // lot L1 never received
    const [ok, no] = feed(adj, [p, v]);
    accepted(ok);
    const r = rejected(no);
    expect([r.code, r.rule]).toEqual([RejectionCode.Rule, RULE_NEGATIVE_STOCK]);
    expect(r.details).toEqual({ lot: 'L1', balance: 0, requested: 1, retriesWhen: 'stock' });
    expect(adj.stats().deadletters).toBe(1);

    const retry = f.retry(D1, v);
    const again = feed(adj, [retry], T0 + 1);
    expect(again.map((x) => [x.target, x.outcome])).toEqual([
      [retry.id, 'accepted'],
      [v.id, 'deadletter'],
    ]);
    expect(accepted(again[0]).seq).toBe(2);
    expect(adj.stats()).toEqual({ events: 3, verdicts: 4, waiting: 0, deadletters: 1 });
  });

  it('refuses a retry of an accepted event (409) and leaves the target untouched', async () => {
    const { adj, f, register } = await setup();
    const p = register('p1');
    feed(adj, [p]);
    const retry = f.retry(D1, p);
    const [v] = feed(adj, [retry], T0 + 1);
    const r = rejected(v);
    expect([r.target, r.code, r.rule]).toEqual([retry.id, RejectionCode.Conflict, RULE_NOT_DEADLETTERED]);
    expect(r.details).toEqual({ target: p.id, status: 'accepted' });
    expect(accepted(adj.verdictFor(p.id)).seq).toBe(1);
    expect(adj.lastSeq).toBe(1);
  });

  it('makes a retry wait for its target', async () => {
    const { adj, f, register } = await setup();
    const p = { ...register('p1'), device: STRANGER };
    const retry = f.retry(D1, p);
    expect(feed(adj, [retry])).toEqual([]);
    const out = feed(adj, [p], T0 + 1);
    // 403 first, then the retry (re-judged: still 403).
    expect(out.map((x) => [x.target, x.outcome])).toEqual([
      [p.id, 'deadletter'],
      [retry.id, 'accepted'],
      [p.id, 'deadletter'],
    ]);
  });

  it('accepts a discard of a deadletter, closing it; refuses a second discard and a later retry', async () => {
    const { adj, f, register, vaccinate } = await setup();
    const p = register('p1');
    const v = vaccinate('p1', 'L9');
    feed(adj, [p, v]);
    expect(adj.stats().deadletters).toBe(1);
    const before = JSON.stringify(adj.confirmed().toJSON());
    const discard = f.discard(D1, v);
    const [d] = feed(adj, [discard], T0 + 1);
    expect(accepted(d).seq).toBe(2);
    expect(adj.stats().deadletters).toBe(0);
    expect(JSON.stringify(adj.confirmed().toJSON())).toBe(before);
    const discard2 = f.discard(D2, v);
    const retry = f.retry(D2, v);
    const discardAccepted = f.discard(D2, p);
    const out = feed(adj, [discard2, retry, discardAccepted], T0 + 2);
    expect(out.map((x) => rejected(x).rule)).toEqual([
      RULE_NOT_DEADLETTERED,
      RULE_NOT_DEADLETTERED,
      RULE_NOT_DEADLETTERED,
    ]);
    expect(out.map((x) => (x.outcome === 'deadletter' ? x.details['status'] : null))).toEqual([
      'resolved',
      'resolved',
      'accepted',
    ]);
  });

  it('accepts an amend of a deadletter (resolving it) and refuses an amend of accepted history', async () => {
    const { adj, f, register, receive, vaccinate } = await setup();
    const p = register('p1');
    const lot = receive('L1');
    const bad = vaccinate('p1', 'L9');
    feed(adj, [p, lot, bad]);
    expect(adj.stats().deadletters).toBe(1);
    const amend = f.event(
      D1,
      'VaccinationAdministered',
      { patientId: 'p1', antigen: 'BCG', dose: 1, lot: 'L1', date: '2024-05-01' },
      { deps: [p.id, lot.id], supersedes: bad.id },
    );
    const [a] = feed(adj, [amend], T0 + 1);
    expect([a?.target, accepted(a).seq]).toEqual([amend.id, 3]);
    expect(adj.stats().deadletters).toBe(0);
    expect(rejected(feed(adj, [f.retry(D1, bad)], T0 + 2)[0]).details['status']).toBe('resolved');

    const amendAccepted = f.event(
      D2,
      'StockReceived',
      { lot: 'L1', antigen: 'BCG', quantity: 99, expiry: '2024-12-31' },
      { deps: [lot.id], supersedes: lot.id },
    );
    const r = rejected(feed(adj, [amendAccepted], T0 + 3)[0]);
    expect([r.code, r.rule]).toEqual([RejectionCode.Conflict, RULE_SUPERSEDES_ACCEPTED]);
    expect(r.details).toEqual({ supersedes: lot.id, seq: 2 });
    expect(adj.confirmed().lot('L1')?.balance).toBe(9);
  });
});

/** The relay's own events recording `issued`, drafted as the facility node drafts them, signed by the relay. */
async function ownEvents(
  relay: TestDevice,
  f: EventFactory,
  issued: readonly VerdictData[],
): Promise<SignedEvent[]> {
  const out: SignedEvent[] = [];
  for (const draft of verdictDrafts(TEST_FACILITY, issued)) {
    const { sig, ...envelope } = f.event(relay.deviceId, draft.type, draft.data, {
      subject: draft.subject,
      deps: draft.deps ?? [],
    });
    void sig;
    out.push(await relay.sign(envelope));
  }
  return out;
}

describe('Adjudicator: restored history', () => {
  it('never judges twice what its own verdicts already judged, and continues the seq', async () => {
    const { relayDevice, relay, f, adj, register, receive, vaccinate } = await setup();
    const p1 = register('p1');
    const lot = receive('L1');
    const v1 = vaccinate('p1', 'L1');
    const bad = vaccinate('p1', 'L9');
    const p2 = register('p2');
    const events = [p1, lot, v1, bad, p2];
    const issued = feed(adj, events);
    expect(issued).toHaveLength(5);
    // Accepted runs share AcceptedVerdicts events, the 422 is its own Verdict.
    const own = await ownEvents(relayDevice, f, issued);
    expect(own.map((e) => e.type)).toEqual([
      SystemEventType.AcceptedVerdicts,
      SystemEventType.Verdict,
      SystemEventType.AcceptedVerdicts,
    ]);

    // Echoes of its own verdicts change nothing.
    for (const e of own) adj.add(e, T0 + 1);
    expect(adj.decide(T0 + 1)).toEqual([]);
    expect(adj.stats().verdicts).toBe(5);

    // A restarted relay fed its log in reverse (verdicts before their targets).
    const restored = new Adjudicator({ relay, facility: TEST_FACILITY, member: (d) => ROSTER.get(d) });
    for (const e of [...events, ...own].reverse()) restored.add(e, T0 + 100);
    expect(restored.decide(T0 + 100)).toEqual([]);
    expect(restored.decide(T0 + 100 + 10 * DEADLINE)).toEqual([]);
    expect(restored.lastSeq).toBe(adj.lastSeq);
    expect(restored.confirmed().toJSON()).toEqual(adj.confirmed().toJSON());
    expect(restored.stats()).toEqual({ events: 8, verdicts: 0, waiting: 0, deadletters: 1 });
    expect(restored.verdictFor(bad.id)).toEqual(adj.verdictFor(bad.id));

    const p3 = register('p3');
    const [next] = feed(restored, [p3], T0 + 200);
    expect(accepted(next).seq).toBe(adj.lastSeq + 1);
  });

  it('folds history in seq order whatever the arrival order, rebuilding when one arrives late', async () => {
    const { relayDevice, relay, f, register, record } = await setup();
    const p = register('p1');
    const rename = record('PatientDemographicsUpdated', { patientId: 'p1', changes: { givenName: 'Grace' } });
    const ok = (target: EventId, seq: number): Promise<SignedEvent> =>
      signedVerdict(relayDevice, f, { target, outcome: 'accepted', seq, ruleSet: RULE_SET_VERSION });
    const [v1, v2] = [await ok(p.id, 1), await ok(rename.id, 2)];
    const adj = new Adjudicator({ relay, facility: TEST_FACILITY, member: (d) => ROSTER.get(d) });
    for (const e of [rename, v2]) adj.add(e, T0);
    expect(adj.decide(T0)).toEqual([]);
    // Seq 2 alone folds to nothing (no patient yet); seq 1 arrives late: refold 1 then 2.
    expect(adj.confirmed().patient('p1')).toBeUndefined();
    for (const e of [v1, p]) adj.add(e, T0 + 1);
    expect(adj.decide(T0 + 1)).toEqual([]);
    expect(adj.confirmed().patient('p1')?.givenName).toBe('Grace');
    expect(adj.lastSeq).toBe(2);
  });

  it('re-validates a 404 whose dependency was accepted before a crash', async () => {
    const { relayDevice, relay, f, register } = await setup();
    const p = register('p1');
    const c = f.event(D1, 'PatientCheckedIn', { patientId: 'p1', encounterId: 'e1' }, { deps: [p.id] });
    // The relay answered c with a 404, then accepted p, then crashed before re-validating c.
    const own = [
      await signedVerdict(relayDevice, f, {
        target: c.id,
        outcome: 'deadletter',
        code: RejectionCode.NotFound,
        rule: RULE_DEPENDENCY_MISSING,
        reason: 'missing.',
        details: { missing: [p.id] },
        ruleSet: RULE_SET_VERSION,
      }),
      await signedVerdict(relayDevice, f, {
        target: p.id,
        outcome: 'accepted',
        seq: 1,
        ruleSet: RULE_SET_VERSION,
      }),
    ];
    const adj = new Adjudicator({ relay, facility: TEST_FACILITY, member: (d) => ROSTER.get(d) });
    for (const e of [...own, c, p]) adj.add(e, T0);
    expect(adj.decide(T0)).toEqual([
      { target: c.id, outcome: 'accepted', seq: 2, ruleSet: RULE_SET_VERSION },
    ]);
  });

  it('judges nothing while its history accepts an event it does not hold yet, so a dependent gets one verdict', async () => {
    // Restored from a backup: it relearned that it accepted p (seq 1) and c (seq 2, depends on p)
    // and holds c, but p's author has not sent p again yet. c is folded but skipped (no patient),
    // so judging x (depends on c) now would give a 404, then an acceptance once p arrives.
    const { relayDevice, relay, f, register } = await setup();
    const p = register('p1');
    const c = f.event(D1, 'PatientCheckedIn', { patientId: 'p1', encounterId: 'e1' }, { deps: [p.id] });
    const x = f.event(D2, 'EncounterStarted', { encounterId: 'e1' }, { deps: [c.id] });
    const ok = (target: EventId, seq: number): Promise<SignedEvent> =>
      signedVerdict(relayDevice, f, { target, outcome: 'accepted', seq, ruleSet: RULE_SET_VERSION });
    const history = [await ok(p.id, 1), await ok(c.id, 2)];
    const restored = (): Adjudicator => {
      const adj = new Adjudicator({ relay, facility: TEST_FACILITY, member: (d) => ROSTER.get(d) });
      for (const e of [...history, c, x]) adj.add(e, T0);
      return adj;
    };

    const adj = restored();
    expect(adj.decide(T0)).toEqual([]);
    expect(adj.nextDeadline()).toBe(T0 + DEADLINE);
    expect(adj.decide(T0 + DEADLINE - 1)).toEqual([]);
    const out = feed(adj, [p], T0 + 500);
    expect(out).toEqual([{ target: x.id, outcome: 'accepted', seq: 3, ruleSet: RULE_SET_VERSION }]);
    expect(adj.confirmed().hasEvent(x.id)).toBe(true);
    expect(adj.decide(T0 + 10 * DEADLINE)).toEqual([]);

    // p never comes back: after the dependency deadline it judges with what it has, once.
    const alone = restored();
    expect(alone.decide(T0 + DEADLINE - 1)).toEqual([]);
    const [late] = alone.decide(T0 + DEADLINE);
    expect([rejected(late).target, rejected(late).rule]).toEqual([x.id, RULE_DEPENDENCY_MISSING]);
    expect(alone.nextDeadline()).toBeUndefined();
    expect(alone.decide(T0 + 10 * DEADLINE)).toEqual([]);
  });

  it('ignores verdicts signed by the relay for another facility', async () => {
    const { relayDevice, relay, f, register } = await setup();
    const p = register('p1');
    const foreign = {
      ...(await signedVerdict(relayDevice, f, {
        target: p.id,
        outcome: 'accepted',
        seq: 7,
        ruleSet: RULE_SET_VERSION,
      })),
      facility: asFacilityId('elsewhere'),
    };
    const adj = new Adjudicator({ relay, facility: TEST_FACILITY, member: (d) => ROSTER.get(d) });
    const out = feed(adj, [foreign, p]);
    expect(out).toEqual([{ target: p.id, outcome: 'accepted', seq: 1, ruleSet: RULE_SET_VERSION }]);
  });
});

describe('Adjudicator: negative stock re-judged when stock arrives (issue #10)', () => {
  const ok = (target: EventId, seq: number): VerdictData => ({
    target,
    outcome: 'accepted',
    seq,
    ruleSet: RULE_SET_VERSION,
  });
  /** The accepted verdicts about `id` among `verdicts`. */
  const acceptances = (verdicts: readonly VerdictData[], id: EventId) =>
    verdicts.filter((v) => v.target === id && v.outcome === 'accepted');

  it('accepts a 422 by itself once its lot gets stock, with no retry; stock of another lot changes nothing', async () => {
    const { adj, register, receive, vaccinate } = await setup();
    const p = register('p1');
    const v = vaccinate('p1', 'L1'); // lot L1 never received
    const [, no] = feed(adj, [p, v]);
    expect(rejected(no).rule).toBe(RULE_NEGATIVE_STOCK);

    const other = receive('L2', 5);
    expect(feed(adj, [other], T0 + 1)).toEqual([ok(other.id, 2)]);
    expect(adj.decide(T0 + 2)).toEqual([]);
    expect(adj.verdictFor(v.id)).toEqual(no);

    const lot = receive('L1', 3);
    expect(feed(adj, [lot], T0 + 3)).toEqual([ok(lot.id, 3), ok(v.id, 4)]);
    expect(adj.confirmed().lot('L1')?.balance).toBe(2);
    expect(
      adj
        .confirmed()
        .immunizationsOf('p1')
        .map((i) => i.eventId),
    ).toEqual([v.id]);
    expect(adj.stats()).toEqual({ events: 4, verdicts: 5, waiting: 0, deadletters: 0 });
    // Accepted once, ever: more stock of the lot later judges only the stock.
    const more = receive('L1', 2);
    expect(feed(adj, [more], T0 + 4)).toEqual([ok(more.id, 5)]);
  });

  it('records nothing while the lot is still short (not even a 422 with new numbers), then accepts', async () => {
    const { adj, record, receive } = await setup();
    const lot = receive('L1', 2);
    const take = record('StockConsumed', { lot: 'L1', quantity: 5 });
    const [, no] = feed(adj, [lot, take]);
    expect(rejected(no).details).toEqual({ lot: 'L1', balance: 2, requested: 5, retriesWhen: 'stock' });

    const some = receive('L1', 2); // 4 in stock: still one short
    expect(feed(adj, [some], T0 + 1)).toEqual([ok(some.id, 2)]);
    expect(adj.verdictFor(take.id)).toEqual(no);
    const adjust = record('StockAdjusted', { lot: 'L1', delta: 1, reason: 'recount' });
    expect(feed(adj, [adjust], T0 + 2)).toEqual([ok(adjust.id, 3), ok(take.id, 4)]);
    expect(adj.confirmed().lot('L1')?.balance).toBe(0);
  });

  it('gives partial stock to the oldest 422 first, by verdict, not by event order', async () => {
    const { adj, register, receive, vaccinate } = await setup();
    const ps = ['p1', 'p2', 'p3'].map((id) => register(id));
    expect(feed(adj, ps)).toHaveLength(3);
    // Recorded b, c, a (event order) but judged a, b, c (verdict order).
    const b = vaccinate('p2', 'L1');
    const c = vaccinate('p3', 'L1');
    const a = vaccinate('p1', 'L1');
    for (const [i, e] of [a, b, c].entries()) {
      expect(rejected(feed(adj, [e], T0 + 1 + i)[0]).rule).toBe(RULE_NEGATIVE_STOCK);
    }
    const two = receive('L1', 2);
    expect(feed(adj, [two], T0 + 10)).toEqual([ok(two.id, 4), ok(a.id, 5), ok(b.id, 6)]);
    expect(rejected(adj.verdictFor(c.id)).details).toMatchObject({ balance: 0 });
    expect(adj.stats().deadletters).toBe(1);
    const one = receive('L1', 1);
    expect(feed(adj, [one], T0 + 11)).toEqual([ok(one.id, 7), ok(c.id, 8)]);
    expect(adj.confirmed().lot('L1')?.balance).toBe(0);
  });

  it('accepts an event once when a retry or an amend races the re-judgement, whichever is judged first', async () => {
    const { adj, f, register, receive, vaccinate } = await setup();
    const ps = ['p1', 'p2', 'p3', 'p4'].map((id) => register(id));
    const [v1, v2, v3, v4] = ['p1', 'p2', 'p3', 'p4'].map((id) => vaccinate(id, 'L1')) as [
      SignedEvent,
      SignedEvent,
      SignedEvent,
      SignedEvent,
    ];
    const first = feed(adj, [...ps, v1, v2, v3, v4]);
    expect(first.filter((x) => x.outcome === 'deadletter').map((x) => x.target)).toEqual([
      v1.id,
      v2.id,
      v3.id,
      v4.id,
    ]);
    // v1: its retry is judged before the stock (a new 422), the stock then accepts it.
    const retryFirst = f.retry(D1, v1);
    // v3: an amend (same dose, same lot) is judged before the stock, so it is short too.
    const amendFirst = f.event(D2, v3.type, v3.data, { deps: v3.deps, supersedes: v3.id });
    const lot = receive('L1', 10);
    // v2 and v4: a retry and an amend judged after the stock find them accepted already.
    const retryAfter = f.retry(D2, v2);
    const amendAfter = f.event(D1, v4.type, v4.data, { deps: v4.deps, supersedes: v4.id });
    const out = feed(adj, [amendAfter, retryAfter, lot, amendFirst, retryFirst], T0 + 1);
    expect(out.map((x) => [x.target, x.outcome === 'accepted' ? x.outcome : x.rule])).toEqual([
      [retryFirst.id, 'accepted'],
      [v1.id, RULE_NEGATIVE_STOCK],
      [amendFirst.id, RULE_NEGATIVE_STOCK],
      [lot.id, 'accepted'],
      // Oldest 422 first: v2, v3, v4 from the first round, then v1's and the amend's newer ones.
      [v2.id, 'accepted'],
      [v3.id, 'accepted'],
      [v4.id, 'accepted'],
      [v1.id, 'accepted'],
      [retryAfter.id, RULE_NOT_DEADLETTERED],
      [amendAfter.id, RULE_SUPERSEDES_ACCEPTED],
    ]);
    for (const v of [v1, v2, v3, v4]) expect(acceptances([...first, ...out], v.id)).toHaveLength(1);
    // The amend of v3 would take stock but v3 is accepted: not re-judged into a second dose.
    expect(acceptances(out, amendFirst.id)).toEqual([]);
    expect(adj.confirmed().lot('L1')?.balance).toBe(6);
    expect(adj.decide(T0 + 2)).toEqual([]);
  });

  it('never accepts both a 422 and its amend when stock arrives for both', async () => {
    const { adj, f, record, receive } = await setup();
    const lot = receive('L1', 1);
    const take = record('StockConsumed', { lot: 'L1', quantity: 2 });
    feed(adj, [lot, take]);
    // The amend says the same (the user re-entered it): short too, and newer.
    const amend = f.event(D2, take.type, take.data, { deps: take.deps, supersedes: take.id });
    expect(rejected(feed(adj, [amend], T0 + 1)[0]).rule).toBe(RULE_NEGATIVE_STOCK);
    const more = receive('L1', 9);
    // The older 422 takes the stock; the amend would fit too, but replaces accepted history: nothing.
    expect(feed(adj, [more], T0 + 2)).toEqual([ok(more.id, 2), ok(take.id, 3)]);
    expect(rejected(adj.verdictFor(amend.id)).rule).toBe(RULE_NEGATIVE_STOCK);
    expect(adj.confirmed().lot('L1')?.balance).toBe(8);
  });

  it('leaves a discarded 422 alone, and a 422 now refused by another rule waits for the user', async () => {
    const { adj, f, register, receive, vaccinate } = await setup();
    const p1 = register('p1');
    const p2 = register('p2');
    const gone = vaccinate('p2', 'L1');
    const v = vaccinate('p1', 'L1');
    feed(adj, [p1, p2, gone, v]);
    const stale = adj.verdictFor(v.id);
    expect(rejected(stale).rule).toBe(RULE_NEGATIVE_STOCK);
    expect(accepted(feed(adj, [f.discard(D2, gone)], T0 + 1)[0]).seq).toBe(3);
    // Meanwhile p1 gets BCG dose 1 from another lot: v would now be a second dose 1.
    const l2 = receive('L2', 1);
    const given = vaccinate('p1', 'L2');
    expect(feed(adj, [l2, given], T0 + 2)).toEqual([ok(l2.id, 4), ok(given.id, 5)]);
    const l1 = receive('L1', 5);
    expect(feed(adj, [l1], T0 + 3)).toEqual([ok(l1.id, 6)]);
    expect(adj.verdictFor(v.id)).toEqual(stale);
    expect(adj.verdictFor(gone.id)?.outcome).toBe('deadletter');
    expect(adj.stats().deadletters).toBe(1);
    // The user retries: now the verdict says why.
    const retry = f.retry(D1, v);
    const out = feed(adj, [retry], T0 + 4);
    expect(out.map((x) => [x.target, x.outcome === 'accepted' ? x.outcome : x.rule])).toEqual([
      [retry.id, 'accepted'],
      [v.id, RULE_DOSE_OUT_OF_SEQUENCE],
    ]);
  });

  it('re-judges after a restart between the stock and the re-judgement, whatever order the log arrives in, and never twice', async () => {
    const { relayDevice, relay, f, adj, register, receive, vaccinate } = await setup();
    const p = register('p1');
    const v = vaccinate('p1', 'L1');
    const before = feed(adj, [p, v]);
    const lot = receive('L1', 3);
    adj.add(lot, T0 + 1);
    // The relay's round ends after the receipt (a round is bounded), and it crashes there.
    const round = adj.decide(T0 + 1, 1);
    expect(round).toEqual([ok(lot.id, 2)]);
    const own = await ownEvents(relayDevice, f, [...before, ...round]);
    const [okP, no, okLot] = own as [SignedEvent, SignedEvent, SignedEvent];
    expect(verdictsIn(no).map((x) => x.target)).toEqual([v.id]);
    const expected = [ok(v.id, 3)];
    const fresh = () => new Adjudicator({ relay, facility: TEST_FACILITY, member: (d) => ROSTER.get(d) });

    // The whole log at once.
    const whole = fresh();
    for (const e of [p, v, lot, ...own].reverse()) whole.add(e, T0 + 2);
    expect(whole.decide(T0 + 2)).toEqual(expected);
    // The stock folded before the 422 is known.
    const stockFirst = fresh();
    for (const e of [p, okP, lot, okLot]) stockFirst.add(e, T0 + 2);
    expect(stockFirst.confirmed().lot('L1')?.balance).toBe(3);
    for (const e of [v, no]) stockFirst.add(e, T0 + 2);
    expect(stockFirst.decide(T0 + 2)).toEqual(expected);
    // The 422's event arrives after everything else was decided.
    const eventLast = fresh();
    for (const e of [p, okP, no, lot, okLot]) eventLast.add(e, T0 + 2);
    expect(eventLast.decide(T0 + 2)).toEqual([]);
    eventLast.add(v, T0 + 3);
    expect(eventLast.decide(T0 + 3)).toEqual(expected);
    // The crashed instance would have said the same.
    expect(adj.decide(T0 + 1)).toEqual(expected);

    // Once recorded, no restart judges it again, and a retry finds it accepted.
    const all = [p, v, lot, ...own, ...(await ownEvents(relayDevice, f, expected))];
    const later = fresh();
    for (const e of all) later.add(e, T0 + 5);
    expect(later.decide(T0 + 5)).toEqual([]);
    expect(later.verdictFor(v.id)).toEqual(expected[0]);
    const retry = f.retry(D1, v);
    const [refused] = feed(later, [retry], T0 + 6);
    expect(rejected(refused).details).toEqual({ target: v.id, status: 'accepted' });
    expect(later.lastSeq).toBe(3);
  });

  it('heals a 422 an older relay left open while stock arrived, even when its history folds out of order', async () => {
    const { relayDevice, relay, f, register, receive, vaccinate } = await setup();
    const p = register('p1');
    const v = vaccinate('p1', 'L1');
    const lot = receive('L1', 1);
    const p2 = register('p2');
    // Written by a relay from before issue #10: no retriesWhen, and the 422 stayed open.
    const sign = (data: VerdictData) => signedVerdict(relayDevice, f, data);
    const no = await sign({
      target: v.id,
      outcome: 'deadletter',
      code: RejectionCode.Rule,
      rule: RULE_NEGATIVE_STOCK,
      reason: 'Lot "L1" was never received; it has 0 doses in stock; taking 1 would leave -1.',
      details: { lot: 'L1', balance: 0, requested: 1 },
      ruleSet: RULE_SET_VERSION,
    });
    const history = [await sign(ok(p.id, 1)), await sign(ok(lot.id, 2)), await sign(ok(p2.id, 3))];
    const adj = new Adjudicator({ relay, facility: TEST_FACILITY, member: (d) => ROSTER.get(d) });
    for (const e of [p, history[0]!, p2, history[2]!, v, no]) adj.add(e, T0);
    expect(adj.decide(T0)).toEqual([]); // the lot is unknown yet
    // The receipt's seq 2 sorts below what was folded: the confirmed state is rebuilt.
    for (const e of [lot, history[1]!]) adj.add(e, T0 + 1);
    expect(adj.decide(T0 + 1)).toEqual([ok(v.id, 4)]);
    expect(adj.confirmed().lot('L1')?.balance).toBe(0);
  });
});

describe('Adjudicator: hostile input (issue #13)', () => {
  it('makes a failure to judge one event that event’s 500 and goes on with the rest', async () => {
    const relay = (await makeTestDevice()).deviceId;
    const f = new EventFactory({ relay });
    const adj = new Adjudicator({
      relay,
      facility: TEST_FACILITY,
      member: (d) => {
        if (d === D2) throw new Error(`roster lookup exploded ${'!'.repeat(5000)}`);
        return ROSTER.get(d);
      },
    });
    const reg = (patientId: string, device: DeviceId) =>
      f.event(device, 'PatientRegistered', {
        patientId,
        nationalId: `NID-${patientId}`,
        givenName: 'Amina',
        familyName: 'Banda',
        birthDate: '2024-01-10',
        sex: 'female',
      });
    const before = reg('P1', D1);
    const broken = reg('P2', D2);
    const after = reg('P3', D1);
    const out = feed(adj, [before, broken, after]);
    expect(out.map((v) => [v.target, v.outcome === 'accepted' ? v.seq : v.code])).toEqual([
      [before.id, 1],
      [broken.id, 500],
      [after.id, 2],
    ]);
    const failed = out[1]!;
    expect(failed).toMatchObject({ outcome: 'deadletter', rule: RULE_UNPROCESSABLE });
    expect(failed.outcome === 'deadletter' && failed.reason).toMatch(
      /^The relay could not judge the event: .*…$/,
    );
    expect(parseVerdictData(failed).ok).toBe(true);
    expect(adj.stats().waiting).toBe(0);
  });

  it('drafts a writable verdict for any event data, however hostile', async () => {
    const relay = (await makeTestDevice()).deviceId;
    const key = fc.string({ unit: 'binary', minLength: 1, maxLength: 8 });
    const value = fc.oneof(
      fc.constant(0),
      fc.string({ unit: 'binary', maxLength: 4000 }),
      fc.jsonValue({ maxDepth: 4 }),
    );
    fc.assert(
      fc.property(
        fc.constantFrom(
          'PatientRegistered',
          'StockReceived',
          'RetryRequested',
          'DeadletterDiscarded',
          'Nope',
        ),
        fc.dictionary(key, value, { maxKeys: 300 }),
        fc.nat({ max: 7500 }),
        (type, junk, extra) => {
          const f = new EventFactory({ relay });
          const adj = new Adjudicator({ relay, facility: TEST_FACILITY, member: (d) => ROSTER.get(d) });
          const data = { ...junk } as Record<string, JsonValue>;
          for (let i = 0; i < extra; i++) data[(i + 1296).toString(36)] = 0;
          const e = f.event(D1, type, data);
          const out = feed(adj, [e]);
          expect(out).toHaveLength(1);
          for (const draft of verdictDrafts(TEST_FACILITY, out)) {
            if (draft.type === SystemEventType.Verdict) expect(parseVerdictData(draft.data).ok).toBe(true);
            // Room for the envelope (ids, subject, deps, signature) around the data.
            expect(canonicalEncode(draft.data).length).toBeLessThan(MAX_EVENT_BYTES - 4096);
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe('Adjudicator: scale', () => {
  it('accepts every event of a large generated facility delivered in a scrambled order', () => {
    const { events } = buildFacility(randomFacilityOps(20_000, 7));
    const relay = testDeviceId(200);
    const members = new Set(events.map((e) => e.device));
    const adj = new Adjudicator({
      relay,
      facility: TEST_FACILITY,
      member: (d) => (members.has(d) ? { revoked: false } : undefined),
    });
    // A deterministic shuffle (xorshift).
    const n = events.length;
    const order = [...events];
    let x = 12345;
    for (let i = n - 1; i > 0; i--) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      const j = (x >>> 0) % (i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    // A backlog: everything is in the log before the relay decides (deps name records, not every
    // earlier fact — an earlier dose is not a dep of the next — so a partial log may be judged
    // differently).
    for (const e of order) adj.add(e, T0);
    const out = adj.decide(T0);
    expect(out.filter((v) => v.outcome !== 'accepted')).toEqual([]);
    expect(out.map((v) => (v as { seq: number }).seq)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    // Causal order: every event's deps were accepted before it.
    const pos = new Map<EventId, number>(out.map((v, i) => [v.target, i]));
    const late = events.filter((e) => e.deps.some((d) => pos.get(d)! > pos.get(e.id)!));
    expect(late).toEqual([]);
    expect(adj.stats()).toEqual({ events: n, verdicts: n, waiting: 0, deadletters: 0 });
  });
});
