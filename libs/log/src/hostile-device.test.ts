// The hostile-device helper writes what a modified client could, and an honest log reads it as
// it would read a peer's documents: the helper is only useful if its writes really arrive.
import { describe, expect, it } from 'vitest';
import type { FacilityId } from '@accord/protocol';
import { hostileDevice, makeFacility, openMemoryLog } from './testing.js';

const FACILITY = 'hostile-facility' as FacilityId;

const patient = (n: number) => ({
  patientId: `H${n}`,
  nationalId: `HN${n}`,
  givenName: 'Ama',
  familyName: `F${n}`,
  birthDate: '2019-05-04',
  sex: 'female',
});

describe('hostileDevice', () => {
  it('signs with an enrolled key and writes into its own segment where an honest log takes it in', async () => {
    const facility = await makeFacility(FACILITY, 2, 7);
    const log = await openMemoryLog(facility, 0);
    const hostile = hostileDevice(log, facility.keys[1]!);
    const first = await hostile.sign({
      type: 'PatientRegistered',
      data: patient(1),
      subject: { kind: 'patient', id: 'H1' },
    });
    const second = await hostile.sign({
      type: 'PatientRegistered',
      data: patient(2),
      subject: { kind: 'patient', id: 'H2' },
    });
    expect([first.seq, second.seq]).toEqual([1, 2]);
    await hostile.write([first, second]);
    await log.settled();
    expect(log.get(first.id)?.event.device).toBe(facility.keys[1]!.deviceId);
    expect(log.get(second.id)?.status).toBe('pending');
    // A skipped number is written as asked: the honest log sees a hole behind it.
    hostile.continueAfter(3);
    const fourth = await hostile.sign({
      type: 'PatientRegistered',
      data: patient(4),
      subject: { kind: 'patient', id: 'H4' },
    });
    await hostile.write([fourth]);
    await log.settled();
    expect(log.integrity().holes).toEqual([{ device: facility.keys[1]!.deviceId, missing: [3] }]);
    await log.close();
  });
});
