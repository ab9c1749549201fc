// Cold sync in bulk over the real network: a new device asks a peer for the relay-sealed segments
// it lacks as stored documents (real `ws` on port 0, real LevelDB in temporary folders), checks
// them against the relay's seals, stores them as received and commits their events; hostile
// answers are refused with their codes and the segments synced the Repo's way; a peer that does
// not speak the transfer still syncs everything.
import * as A from '@automerge/automerge';
import type { EventEmitter } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Message, NetworkAdapterInterface } from '@automerge/automerge-repo';
import {
  encodeSignedEvent,
  type DeviceId,
  type FacilityId,
  type SignedEvent,
  WIRE_SEGMENTS_EVENT,
  type WireSegmentsMessage,
} from '@accord/protocol';
import { openDeviceDatabase, type DeviceDatabase } from '@accord/storage-level';
import {
  StaticRoster,
  WebSocketClientAdapter,
  WebSocketServerAdapter,
  type WebSocketServerAdapterOptions,
} from '@accord/network-ws';
import { BULK_IN_FLIGHT } from './bulk-segments.js';
import { DeviceLog } from './device-log.js';
import { eventsOfList, joinRun, segmentDocumentId } from './documents.js';
import { RelaySeals } from './relay-seals.js';
import {
  appendSeals,
  hostileDevice,
  makeFacility,
  patientRegistration,
  type TestFacility,
} from './testing.js';

const FACILITY = 'bulk-facility' as FacilityId;
const SIZE = 4;
const SEGMENTS = 5;
const SEED = 41;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'accord-log-bulk-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function networkRoster(facility: TestFacility): StaticRoster {
  const roster = new StaticRoster();
  for (const key of facility.keys) roster.enroll(key.deviceId, FACILITY);
  return roster;
}

/** Opens device `index`'s log on the LevelDB database in `dir`. */
async function openLog(
  facility: TestFacility,
  index: number,
  dir: string,
  network: NetworkAdapterInterface[] = [],
): Promise<{ log: DeviceLog; db: DeviceDatabase }> {
  const db = await openDeviceDatabase(join(dir, 'db'));
  const log = await DeviceLog.open({
    facility: FACILITY,
    key: facility.keys[index]!,
    eventStore: db.eventStore,
    storage: db.storageAdapter,
    roster: facility.roster,
    network,
    relay: facility.keys[0]!.deviceId,
    segmentSize: SIZE,
    // Long: a segment synced the Repo's way stays in memory, one taken in bulk never is there.
    sealSweepMs: 60_000,
  });
  return { log, db };
}

/**
 * A relay (device 0) on LevelDB in `dir` holding `SEGMENTS` full segments of device 1, each sealed
 * (unless `sealed` is false), closed once everything is stored: reopened, it serves them from
 * storage as a kept device does. With `runs`, each segment is written as two runs (split at
 * `1 + index % (SIZE - 1)`), as device 1's own pushes write them; otherwise one event per entry.
 */
async function sealedRelay(
  facility: TestFacility,
  dir: string,
  sealed = true,
  runs = false,
): Promise<SignedEvent[]> {
  const device = facility.keys[1]!.deviceId;
  const { log, db } = await openLog(facility, 0, dir);
  const author = hostileDevice(log, facility.keys[1]!);
  const events: SignedEvent[] = [];
  for (let n = 0; n < SEGMENTS * SIZE; n++) events.push(await author.sign(patientRegistration(`B${n}`)));
  if (!runs) await author.write(events);
  for (let index = 0; runs && index < SEGMENTS; index++) {
    const bytes = events.slice(index * SIZE, (index + 1) * SIZE).map((e) => encodeSignedEvent(e));
    const at = 1 + (index % (SIZE - 1));
    await author.write([joinRun(bytes.slice(0, at)), joinRun(bytes.slice(at))], { index });
  }
  if (sealed) await appendSeals(log, device, events, SIZE);
  const total = events.length + (sealed ? SEGMENTS : 0);
  for (let round = 0; round < 100 && log.size() < total; round++) await log.settled();
  expect(log.size()).toBe(total);
  await log.close();
  await db.close();
  return events;
}

