// Issue #13: business dates ("today", the queue's day) follow the facility's time zone, not UTC.
import { describe, expect, it } from 'vitest';
import type { SignedEvent } from '@accord/protocol';
import { zonedDate } from './dates.js';
import { Projection } from './projection.js';
import { EventFactory, testDeviceId } from './testing.js';

const dev = testDeviceId(1);

function fold(events: readonly SignedEvent[]): Projection {
  const p = Projection.empty();
  for (const e of events) p.apply(e);
  return p;
}

describe("the queue's day in the facility's time zone", () => {
  // 23:30 UTC on 6 December is 02:30 on 7 December in Nairobi (UTC+3).
  const f = new EventFactory({ startMs: Date.UTC(2026, 11, 6, 23, 30, 0) });
  const events = [
    f.event(dev, 'PatientRegistered', {
      patientId: 'p1',
      nationalId: 'N-p1',
      givenName: 'Amina',
      familyName: 'Banda',
      birthDate: '2024-01-10',
      sex: 'female',
    }),
    f.event(dev, 'PatientCheckedIn', { patientId: 'p1', encounterId: 'e1' }),
    f.event(dev, 'EncounterStarted', { encounterId: 'e1' }),
    f.event(dev, 'EncounterCompleted', { encounterId: 'e1' }),
  ];
  const p = fold(events);
  const checkIn = events[1]!;

  it('is the next calendar day at 23:30 UTC in Africa/Nairobi, and the encounter belongs to it', () => {
    expect(checkIn.hlc.startsWith('2026-12-06T23:30')).toBe(true);
    const today = zonedDate(Date.UTC(2026, 11, 6, 23, 30), 'Africa/Nairobi');
    expect(today).toBe('2026-12-07');
    const queue = p.queue(today, 'Africa/Nairobi');
    expect(queue.done.map((e) => e.encounterId)).toEqual(['e1']);
    expect(queue.done[0]!.day).toBe('2026-12-07');
    // The evening before, in Nairobi, that encounter had not happened yet.
    expect(p.queue('2026-12-06', 'Africa/Nairobi').done).toEqual([]);
  });

  it('stays on the UTC day without a time zone (and with an unknown one)', () => {
    expect(p.queue('2026-12-06').done.map((e) => e.day)).toEqual(['2026-12-06']);
    expect(p.queue('2026-12-06', 'Mars/Olympus_Mons').done.map((e) => e.day)).toEqual(['2026-12-06']);
    expect(p.queue('2026-12-07').done).toEqual([]);
  });

  it('does not change the folded state, so every device folds the same whatever its zone', () => {
    const before = JSON.stringify(p.toJSON());
    p.queue('2026-12-07', 'Africa/Nairobi');
    expect(JSON.stringify(p.toJSON())).toBe(before);
  });
});
