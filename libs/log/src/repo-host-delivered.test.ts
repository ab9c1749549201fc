// automerge-repo asks one access decision per peer message (sync, request, ephemeral,
// doc-unavailable), and more when it weighs whom to share a document with. `RepoHost` hands each
// decision the message it is about (what `serves` reads to see whether a peer brings changes, what
// the answers from storage read), so a message the decision is not about must never be taken for
// it: not an ephemeral message before it, not one the Repo dropped, not a decision asked unprompted.
import * as A from '@automerge/automerge';
import { NetworkAdapter, type Message, type PeerId, type PeerMetadata } from '@automerge/automerge-repo';
import { describe, expect, it } from 'vitest';
import type { DeviceId, FacilityId } from '@accord/protocol';
import { MemoryStorageAdapter } from '@accord/storage-level';
import { segmentDocumentId, segmentInitialBytes, type SegmentDoc } from './documents.js';
import { RepoHost, repoBehind } from './repo-host.js';

const FACILITY = 'delivered-facility' as FacilityId;
const AUTHOR = 'd-delivered-author' as DeviceId;
const ID = segmentDocumentId(FACILITY, AUTHOR, 0);
const PEER = 'peer' as PeerId;

/** A network adapter whose peer messages the test emits itself; what the Repo sends is kept. */
class ScriptedAdapter extends NetworkAdapter {
  readonly sent: Message[] = [];
  override isReady(): boolean {
    return true;
  }
  override whenReady(): Promise<void> {
    return Promise.resolve();
  }
  override connect(peerId: PeerId, peerMetadata?: PeerMetadata): void {
    this.peerId = peerId;
    if (peerMetadata !== undefined) this.peerMetadata = peerMetadata;
  }
  override send(message: Message): void {
    this.sent.push(message);
  }
  override disconnect(): void {}
  /** A message from the peer, as a real adapter emits one. */
  deliver(message: Record<string, unknown>): void {
    this.emit('message', { senderId: PEER, targetId: this.peerId, ...message } as unknown as Message);
  }
}

/**
 * A host that lets a peer's message in only when it brings changes the host lacks (as the relay
 * does while it catches up), with the author's segment open and `PEER` connected.
 */
async function hostLettingInChanges() {
  const adapter = new ScriptedAdapter();
  const host = new RepoHost({
    peerId: 'tablet' as DeviceId,
    storage: new MemoryStorageAdapter(),
    network: [adapter],
    serves: (_peer, _id, bringsChanges) => bringsChanges(),
  });
  host.share(ID);
  const handle = await host.open<SegmentDoc>(ID, () => segmentInitialBytes(FACILITY, AUTHOR, 0));
  adapter.emit('peer-candidate', { peerId: PEER, peerMetadata: { isEphemeral: true } });
  const owner = {};
  host.exposeTo(owner);
  return { adapter, host, handle, repo: repoBehind(owner)! };
}

/** A sync message carrying one change to the segment the host lacks (one entry, bytes `[7]`). */
function syncBringingAChange(): Uint8Array {
  const base = A.load<SegmentDoc>(segmentInitialBytes(FACILITY, AUTHOR, 0));
  const changed = A.change(base, (d) => void d.events.push(new Uint8Array([7])));
  return A.encodeSyncMessage({
    heads: A.getHeads(changed),
    need: [],
    have: [],
    changes: [A.getLastLocalChange(changed)!],
  });
}

describe('RepoHost access decisions see the message they are about', () => {
  it('an ephemeral message, and a repeat of it the Repo drops, do not take a later sync’s place', async () => {
    const { adapter, host, handle } = await hostLettingInChanges();
    const ephemeral = {
      type: 'ephemeral',
      documentId: ID,
      sessionId: 's',
      count: 1,
      data: new Uint8Array([0]),
    };
    adapter.deliver(ephemeral);
    adapter.deliver(ephemeral); // seen before: automerge-repo drops it without asking
    adapter.deliver({ type: 'sync', documentId: ID, data: syncBringingAChange() });
    // The sync's decision saw its changes, so it was let in and applied.
    await expect.poll(() => handle.doc().events.length).toBe(1);
    expect([...handle.doc().events[0]!]).toEqual([7]);
    // Only the ephemeral message (which brings nothing) was refused.
    expect(adapter.sent.filter((m) => m.type === 'doc-unavailable')).toHaveLength(1);
    await host.close();
  });

  it('a decision the Repo asks unprompted does not take the message that arrives after it', async () => {
    const { adapter, host, handle, repo } = await hostLettingInChanges();
    // As when automerge-repo weighs whom to share the document with: no message behind it.
    const unprompted = repo.shareConfig.access(PEER, ID);
    adapter.deliver({ type: 'sync', documentId: ID, data: syncBringingAChange() });
    expect(await unprompted).toBe(false);
    await expect.poll(() => handle.doc().events.length).toBe(1);
    await host.close();
  });
});
