// A new device taking in a facility whose segments a relay has sealed, the Repo's way: every event
// stored once, in order, verified by its seal where the seal matches and one by one where it does
// not (a forged entry inside a sealed segment, a seal of other bytes), and sealed segments followed
// a few at a time. No node here speaks the bulk segment transfer (`segments: false`), so that no
// segment goes one way or the other depending on when a peer froze it: the bulk transfer has its
// own tests (`bulk-segments.int.test.ts`).
import * as A from '@automerge/automerge';
import { describe, expect, it } from 'vitest';
import {
  encodeSignedEvent,
  segmentDigest,
  type DeviceId,
  type FacilityId,
  type SignedEvent,
} from '@accord/protocol';
import { MemoryEventStore, MemoryStorageAdapter } from '@accord/storage-level';
import { FakeNetwork, HostileDevice } from '@accord/testkit';
import { DeviceLog } from './device-log.js';
import { segmentDocumentId } from './documents.js';
import { SEALED_AHEAD } from './following.js';
import {
  appendSeals,
  hostileDevice,
  makeFacility,
  patientRegistration,
  repoOf,
  type TestFacility,
  syncUntil,
} from './testing.js';

const FACILITY = 'cold-sync-facility' as FacilityId;
const SIZE = 4;
const SEGMENTS = 6;

async function open(
  facility: TestFacility,
  index: number,
  net: FakeNetwork,
  relay: DeviceId,
  storage = new MemoryStorageAdapter(),
) {
  const store = new MemoryEventStore();
  const log = await DeviceLog.open({
    facility: FACILITY,
    key: facility.keys[index]!,
    eventStore: store,
    storage,
    roster: facility.roster,
    network: [net.adapter(`n${index}`, { segments: false })],
    relay,
    segmentSize: SIZE,
    sealSweepMs: 300,
  });
  return { log, store };
}

/** Every stored event of `device`, in seq order, as the store holds it. */
async function stored(
  store: MemoryEventStore,
  device: DeviceId,
): Promise<{ seq: number; bytes: Uint8Array }[]> {
  const out: { seq: number; bytes: Uint8Array }[] = [];
  for await (const e of store.iterate({ skipCorrupt: true })) if (e.device === device) out.push(e);
  return out;
}

/**
 * A relay log holding `SEGMENTS` full segments of device 1 (signed with its key, written into the
 * relay's documents as device 1's app would have synced them) and a seal of each: `digestOf(index,
 * honest bytes)` gives the digest the relay signs for a segment.
 */
async function sealedFacility(
  seed: number,
  digestOf: (index: number, bytes: Uint8Array[]) => Promise<string> = (_i, bytes) => segmentDigest(bytes),
) {
  const facility = await makeFacility(FACILITY, 3, seed);
  const relay = facility.keys[0]!.deviceId;
  const device = facility.keys[1]!.deviceId;
  const net = new FakeNetwork({ seed });
  const r = await open(facility, 0, net, relay);
  const author = hostileDevice(r.log, facility.keys[1]!);
  const events: SignedEvent[] = [];
  for (let n = 0; n < SEGMENTS * SIZE; n++) events.push(await author.sign(patientRegistration(`C${n}`)));
  await appendSeals(r.log, device, events, SIZE, digestOf);
  return { facility, relay, device, net, r, author, events };
}

