import { describe, expect, it } from 'vitest';
import type { EventId, SignedEvent } from '@accord/protocol';
import { checkEventData } from './catalogue.js';
import { prepareDraft, type PreparedDraft } from './draft.js';
import { checkEvent, markPrepared, Projection } from './projection.js';
import { TEST_FACILITY, testDeviceId } from './testing.js';

const registration = {
  patientId: 'p1',
  nationalId: 'N-1',
  givenName: 'Amina',
  familyName: 'Banda',
  birthDate: '2024-01-10',
  sex: 'female',
};

function prepared(): PreparedDraft {
  const r = prepareDraft(Projection.empty(), { type: 'PatientRegistered', data: registration });
  if (!r.ok) throw r.error;
  return r.value;
}

/** An own event built from `p` as the device log builds it (envelope fields, then a signature). */
function eventFrom(p: PreparedDraft, overrides: Partial<SignedEvent> = {}): SignedEvent {
  return {
    v: 1,
    id: '01HZZZZZZZZZZZZZZZZZZZZZZZ' as EventId,
    facility: TEST_FACILITY,
    device: testDeviceId(1),
    seq: 1,
    hlc: '2024-01-10T08:00:00.000Z/000000',
    type: p.type,
    schema: p.schema,
    subject: p.subject,
    deps: p.deps,
    data: p.data,
    sig: '',
    ...overrides,
  } as SignedEvent;
}

// A schema check returns the schema's copy of the data; an event marked prepared is answered from
// the cache with its own data object: which one comes back shows whether the data was checked again.
describe('markPrepared and checkEvent', () => {
  it('an event built from a prepared draft is not checked again', () => {
    const p = prepared();
    const event = eventFrom(p);
    const unmarked = checkEvent(eventFrom(p));
    expect(unmarked.ok).toBe(true);
    if (unmarked.ok) expect(unmarked.value.data).not.toBe(p.data);
    markPrepared(event, p);
    const checked = checkEvent(event);
    expect(checked.ok).toBe(true);
    if (!checked.ok) return;
    expect(checked.value.data).toBe(event.data);
    expect(checked.value).toEqual({ type: 'PatientRegistered', data: registration, subject: p.subject });
    // Folding it applies it as before.
    const view = Projection.empty();
    view.apply(event);
    expect(view.patient('p1')?.familyName).toBe('Banda');
  });

  it('believes only drafts prepareDraft made, and only for events that carry their parts', () => {
    const p = prepared();
    const cases: [string, SignedEvent, PreparedDraft][] = [
      ['a look-alike draft', eventFrom(p), { ...p }],
      ['equal data in another object', eventFrom(p, { data: { ...registration } }), p],
      ['another subject', eventFrom(p, { subject: { kind: 'patient', id: 'p2' } }), p],
      ['another schema', eventFrom(p, { schema: 2 }), p],
      ['another type', eventFrom(p, { type: 'PatientCheckedIn' }), p],
    ];
    for (const [what, event, draft] of cases) {
      markPrepared(event, draft);
      const checked = checkEvent(event);
      const again = checkEventData(event.type, event.schema, event.data);
      expect({ what, ok: checked.ok }).toEqual({ what, ok: again.ok });
      if (checked.ok)
        expect({ what, same: checked.value.data === event.data }).toEqual({ what, same: false });
      else if (!again.ok) expect(checked.error.details).toEqual(again.error.details);
    }
  });

  it('answers as checkEventData for events it has not seen', () => {
    const p = prepared();
    for (const event of [
      eventFrom(p),
      eventFrom(p, { data: { ...registration, sex: 'robot' } }),
      eventFrom(p, { type: 'Nope' }),
      eventFrom(p, { schema: 7 }),
      eventFrom(p, { schema: '1' as unknown as number }),
    ]) {
      const schema: unknown = event.schema;
      const expected = checkEventData(
        event.type,
        typeof schema === 'number' ? schema : Number.NaN,
        event.data,
      );
      expect(checkEvent(event)).toEqual(expected);
    }
  });
});