/** Serves the relay's log in `dir` on a real server adapter (port 0); `Server` may tamper with what it sends. */
async function serveRelay(
  facility: TestFacility,
  dir: string,
  Server: new (options: WebSocketServerAdapterOptions) => WebSocketServerAdapter = WebSocketServerAdapter,
  features?: readonly string[],
): Promise<{ log: DeviceLog; url: string; requests: string[][] }> {
  const server = new Server({
    identity: facility.keys[0]!,
    facility: FACILITY,
    roster: networkRoster(facility),
    port: 0,
    ...(features === undefined ? {} : { features }),
  });
  const { log, db } = await openLog(facility, 0, dir, [server]);
  cleanups.push(async () => {
    await log.close();
    await db.close();
  });
  const { port } = await server.listening();
  // The documents of every bulk request the relay receives, in order.
  const requests: string[][] = [];
  (server as unknown as EventEmitter).on(WIRE_SEGMENTS_EVENT, (m: WireSegmentsMessage) => {
    if (m.type === 'segments-request') requests.push([...m.documentIds]);
  });
  return { log, url: `ws://127.0.0.1:${port}`, requests };
}

/** A new device (device 2) in `dir` dialing `url`. */
async function newDevice(facility: TestFacility, dir: string, url: string, features?: readonly string[]) {
  const client = new WebSocketClientAdapter({
    identity: facility.keys[2]!,
    facility: FACILITY,
    roster: networkRoster(facility),
    url,
    ...(features === undefined ? {} : { features }),
  });
  const opened = await openLog(facility, 2, dir, [client]);
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await opened.log.close();
    await opened.db.close();
  };
  cleanups.push(close);
  return { ...opened, close };
}

