// The log's own failures are LOG_INTERNAL, reported apart from the security incidents: a bug or a
// failing disk must not look like a hostile peer (issue #12).
import type { StorageKey } from '@automerge/automerge-repo';
import { describe, expect, it } from 'vitest';
import type { AccordError, FacilityId, SignedEvent } from '@accord/protocol';
import { MemoryEventStore, MemoryStorageAdapter } from '@accord/storage-level';
import type { SecurityIncident } from './api.js';
import { DeviceLog } from './device-log.js';
import { segmentDocumentId, seqsIn } from './documents.js';
import { makeFacility, patientRegistration, repoOf } from './testing.js';

const FACILITY = 'internal-unit' as FacilityId;

/** Document storage whose reads can be made to fail (a disk that went away under the log). */
class FailingReads extends MemoryStorageAdapter {
  failReads = false;

  override loadRange(prefix: StorageKey) {
    return this.failReads ? Promise.reject(new Error('disk gone')) : super.loadRange(prefix);
  }
}

describe('internal failures', () => {
  it('report a throwing listener as LOG_INTERNAL, not as an incident, and still tell the other listeners', async () => {
    const facility = await makeFacility(FACILITY, 1, 31);
    const internal: AccordError[] = [];
    const incidents: SecurityIncident[] = [];
    const log = await DeviceLog.open({
      facility: facility.facility,
      key: facility.keys[0]!,
      eventStore: new MemoryEventStore(),
      storage: new MemoryStorageAdapter(),
      roster: facility.roster,
      onInternalError: (error) => internal.push(error),
      onIncident: (incident) => incidents.push(incident),
    });
    log.onEvents(() => {
      throw new Error('a bug in a listener');
    });
    const seen: SignedEvent[] = [];
    log.onEvents((events) => seen.push(...events));
    const { event } = await log.append(patientRegistration('P1'));
    expect(seen.map((e) => e.id)).toEqual([event.id]);
    expect(internal).toHaveLength(1);
    expect(internal[0]).toMatchObject({ code: 'LOG_INTERNAL' });
    expect(internal[0]!.message).toMatch(/listener threw: Error: a bug in a listener/);
    expect(log.internalErrors()).toEqual(internal);
    expect(incidents).toEqual([]);
    expect(log.incidents()).toEqual([]);
    expect(log.integrity().incidents).toBe(0);
    await log.close();
  });

  it('report a push into the sync documents that fails as LOG_INTERNAL; the events stay durable and come back at restart', async () => {
    const facility = await makeFacility(FACILITY, 1, 32);
    const store = new MemoryEventStore();
    const storage = new FailingReads();
    const internal: AccordError[] = [];
    const open = (onInternalError?: (error: AccordError) => void) =>
      DeviceLog.open({
        facility: facility.facility,
        key: facility.keys[0]!,
        eventStore: store,
        storage,
        roster: facility.roster,
        segmentSize: 2,
        ...(onInternalError !== undefined ? { onInternalError } : {}),
      });
    const log = await open((error) => internal.push(error));
    // From now on no stored document chunk can be read: segments 1 and 2, which the five events
    // need, cannot be opened (segment 0 already is).
    storage.failReads = true;
    const events = await Promise.all(
      ['P1', 'P2', 'P3', 'P4', 'P5'].map(async (id) => (await log.append(patientRegistration(id))).event),
    );
    await log.settled();
    expect(internal.length).toBeGreaterThan(0);
    expect(internal.every((e) => e.code === 'LOG_INTERNAL')).toBe(true);
    expect(internal.map((e) => e.message)).toContainEqual(
      expect.stringMatching(/could not add own events to the sync documents: Error: disk gone/),
    );
    expect(log.incidents()).toEqual([]);
    for (const event of events) expect((await store.get(event.id))?.id).toBe(event.id); // acknowledged, so durable
    await log.close();

    storage.failReads = false;
    const again = await open();
    const segment = await repoOf(again).find<{ events: Uint8Array[] }>(
      segmentDocumentId(facility.facility, again.deviceId, 2),
    );
    expect(segment.doc().events).toHaveLength(1); // P5, re-added from the store at start-up
    expect(again.internalErrors()).toEqual([]);
    await again.close();
  });

  it('repair a failed push while the log runs, once the documents can be read again, without a restart', async () => {
    const facility = await makeFacility(FACILITY, 1, 33);
    const storage = new FailingReads();
    const internal: AccordError[] = [];
    const log = await DeviceLog.open({
      facility: facility.facility,
      key: facility.keys[0]!,
      eventStore: new MemoryEventStore(),
      storage,
      roster: facility.roster,
      segmentSize: 2,
      onInternalError: (error) => internal.push(error),
    });
    const me = log.deviceId;
    const listed = (index: number): number[] => {
      const handle = repoOf(log).handles[segmentDocumentId(facility.facility, me, index)];
      return handle?.isReady() === true ? [...seqsIn(handle.doc().events, me)].sort((a, b) => a - b) : [];
    };
    storage.failReads = true;
    await Promise.all(['P1', 'P2', 'P3', 'P4', 'P5'].map((id) => log.append(patientRegistration(id))));
    await log.settled();
    expect(internal.length).toBeGreaterThan(0);
    expect(listed(1)).toEqual([]);

    storage.failReads = false;
    // The repair writes what the failed push left out (after 1 s, then 2 s, …), each event once.
    await expect.poll(() => [listed(0), listed(1), listed(2)]).toEqual([[1, 2], [3, 4], [5]]);
    const failures = internal.length;
    // Segment 2, whose open failed, opens now for the next own event: no failure is remembered.
    await log.append(patientRegistration('P6'));
    await log.settled();
    expect(listed(2)).toEqual([5, 6]);
    expect(internal).toHaveLength(failures);
    expect(log.incidents()).toEqual([]);
    await log.close();
  });
});
