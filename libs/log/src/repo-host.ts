// The one module that touches automerge-repo's `Repo`. What the log needs and automerge-repo
// 2.5.6 offers no public way for is marked "NOT PUBLIC" below and listed in the README
// ("automerge-repo internals"); everything else here is the Repo's public API.
import * as A from '@automerge/automerge';
import {
  Repo,
  type DocHandle,
  type DocumentId,
  type NetworkAdapterInterface,
  type PeerId,
  type StorageAdapterInterface,
} from '@automerge/automerge-repo';
import { createHash } from 'node:crypto';
import {
  isWireSegmentsMessage,
  WIRE_SEGMENTS_EVENT,
  type DeviceId,
  type WireSegmentsMessage,
} from '@accord/protocol';
import type { PeerSyncReport } from './api.js';
import { documentChunkHeads } from './automerge-chunks.js';
import { FrozenDocumentsStorage } from './frozen-storage.js';

/**
 * How long document saves may lag behind changes (the event store is the durable copy).
 *
 * @remarks automerge-repo 2.5.6 offers no way to store a document as it was received: its storage
 * subsystem compacts any document whose stored snapshot is under 1 KB (a segment's deterministic
 * first change is) with `A.save`, DEFLATE included, on this throttled timer, and unloading the
 * handle does not cancel a pending save. Nor can a `DocHandle` hold a document without
 * materializing it (one `Uint8Array` per segment entry). The log's README ("Cold sync") says what
 * both cost a new device.
 */
const DOCUMENT_SAVE_DEBOUNCE_MS = 1000;

/** A sync message a peer sent about a document, once the Repo has taken it in. */
export interface PeerHeads {
  readonly peerId: string;
  readonly documentId: string;
  /** The heads the peer held of the document when it sent the message. */
  readonly theirHeads: readonly string[];
}

/** Options of {@link RepoHost}. */
export interface RepoHostOptions {
  readonly peerId: DeviceId;
  /** Where the sync documents are kept; wrapped so that sealed documents can be frozen. */
  readonly storage: StorageAdapterInterface;
  readonly network: readonly NetworkAdapterInterface[];
  /** Whether a followed document may be served to a peer now (default: always; see `DeviceLogOptions.serves`). */
  readonly serves?: (peer: DeviceId, documentId: string, bringsChanges: () => boolean) => boolean;
  /**
   * Answers a peer's sync message about a frozen document that is not in memory from its stored
   * copy, without loading it (see {@link RepoHost.wholeDocuments}); default false. Not for the relay:
   * its catch-up reads `onPeerSync` of its own sealed segments, which such an answer does not report.
   * Ignored with `serves` (such an answer does not ask it).
   */
  readonly answersFromStorage?: boolean;
  /**
   * Offered each sync message whose only change is a whole document (the relay's release of a
   * segment as stored) about a document the Repo holds: true when the log takes that document in
   * itself, outside the Repo (see {@link RepoHost.takingWhole}); the Repo then refuses the message.
   */
  readonly takesWhole?: {
    /** Whether a whole document of `id` might be taken (cheap: asked of every sync message about it). */
    readonly wants: (id: DocumentId) => boolean;
    /** Takes in `chunk`, the whole document of `id` that `peer` sent: true when taken. */
    readonly take: (peer: string, id: DocumentId, chunk: Uint8Array) => boolean;
  };
}

/** A network adapter as seen for {@link WIRE_SEGMENTS_EVENT}: one that never emits it is left waiting, harmlessly. */
interface SegmentsEmitter {
  on(event: typeof WIRE_SEGMENTS_EVENT, listener: (message: WireSegmentsMessage) => void): void;
}

/** Test hook: the Repo behind each log (see `repoOf` in `@accord/log/testing`). */
const repos = new WeakMap<object, Repo>();

/**
 * The log's Repo and what it asks of it: open a document whose first change is known, share only
 * the documents the log follows, save and unload a sealed document, report sync traffic and the
 * heads peers sync, add network adapters, close.
 *
 * @remarks Only documents the log decided to follow exist here: the Repo's `shareConfig` refuses a
 * peer's sync message about any other id (a made-up document, a segment no evidence points to)
 * before the Repo makes a handle for it, and nothing else is announced (issue #13, scenario 3).
 */
