// A segment read from its start (the relay's open segment when a device with a peer reopens) holds
// entries the device already stored: each is matched to its stored copy by place and bytes, and
// never decoded; an entry that is not where its seq puts it is still screened in full.
import { beforeEach, describe, expect, it, vi } from 'vitest';
import * as protocol from '@accord/protocol';
import { encodeSignedEvent, type FacilityId, type SignedEvent } from '@accord/protocol';
import { MemoryEventStore, MemoryStorageAdapter } from '@accord/storage-level';
import { FakeNetwork } from '@accord/testkit';
import { bytesEqual } from './bytes.js';
import { DeviceLog } from './device-log.js';
import { makeFacility, openMemoryLog, patientRegistration, syncUntil } from './testing.js';

// The screen's decoder, counted (the real one runs).
vi.mock('@accord/protocol', async (actual) => {
  const real = await actual<typeof protocol>();
  return { ...real, decodeSignedEvent: vi.fn(real.decodeSignedEvent) };
});
const decode = vi.mocked(protocol.decodeSignedEvent);

const FACILITY = 'known-entries-facility' as FacilityId;
const SIZE = 50;

describe('a segment read again from its start', () => {
  beforeEach(() => {
    decode.mockClear();
  });

  it('skips the entries the store holds as they are, without decoding them', async () => {
    const facility = await makeFacility(FACILITY, 2, 7);
    const relay = facility.keys[0]!.deviceId;
    const net = new FakeNetwork({ seed: 7 });
    const r = await openMemoryLog(facility, 0, { network: [net.adapter('relay')], relay, segmentSize: SIZE });
    const store = new MemoryEventStore();
    const storage = new MemoryStorageAdapter();
    const open = (name: string): Promise<DeviceLog> =>
      DeviceLog.open({
        facility: FACILITY,
        key: facility.keys[1]!,
        eventStore: store,
        storage,
        roster: facility.roster,
        relay,
        segmentSize: SIZE,
        network: [net.adapter(name)],
      });
    for (let i = 0; i < 20; i++) await r.append(patientRegistration(`R${i}`));
    const a = await open('a');
    await syncUntil(net, a, () => a.size() >= 20);
    expect(a.size()).toBe(20);
    await a.close();
    const relayBytes = r.list({ device: relay }).map((info) => encodeSignedEvent(info.event));

    // Reopened with the relay connected: its open segment is loaded and read from entry 0.
    decode.mockClear();
    const b = await open('b');
    await r.append(patientRegistration('R20'));
    await syncUntil(net, b, () => b.size() >= 21);
    expect(b.size()).toBe(21);
    const decodedKnown = decode.mock.calls.filter(([bytes]) =>
      relayBytes.some((known) => bytesEqual(known, bytes)),
    );
    expect(decodedKnown).toEqual([]);
    // The new entry was screened in full (decoded, verified, stored).
    expect(decode.mock.calls.length).toBeGreaterThan(0);
    expect(b.incidents()).toEqual([]);
    await b.close();
    await r.close();
  });

  it('still screens in full an entry that is not at the place of its seq', async () => {
    const facility = await makeFacility(FACILITY, 2, 8);
    const net = new FakeNetwork({ seed: 8 });
    const a = await openMemoryLog(facility, 0, { network: [net.adapter('a')], segmentSize: SIZE });
    const b = await openMemoryLog(facility, 1, { network: [net.adapter('b')], segmentSize: SIZE });
    const written: SignedEvent[] = [];
    for (let i = 0; i < 3; i++) written.push((await a.append(patientRegistration(`A${i}`))).event);
    await syncUntil(net, b, () => b.size() >= 3);
    expect(b.size()).toBe(3);
    // A's events written again at the end of its segment (as after a crash, or by a peer): each
    // is out of its place there, and a duplicate of what the store holds.
    decode.mockClear();
    expect(await a.republish(written)).toBe(3);
    await syncUntil(net, b, () => decode.mock.calls.length >= 3);
    const duplicates = decode.mock.calls.filter(([bytes]) =>
      written.some((e) => bytesEqual(encodeSignedEvent(e), bytes)),
    );
    expect(duplicates.length).toBeGreaterThanOrEqual(3);
    expect(b.size()).toBe(3);
    expect(b.incidents()).toEqual([]);
    await a.close();
    await b.close();
  });
});
