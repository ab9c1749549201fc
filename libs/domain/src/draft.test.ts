import { describe, expect, it } from 'vitest';
import { ErrorCode } from '@accord/protocol';
import { prepareDraft } from './draft.js';
import { Projection } from './projection.js';
import { EventFactory, testDeviceId } from './testing.js';

const dev = testDeviceId(1);

function facility() {
  const f = new EventFactory();
  const reg = f.event(dev, 'PatientRegistered', {
    patientId: 'p1',
    nationalId: 'N-1',
    givenName: 'Amina',
    familyName: 'Banda',
    birthDate: '2024-01-10',
    sex: 'female',
  });
  const lot = f.event(dev, 'StockReceived', { lot: 'L1', antigen: 'BCG', quantity: 5, expiry: '2025-01-01' });
  const upd = f.event(dev, 'PatientDemographicsUpdated', {
    patientId: 'p1',
    changes: { familyName: 'Phiri' },
  });
  const view = Projection.empty();
  for (const e of [reg, lot, upd]) view.apply(e);
  return { view, reg, lot, upd };
}

describe('prepareDraft', () => {
  it('fills basis with the version of each changed field and depends on those events', () => {
    const { view, reg, upd } = facility();
    const r = prepareDraft(view, {
      type: 'PatientDemographicsUpdated',
      data: { patientId: 'p1', changes: { familyName: 'Tembo', sex: 'other' } },
    });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value).toEqual({
      type: 'PatientDemographicsUpdated',
      schema: 1,
      subject: { kind: 'patient', id: 'p1' },
      deps: [reg.id, upd.id].sort(),
      basis: { familyName: upd.id, sex: reg.id },
      data: { patientId: 'p1', changes: { familyName: 'Tembo', sex: 'other' } },
    });
  });

  it('depends on the subject, the references and a known lot', () => {
    const { view, reg, lot } = facility();
    const r = prepareDraft(view, {
      type: 'VaccinationAdministered',
      data: { patientId: 'p1', antigen: 'BCG', dose: 1, lot: 'L1', date: '2024-01-10' },
    });
    expect(r.ok && r.value.deps).toEqual([reg.id, lot.id].sort());
    expect(r.ok && 'basis' in r.value).toBe(false);
    const unknownLot = prepareDraft(view, {
      type: 'VaccinationAdministered',
      data: { patientId: 'p1', antigen: 'BCG', dose: 1, lot: 'L9', date: '2024-01-10' },
    });
    expect(unknownLot.ok && unknownLot.value.deps).toEqual([reg.id]);
    const checkIn = prepareDraft(view, {
      type: 'PatientCheckedIn',
      data: { patientId: 'p1', encounterId: 'e1' },
    });
    expect(checkIn.ok && checkIn.value.deps).toEqual([reg.id]);
    expect(checkIn.ok && checkIn.value.subject).toEqual({ kind: 'encounter', id: 'e1' });
  });

  it('uses a null basis for a patient this view does not know', () => {
    const r = prepareDraft(Projection.empty(), {
      type: 'PatientDemographicsUpdated',
      data: { patientId: 'px', changes: { sex: 'male' } },
    });
    expect(r.ok && r.value.basis).toEqual({ sex: null });
    expect(r.ok && r.value.deps).toEqual([]);
  });

  it('refuses invalid drafts with PROTOCOL_SCHEMA, never throwing', () => {
    const { view } = facility();
    for (const draft of [
      { type: 'Nope', data: {} },
      { type: 'StockReceived', data: { lot: 'L1' } },
      { type: 'PatientRegistered', data: null },
      { type: '__proto__', data: {} },
    ]) {
      const r = prepareDraft(view, draft);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.code).toBe(ErrorCode.PROTOCOL_SCHEMA);
    }
  });

  it('drops nothing and adds nothing: the data is the schema output as plain JSON', () => {
    const { view } = facility();
    const r = prepareDraft(view, {
      type: 'EncounterCancelled',
      data: { encounterId: 'e1', reason: undefined },
    });
    expect(r.ok && r.value.data).toEqual({ encounterId: 'e1' });
  });
});
