// One enrolled device that misbehaves (a modified client, or a broken one) must not make honest
// devices drop each other's events, disagree for good, or stop showing the facility (issue #13,
// scenarios 4 and 5). Each test drives honest logs with `hostileDevice`, which signs with the
// misbehaving device's real key and writes raw into the documents, as a modified client could.
import { describe, expect, it } from 'vitest';
import type { FacilityId, SignedEvent } from '@accord/protocol';
import { MemoryEventStore, MemoryStorageAdapter } from '@accord/storage-level';
import { FakeNetwork, HostileDevice } from '@accord/testkit';
import { DeviceLog } from './device-log.js';
import { eventsOfEntry, RUN_SEPARATOR, segmentDocumentId } from './documents.js';
import { hostileDevice, makeFacility, patientRegistration, type TestFacility } from './testing.js';

const FACILITY = 'hostile-unit' as FacilityId;

const patient = patientRegistration;

async function open(
  facility: TestFacility,
  index: number,
  parts: { store?: MemoryEventStore; storage?: MemoryStorageAdapter } = {},
) {
  const store = parts.store ?? new MemoryEventStore();
  const storage = parts.storage ?? new MemoryStorageAdapter();
  const log = await DeviceLog.open({
    facility: facility.facility,
    key: facility.keys[index]!,
    eventStore: store,
    storage,
    roster: facility.roster,
  });
  return { log, store, storage };
}

const names = (log: DeviceLog): string[] =>
  log
    .tentative()
    .patients()
    .map((p) => `${p.id}:${p.givenName}`)
    .sort();

