// A device never reuses one of its sequence numbers, even when its event store lost its newest
// writes or its whole data folder came back from an older backup (issue #13, scenario 7).
import { describe, expect, it } from 'vitest';
import { encodeSignedEvent, type FacilityId, type SignedEvent } from '@accord/protocol';
import { MemoryEventStore, MemoryStorageAdapter } from '@accord/storage-level';
import { FakeNetwork } from '@accord/testkit';
import { DeviceLog } from './device-log.js';
import { MemoryOwnSeqMark } from './own-seq-mark.js';
import { makeFacility, type TestFacility } from './testing.js';

const FACILITY = 'own-seq-facility' as FacilityId;

const registration = (n: number) => ({
  type: 'PatientRegistered',
  data: {
    patientId: `P${n}`,
    nationalId: `N${n}`,
    givenName: 'Esi',
    familyName: `F${n}`,
    birthDate: '2019-05-04',
    sex: 'female',
  },
});

async function openLog(
  facility: TestFacility,
  index: number,
  parts: {
    store?: MemoryEventStore;
    mark?: MemoryOwnSeqMark;
    net?: FakeNetwork;
    waitMs?: { clean: number; suspicious: number };
  } = {},
) {
  const store = parts.store ?? new MemoryEventStore();
  const mark = parts.mark ?? new MemoryOwnSeqMark();
  const log = await DeviceLog.open({
    facility: facility.facility,
    key: facility.keys[index]!,
    eventStore: store,
    storage: new MemoryStorageAdapter(),
    roster: facility.roster,
    network: parts.net !== undefined ? [parts.net.adapter(`n${index}`)] : [],
    ownSeqMark: mark,
    ...(parts.waitMs === undefined ? {} : { ownHistoryWaitMs: parts.waitMs }),
  });
  return { log, store, mark };
}

/** A store holding copies of `events` only (what a store that lost the rest still has). */
async function storeWith(events: readonly SignedEvent[]): Promise<MemoryEventStore> {
  const store = new MemoryEventStore();
  await store.append(
    events.map((event) => ({
      device: event.device,
      seq: event.seq,
      id: event.id,
      bytes: encodeSignedEvent(event),
    })),
  );
  return store;
}

describe('own sequence numbers', () => {
  it('are reserved durably in blocks before they are handed out, and a clean close records exactly what was acknowledged', async () => {
    const facility = await makeFacility(FACILITY, 1);
    const { log, mark } = await openLog(facility, 0);
    await Promise.all(Array.from({ length: 1500 }, (_, i) => log.append(registration(i))));
    // Two blocks of 1000 for 1500 appends: a handful of writes, not one per event.
    expect(mark.state).toMatchObject({ reserved: 2000, clean: false });
    expect(mark.writes).toBeLessThan(10);
    await log.close();
    expect(mark.state).toEqual({ reserved: 1500, acked: 1500, clean: true });
  });

  it('are never reused when the store lost acknowledged events and no peer answers: the loss is reported, not silent', async () => {
    const facility = await makeFacility(FACILITY, 1);
    const first = await openLog(facility, 0);
    const events: SignedEvent[] = [];
    for (let n = 1; n <= 10; n++) events.push((await first.log.append(registration(n))).event);
    await first.log.close();
    // The store comes back without its newest writes (a torn LevelDB log tail); the mark does not.
    const store = await storeWith(events.slice(0, 6));
    const { log } = await openLog(facility, 0, { store, mark: first.mark });
    const { event } = await log.append(registration(11));
    expect(event.seq).toBe(11);
    expect(log.integrity().own).toEqual({
      loss: { from: 7, to: 10, repaired: false },
      check: 'not-needed',
      suspiciousStart: true,
    });
    // The numbers stay a hole: the new event waits behind it rather than taking one of them.
    expect(log.integrity().holes).toEqual([{ device: facility.keys[0]!.deviceId, missing: [7, 8, 9, 10] }]);
    await log.close();
  });

  it('wait for a peer to show the device its own history, take the lost events back and continue after them', async () => {
    const facility = await makeFacility(FACILITY, 2);
    const net = new FakeNetwork({ seed: 17 });
    const a = await openLog(facility, 0, { net });
    const b = await openLog(facility, 1, { net });
    const events: SignedEvent[] = [];
    for (let n = 1; n <= 5; n++) events.push((await a.log.append(registration(n))).event);
    for (let round = 0; round < 20 && b.log.size() < 5; round++) {
      await net.quiet();
      await b.log.settled();
    }
    expect(b.log.size()).toBe(5);
    await a.log.close();
    // The whole data folder, mark included, comes back from a backup taken after event 2.
    const store = await storeWith(events.slice(0, 2));
    const mark = new MemoryOwnSeqMark({ reserved: 1000, acked: 2, clean: false });
    const restored = await openLog(facility, 0, {
      store,
      mark,
      net,
      waitMs: { clean: 10_000, suspicious: 10_000 },
    });
    expect(restored.log.integrity().own?.check).toBe('waiting');
    // Appended at once: it waits for the check instead of taking seq 3 again.
    let done = false;
    const appended = restored.log.append(registration(6)).finally(() => (done = true));
    // The fake network delivers only when told to; the log looks at what arrived on the next turn.
    for (let round = 0; round < 50 && !done; round++) {
      await net.quiet();
      await new Promise((resolve) => setImmediate(resolve));
    }
    const { event } = await appended;
    expect(event.seq).toBe(6);
    expect(restored.log.integrity().own?.check).toBe('checked');
    for (const e of events) expect(restored.log.get(e.id)?.event).toEqual(e);
    await restored.log.settled();
    await net.quiet();
    await b.log.settled();
    expect(b.log.incidents()).toEqual([]);
    expect(restored.log.incidents()).toEqual([]);
    await restored.log.close();
    await b.log.close();
  });

  it('go on after the highest known number when the wait for peers ends unanswered', async () => {
    const facility = await makeFacility(FACILITY, 2);
    const net = new FakeNetwork({ seed: 17 });
    const first = await openLog(facility, 0);
    for (let n = 1; n <= 3; n++) await first.log.append(registration(n));
    await first.log.close();
    // A crash: numbers up to 1000 were reserved, 3 acknowledged; nobody is there to ask.
    await first.mark.write({ reserved: 1000, acked: 3, clean: false });
    const { log } = await openLog(facility, 0, {
      store: first.store,
      mark: first.mark,
      net,
      waitMs: { clean: 20, suspicious: 20 },
    });
    const { event } = await log.append(registration(4));
    expect(event.seq).toBe(4);
    expect(log.integrity().own).toEqual({ check: 'unchecked', suspiciousStart: true });
    await log.close();
  });

  it('a failed store write does not stop the log: later appends go on from the first unwritten number, without a hole', async () => {
    const facility = await makeFacility(FACILITY, 1);
    const { log, store } = await openLog(facility, 0);
    await log.append(registration(1));
    store.backend.failNextWrites(1);
    // Appends in flight together share the failed batch (or follow it): all are refused.
    const results = await Promise.allSettled([2, 3, 4].map((n) => log.append(registration(n))));
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    const { event } = await log.append(registration(5));
    expect(event.seq).toBe(2);
    expect((await log.append(registration(6))).event.seq).toBe(3);
    expect(log.integrity().holes).toEqual([]);
    expect(log.list().map((info) => info.event.seq)).toEqual([1, 2, 3]);
    await log.close();
  });
});
