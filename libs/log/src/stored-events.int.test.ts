// Events are not resident: the log reads them back from its event store (real LevelDB) on
// demand. These tests would fail if a query answered from anything but the stored bytes, or if
// a value damaged on disk after open were answered as something else, or crashed the log.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeSignedEvent, type FacilityId, type SignedEvent } from '@accord/protocol';
import { eventStoreRawKey, openDeviceDatabase, type DeviceDatabase } from '@accord/storage-level';
import { DeviceLog } from './device-log.js';
import { makeFacility, patientRegistration, type TestFacility } from './testing.js';

const VIEW = { keyEncoding: 'view', valueEncoding: 'view' } as const;

describe('DeviceLog reads its events from the event store', () => {
  let dir: string;
  let facility: TestFacility;
  let db: DeviceDatabase;
  let log: DeviceLog;

  const open = async (): Promise<DeviceLog> => {
    db = await openDeviceDatabase(join(dir, 'db'));
    log = await DeviceLog.open({
      facility: facility.facility,
      key: facility.keys[0]!,
      eventStore: db.eventStore,
      storage: db.storageAdapter,
      roster: facility.roster,
    });
    return log;
  };
  const close = async (): Promise<void> => {
    await log.close();
    await db.close();
  };
  /** The event the store holds for `id`, decoded from its stored bytes. */
  const storedEvent = async (id: string): Promise<SignedEvent> => {
    const stored = await db.eventStore.get(id);
    const decoded = decodeSignedEvent(stored!.bytes);
    if (!decoded.ok) throw new Error('the stored bytes do not decode');
    return decoded.value;
  };
  /** Flips the last byte of the stored value of `event` on disk, bypassing its checksum. */
  const damage = async (event: SignedEvent): Promise<void> => {
    const raw = db.db.sublevel<Uint8Array, Uint8Array>('events', VIEW);
    const key = eventStoreRawKey({ kind: 'event', device: event.device, seq: event.seq });
    const value = (await raw.get(key))!;
    const copy = new Uint8Array(value);
    copy[copy.length - 1] = copy[copy.length - 1]! ^ 0xff;
    await raw.put(key, copy);
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'accord-log-stored-'));
    facility = await makeFacility('stored-events' as FacilityId, 1);
  });
  afterEach(async () => {
    await close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers get, list, outbox, visibleEvents and the projections from the stored bytes after a reopen', async () => {
    await open();
    const appended: SignedEvent[] = [];
    for (let i = 0; i < 12; i++)
      appended.push((await log.append(patientRegistration(`p${i}`, `Name${i}`))).event);
    await close();

    await open();
    for (const event of appended) {
      const info = log.get(event.id);
      expect(info?.event).toEqual(await storedEvent(event.id));
      expect(info?.event).toEqual(event);
      expect(info?.status).toBe('pending');
    }
    expect(log.list().map((i) => i.event)).toEqual(appended);
    expect(log.outbox().map((i) => i.event.id)).toEqual(appended.map((e) => e.id));
    expect([...log.visibleEvents()].sort((a, b) => a.seq - b.seq)).toEqual(appended);
    expect([...log.visibleEvents({ systemOnly: true })]).toEqual([]);
    expect(log.counts()).toMatchObject({ total: 12, pending: 12, outbox: 12 });
    // The tentative view is refolded from events read back: every patient, with its name.
    expect(
      log
        .tentative()
        .patients()
        .map((p) => p.givenName)
        .sort(),
    ).toEqual(appended.map((_, i) => `Name${i}`).sort());
    // And appending goes on from there.
    const next = (await log.append(patientRegistration('p12', 'Name12'))).event;
    expect(log.get(next.id)?.event).toEqual(await storedEvent(next.id));
    expect(log.tentative().patients()).toHaveLength(13);
  });

  it('refuses to answer from an event damaged on disk after open (STORAGE_CORRUPT, listed by integrity) and answers the rest', async () => {
    await open();
    const a = (await log.append(patientRegistration('pa'))).event;
    const b = (await log.append(patientRegistration('pb'))).event;
    const c = (await log.append(patientRegistration('pc'))).event;
    await damage(b);

    let err: unknown;
    try {
      log.get(b.id);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'STORAGE_CORRUPT', details: { id: b.id } });
    expect(log.get(a.id)?.event).toEqual(a);
    expect(log.get(c.id)?.event).toEqual(c);
    // Statuses and counts need no read: they still answer.
    expect(log.counts()).toMatchObject({ total: 3, pending: 3 });
    expect(log.integrity().corrupt).toEqual([{ device: b.device, seq: b.seq }]);
    // The log goes on: a new append is stored and read back.
    const d = (await log.append(patientRegistration('pd'))).event;
    expect(log.get(d.id)?.event).toEqual(d);
    await close();

    // At the next open the start-up scan sets the damaged value aside: listed, the rest visible.
    await open();
    expect(log.integrity().corrupt).toEqual([{ device: b.device, seq: b.seq }]);
    expect(log.get(a.id)?.event).toEqual(a);
    expect(log.get(b.id)).toBeUndefined();
  });

  it('appends an update of a patient whose registration was damaged after open, and the views say STORAGE_CORRUPT', async () => {
    // The projections hold a registration-only patient as its registration's id and read the
    // record back (`@accord/domain`, "Records read back"): an update of that patient reads it.
    await open();
    const reg = (await log.append(patientRegistration('pb'))).event;
    expect(log.tentative().patients()).toHaveLength(1); // the cached view the append extends
    await damage(reg);
    const update = {
      type: 'PatientDemographicsUpdated',
      subject: { kind: 'patient', id: 'pb' },
      data: { patientId: 'pb', changes: { givenName: 'Esi' } },
    };
    const appended = (await log.append(update)).event;
    expect(log.get(appended.id)?.event).toEqual(appended);
    expect(log.counts()).toMatchObject({ total: 2, pending: 2 });
    expect(() => log.tentative()).toThrow(expect.objectContaining({ code: 'STORAGE_CORRUPT' }));
    // Not skipped: once the registration is whole again the update applies.
    const raw = db.db.sublevel<Uint8Array, Uint8Array>('events', VIEW);
    const key = eventStoreRawKey({ kind: 'event', device: reg.device, seq: reg.seq });
    const value = (await raw.get(key))!;
    const repaired = new Uint8Array(value);
    repaired[repaired.length - 1] = repaired[repaired.length - 1]! ^ 0xff;
    await raw.put(key, repaired);
    expect(log.tentative().patient('pb')?.givenName).toBe('Esi');
  });
});
