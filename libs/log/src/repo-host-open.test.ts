// RepoHost.open on a document the store already holds, with a peer connected: what the peer is
// told first is everything the store held, never the document's deterministic first change alone.
// A restored relay takes a tablet's sync as its word for which relay events it holds (issue #11):
// a restarted tablet that opened the relay's segment while a relay session was up told the relay
// it held none of its verdicts, and the relay numbered its next verdict as the one the tablet held.
import * as A from '@automerge/automerge';
import { describe, expect, it } from 'vitest';
import { asFacilityId, type DeviceId } from '@accord/protocol';
import { MemoryStorageAdapter } from '@accord/storage-level';
import { FakeNetwork } from '@accord/testkit';
import { segmentDocumentId, segmentInitialBytes, type SegmentDoc } from './documents.js';
import { RepoHost } from './repo-host.js';

const facility = asFacilityId('f1');
const relay = 'relay' as DeviceId;
const id = segmentDocumentId(facility, relay, 0);
const initial = (): Uint8Array => segmentInitialBytes(facility, relay, 0);

describe('RepoHost.open', () => {
  it('syncs a document it opens from storage with the peers already connected as the store holds it, not as its first change', async () => {
    // A tablet's earlier run: it held two entries of the relay's segment when it stopped.
    const storage = new MemoryStorageAdapter();
    const before = new RepoHost({ peerId: 'tablet' as DeviceId, storage, network: [] });
    const written = await before.open<SegmentDoc>(id, initial);
    written.change((d) => {
      d.events.push(new Uint8Array([1]), new Uint8Array([2]));
    });
    const held = [...A.getHeads(written.doc())].sort();
    await before.close();

    // The relay holds only the first change; the restarted tablet connects before it opens the segment.
    const net = new FakeNetwork({ seed: 11 });
    const peer = new RepoHost({
      peerId: relay,
      storage: new MemoryStorageAdapter(),
      network: [net.adapter('relay')],
    });
    await peer.open<SegmentDoc>(id, initial);
    const told: string[][] = [];
    peer.onPeerHeads((e) => {
      if (e.peerId === 'tablet' && e.documentId === id) told.push([...e.theirHeads].sort());
    });
    const tablet = new RepoHost({ peerId: 'tablet' as DeviceId, storage, network: [net.adapter('tablet')] });
    await net.quiet();
    expect(tablet.peers()).toEqual(['relay']);

    const opened = await tablet.open<SegmentDoc>(id, initial);
    expect([...A.getHeads(opened.doc())].sort()).toEqual(held);
    await net.quiet();
    // Every sync message the tablet sent about it named what it held.
    expect(told.length).toBeGreaterThan(0);
    for (const heads of told) expect(heads).toEqual(held);
    expect((peer.loaded(id)?.doc() as SegmentDoc | undefined)?.events).toHaveLength(2);
    await tablet.close();
    await peer.close();
  });
});
