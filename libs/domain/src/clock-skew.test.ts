// Issue #13: events from a device whose clock is off are accepted and flagged, from evidence every
// device holds alike (the relay's verdicts), so every device flags the same devices.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { newEventId, SystemEventType, type EventId, type SignedEvent } from '@accord/protocol';
import { ClockSkewDetector, CLOCK_SKEW_THRESHOLD_MS } from './clock-skew.js';
import { EventFactory, testDeviceId } from './testing.js';

const T = Date.UTC(2026, 11, 6, 9, 0, 0);
const HOUR = 3_600_000;
const TWO_YEARS = 2 * 365 * 24 * HOUR;
const ahead = testDeviceId(1);
const honest = testDeviceId(2);
const stranger = testDeviceId(3);

function registration(f: EventFactory, device: typeof ahead, madeAt: number, n: number): SignedEvent {
  return f.event(
    device,
    'PatientRegistered',
    {
      patientId: `p${n}`,
      nationalId: `N${n}`,
      givenName: 'Ama',
      familyName: 'Mensah',
      birthDate: '2020-01-01',
      sex: 'female',
    },
    { id: newEventId(madeAt) },
  );
}

/** A relay `AcceptedVerdicts` stated at `at` (its id's time), signed by `by` (default the relay). */
function accepted(f: EventFactory, at: number, targets: readonly SignedEvent[], by = f.relay): SignedEvent {
  return f.event(
    by,
    SystemEventType.AcceptedVerdicts,
    { ruleSet: 'accord-rules/1', firstSeq: f.nextConfirmedSeq, targets: targets.map((t) => t.id) },
    { id: newEventId(at), subject: { kind: 'verdicts', id: f.facility } },
  );
}

function rejected(f: EventFactory, at: number, target: SignedEvent): SignedEvent {
  return f.event(
    f.relay,
    SystemEventType.Verdict,
    {
      target: target.id,
      outcome: 'deadletter',
      code: 422,
      rule: 'RULE_TEST',
      reason: 'test',
      details: {},
      ruleSet: 'accord-rules/1',
    },
    { id: newEventId(at), subject: { kind: 'event', id: target.id }, deps: [target.id] },
  );
}

function detect(events: readonly SignedEvent[], relay = events.length > 0 ? new EventFactory().relay : null) {
  const byId = new Map<EventId, SignedEvent>();
  const detector = new ClockSkewDetector({ relay, lookup: (id) => byId.get(id) });
  for (const e of events) {
    byId.set(e.id, e);
    detector.add(e);
  }
  return detector.skews();
}

describe('ClockSkewDetector', () => {
  it('flags a tablet two years ahead of the relay, and not an honest one judged in the same verdict', () => {
    const f = new EventFactory();
    const fromA = [1, 2, 3, 4, 5].map((n) => registration(f, ahead, T + TWO_YEARS + n * 1000, n));
    const fromB = registration(f, honest, T - 2000, 9);
    const skews = detect([...fromA, fromB, accepted(f, T + 10_000, [...fromA, fromB])], f.relay);
    expect(skews).toHaveLength(1);
    expect(skews[0]).toMatchObject({ device: ahead, event: fromA[4]!.id });
    expect(skews[0]!.offByHours).toBeCloseTo(TWO_YEARS / HOUR, 0);
    expect(skews[0]!.offByMs).toBe(TWO_YEARS + 5000 - 10_000);
  });

  it('flags only beyond the threshold, and counts a rejection as much as an acceptance', () => {
    const f = new EventFactory();
    const justUnder = registration(f, honest, T + CLOCK_SKEW_THRESHOLD_MS, 1);
    const over = registration(f, ahead, T + 3 * HOUR, 2);
    const skews = detect([justUnder, over, accepted(f, T, [justUnder]), rejected(f, T, over)], f.relay);
    expect(skews.map((s) => [s.device, s.offByHours])).toEqual([[ahead, 3]]);
  });

  it('stops flagging a device once its latest judged event is on time (its clock was put right)', () => {
    const f = new EventFactory();
    const early = registration(f, ahead, T + TWO_YEARS, 1);
    const fixed = registration(f, ahead, T + 60_000, 2);
    const v1 = accepted(f, T + 1000, [early]);
    expect(detect([early, v1], f.relay)).toHaveLength(1);
    expect(detect([early, v1, fixed, accepted(f, T + 61_000, [fixed])], f.relay)).toEqual([]);
  });

  it('ignores verdicts not signed by the relay, and flags nothing without a relay', () => {
    const f = new EventFactory();
    const e = registration(f, ahead, T + TWO_YEARS, 1);
    expect(detect([e, accepted(f, T, [e], stranger)], f.relay)).toEqual([]);
    expect(detect([e, accepted(f, T, [e])], null)).toEqual([]);
  });

  it('gives the same result whatever order the events arrive in (verdicts before their events too)', () => {
    const f = new EventFactory();
    const events: SignedEvent[] = [];
    let n = 0;
    for (const [device, offset] of [
      [ahead, TWO_YEARS],
      [honest, -5 * HOUR],
      [stranger, 2 * HOUR],
    ] as const) {
      const mine = [1, 2, 3].map((i) => registration(f, device, T + offset + i * 1000, ++n));
      events.push(...mine, accepted(f, T + 10_000, mine.slice(0, 2)), rejected(f, T + 20_000, mine[2]!));
      events.push(accepted(f, T + 30_000, [mine[2]!])); // a later verdict on the same event
    }
    const expected = detect(events, f.relay);
    expect(expected.map((s) => s.device)).toEqual([ahead, stranger].sort());
    fc.assert(
      fc.property(fc.shuffledSubarray(events, { minLength: events.length }), (order) => {
        expect(detect(order, f.relay)).toEqual(expected);
      }),
    );
  });
});
