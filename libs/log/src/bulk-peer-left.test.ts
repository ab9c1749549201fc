// Cold sync in bulk when the peer asked goes away before it answers: the segments asked of it are
// asked again of a peer still connected at once, not after the 15 s answer timeout (when they would
// have fallen back to the Repo's way). Deterministic: the fake network cuts the link to the relay
// the moment the new device's first bulk request to it is sent.
import { describe, expect, it } from 'vitest';
import type { Message } from '@automerge/automerge-repo';
import { isWireSegmentsMessage, type DeviceId, type FacilityId, type SignedEvent } from '@accord/protocol';
import { MemoryEventStore, MemoryStorageAdapter } from '@accord/storage-level';
import { FakeNetwork } from '@accord/testkit';
import { DeviceLog } from './device-log.js';
import { segmentDocumentId } from './documents.js';
import {
  appendSeals,
  hostileDevice,
  makeFacility,
  patientRegistration,
  syncUntil,
  type TestFacility,
} from './testing.js';

const FACILITY = 'bulk-left-facility' as FacilityId;
const SIZE = 4;
const SEGMENTS = 5;

function open(facility: TestFacility, index: number, net: FakeNetwork, relay: DeviceId) {
  return DeviceLog.open({
    facility: FACILITY,
    key: facility.keys[index]!,
    eventStore: new MemoryEventStore(),
    storage: new MemoryStorageAdapter(),
    roster: facility.roster,
    network: [net.adapter(`n${index}`)],
    relay,
    segmentSize: SIZE,
    // Long: a segment synced the Repo's way stays in memory, one taken in bulk never is there.
    sealSweepMs: 60_000,
  });
}

describe('cold sync in bulk, the asked peer gone', () => {
  it('asks the segments again of a peer still connected, at once, and takes them whole from it', async () => {
    const facility = await makeFacility(FACILITY, 4, 51);
    const relay = facility.keys[0]!.deviceId;
    const device = facility.keys[1]!.deviceId;
    const net = new FakeNetwork({ seed: 51 });
    // The relay holds SEGMENTS full segments of device 1, each sealed.
    const r = await open(facility, 0, net, relay);
    const author = hostileDevice(r, facility.keys[1]!);
    const events: SignedEvent[] = [];
    for (let n = 0; n < SEGMENTS * SIZE; n++) events.push(await author.sign(patientRegistration(`L${n}`)));
    await author.write(events);
    await appendSeals(r, device, events, SIZE);
    const total = events.length + SEGMENTS;
    // Tablet 3 takes everything from the relay first: it can serve the sealed segments too.
    const c = await open(facility, 3, net, relay);
    await syncUntil(net, c, () => c.size() >= total);
    expect(c.size()).toBe(total);

    // The new device (2) meets the relay and tablet 3 (the relay first: the first peer it asks);
    // its link to the relay is cut the moment it asks the relay for segments in bulk (the request
    // is lost with the link).
    const adapter = net.adapter('n2');
    const askedOfRelay: string[] = [];
    const send = adapter.send.bind(adapter);
    adapter.send = (message: Message): void => {
      send(message);
      if (
        isWireSegmentsMessage(message) &&
        message.type === 'segments-request' &&
        String(message.targetId) === String(relay)
      ) {
        askedOfRelay.push(...message.documentIds);
        net.partition([['n0'], ['n2', 'n3']]);
      }
    };
    const b = await DeviceLog.open({
      facility: FACILITY,
      key: facility.keys[2]!,
      eventStore: new MemoryEventStore(),
      storage: new MemoryStorageAdapter(),
      roster: facility.roster,
      network: [adapter],
      relay,
      segmentSize: SIZE,
      sealSweepMs: 60_000,
    });
    await syncUntil(net, b, () => b.size() >= total);

    expect(askedOfRelay.length).toBeGreaterThan(1);
    expect(b.size()).toBe(total);
    expect(b.incidents()).toEqual([]);
    // The segments asked of the relay came whole from tablet 3, not after the 15 s timeout the
    // Repo's way (which leaves a document in memory). At most one may have gone the Repo's way
    // anyway: the new device asks for announced segments before their seals are known, and the
    // Repo's window can reach one while its seal is still on its way (libs/log README, "Before the
    // seals arrive"); a lost re-ask would leave every one of them to the timeout.
    const inMemory = new Set(b.documentsInMemory().map((d) => String(d.documentId)));
    expect(askedOfRelay.filter((id) => inMemory.has(id)).length).toBeLessThanOrEqual(1);
    const sealed = Array.from({ length: SEGMENTS }, (_, i) => String(segmentDocumentId(FACILITY, device, i)));
    expect(askedOfRelay.every((id) => sealed.includes(id))).toBe(true);
    for (const log of [b, c, r]) await log.close();
  });
});
