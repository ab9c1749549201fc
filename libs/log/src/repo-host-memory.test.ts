// A document the log loads again from storage (to serve it once a refusal is lifted, or for a
// peer's sync message) must not outlive the log: automerge-repo 2.5.6's `Repo.find` keeps every
// document it loads from storage reachable for as long as the process lives (see
// `RepoHost.#loadStored`), and a relay that unloaded a facility kept all of them.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as A from '@automerge/automerge';
import { describe, expect, it } from 'vitest';
import type { DeviceId, FacilityId } from '@accord/protocol';
import { MemoryStorageAdapter } from '@accord/storage-level';
import { FakeNetwork } from '@accord/testkit';
import { segmentDocumentId, segmentInitialBytes } from './documents.js';
import { RepoHost } from './repo-host.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const FACILITY = 'memory-facility' as FacilityId;
const DEVICE = 'd-memory-device' as DeviceId;
const ID = segmentDocumentId(FACILITY, DEVICE, 0);
const initial = (): Uint8Array => segmentInitialBytes(FACILITY, DEVICE, 0);

/** A storage holding the segment document with `entries` entries, saved by a log that then closed. */
async function storedDocument(entries: number): Promise<MemoryStorageAdapter> {
  const storage = new MemoryStorageAdapter();
  const writer = new RepoHost({ peerId: 'writer' as DeviceId, storage, network: [] });
  const handle = await writer.open<{ events: Uint8Array[] }>(ID, initial);
  handle.change((d) => {
    for (let i = 0; i < entries; i++) d.events.push(new Uint8Array(64).fill(i % 251));
  });
  await writer.save(ID);
  await writer.close();
  return storage;
}

/**
 * The document's Automerge instance: what holds its WebAssembly memory, shared by every later
 * version of the document (a handle's `doc()` changes with each sync message).
 */
function backendOf(doc: unknown): WeakRef<object> {
  return new WeakRef(A.getBackend(doc as A.Doc<unknown>));
}

/**
 * True once `ref`'s target is garbage collected. The Repo's throttled save may hold a document
 * for its debounce (1 s) after a change, so this waits up to 5 s.
 */
async function collected(ref: WeakRef<object>): Promise<boolean> {
  for (let i = 0; i < 50 && ref.deref() !== undefined; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    gc();
  }
  return ref.deref() === undefined;
}

describe('RepoHost memory', () => {
  it('lets go of a document it loaded again to serve it, once closed', async () => {
    const storage = await storedDocument(200);
    // Everything that reaches the host stays in this function: only the weak reference leaves.
    const ref = await (async () => {
      const host = new RepoHost({ peerId: 'hub' as DeviceId, storage, network: [] });
      host.share(ID);
      await host.servingChanged([ID]);
      const doc = host.loaded(ID)?.doc() as { events: unknown[] } | undefined;
      expect(doc?.events).toHaveLength(200);
      await host.close();
      return backendOf(doc);
    })();
    expect(await collected(ref)).toBe(true);
  });

  it("lets go of a document it loaded for a peer's sync message, once closed", async () => {
    const storage = await storedDocument(200);
    const ref = await (async () => {
      // The network too: its adapters keep the Repos' listeners.
      const net = new FakeNetwork({ seed: 12 });
      const host = new RepoHost({ peerId: 'hub' as DeviceId, storage, network: [net.adapter('hub')] });
      host.share(ID);
      const peer = new RepoHost({
        peerId: 'peer' as DeviceId,
        storage: new MemoryStorageAdapter(),
        network: [net.adapter('peer')],
      });
      // The peer holds only the first change; its sync message makes the host load the document.
      await peer.open(ID, initial);
      await net.quiet();
      const doc = host.loaded(ID)?.doc() as { events: unknown[] } | undefined;
      expect(doc?.events).toHaveLength(200);
      expect((peer.loaded(ID)?.doc() as { events: unknown[] }).events).toHaveLength(200);
      await peer.close();
      await host.close();
      return backendOf(doc);
    })();
    expect(await collected(ref)).toBe(true);
  });
});