describe('cold sync of relay-sealed segments', () => {
  it('stores every event once and in order, by its seal where it matches, one by one where it does not', async () => {
    // The relay's seal of segment 3 names other bytes (a seal that does not match).
    const wrong = 3;
    const { facility, relay, device, net, r, author, events } = await sealedFacility(21, (index, bytes) =>
      segmentDigest(index === wrong ? [...bytes].reverse() : bytes),
    );
    await author.write(events);
    await r.log.settled();

    const b = await open(facility, 2, net, relay);
    // When device 1's first events become visible, how many of its segments are in memory here.
    const ids = new Set<string>(
      Array.from({ length: SEGMENTS + 1 }, (_, i) => String(segmentDocumentId(FACILITY, device, i))),
    );
    let openAtFirst: number | undefined;
    b.log.onEvents((released) => {
      if (openAtFirst !== undefined || !released.some((e) => e.device === device)) return;
      openAtFirst = b.log.documentsInMemory().filter((d) => ids.has(d.documentId)).length;
    });
    const total = events.length + SEGMENTS; // device 1's events and the relay's seals
    await syncUntil(net, b.log, () => b.log.size() >= total);

    expect(b.log.size()).toBe(total);
    // Segment 3 does not match its seal: verified one by one, which is no peer's fault.
    expect(b.log.incidents()).toEqual([]);
    // Each event verified exactly once: the five matching segments by their seals, the rest
    // (segment 3 and the relay's own seals) one by one.
    expect(b.log.verification()).toEqual({ bySeal: (SEGMENTS - 1) * SIZE, oneByOne: SIZE + SEGMENTS });
    const held = await stored(b.store, device);
    expect(held.map((e) => e.seq)).toEqual(events.map((e) => e.seq));
    held.forEach((e, i) => expect(e.bytes).toEqual(encodeSignedEvent(events[i]!)));
    expect(b.log.list({ device }).map((i) => i.event.id)).toEqual(events.map((e) => e.id));
    // Sealed segments were followed a few at a time, not all six (and the seventh) at once.
    expect(openAtFirst).toBeGreaterThan(0);
    expect(openAtFirst).toBeLessThanOrEqual(SEALED_AHEAD + 1);
    await b.log.close();
    await r.log.close();
  });

  it('refuses a forged entry inside a sealed segment and takes the rest once the honest event comes', async () => {
    const { facility, relay, device, net, r, author, events } = await sealedFacility(22);
    // Segment 1 as served holds a forgery of seq 6: its envelope with another event's signature.
    const forged: SignedEvent = { ...events[5]!, sig: events[6]!.sig };
    const served = events.map((e, i) => (i === 5 ? forged : e));
    await author.write(served);
    await r.log.settled();

    const b = await open(facility, 2, net, relay);
    await syncUntil(net, b.log, () => b.log.size() >= SEGMENTS + 2 * SIZE + 3);
    const forgeries = b.log.incidents().filter((i) => i.code === 'LOG_FORGED_EVENT');
    expect(forgeries.map((i) => i.eventId)).toEqual([forged.id]);
    expect(b.log.integrity().holes).toEqual([{ device, missing: [6] }]);
    expect((await stored(b.store, device)).some((e) => e.seq === 6)).toBe(false);

    // The honest event arrives (appended to the served segment): it fills the hole, and the
    // sealed segments behind it follow.
    await author.write([events[5]!]);
    await syncUntil(net, b.log, () => b.log.size() >= events.length + SEGMENTS);
    expect(b.log.size()).toBe(events.length + SEGMENTS);
    expect(b.log.integrity().holes).toEqual([]);
    const held = await stored(b.store, device);
    expect(held.map((e) => e.seq)).toEqual(events.map((e) => e.seq));
    held.forEach((e, i) => expect(e.bytes).toEqual(HostileDevice.encode(events[i]!)));
    // Segment 1 (its three honest entries, the forgery and the honest seq 6) one by one, the
    // relay's seals one by one, the other five segments by their seals.
    expect(b.log.verification()).toEqual({ bySeal: (SEGMENTS - 1) * SIZE, oneByOne: SIZE + 1 + SEGMENTS });
    await b.log.close();
    await r.log.close();
  });

  it('stores each sealed segment as the peer sent it (no compaction here) and serves it from there', async () => {
    const { facility, relay, device, net, r, author, events } = await sealedFacility(23);
    await author.write(events);
    await r.log.settled();

    const storage = new MemoryStorageAdapter();
    const b = await open(facility, 2, net, relay, storage);
    const segments = new Set(
      Array.from({ length: SEGMENTS }, (_, i) => String(segmentDocumentId(FACILITY, device, i))),
    );
    const compacted: string[] = [];
    repoOf(b.log).on('doc-metrics', (m) => {
      if (m.type === 'doc-compacted' && segments.has(m.documentId)) compacted.push(m.documentId);
    });
    const total = events.length + SEGMENTS;
    await syncUntil(net, b.log, () => b.log.size() >= total);
    expect(b.log.size()).toBe(total);
    // automerge-repo would compact a received document one save interval (1 s) after it arrived:
    // nothing marks that it did not, so the test outwaits it.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(compacted).toEqual([]);
    // Each sealed segment is stored whole: one snapshot, holding the segment's events in order.
    for (const [index, id] of [...segments].entries()) {
      const chunks = await storage.loadRange([id]);
      expect(chunks.map((c) => c.key[1])).toEqual(['snapshot']);
      const doc = A.load<{ events: Uint8Array[] }>(chunks[0]!.data!);
      expect(doc.events).toEqual(
        events.slice(index * SIZE, (index + 1) * SIZE).map((e) => encodeSignedEvent(e)),
      );
    }

    // With the relay gone, a third device takes every event of device 1 from b's stored copies.
    await r.log.close();
    const c = await open(facility, 0, net, relay);
    await syncUntil(net, c.log, () => c.log.list({ device }).length >= events.length);
    expect(c.log.list({ device }).map((i) => i.event.id)).toEqual(events.map((e) => e.id));
    await c.log.close();
    await b.log.close();
  });

  it('stores a sealed segment that arrived before the segment ahead of it once that one completes it', async () => {
    // The relay holds segments 1… of device 1 but not segment 0 yet: the new device takes segments
    // 1 and 2 (its window) and holds their events back behind the hole. When segment 0 arrives, all
    // three become complete at once, and each one received whole is stored as the peer sent it.
    const { facility, relay, device, net, r, author, events } = await sealedFacility(24);
    await author.write(events.slice(SIZE));
    await r.log.settled();

    const storage = new MemoryStorageAdapter();
    const b = await open(facility, 2, net, relay, storage);
    const heldBack = (): number => b.log.withheld().find((w) => w.device === device)?.heldBack ?? 0;
    await syncUntil(net, b.log, () => heldBack() >= SEALED_AHEAD * SIZE);
    expect(heldBack()).toBe(SEALED_AHEAD * SIZE);
    expect(b.log.list({ device })).toEqual([]);

    await author.write(events.slice(0, SIZE));
    const total = events.length + SEGMENTS;
    await syncUntil(net, b.log, () => b.log.size() >= total);
    await b.log.settled();
    expect(b.log.size()).toBe(total);
    // Segment 0 came as a change to a document already here (not whole): the sweep saves it.
    for (let index = 1; index < SEGMENTS; index++) {
      const chunks = await storage.loadRange([segmentDocumentId(FACILITY, device, index)]);
      expect(chunks.map((c) => c.key[1])).toEqual(['snapshot']);
      const doc = A.load<{ events: Uint8Array[] }>(chunks[0]!.data!);
      expect(doc.events).toEqual(
        events.slice(index * SIZE, (index + 1) * SIZE).map((e) => encodeSignedEvent(e)),
      );
    }
    await b.log.close();
    await r.log.close();
  });
});
