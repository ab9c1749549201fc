// The Repo's access decisions about one document resolve in the order it asked for them, though
// each may read the document from storage and storage reads finish in any order: the Repo hands a
// peer's sync messages to the document's synchronizer in that order, and Automerge's sync protocol
// expects them in the order they were sent (a reordered pair stalled a device's sync of a segment).
import type { Chunk, PeerId, StorageKey } from '@automerge/automerge-repo';
import { describe, expect, it } from 'vitest';
import type { DeviceId, FacilityId } from '@accord/protocol';
import { MemoryStorageAdapter } from '@accord/storage-level';
import { segmentDocumentId, segmentInitialBytes } from './documents.js';
import { RepoHost, repoBehind } from './repo-host.js';

const FACILITY = 'order-facility' as FacilityId;
const DEVICE = 'd-order-device' as DeviceId;
const ID = segmentDocumentId(FACILITY, DEVICE, 0);

/** A storage whose first read of a document's chunks is slower than the ones after it. */
class SlowFirstRead extends MemoryStorageAdapter {
  reads = 0;
  override async loadRange(prefix: StorageKey): Promise<Chunk[]> {
    const chunks = await super.loadRange(prefix);
    if (prefix[0] === ID && this.reads++ === 0) await new Promise((resolve) => setTimeout(resolve, 50));
    return chunks;
  }
}

describe('RepoHost access decisions', () => {
  it('resolve for one document in the order the Repo asked, whatever order storage answers in', async () => {
    const storage = new SlowFirstRead();
    // The document is stored (a log wrote it and closed): a decision to let it in loads it.
    const before = new RepoHost({ peerId: 'tablet' as DeviceId, storage, network: [] });
    const written = await before.open<{ events: Uint8Array[] }>(ID, () =>
      segmentInitialBytes(FACILITY, DEVICE, 0),
    );
    written.change((d) => {
      d.events.push(new Uint8Array([1]));
    });
    await before.save(ID);
    await before.close();
    storage.reads = 0;

    const host = new RepoHost({ peerId: 'tablet' as DeviceId, storage, network: [] });
    host.share(ID);
    const owner = {};
    host.exposeTo(owner);
    const repo = repoBehind(owner)!;
    const order: string[] = [];
    const peer = 'relay' as PeerId;
    const first = repo.shareConfig.access(peer, ID).then((ok) => order.push(`first ${String(ok)}`));
    const second = repo.shareConfig.access(peer, ID).then((ok) => order.push(`second ${String(ok)}`));
    await Promise.all([first, second]);
    expect(storage.reads).toBeGreaterThan(0);
    expect(order).toEqual(['first true', 'second true']);
    expect((host.loaded(ID)?.doc() as { events?: Uint8Array[] } | undefined)?.events).toEqual([
      new Uint8Array([1]),
    ]);
    await host.close();
  });
});