async function until(what: string, holds: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!holds()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Every stored event of `device` in seq order, as the store holds it. */
async function storedOf(db: DeviceDatabase, device: DeviceId): Promise<Uint8Array[]> {
  const out: { seq: number; bytes: Uint8Array }[] = [];
  for await (const e of db.eventStore.iterate({ skipCorrupt: true })) if (e.device === device) out.push(e);
  return out.sort((a, b) => a.seq - b.seq).map((e) => e.bytes);
}

const segmentIds = (device: DeviceId): string[] =>
  Array.from({ length: SEGMENTS }, (_, i) => String(segmentDocumentId(FACILITY, device, i)));

describe('cold sync of relay-sealed segments in bulk', () => {
  it('takes every sealed segment whole from the peer, verified by its seal, stored, and read back after a restart', async () => {
    const facility = await makeFacility(FACILITY, 3, SEED);
    const device = facility.keys[1]!.deviceId;
    const relayDir = await tempDir();
    // Written as runs (several events per entry): taken by the seal as listed all the same.
    const events = await sealedRelay(facility, relayDir, true, true);
    const relay = await serveRelay(facility, relayDir);

    const asListed = vi.spyOn(RelaySeals.prototype, 'coversAsListed');
    cleanups.push(() => Promise.resolve(asListed.mockRestore()));
    const dir = await tempDir();
    const b = await newDevice(facility, dir, relay.url);
    const total = events.length + SEGMENTS;
    await until('the cold sync', () => b.log.size() >= total);
    await b.log.settled();

    expect(b.log.incidents()).toEqual([]);
    // Segments asked for once each, oldest first, never more than BULK_IN_FLIGHT at a time: the
    // first ones as soon as the root index announced them, before the relay's seals were known
    // (segment 0 included), the rest past the Repo's window (offered to the transfer alone). The
    // Repo's window may still reach one segment before its seal is known (the last one, which the
    // root index cannot tell from a segment still filling): that one goes the Repo's way.
    const asked = relay.requests.flat();
    expect(asked).toEqual(segmentIds(device).filter((id) => asked.includes(id)));
    expect(asked.length).toBeGreaterThanOrEqual(SEGMENTS - 1);
    expect(relay.requests.every((r) => r.length <= BULK_IN_FLIGHT)).toBe(true);
    // Every event of device 1 verified by its seal (the relay's own seals one by one).
    expect(b.log.verification()).toEqual({ bySeal: events.length, oneByOne: SEGMENTS });
    // Each segment taken whole matched its seal as listed, runs split into their events.
    expect(await Promise.all(asListed.mock.results.map((r) => r.value as Promise<boolean>))).toEqual(
      asked.map(() => true),
    );
    expect(await storedOf(b.db, device)).toEqual(events.map((e) => encodeSignedEvent(e)));
    // The sealed segments were never documents of the Repo here (the sweep is off for a minute).
    const inMemory = new Set(b.log.documentsInMemory().map((d) => d.documentId));
    expect(segmentIds(device).map((id) => inMemory.has(id))).toEqual(
      segmentIds(device).map((id) => !asked.includes(id)),
    );
    // Each is stored as the peer sent it: one snapshot that loads to the segment's events.
    for (const [index, id] of segmentIds(device).entries()) {
      if (!asked.includes(id)) continue;
      const chunks = await b.db.storageAdapter.loadRange([id]);
      expect(chunks.map((c) => c.key[1])).toEqual(['snapshot']);
      const doc = A.load<{ events: Uint8Array[] }>(chunks[0]!.data!);
      expect(doc.events).toHaveLength(2); // two runs
      expect(eventsOfList(doc.events)).toEqual(
        events.slice(index * SIZE, (index + 1) * SIZE).map((e) => encodeSignedEvent(e)),
      );
    }

    // A restart reads every event back from the store.
    await b.close();
    const again = await openLog(facility, 2, dir);
    cleanups.push(async () => {
      await again.log.close();
      await again.db.close();
    });
    expect(again.log.size()).toBe(total);
    expect(again.log.list({ device }).map((i) => i.event.id)).toEqual(events.map((e) => e.id));
  });

  it('asks for the segments the root index announces before the relay seals are known, and takes them in by seal once they are', async () => {
    const facility = await makeFacility(FACILITY, 3, SEED + 3);
    const device = facility.keys[1]!.deviceId;
    const relayDir = await tempDir();
    // The relay holds device 1's five full segments, and has not sealed them yet.
    const events = await sealedRelay(facility, relayDir, false);
    let answers = 0;
    class CountingServer extends WebSocketServerAdapter {
      override send(message: Message): void {
        if ((message as unknown as WireSegmentsMessage).type === 'segment') answers++;
        super.send(message);
      }
    }
    const relay = await serveRelay(facility, relayDir, CountingServer);

    const b = await newDevice(facility, await tempDir(), relay.url);
    // Segments 0-3 asked for at once (the fifth, the last the root index announces, may still be
    // filling), and answered: kept unread, since no seal covers them yet.
    await until('the first segments answered', () => answers >= BULK_IN_FLIGHT);
    expect(relay.requests[0]).toEqual(segmentIds(device).slice(0, BULK_IN_FLIGHT));
    await b.log.settled();
    expect(b.log.list({ device })).toEqual([]);

    await appendSeals(relay.log, device, events, SIZE);
    await until('the cold sync', () => b.log.list({ device }).length >= events.length);
    await b.log.settled();
    expect(b.log.incidents()).toEqual([]);
    expect(await storedOf(b.db, device)).toEqual(events.map((e) => encodeSignedEvent(e)));
    // The four taken in bulk were verified by their seals and never were documents of the Repo.
    expect(b.log.verification().bySeal).toBeGreaterThanOrEqual(BULK_IN_FLIGHT * SIZE);
    const inMemory = new Set(b.log.documentsInMemory().map((d) => d.documentId));
    expect(
      segmentIds(device)
        .slice(0, BULK_IN_FLIGHT)
        .map((id) => inMemory.has(id)),
    ).toEqual([false, false, false, false]);
  });

  it('refuses hostile answers with their codes, stores none of them, and syncs those segments the Repo way', async () => {
    const facility = await makeFacility(FACILITY, 3, SEED + 1);
    const device = facility.keys[1]!.deviceId;
    const relayDir = await tempDir();
    const events = await sealedRelay(facility, relayDir);
    const ids = segmentIds(device);
    const otherSegment = A.save(
      A.from({ events: events.slice(SIZE * 4, SIZE * 5).map((e) => encodeSignedEvent(e)) }),
    );
    // What a hostile relay sends instead of segments 1–3, and one answer unasked. (Segment 0 may
    // be followed the Repo's way before its seal is known.)
    const tampered = new Map<string, Uint8Array>([
      [ids[1]!, otherSegment], // entries the seal of segment 1 does not cover
      [ids[2]!, A.save(A.from({ notEvents: 1 }))], // an Automerge document without the list
      [ids[3]!, A.save(A.from({ events: [new Uint8Array(randomBytes(400_000))] }))], // over a segment's size
    ]);
    class TamperingServer extends WebSocketServerAdapter {
      override send(message: Message): void {
        const m = message as unknown as WireSegmentsMessage;
        if (m.type === 'segment' && tampered.has(m.documentId)) {
          const data = tampered.get(m.documentId)!;
          tampered.delete(m.documentId);
          if (m.documentId === ids[1]) {
            // Also a segment nobody asked for.
            const unasked = String(segmentDocumentId(FACILITY, device, 9));
            super.send({ ...m, documentId: unasked } as unknown as Message);
          }
          return super.send({ ...m, data } as unknown as Message);
        }
        super.send(message);
      }
    }
    const relay = await serveRelay(facility, relayDir, TamperingServer);

    const b = await newDevice(facility, await tempDir(), relay.url);
    const total = events.length + SEGMENTS;
    await until('the cold sync', () => b.log.size() >= total);
    await b.log.settled();

    const codes = b.log.incidents().map((i) => i.code);
    expect(codes.sort()).toEqual(
      ['LOG_SEGMENT_MISMATCH', 'LOG_SEGMENT_UNASKED', 'PROTOCOL_BAD_ENCODING', 'PROTOCOL_TOO_LARGE'].sort(),
    );
    expect(b.log.incidents().every((i) => i.device === facility.keys[0]!.deviceId)).toBe(true);
    // Every event the honest one, each stored once; the refused segments came the Repo's way.
    expect(await storedOf(b.db, device)).toEqual(events.map((e) => encodeSignedEvent(e)));
    const inMemory = new Set(b.log.documentsInMemory().map((d) => d.documentId));
    expect(ids.slice(1).map((id) => inMemory.has(id))).toEqual([true, true, true, false]);
    // The unasked segment was not stored.
    expect(
      await b.db.storageAdapter.loadRange([String(segmentDocumentId(FACILITY, device, 9)) as never]),
    ).toEqual([]);
  });

  it('syncs every event from a peer that does not speak the transfer (an older version)', async () => {
    const facility = await makeFacility(FACILITY, 3, SEED + 2);
    const device = facility.keys[1]!.deviceId;
    const relayDir = await tempDir();
    const events = await sealedRelay(facility, relayDir);
    const relay = await serveRelay(facility, relayDir, WebSocketServerAdapter, []);

    const b = await newDevice(facility, await tempDir(), relay.url);
    await until('the cold sync', () => b.log.size() >= events.length + SEGMENTS);
    await b.log.settled();
    expect(b.log.incidents()).toEqual([]);
    expect(b.log.verification().bySeal).toBe(events.length);
    expect(await storedOf(b.db, device)).toEqual(events.map((e) => encodeSignedEvent(e)));
    // Every sealed segment came through the Repo.
    const inMemory = new Set(b.log.documentsInMemory().map((d) => d.documentId));
    for (const id of segmentIds(device)) expect(inMemory.has(id)).toBe(true);
  });
});