export class RepoHost {
  readonly #repo: Repo;
  readonly #storage: FrozenDocumentsStorage;
  /** Ids of the documents the log follows: the Repo serves and accepts these only. */
  readonly #shared = new Set<DocumentId>();
  /** The network adapters, as the Repo's network subsystem keeps them (closed ones leave). */
  #adapters: NetworkAdapterInterface[] = [];
  readonly #onMessage = new Set<(documentId: DocumentId) => void>();
  readonly #onPeer = new Set<() => void>();
  readonly #onPeerLeft = new Set<(peerId: string) => void>();
  /** Listeners of the bulk segment transfer's messages (see `bulk-segments.ts`). */
  readonly #onSegments = new Set<(message: WireSegmentsMessage) => void>();
  /** Connected peers, and the adapter each one is reached through. */
  readonly #peers = new Map<string, NetworkAdapterInterface>();
  /**
   * The peer message an adapter is emitting right now (see #watch). automerge-repo asks its access
   * decision about a message synchronously inside that emit, so the decision asked then about the
   * message's sender and document is the message's own; any other decision (the Repo also asks when
   * it weighs whom to share a document with) has no message.
   */
  #delivering: DeliveredMessage | undefined;
  /** Per document, the last access decision asked (see #inOrder). */
  readonly #decisions = new Map<DocumentId, Promise<boolean>>();
  /**
   * Documents expected whole from a peer (see {@link RepoHost.receiveWhole}), with the last whole
   * document a peer sent of each (undefined until one arrives).
   */
  readonly #whole = new Map<DocumentId, Uint8Array | undefined>();
  readonly #peerId: DeviceId;
  readonly #answersFromStorage: boolean;
  /**
   * Per peer and document, how many refusals the log answered itself (a stored copy sent or held,
   * a whole document taken in): the Repo's `doc-unavailable` for each is not sent (see #watch).
   */
  readonly #hushed = new Map<string, number>();
  /** Peer and document pairs sent a document's stored copy on this connection (once each). */
  readonly #sentStored = new Set<string>();
  #wholeDocuments = { sentAsStored: 0, alreadyHeld: 0, takenAsSent: 0 };
  readonly #takesWhole: RepoHostOptions['takesWhole'];
  /** Documents the log takes in outside the Repo: refused to peers until stored or opened again. */
  readonly #takingWhole = new Set<DocumentId>();

