// A device that opens with no peer connected leaves another device's segment it holds in part
// (the relay's open segment) unloaded, and follows it once a peer connects: nothing it could only
// read back from its own store is kept in Automerge memory, and nothing the peer has is missed.
import { describe, expect, it } from 'vitest';
import type { FacilityId } from '@accord/protocol';
import { MemoryEventStore, MemoryStorageAdapter } from '@accord/storage-level';
import { FakeNetwork } from '@accord/testkit';
import { DeviceLog } from './device-log.js';
import { segmentDocumentId } from './documents.js';
import { makeFacility, openMemoryLog, patientRegistration, syncUntil } from './testing.js';

const FACILITY = 'offline-open-facility' as FacilityId;
const SIZE = 4;

async function eventually(what: string, until: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !until(); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  if (!until()) throw new Error(`timed out waiting for ${what}`);
}

describe('a log opened with no peer', () => {
  it("leaves the relay's open segment unloaded, then follows it (sealed on the relay meanwhile) once a peer connects", async () => {
    const facility = await makeFacility(FACILITY, 2, 31);
    const relay = facility.keys[0]!.deviceId;
    const net = new FakeNetwork({ seed: 31 });
    const r = await openMemoryLog(facility, 0, {
      network: [net.adapter('relay')],
      relay,
      segmentSize: SIZE,
      sealSweepMs: 100,
    });
    const store = new MemoryEventStore();
    const storage = new MemoryStorageAdapter();
    const open = (network: FakeNetwork | undefined, name: string): Promise<DeviceLog> =>
      DeviceLog.open({
        facility: FACILITY,
        key: facility.keys[1]!,
        eventStore: store,
        storage,
        roster: facility.roster,
        relay,
        segmentSize: SIZE,
        network: network === undefined ? [] : [network.adapter(name)],
      });
    const relayEvents = async (n: number, from: number): Promise<string[]> => {
      const ids: string[] = [];
      for (let i = 0; i < n; i++) ids.push((await r.append(patientRegistration(`R${from + i}`))).event.id);
      return ids;
    };
    const ofRelay = (log: DeviceLog): string[] => log.list({ device: relay }).map((i) => i.event.id);
    const inMemory = (log: DeviceLog): string[] => log.documentsInMemory().map((d) => d.documentId);
    const segment = (index: number): string => String(segmentDocumentId(FACILITY, relay, index));

    // The device takes two of the relay's events (segment 0 half full), then closes.
    const first = await relayEvents(2, 0);
    const a = await open(net, 'a');
    await syncUntil(net, a, () => a.size() >= 2);
    expect(ofRelay(a)).toEqual(first);
    expect(inMemory(a)).toContain(segment(0));
    await a.close();

    // Reopened offline: the events are there, the relay's segment is not loaded.
    const offline = await open(undefined, 'none');
    expect(ofRelay(offline)).toEqual(first);
    expect(inMemory(offline)).not.toContain(segment(0));

    // Meanwhile the relay fills segment 0 (sealed, then unloaded by its sweep: it will not bring
    // it up by itself) and starts segment 1.
    const more = await relayEvents(3, 2);
    await r.settled();
    await eventually('the relay to unload its sealed segment', () => !inMemory(r).includes(segment(0)));

    // A peer connects: the segment is opened, synced, completed, and the next one followed.
    offline.addNetworkAdapter(net.adapter('a-again'));
    await syncUntil(net, offline, () => offline.size() >= 5);
    expect(ofRelay(offline)).toEqual([...first, ...more]);
    expect(inMemory(offline)).toContain(segment(1));
    expect(offline.incidents()).toEqual([]);
    await offline.close();
    await r.close();
  });
});