describe('a hostile enrolled device', () => {
  it("cannot re-sign another device's event id: its copy is refused as forged, even when it arrives first", async () => {
    const facility = await makeFacility(FACILITY, 3, 11);
    const [cKey, bKey, mKey] = facility.keys as [
      (typeof facility.keys)[0],
      (typeof facility.keys)[0],
      (typeof facility.keys)[0],
    ];
    const { log: c } = await open(facility, 0);
    const b = hostileDevice(c, bKey); // B is honest here: it signs a normal event
    const m = hostileDevice(c, mKey);
    const genuine = await b.sign(patient('P1', 'Kofi'));
    // M takes B's id and signs a different registration under its own key, delivered to C first.
    const forged = await m.sign({ ...patient('P1', 'Forged'), id: genuine.id });
    await m.write([forged]);
    await c.settled();
    expect(c.get(genuine.id)).toBeUndefined();
    expect(c.incidents()).toContainEqual(
      expect.objectContaining({ code: 'LOG_FORGED_EVENT', eventId: genuine.id, device: mKey.deviceId }),
    );
    await b.write([genuine]);
    await c.settled();
    expect(c.get(genuine.id)?.event).toEqual(genuine);
    expect(names(c)).toEqual(['P1:Kofi']);
    // B's next event is shown too: no hole was left behind.
    const next = await b.sign(patient('P2', 'Esi'));
    await b.write([next]);
    await c.settled();
    expect(names(c)).toEqual(['P1:Kofi', 'P2:Esi']);
    expect(c.withheld()).toEqual([]);
    expect(cKey.deviceId).not.toBe(mKey.deviceId);
    await c.close();
  });

  it('that signs two events for one seq is reported by name and withheld from there on, the same way on every device', async () => {
    const facility = await makeFacility(FACILITY, 3, 12);
    const mKey = facility.keys[2]!;
    const c = await open(facility, 0);
    const d = await open(facility, 1);
    const onC = hostileDevice(c.log, mKey);
    const onD = hostileDevice(d.log, mKey);
    const first = await onC.sign(patient('M1'));
    const one = await onC.sign(patient('M2', 'One'));
    const other = await onC.sign({ ...patient('M2', 'Other'), seq: 2 });
    const later = await onC.sign(patient('M3'));
    expect([one.seq, other.seq, later.seq]).toEqual([2, 2, 3]);
    // C sees `one` first, D sees `other` first; each then gets everything.
    await onC.write([first, one, later]);
    await onD.write([first, other, later]);
    await c.log.settled();
    await d.log.settled();
    expect(names(c.log)).toEqual(['M1:Ama', 'M2:One', 'M3:Ama']);
    expect(names(d.log)).toEqual(['M1:Ama', 'M2:Other', 'M3:Ama']);
    await onC.write([other]);
    await onD.write([one]);
    await c.log.settled();
    await d.log.settled();
    for (const log of [c.log, d.log]) {
      expect(names(log)).toEqual(['M1:Ama']);
      expect(log.withheld()).toEqual([
        { device: mKey.deviceId, from: 2, reason: 'equivocation', missing: [], heldBack: 2 },
      ]);
      expect(log.incidents()).toContainEqual(
        expect.objectContaining({ code: 'LOG_EQUIVOCATION', device: mKey.deviceId }),
      );
    }
    // The evidence outlives a restart, though the store holds only the first copy it saw.
    await c.log.close();
    const reopened = await DeviceLog.open({
      facility: facility.facility,
      key: facility.keys[0]!,
      eventStore: c.store,
      storage: new MemoryStorageAdapter(), // not even the documents that held the second copy
      roster: facility.roster,
    });
    expect(names(reopened)).toEqual(['M1:Ama']);
    expect(reopened.withheld()).toEqual(d.log.withheld());
    await reopened.close();
    await d.log.close();
  });

  it("with a skipped seq withholds only its own later events; everyone else's stay shown", async () => {
    const facility = await makeFacility(FACILITY, 3, 13);
    const mKey = facility.keys[2]!;
    const { log } = await open(facility, 0);
    const m = hostileDevice(log, mKey);
    const b = hostileDevice(log, facility.keys[1]!);
    const signed: SignedEvent[] = [await m.sign(patient('M1')), await m.sign(patient('M2'))];
    m.continueAfter(3);
    signed.push(await m.sign(patient('M4')));
    await m.write(signed);
    await b.write([await b.sign(patient('B1'))]);
    await log.append(patient('C1'));
    await log.settled();
    expect(names(log)).toEqual(['B1:Ama', 'C1:Ama', 'M1:Ama', 'M2:Ama']);
    expect(log.withheld()).toEqual([
      { device: mKey.deviceId, from: 3, reason: 'hole', missing: [3], heldBack: 1 },
    ]);
    // Once the device is revoked, what it withholds no longer matters.
    facility.roster.revoke(mKey.deviceId);
    expect(log.withheld()).toEqual([]);
    expect(log.integrity().holes).toEqual([{ device: mKey.deviceId, missing: [3] }]);
    await log.close();
  });

  it('that writes broken runs gets, piece by piece, what the same pieces as separate entries get', async () => {
    // A run's pieces are judged one by one as entries were before runs: an empty piece (leading,
    // doubled or trailing separator) or one that does not decode is an incident with the code
    // such an entry gets, and the good pieces beside it are still taken.
    const facility = await makeFacility(FACILITY, 3, 17);
    const mKey = facility.keys[2]!;
    const { log: runs } = await open(facility, 0);
    const { log: entries } = await open(facility, 1);
    const m = hostileDevice(runs, mKey);
    const enc = (e: SignedEvent): Uint8Array => HostileDevice.encode(e);
    const good = [await m.sign(patient('M1')), await m.sign(patient('M2')), await m.sign(patient('M3'))];
    const garbage = new TextEncoder().encode('{"hello":"world"}');
    const notUtf8 = Uint8Array.of(0xff, 0xfe);
    const empty = new Uint8Array(0);
    const pieces = [empty, enc(good[0]!), empty, garbage, enc(good[1]!), notUtf8, enc(good[2]!), empty];
    // Joined by hand: the log's joinRun is for well-formed runs only.
    const run = new Uint8Array(pieces.reduce((n, p) => n + p.length + 1, -1));
    let at = 0;
    for (const [i, piece] of pieces.entries()) {
      if (i > 0) run[at++] = RUN_SEPARATOR;
      run.set(piece, at);
      at += piece.length;
    }
    expect(eventsOfEntry(run)).toEqual(pieces);
    await m.write([run]);
    await hostileDevice(entries, mKey).write(pieces);
    await runs.settled();
    await entries.settled();
    const codes = (log: DeviceLog): string[] =>
      log
        .incidents()
        .map((i) => i.code)
        .sort();
    expect(codes(runs)).toEqual([
      'PROTOCOL_BAD_ENCODING',
      'PROTOCOL_BAD_ENCODING',
      'PROTOCOL_BAD_ENCODING',
      'PROTOCOL_BAD_ENCODING',
      'PROTOCOL_SCHEMA',
    ]);
    expect(codes(runs)).toEqual(codes(entries));
    expect(names(runs)).toEqual(['M1:Ama', 'M2:Ama', 'M3:Ama']);
    expect(names(entries)).toEqual(names(runs));
    expect(runs.withheld()).toEqual([]);
    await runs.close();
    await entries.close();
  });
});