  constructor(opts: RepoHostOptions) {
    this.#storage = new FrozenDocumentsStorage(opts.storage);
    this.#peerId = opts.peerId;
    // Only without `serves`: an answer from storage does not ask it.
    this.#answersFromStorage = opts.answersFromStorage === true && opts.serves === undefined;
    this.#takesWhole = opts.serves === undefined ? opts.takesWhole : undefined;
    const shared = this.#shared;
    const serves = opts.serves;
    const allowed = (peer: PeerId | undefined, id: DocumentId, message?: Uint8Array): boolean =>
      shared.has(id) &&
      (serves === undefined ||
        peer === undefined ||
        serves(
          peer as unknown as DeviceId,
          id,
          () => message !== undefined && this.#bringsChanges(id, message),
        ));
    this.#repo = new Repo({
      peerId: opts.peerId as unknown as PeerId,
      storage: this.#storage,
      network: [...opts.network],
      shareConfig: {
        announce: (peer, id) => Promise.resolve(id === undefined || allowed(peer, id)),
        // The message a decision is about, if any, is taken now, while the adapter emits it (see
        // #delivering). A document let in is loaded from storage here, so that the Repo's `find`
        // that follows does not (see #loadStored); should that fail, `find` loads it as before.
        // Decisions about one document resolve in the order the Repo asked (see #inOrder).
        access: (peer, id) => {
          const message = peer === undefined ? undefined : this.#takeDelivering(peer, id);
          return this.#inOrder(id, async () => {
            if (peer !== undefined && message !== undefined && (await this.#answeredHere(peer, id, message)))
              return this.#hush(peer, id);
            const ok = serves === undefined ? shared.has(id) : allowed(peer, id, syncData(message));
            if (ok) await this.#loadStored(id).catch(() => undefined);
            return ok;
          });
        },
      },
      // Peers must not keep sync state for us across connections: a reconnect after any
      // transport fault restarts sync from scratch, or lost messages could stall it
      // (DESIGN.md §7). Whatever adapter carries the connection.
      isEphemeral: true,
      // The event store is the durable copy; document saves (each one may compact a whole
      // segment) can lag behind it.
      saveDebounceRate: DOCUMENT_SAVE_DEBOUNCE_MS,
    });
    for (const adapter of opts.network) this.#watch(adapter);
  }

  /**
   * Runs the access decision `decide` about document `id` after the ones asked before it.
   *
   * @remarks The Repo hands each peer message to the document's synchronizer once its own access
   * decision resolves, and a decision may read storage (#loadStored), whose reads finish in any
   * order (libuv's thread pool): unordered, a later sync message could overtake an earlier one,
   * which Automerge's sync protocol does not expect (a device's sync of one segment stalled with
   * six events missing in `relay-crash.int.test.ts` on a clean clone).
   */
  #inOrder(id: DocumentId, decide: () => Promise<boolean>): Promise<boolean> {
    const before = this.#decisions.get(id) ?? Promise.resolve(true);
    const decided = before.catch(() => undefined).then(decide);
    this.#decisions.set(id, decided);
    const forget = (): void => {
      if (this.#decisions.get(id) === decided) this.#decisions.delete(id);
    };
    decided.then(forget, forget);
    return decided;
  }

  /**
   * Whole documents handled outside the Repo: peers' sync messages about frozen documents answered
   * from storage (with `answersFromStorage`): `sentAsStored`, the stored copy sent to a peer that
   * lacked some of it; `alreadyHeld`, nothing sent because the peer held exactly the stored heads;
   * and `takenAsSent`, whole documents peers sent that the log took in itself (`takesWhole`).
   */
  wholeDocuments(): {
    readonly sentAsStored: number;
    readonly alreadyHeld: number;
    readonly takenAsSent: number;
  } {
    return { ...this.#wholeDocuments };
  }

  /**
   * Answers `peer`'s sync message `data` about frozen document `id` from its stored copy, without
   * loading the document into the Repo: true when answered (the Repo then refuses the message, so
   * it does not load the document), false when it is left to the Repo's way.
   *
   * @remarks A frozen document's stored copy is final (a sealed segment: every event in the store,
   * the document saved). automerge-repo answers a peer that lacks it by loading it (materializing
   * every entry as a JavaScript value, ≈ 80 ms per 5000-entry segment) and generating a sync
   * message of the whole document (`A.save` again, DEFLATE and SHA-256, 70–100 ms); each time a
   * peer syncs it, a device reloaded it just to find there was nothing to send. Here, when the
   * stored copy is one document chunk, a peer whose heads are exactly the chunk's holds it all:
   * nothing to send. A peer with other heads is sent the chunk as one sync message, as automerge-repo
   * would have made it (Automerge takes in what it lacks and answers with its heads), once per peer
   * and connection: if its heads still differ (it holds changes this copy lacks), the Repo's way
   * takes over, so nothing a peer brings is refused for good. Not reported to {@link RepoHost.onPeerHeads}.
   */
  async #answerFromStorage(peer: PeerId, id: DocumentId, data: Uint8Array): Promise<boolean> {
    let theirs: readonly string[];
    try {
      theirs = A.decodeSyncMessage(data).heads;
    } catch {
      return false; // the Repo refuses it too
    }
    const chunks = await this.storedChunks(id).catch(() => []);
    const only = chunks.length === 1 ? chunks[0] : undefined;
    const heads = only === undefined ? undefined : documentChunkHeads(only);
    if (only === undefined || heads === undefined) return false;
    if (this.#repo.handles[id] !== undefined || !this.#storage.isFrozen(id) || !this.#shared.has(id))
      return false;
    const adapter = this.#peers.get(peer);
    if (adapter === undefined) return false;
    const send = (changes: Uint8Array[]): void =>
      adapter.send({
        type: 'sync',
        senderId: this.#peerId,
        targetId: peer,
        documentId: id,
        data: A.encodeSyncMessage({ heads: [...heads], need: [], have: [], changes }),
      } as unknown as Parameters<NetworkAdapterInterface['send']>[0]);
    if (theirs.length === heads.length && [...theirs].sort().join(',') === heads.join(',')) {
      // Our heads, nothing else: the peer's Repo learns that we hold what it holds, as an answer of
      // ours would have told it (a relay catching up waits to hear that of its own documents).
      send([]);
      this.#wholeDocuments.alreadyHeld++;
      return true;
    }
    const key = `${peer}\n${id}`;
    if (this.#sentStored.has(key)) return false;
    this.#sentStored.add(key);
    send([only]);
    this.#wholeDocuments.sentAsStored++;
    return true;
  }

  /**
   * True when the log answers `peer`'s `message` about `id` itself, outside the Repo
   * (which then refuses it): a whole document taken in (`takesWhole`), a frozen document answered
   * from storage (`answersFromStorage`), or, while a document is taken in, a message that brings
   * no change (heads and a filter: nothing is lost by not answering it). A message with changes
   * goes to the Repo even then: refused, its sender would count those changes as delivered and
   * not send them again should taking the document in fail (a stalled sync, DESIGN.md §7).
   */
  async #answeredHere(peer: PeerId, id: DocumentId, message: DeliveredMessage): Promise<boolean> {
    if (!this.#answersFromStorage && this.#takesWhole === undefined) return false;
    const data = syncData(message);
    if (this.#takingWhole.has(id)) return data === undefined || !this.#bringsAnyChange(data);
    if (data === undefined) return false;
    if (this.#takeWhole(peer, id, data)) return true;
    if (!this.#answersFromStorage || !this.#storage.isFrozen(id) || this.#repo.handles[id] !== undefined)
      return false;
    return this.#answerFromStorage(peer, id, data);
  }

  /** True when sync message `data` carries changes (or does not decode: the Repo decides). */
  #bringsAnyChange(data: Uint8Array): boolean {
    try {
      return A.decodeSyncMessage(data).changes.length > 0;
    } catch {
      return true;
    }
  }

  /** Counts a refusal the log answered itself (its `doc-unavailable` is not sent); false. */
  #hush(peer: PeerId, id: DocumentId): false {
    const key = `${peer}\n${id}`;
    this.#hushed.set(key, (this.#hushed.get(key) ?? 0) + 1);
    return false;
  }

  /**
   * Offers the whole document a peer's sync message `data` carries to `takesWhole`: true when the
   * log takes it in itself. The document is then dropped from the Repo (it held nothing the log
   * needs: see `Segments.takeReleased`) and refused to peers until it is stored
   * ({@link RepoHost.storeWhole}) or opened again ({@link RepoHost.open}, when taking it failed).
   *
   * @remarks automerge-repo would apply the document to its handle and materialize every entry as
   * a JavaScript value (and the log read them back one by one), where the log's bulk path loads it
   * with Automerge's `load` alone, checks it by the relay's seal and stores it as sent.
   */
  #takeWhole(peer: PeerId, id: DocumentId, data: Uint8Array): boolean {
    if (this.#takesWhole === undefined || this.#repo.handles[id] === undefined) return false;
    let only: Uint8Array | undefined;
    try {
      const { changes, have, need } = A.decodeSyncMessage(data);
      // A stored copy sent as it is (no bloom filter, nothing needed): sent outside the peer's Repo,
      // so refusing it leaves the peer's sync state with us as it was. A message automerge-repo
      // generated always has a filter; refused, its sender would count its changes as delivered.
      only = changes.length === 1 && have.length === 0 && need.length === 0 ? changes[0] : undefined;
    } catch {
      return false;
    }
    if (only === undefined || documentChunkHeads(only) === undefined) return false;
    if (!this.#takesWhole.take(peer, id, only)) return false;
    this.#takingWhole.add(id);
    this.#wholeDocuments.takenAsSent++;
    this.#whole.delete(id);
    void this.#repo.removeFromCache(id).catch(() => undefined);
    return true;
  }

  /** True while document `id` is taken in outside the Repo (see {@link RepoHost.takesWhole}). */
  takingWhole(id: DocumentId): boolean {
    return this.#takingWhole.has(id);
  }

  /** Taking `id` in outside the Repo failed: peers' messages about it go to the Repo again. */
  stopTakingWhole(id: DocumentId): void {
    this.#takingWhole.delete(id);
  }

  /** Lets `owner`'s tests reach the Repo (`repoOf` in `@accord/log/testing`); nothing else does. */
  exposeTo(owner: object): void {
    repos.set(owner, this.#repo);
  }

  /** Serves `id` to peers and accepts their changes to it from now on. */
  share(id: DocumentId): void {
    this.#shared.add(id);
  }

  /**
   * Serves `ids` to the peers that asked for them or are owed them, now that `serves` allows it.
   *
   * @remarks A document in memory is synced with them at once (`Repo.shareConfigChanged`). One
   * the sweep dropped from memory is loaded from storage, which starts its sync with every peer
   * allowed: a refused peer never asks again by itself (it took the refusal as "unavailable").
   */
  async servingChanged(ids: readonly string[]): Promise<void> {
    for (const id of ids as DocumentId[]) {
      if (this.#repo.handles[id] !== undefined || !this.#shared.has(id)) continue;
      await this.#loadStored(id);
    }
    this.#repo.shareConfigChanged();
  }

  /**
   * Loads a shared document from storage into the Repo, as {@link RepoHost.open} does, without
   * `Repo.find`; nothing when nothing of it is stored (nothing to serve).
   *
   * @remarks automerge-repo 2.5.6's `find` (without an abort signal, as its own sync also calls it)
   * races the storage load against one module-wide promise that never settles: each call leaves a
   * reaction on it that keeps the loaded document reachable for as long as the process lives, its
   * JavaScript values and its WebAssembly memory. A relay that loads a facility's sealed segments
   * again to serve them kept every one of them after the facility was unloaded (bench memory run:
   * ≈ 40k entries and ≈ 20 MB of WebAssembly memory per 50k-event facility). A document already
   * in the Repo is found without that race.
   */
  async #loadStored(id: DocumentId): Promise<void> {
    if (this.#repo.handles[id] !== undefined) return;
    const chunks = await this.storedChunks(id);
    if (this.#repo.handles[id] !== undefined) return; // loaded meanwhile
    this.#importLoaded(id, chunks);
  }

  /**
   * Merges `chunks` into the Repo's handle of `id` (made by the first one) and marks it loaded, as
   * the Repo's own loader would; undefined when there are no chunks.
   */
  #importLoaded<T>(id: DocumentId, chunks: readonly Uint8Array[]): DocHandle<T> | undefined {
    let handle: DocHandle<T> | undefined;
    for (const data of chunks) handle = this.#repo.import<T>(data, { docId: id });
    if (handle !== undefined && !handle.isReady()) handle.doneLoading();
    return handle;
  }

  /**
   * Opens a shared document whose first change is known (deterministic), never waiting on the
   * network.
   *
   * @remarks `repo.find` can wait forever for a document the Repo already tried to fetch from
   * peers ('requesting'/'unavailable'). Instead the known first change and every stored chunk are
   * merged into the handle (as the Repo's own loader does; both are idempotent) and it is marked
   * loaded. Sync then brings whatever peers have beyond that.
   *
   * The stored chunks are read before the handle exists and merged in the same turn as the first
   * change: a handle is synced with the connected peers as soon as it is made, so one made while
   * its chunks were still being read told them it held the first change alone (a restored relay
   * took a restarted tablet's word for that and numbered its next verdict as the one the tablet
   * held: a fork of the relay's sequence, issue #11).
   */
  async open<T>(id: DocumentId, initial: () => Uint8Array): Promise<DocHandle<T>> {
    this.#shared.add(id);
    this.#takingWhole.delete(id);
    const stored = await this.storedChunks(id);
    const handle = this.#importLoaded<T>(id, [initial(), ...stored])!;
    await handle.whenReady();
    return handle;
  }

  /**
   * `id` is expected whole from a peer (another device's segment that a relay seal names): the Repo
   * does not save it; {@link RepoHost.storeReceived} stores the document as the peer sent it.
   *
   * @remarks NOT PUBLIC: automerge-repo 2.5.6 saves a document by listening to its handle's
   * `heads-changed` event (its only listener there), and offers no option to store a document as
   * received: its first save of a document it did not load from storage compacts it with `A.save`,
   * DEFLATE included, which a new device paid for every sealed segment (≈ 110 ms per 5000 events),
   * although the peer had sent exactly those bytes. The listener is taken off here. A document
   * never sealed is still saved when the log closes (`close` flushes every document not frozen).
   */
  receiveWhole(id: DocumentId): void {
    const handle = this.#repo.handles[id];
    if (handle === undefined || this.#whole.has(id) || this.#storage.isFrozen(id)) return;
    this.#whole.set(id, undefined);
    handle.removeAllListeners('heads-changed');
  }

  /**
   * Stores a document expected whole as a peer sent it, and freezes it; false (nothing done) when
   * no document chunk a peer sent names exactly the heads the Repo holds (the sweep then saves it
   * the Repo's way).
   *
   * @remarks A peer sends a device that holds nothing of a document the whole document, the bytes
   * of `A.save` (a document chunk); the heads in its header are compared with the Repo's. The body
   * is not checked against the header (loading it again would cost what the save did): a roster
   * member that sends the document, then another body under the same header, could leave a stored
   * copy that does not load, so that this device cannot serve that segment; its events are verified
   * and stored all the same. Never throws.
   */
  async storeReceived(id: DocumentId): Promise<boolean> {
    const chunk = this.#whole.get(id);
    this.#whole.delete(id);
    const handle = this.loaded(id);
    if (chunk === undefined || handle === undefined || this.#storage.isFrozen(id)) return false;
    const claimed = documentChunkHeads(chunk);
    const held = [...A.getHeads(handle.doc())].sort();
    if (claimed === undefined || claimed.join(',') !== held.join(',')) return false;
    return this.storeWhole(id, chunk, held);
  }

  /**
   * Stores `bytes`, a whole document whose heads are `heads`, as the snapshot automerge-repo would
   * store of them, and freezes the document; false (nothing frozen) when storage failed.
   */
  async storeWhole(id: DocumentId, bytes: Uint8Array, heads: readonly string[]): Promise<boolean> {
    try {
      // The key automerge-repo gives a snapshot of these heads (its `headsHash`): had it saved one
      // meanwhile, the same bytes go under the same key.
      const key = createHash('sha256')
        .update([...heads].sort().join(''))
        .digest('hex');
      await this.#storage.save([id, 'snapshot', key], bytes);
    } catch {
      return false;
    }
    this.#storage.freeze(id);
    this.#takingWhole.delete(id);
    return true;
  }

  /** The stored Automerge chunks (snapshots and incremental changes) of a document. */
  async storedChunks(id: DocumentId): Promise<Uint8Array[]> {
    const out: Uint8Array[] = [];
    for (const chunk of await this.#storage.loadRange([id])) {
      const kind = chunk.key[1];
      if (chunk.data !== undefined && (kind === 'incremental' || kind === 'snapshot')) out.push(chunk.data);
    }
    return out;
  }

  /** From now on the stored copy of `id` is final (see {@link FrozenDocumentsStorage}). */
  freeze(id: DocumentId): void {
    this.#storage.freeze(id);
  }

  /** True when `id` is frozen. */
  isFrozen(id: DocumentId): boolean {
    return this.#storage.isFrozen(id);
  }

  /** The ready handle of `id` if the Repo holds it in memory (it reloads sealed ones for peers). */
  loaded(id: DocumentId): DocHandle<unknown> | undefined {
    const handle = this.#repo.handles[id];
    return handle !== undefined && handle.isReady() ? handle : undefined;
  }

  /** The documents the Repo holds in memory, and whether each is ready (for tests and benchmarks). */
  documents(): { readonly documentId: string; readonly ready: boolean }[] {
    return Object.values(this.#repo.handles).map((h) => ({ documentId: h.documentId, ready: h.isReady() }));
  }

  /**
   * Writes `id`'s document to storage now.
   *
   * @remarks NOT PUBLIC: `Repo.flush` is marked `@hidden` (experimental) in automerge-repo 2.5.6,
   * which has no other way to save a document on demand before it is unloaded.
   */
  save(id: DocumentId): Promise<void> {
    return this.#repo.flush([id]);
  }

  /**
   * Drops `id`'s document from memory (the Repo reloads it from storage when a peer asks for it).
   *
   * @remarks NOT PUBLIC: `Repo.removeFromCache` is marked `@hidden` (experimental) in
   * automerge-repo 2.5.6, which has no other way to unload a document.
   */
  unload(id: DocumentId): Promise<void> {
    return this.#repo.removeFromCache(id);
  }

  /**
   * Adds a network adapter to the running Repo.
   *
   * @remarks NOT PUBLIC: automerge-repo 2.5.6 takes adapters only at construction; adding one later
   * goes through the `@hidden` `networkSubsystem`.
   */
  addNetworkAdapter(adapter: NetworkAdapterInterface): void {
    this.#watch(adapter);
    this.#repo.networkSubsystem.addNetworkAdapter(adapter);
  }

  /** True while a peer is connected: {@link RepoHost.peers} is not empty. */
  hasPeers(): boolean {
    return this.#peers.size > 0;
  }

  /**
   * Calls `listener` each time a peer connects (an adapter's public `peer-candidate` event, once
   * the Repo has taken the peer in: a document opened from then on is synced with it).
   */
  onPeer(listener: () => void): () => void {
    this.#onPeer.add(listener);
    return () => this.#onPeer.delete(listener);
  }

  /** Calls `listener` with the peer id each time a connected peer goes away (see {@link RepoHost.peers}). */
  onPeerLeft(listener: (peerId: string) => void): () => void {
    this.#onPeerLeft.add(listener);
    return () => this.#onPeerLeft.delete(listener);
  }

  /**
   * Calls `listener` with the document id of every message a peer sends about a document (read
   * from the adapters' own public `message` events; the Repo's answers only ever follow them).
   */
  onMessage(listener: (documentId: DocumentId) => void): () => void {
    this.#onMessage.add(listener);
    return () => this.#onMessage.delete(listener);
  }

  /**
   * Calls `listener` with each message of the bulk segment transfer a peer sent (adapters hand
   * them on beside the Repo's messages, and the Repo ignores them); returns the unsubscribe function.
   */
  onSegments(listener: (message: WireSegmentsMessage) => void): () => void {
    this.#onSegments.add(listener);
    return () => this.#onSegments.delete(listener);
  }

  /** Sends a message of the bulk segment transfer through the adapter that reaches its target; false when none does. */
  sendSegments(message: WireSegmentsMessage): boolean {
    const adapter = this.#peers.get(message.targetId);
    if (adapter === undefined) return false;
    adapter.send(message as unknown as Parameters<NetworkAdapterInterface['send']>[0]);
    return true;
  }

  /**
   * The peers connected now: the one meaning of "connected" in the log (`hasPeers`, the bulk
   * transfer). A peer is connected from its adapter's `peer-candidate` until that adapter's
   * `peer-disconnected` for it (or the adapter's `close`), whichever adapter reached it last;
   * the Repo's own `peers` list follows the same adapter events.
   */
  peers(): string[] {
    return [...this.#peers.keys()];
  }

  /**
   * Calls `listener` after each sync message from a peer, with the heads the peer held; returns
   * the unsubscribe function. Emitted before the received changes are applied: look later.
   *
   * @remarks NOT PUBLIC: automerge-repo 2.5.6 reports a peer's heads only through the `sync-state`
   * event of its `@hidden` `synchronizer`.
   */
  onPeerHeads(listener: (e: PeerHeads) => void): () => void {
    const handler = (e: { peerId: string; documentId: string; syncState: A.SyncState }): void => {
      const theirHeads = (e.syncState as { theirHeads?: A.Heads | null }).theirHeads;
      if (theirHeads === null || theirHeads === undefined) return;
      listener({ peerId: e.peerId, documentId: e.documentId, theirHeads });
    };
    this.#repo.synchronizer.on('sync-state', handler);
    return () => {
      this.#repo.synchronizer.off('sync-state', handler);
    };
  }

  /**
   * Calls `listener` each time the Repo has taken in a sync message from a peer about a document
   * `wants` accepts, saying whether it now holds every change the peer held of it.
   */
  onPeerSync(
    listener: (report: PeerSyncReport) => void,
    wants: (peer: string, documentId: string) => boolean = () => true,
  ): () => void {
    return this.onPeerHeads(({ peerId, documentId, theirHeads }) => {
      if (!wants(peerId, documentId)) return;
      // The event fires inside the handle's update, before the new document is in place.
      queueMicrotask(() => {
        let holdsTheirs = false;
        try {
          const handle = this.#repo.handles[documentId as DocumentId];
          holdsTheirs =
            handle?.isReady() === true && A.getMissingDeps(handle.doc(), [...theirHeads]).length === 0;
        } catch {
          holdsTheirs = false;
        }
        try {
          listener({ peer: peerId, documentId, holdsTheirs });
        } catch {
          // A listener must not break the repo's event loop.
        }
      });
    });
  }

  /**
   * Saves every loaded document, disconnects from peers and drops every later write.
   *
   * @remarks What `Repo.shutdown` does, except that documents that never became ready are left
   * out: a peer asking for a document we never had leaves such a handle, and automerge-repo
   * 2.5.6's flush (which shutdown runs over every handle) throws "DocHandle is not ready" on it.
   * Such a handle holds nothing to save, and the Repo's handle cache is left as it is.
   */
  async close(): Promise<void> {
    await this.#repo.flush(this.#readyIds());
    for (const adapter of this.#adapters) adapter.disconnect();
    await this.#repo.flush(this.#readyIds());
    this.#storage.close();
  }

  /** Ready documents whose stored copy is not final (saving a frozen one would be dropped anyway). */
  #readyIds(): DocumentId[] {
    return Object.values(this.#repo.handles)
      .filter((h) => h.isReady() && !this.#storage.isFrozen(h.documentId))
      .map((h) => h.documentId);
  }

  #left(peerId: string): void {
    this.#peers.delete(peerId);
    for (const listener of this.#onPeerLeft) listener(peerId);
  }

  #watch(adapter: NetworkAdapterInterface): void {
    this.#adapters.push(adapter);
    if (this.#answersFromStorage || this.#takesWhole !== undefined) {
      // The Repo answers each refused message `doc-unavailable`; for a message the log answered
      // itself (#answeredHere) that answer is dropped: a relay that took it would load the document
      // back from storage to note it (its access decision loads what it lets in), for nothing.
      const send = adapter.send.bind(adapter);
      adapter.send = (message) => {
        if (message.type === 'doc-unavailable' && message.documentId !== undefined) {
          const key = `${message.targetId}\n${message.documentId}`;
          const hushed = this.#hushed.get(key) ?? 0;
          if (hushed > 0) {
            if (hushed === 1) this.#hushed.delete(key);
            else this.#hushed.set(key, hushed - 1);
            return;
          }
        }
        send(message);
      };
    }
    // NOT PUBLIC: the Repo's access decision about a peer message is asked synchronously inside
    // the adapter's emit of it (automerge-repo 2.5.6: the network subsystem re-emits it, the Repo
    // hands it to the collection synchronizer, which asks `shareConfig.access` before its first
    // await), an order no public API promises. So the message is noted for the length of that
    // emit: messages the Repo drops unasked (invalid ones, an ephemeral message it has seen) and
    // decisions asked for other reasons need no bookkeeping to stay paired (see #takeDelivering).
    const emit = adapter.emit.bind(adapter) as (event: string, ...args: unknown[]) => boolean;
    (adapter as { emit: (event: string, ...args: unknown[]) => boolean }).emit = (event, ...args) => {
      const message = event === 'message' ? deliveredMessage(args[0]) : undefined;
      if (message === undefined) return emit(event, ...args);
      const outer = this.#delivering;
      this.#delivering = message;
      try {
        return emit(event, ...args);
      } finally {
        this.#delivering = outer;
      }
    };
    adapter.on('close', () => {
      this.#adapters = this.#adapters.filter((a) => a !== adapter);
      for (const [peer, through] of this.#peers) if (through === adapter) this.#left(peer);
    });
    adapter.on('peer-candidate', ({ peerId }) => {
      this.#peers.set(peerId, adapter);
      for (const listener of this.#onPeer) listener();
    });
    adapter.on('peer-disconnected', ({ peerId }) => {
      if (this.#peers.get(peerId) === adapter) this.#left(peerId);
    });
    adapter.on('peer-disconnected', ({ peerId }) => {
      // A new connection starts from scratch: a stored copy may be sent again, and a message the
      // Repo never decided on must not be taken for a later one.
      for (const key of [...this.#sentStored])
        if (key.startsWith(`${peerId}\n`)) this.#sentStored.delete(key);
      for (const key of [...this.#hushed.keys()]) if (key.startsWith(`${peerId}\n`)) this.#hushed.delete(key);
    });
    // Declared by `@accord/protocol` (WIRE_SEGMENTS_EVENT), not by automerge-repo's adapter interface.
    (adapter as unknown as SegmentsEmitter).on(WIRE_SEGMENTS_EVENT, (message) => {
      if (!isWireSegmentsMessage(message)) return;
      for (const listener of this.#onSegments) listener(message);
    });
    adapter.on('message', (message) => {
      const id = 'documentId' in message ? (message.documentId as DocumentId | undefined) : undefined;
      if (id === undefined) return;
      if (message.type === 'sync' && 'data' in message && this.#whole.has(id))
        this.#keepWhole(id, message.data);
      for (const listener of this.#onMessage) listener(id);
    });
  }

  /** Keeps the whole document a peer's sync message about `id` carries, if it carries one. */
  #keepWhole(id: DocumentId, data: Uint8Array): void {
    try {
      const { changes } = A.decodeSyncMessage(data);
      const only = changes.length === 1 ? changes[0] : undefined;
      if (only !== undefined && documentChunkHeads(only) !== undefined) this.#whole.set(id, only);
    } catch {
      // Not a sync message Automerge reads: the Repo refuses it too.
    }
  }

  /** The message being delivered, when it is `peer`'s about `id` (see #delivering); taken once. */
  #takeDelivering(peer: PeerId, id: DocumentId): DeliveredMessage | undefined {
    const message = this.#delivering;
    if (message === undefined || message.senderId !== peer || message.documentId !== id) return undefined;
    this.#delivering = undefined;
    return message;
  }

  /** True when a peer's sync message names heads of `id` this Repo lacks: the peer has changes to bring. */
  #bringsChanges(id: DocumentId, data: Uint8Array): boolean {
    const handle = this.#repo.handles[id];
    // Not in memory: a sealed segment, stored whole; nothing a peer holds is missing here.
    if (handle === undefined || !handle.isReady()) return false;
    try {
      const { heads } = A.decodeSyncMessage(data);
      return A.getMissingDeps(handle.doc(), heads).length > 0;
    } catch {
      return false;
    }
  }
}

/** A peer message automerge-repo asks an access decision about (see `RepoHost.#delivering`). */
interface DeliveredMessage {
  readonly type: 'sync' | 'request' | 'ephemeral' | 'doc-unavailable';
  readonly senderId: string;
  readonly documentId: string;
  readonly data: unknown;
}

const ASKED_ABOUT = new Set(['sync', 'request', 'ephemeral', 'doc-unavailable']);

/** `value` as a message the Repo asks access about, or undefined (another type, or no document named). */
function deliveredMessage(value: unknown): DeliveredMessage | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { type, senderId, documentId, data } = value as Record<string, unknown>;
  if (typeof type !== 'string' || !ASKED_ABOUT.has(type)) return undefined;
  if (typeof senderId !== 'string' || typeof documentId !== 'string') return undefined;
  return { type: type as DeliveredMessage['type'], senderId, documentId, data };
}

/** The Automerge sync data of a `sync` or `request` message, or undefined. */
function syncData(message: DeliveredMessage | undefined): Uint8Array | undefined {
  if (message?.type !== 'sync' && message?.type !== 'request') return undefined;
  return message.data instanceof Uint8Array ? message.data : undefined;
}

/** The Repo behind a log (test hook), or undefined for anything else. */
export function repoBehind(owner: object): Repo | undefined {
  return repos.get(owner);
}
