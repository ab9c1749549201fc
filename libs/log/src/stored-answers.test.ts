// A device answers a peer's sync of its sealed (frozen) segments from their stored copies, without
// loading them into the Repo (`RepoHost.wholeDocuments`, issue #12): what a device paid each time
// the relay synced one of its own sealed segments. A peer that holds more than the stored copy
// still gets the Repo's way, so nothing it brings is refused for good.
import { describe, expect, it } from 'vitest';
import type { DocumentId } from '@automerge/automerge-repo';
import type { FacilityId, SignedEvent } from '@accord/protocol';
import { MemoryEventStore, MemoryStorageAdapter } from '@accord/storage-level';
import { FakeNetwork } from '@accord/testkit';
import { DeviceLog } from './device-log.js';
import { segmentDocumentId, type SegmentDoc } from './documents.js';
import { makeFacility, patientRegistration, repoOf, syncUntil, type TestFacility } from './testing.js';

const FACILITY = 'stored-answers-facility' as FacilityId;
const SIZE = 4;

type Stores = { readonly eventStore: MemoryEventStore; readonly storage: MemoryStorageAdapter };

function open(
  facility: TestFacility,
  index: number,
  stores: Stores,
  net?: FakeNetwork,
  seen?: (message: { type: string; documentId?: string }) => void,
): Promise<DeviceLog> {
  const adapter = net?.adapter(`n${index}`, { segments: false });
  if (seen !== undefined) adapter?.on('message', (m) => seen(m));
  return DeviceLog.open({
    facility: FACILITY,
    key: facility.keys[index]!,
    ...stores,
    roster: facility.roster,
    // The Repo's way only: the bulk transfer would take sealed segments without a sync message.
    network: adapter === undefined ? [] : [adapter],
    segmentSize: SIZE,
  });
}

/** Device 0 with two full own segments and one event more, reopened: both sealed, frozen, not loaded. */
async function sealedAuthor(facility: TestFacility) {
  const stores = { eventStore: new MemoryEventStore(), storage: new MemoryStorageAdapter() };
  const first = await open(facility, 0, stores);
  const written = [];
  for (let i = 0; i < 2 * SIZE + 1; i++)
    written.push((await first.append(patientRegistration(`S${i}`))).event);
  await first.close();
  return { stores, written };
}

const inMemory = (log: DeviceLog, id: DocumentId): boolean =>
  log.documentsInMemory().some((d) => d.documentId === String(id));

describe('sealed segments answered from storage', () => {
  it('sends a peer that lacks them the stored copies, never loading them', async () => {
    const facility = await makeFacility(FACILITY, 2, 31);
    const { stores, written } = await sealedAuthor(facility);
    const net = new FakeNetwork({ seed: 31 });
    const a = await open(facility, 0, stores, net);
    const sealed = [0, 1].map((i) => segmentDocumentId(FACILITY, facility.keys[0]!.deviceId, i));
    expect(sealed.some((id) => inMemory(a, id))).toBe(false);

    const refusals: string[] = [];
    const syncs: string[] = [];
    const b = await open(
      facility,
      1,
      { eventStore: new MemoryEventStore(), storage: new MemoryStorageAdapter() },
      net,
      (m) => {
        if (m.type === 'doc-unavailable') refusals.push(String(m.documentId));
        if (m.type === 'sync') syncs.push(String(m.documentId));
      },
    );
    await syncUntil(net, b, () => b.size() >= written.length);

    expect(written.every((e) => b.get(e.id) !== undefined)).toBe(true);
    // Each sealed segment went out once as stored; the peer's answers (it holds them now) were
    // answered from storage too: neither was ever loaded on the author's side.
    expect(a.wholeDocuments().sentAsStored).toBe(2);
    expect(sealed.some((id) => inMemory(a, id))).toBe(false);
    // The peer's answers (it holds them now) were answered with the stored heads alone, outside the
    // Repo, so that the peer's Repo knows the author holds what it holds (a relay catching up waits
    // to hear that): each segment's sync reached the peer at least twice, the copy and those heads.
    expect(a.wholeDocuments().alreadyHeld).toBeGreaterThanOrEqual(2);
    for (const id of sealed) expect(syncs.filter((s) => s === String(id)).length).toBeGreaterThanOrEqual(2);
    // Nor did the author's Repo tell the peer it lacks them (it refused those messages: the log answered).
    expect(refusals.filter((id) => sealed.some((s) => String(s) === id))).toEqual([]);
    await a.close();
    await b.close();
  });

  it('leaves a peer holding changes the stored copy lacks to the Repo, which takes them in', async () => {
    const facility = await makeFacility(FACILITY, 2, 32);
    const id = segmentDocumentId(FACILITY, facility.keys[0]!.deviceId, 0);
    const aStores = { eventStore: new MemoryEventStore(), storage: new MemoryStorageAdapter() };
    const bStores = { eventStore: new MemoryEventStore(), storage: new MemoryStorageAdapter() };
    // Device 1 takes two events of device 0's segment 0, then adds an entry of its own to its copy.
    const seeding = new FakeNetwork({ seed: 32 });
    const a0 = await open(facility, 0, aStores, seeding);
    const b0 = await open(facility, 1, bStores, seeding);
    const written: SignedEvent[] = [];
    for (let i = 0; i < 2; i++) written.push((await a0.append(patientRegistration(`F${i}`))).event);
    await syncUntil(seeding, b0, () => b0.size() >= 2);
    const forked = repoOf(b0).handles[id]!;
    forked.change((doc) => void (doc as SegmentDoc).events.push(new Uint8Array([1, 2, 3])));
    const forkHeads = [...forked.heads()];
    await b0.close();
    // Device 0 fills segments 0 and 1 offline; reopened, both are sealed, frozen and not loaded.
    const offline = new FakeNetwork({ seed: 34 });
    const a1 = await open(facility, 0, aStores, offline);
    for (let i = 2; i < 2 * SIZE + 1; i++)
      written.push((await a1.append(patientRegistration(`F${i}`))).event);
    await a0.close();
    await a1.close();

    const net = new FakeNetwork({ seed: 33 });
    const a = await open(facility, 0, aStores, net);
    expect(inMemory(a, id)).toBe(false);
    const b = await open(facility, 1, bStores, net);
    await syncUntil(net, b, () => written.every((e) => b.get(e.id) !== undefined) && inMemory(a, id));
    // Sent as stored once; the peer still held more, so the Repo loaded it and took the fork in.
    expect(written.every((e) => b.get(e.id) !== undefined)).toBe(true);
    expect(inMemory(a, id)).toBe(true);
    expect(a.wholeDocuments().sentAsStored).toBeGreaterThanOrEqual(1);
    await syncUntil(net, a, () => forkHeads.every((h) => repoOf(a).handles[id]?.heads().includes(h)));
    expect(forkHeads.every((h) => repoOf(a).handles[id]!.heads().includes(h))).toBe(true);
    await a.close();
    await b.close();
  });
});