describe('a hostile root index', () => {
  it('cannot make peers open documents no signed evidence points to, hide segments, or stall anyone', async () => {
    const facility = await makeFacility(FACILITY, 4, 14);
    const [cKey, bKey, mKey, dKey] = facility.keys as [
      (typeof facility.keys)[0],
      (typeof facility.keys)[0],
      (typeof facility.keys)[0],
      (typeof facility.keys)[0],
    ];
    const net = new FakeNetwork({ seed: 14 });
    const openOn = async (index: number) =>
      await DeviceLog.open({
        facility: facility.facility,
        key: facility.keys[index]!,
        eventStore: new MemoryEventStore(),
        storage: new MemoryStorageAdapter(),
        roster: facility.roster,
        network: [net.adapter(`n${index}`)],
      });
    const [c, b, m] = [await openOn(0), await openOn(1), await openOn(2)];
    const sync = async (logs: DeviceLog[], done: () => boolean) => {
      for (let round = 0; round < 50 && !done(); round++) {
        await net.quiet();
        for (const log of logs) await log.settled();
      }
    };
    for (let i = 0; i < 3; i++) await b.append(patient(`B${i}`));
    await sync([c, b, m], () => c.size() === 3 && m.size() === 3);
    expect(names(c)).toEqual(['B0:Ama', 'B1:Ama', 'B2:Ama']);

    const heapBefore = process.memoryUsage().heapUsed;
    const started = performance.now();
    const hostile = hostileDevice(m, mKey);
    await hostile.setIndex(bKey.deviceId, 999_999); // raise another device's count
    await hostile.setIndex(cKey.deviceId, 999_999); // and C's own: C must not think it is behind
    await hostile.setIndex('not-even-a-device', 5);
    for (let i = 0; i < 30; i++) {
      await hostile.writeDocument(segmentDocumentId(facility.facility, bKey.deviceId, 100 + i), { junk: i });
    }
    const far = await hostile.sign({ ...patient('M-far'), seq: 1_000_000_000 });
    await hostile.write([far], { index: 0 });
    await sync([c, b, m], () => c.withheld().length > 0);
    const handles = c.documentsInMemory().length;
    const elapsedMs = performance.now() - started;
    const heapMb = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
    console.log(
      `hostile index: C holds ${handles} documents, took ${elapsedMs.toFixed(0)} ms, heap ${heapMb.toFixed(1)} MB`,
    );
    // The root and segment 0 of each of the four devices at most: nothing the index claims.
    expect(handles).toBeLessThanOrEqual(1 + 4);
    expect(c.ownHistory().behind).toBe(false);
    expect(c.withheld()).toEqual([
      expect.objectContaining({ device: mKey.deviceId, reason: 'hole', heldBack: 1 }),
    ]);

    // Sync is not stuck behind the hostile index: B's next event arrives.
    const { event: next } = await b.append(patient('B3'));
    await sync([c, b], () => c.get(next.id) !== undefined);
    expect(c.get(next.id)?.status).toBe('pending');

    // Lowering an entry hides nothing from a new device.
    await hostile.setIndex(bKey.deviceId, 0);
    const d = await DeviceLog.open({
      facility: facility.facility,
      key: dKey,
      eventStore: new MemoryEventStore(),
      storage: new MemoryStorageAdapter(),
      roster: facility.roster,
      network: [net.adapter('n3')],
    });
    await sync([c, b, m, d], () => d.list({ device: bKey.deviceId }).length === 4);
    expect(d.list({ device: bKey.deviceId })).toHaveLength(4);
    for (const log of [c, b, m, d]) await log.close();
  });
});
