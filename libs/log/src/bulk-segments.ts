import * as A from '@automerge/automerge';
import type { DocumentId } from '@automerge/automerge-repo';
import {
  MAX_EVENT_BYTES,
  WIRE_MAX_SEGMENT_REQUEST,
  type DeviceId,
  type WireSegmentsMessage,
} from '@accord/protocol';
import type { SecurityIncident } from './api.js';
import type { Incidents } from './incidents.js';
import type { Ingest } from './ingest.js';
import type { RepoHost } from './repo-host.js';
import type { LogContext, Segments } from './segments.js';

/** How long a peer may take to answer a request before its segments are synced the Repo's way. */
const ANSWER_MS = 15_000;

/**
 * Segments asked of a peer and not yet committed, at most: the peer loads and sends the next ones
 * while this log checks and stores the last ones (the wire, the peer's CPU and this log's CPU
 * overlap), and memory holds at most this many segments' bytes and events.
 */
export const BULK_IN_FLIGHT = 4;

/**
 * How long a segment asked for before the relay's seal of it was known (`speculative`) is kept,
 * once a peer sent it, waiting for that seal; then it is synced the Repo's way. The seals arrive in
 * the relay's own segment, which a new device syncs at once: seconds at most.
 */
export const SPECULATIVE_WAIT_MS = 5000;

/**
 * How long a segment a peer sent whole unasked ({@link BulkSegments.takeGiven}) waits for the
 * relay's seal of it to be noted here before it is followed the Repo's way.
 */
export const GIVEN_SEAL_WAIT_MS = 2000;

/** A segment asked of a peer, not answered yet. */
interface Asked {
  readonly id: DocumentId;
  readonly device: DeviceId;
  readonly index: number;
  readonly peer: string;
  readonly timer: ReturnType<typeof setTimeout>;
  /** Asked before the relay's seal of it was known (see {@link BulkSegments.take}). */
  readonly speculative: boolean;
}

/** A segment being taken in: asked for, or sent unasked ({@link BulkSegments.takeGiven}). */
type Taking = Pick<Asked, 'id' | 'device' | 'index' | 'peer'> & { readonly given?: boolean };

/** A segment to ask for. */
interface Queued {
  readonly id: DocumentId;
  readonly device: DeviceId;
  readonly index: number;
  readonly speculative: boolean;
}

/** What {@link BulkSegments} asks of the rest of the log. */
export interface BulkSegmentsDeps {
  readonly ctx: LogContext;
  readonly host: RepoHost;
  readonly segments: Segments;
  readonly ingest: Ingest;
  readonly incidents: Incidents;
  /** Whether a sealed document may be served to a peer now (`DeviceLogOptions.serves`). */
  readonly serves:
    ((peer: DeviceId, documentId: string, bringsChanges: () => boolean) => boolean) | undefined;
  /** True when the relay's seal of segment `index` of `device` is known. */
  readonly isSealed: (device: DeviceId, index: number) => boolean;
  /** Runs `work` on the log's serial work chain. */
  readonly enqueue: (work: () => Promise<void>) => void;
  /** Follows the segments again (one that could not be taken whole is then opened in the Repo). */
  readonly refollow: () => void;
  readonly isClosed: () => boolean;
}

/**
 * Cold sync in bulk: another device's relay-sealed segments are asked of a peer as stored
 * documents (the network's `segments-request`, see `WIRE_FEATURE_SEGMENTS` of `@accord/protocol`),
 * checked against the relay's seal, stored as received and committed, all outside the Repo; and
 * this log answers its peers' requests with the stored bytes of its sealed segments.
 *
 * @remarks The Repo makes a `DocHandle` of every document it syncs, which materializes the whole
 * JavaScript document with its patches, and the serving side re-saves per sync message: most of a
 * new device's time (see the README, "Cold sync"). Here a sealed document is loaded with
 * Automerge's `load` alone (no handle, no patches) and freed once read. Nothing is stored unless
 * the relay's seal covers every entry; anything else from the peer (bytes that are no Automerge
 * document, over the size a segment can have, entries the seal does not cover, an answer never
 * asked for) is a security incident, and the segment is synced the Repo's way instead, as it is
 * when the peer does not speak the transfer (an older version answers nothing: its link answers
 * `segment-unavailable` for it), has no stored copy to give, or does not answer in time.
 */
export class BulkSegments {
  readonly #deps: BulkSegmentsDeps;
  /** Segments asked of a peer, by document id. */
  readonly #asked = new Map<DocumentId, Asked>();
  /** Segments to ask for, in the order they were offered, as {@link BULK_IN_FLIGHT} allows. */
  readonly #queued = new Map<DocumentId, Queued>();
  /**
   * Segments asked for speculatively that a peer sent before the relay's seal of them was known:
   * their bytes, until the seal comes (or {@link SPECULATIVE_WAIT_MS} passes). Counted in flight.
   */
  readonly #parked = new Map<
    DocumentId,
    { readonly asked: Taking; readonly data: Uint8Array; readonly timer: ReturnType<typeof setTimeout> }
  >();
  /** Speculative requests given up (timed out): a late answer to one is dropped, not an incident. */
  readonly #abandoned = new Set<DocumentId>();
  /** Devices whose segments are no longer asked for speculatively: a seal expected of one never came. */
  readonly #unsealed = new Set<DeviceId>();
  /** Whether a turn of the event loop will ask for the queued segments (one request for all). */
  #pumping = false;
  /** Segments a peer answered, being checked, stored and committed (not to be asked again meanwhile). */
  readonly #takingIn = new Set<DocumentId>();
  /** Segments that are synced the Repo's way: a peer could not give them whole. */
  readonly #failed = new Set<DocumentId>();
  /** Answers to peers' requests, one document after another (bounded memory). */
  #serving: Promise<void> = Promise.resolve();
  readonly #unsubscribe: () => void;

  constructor(deps: BulkSegmentsDeps) {
    this.#deps = deps;
    const offSegments = deps.host.onSegments((message) => this.#onMessage(message));
    const offLeft = deps.host.onPeerLeft((peer) => this.#peerLeft(peer));
    this.#unsubscribe = () => {
      offSegments();
      offLeft();
    };
  }

  /**
   * Takes segment `index` of `device` (relay-sealed, not held) from a peer: true when it was asked
   * for (or already is), false when it is to be synced the Repo's way (no peer, or a peer failed).
   *
   * @remarks `speculative`: the relay's seal of it is not known yet, only expected (a new device
   * hears of the seals in the relay's own segment, which it syncs first: seconds during which it
   * would otherwise ask for nothing). Asked all the same; a peer's answer is kept, unread, until
   * the seal is noted ({@link BulkSegments.sealNoted}), and synced the Repo's way if no seal comes
   * within {@link SPECULATIVE_WAIT_MS}.
   */
  take(device: DeviceId, index: number, id: DocumentId, speculative = false): boolean {
    if (this.#failed.has(id) || this.#deps.isClosed()) return false;
    if (this.#asked.has(id) || this.#takingIn.has(id) || this.#queued.has(id)) return true;
    if (this.#deps.host.peers().length === 0) return false;
    this.#queued.set(id, { id, device, index, speculative });
    this.#pump();
    return true;
  }

  /**
   * False once a segment of `device` asked for speculatively waited {@link SPECULATIVE_WAIT_MS}
   * for its seal in vain (the relay is behind, or away): from then on its segments wait for their
   * seals to be known, as before, so that a relay that lags costs one wait per device, not one per
   * segment.
   */
  speculates(device: DeviceId): boolean {
    return !this.#unsealed.has(device);
  }

  /**
   * Takes segment `index` of `device`, which `peer` sent whole unasked (the relay's release of a
   * judged segment), as an answer would be taken: true when it will be checked, stored and committed
   * by the relay's seal; false (nothing done) when the segment is being taken already or failed
   * before. Refused by the checks, it is followed the Repo's way again, with no incident: a peer may
   * send a stored copy that lags behind.
   *
   * @remarks The relay appends its seal of a segment in the round that releases it, so the seal may
   * reach this log just after the segment: the copy is kept, unread, until the seal is noted, at
   * most {@link GIVEN_SEAL_WAIT_MS}; then the segment is followed the Repo's way.
   */
  takeGiven(device: DeviceId, index: number, id: DocumentId, data: Uint8Array, peer: string): boolean {
    if (this.#deps.isClosed() || this.#parked.has(id)) return false;
    if (this.#failed.has(id) || this.#asked.has(id) || this.#takingIn.has(id) || this.#queued.has(id))
      return false;
    this.#takingIn.add(id);
    const given: Taking = { id, device, index, peer, given: true };
    if (this.#deps.isSealed(device, index)) {
      this.#takeInLater(given, data);
      return true;
    }
    const timer = setTimeout(() => {
      if (!this.#parked.delete(id)) return;
      this.#takingIn.delete(id);
      this.#fallBack(id);
    }, GIVEN_SEAL_WAIT_MS);
    timer.unref();
    this.#parked.set(id, { asked: given, data, timer });
    return true;
  }

  /** The relay's seal of segment `index` of `device` is known: a parked copy of it is taken in now. */
  sealNoted(device: DeviceId, index: number): void {
    for (const [id, parked] of this.#parked) {
      if (parked.asked.device !== device || parked.asked.index !== index) continue;
      this.#parked.delete(id);
      clearTimeout(parked.timer);
      this.#takeInLater(parked.asked, parked.data);
    }
  }

  /** Stops asking and answering. */
  close(): void {
    this.#unsubscribe();
    for (const asked of this.#asked.values()) clearTimeout(asked.timer);
    for (const parked of this.#parked.values()) clearTimeout(parked.timer);
    this.#asked.clear();
    this.#queued.clear();
    this.#parked.clear();
  }

  /** Asks for more queued segments at the next turn of the event loop, if any may be in flight. */
  #pump(): void {
    if (this.#pumping || this.#queued.size === 0) return;
    this.#pumping = true;
    setImmediate(() => {
      this.#pumping = false;
      this.#ask();
    });
  }

  /**
   * Asks one peer for the queued segments, oldest first, as many as may be in flight (the first
   * peer connected: any peer serves sealed segments).
   */
  #ask(): void {
    const peer = this.#deps.host.peers()[0];
    if (peer === undefined || this.#deps.isClosed()) {
      for (const id of this.#queued.keys()) this.#failed.add(id);
      this.#queued.clear();
      if (!this.#deps.isClosed()) this.#deps.refollow();
      return;
    }
    const room = BULK_IN_FLIGHT - this.#asked.size - this.#takingIn.size;
    if (room <= 0) return;
    const queued = [...this.#queued.values()].slice(0, room);
    for (const q of queued) this.#queued.delete(q.id);
    for (let at = 0; at < queued.length; at += WIRE_MAX_SEGMENT_REQUEST) {
      const batch = queued.slice(at, at + WIRE_MAX_SEGMENT_REQUEST);
      for (const q of batch) {
        const timer = setTimeout(() => this.#fallBack(q.id), ANSWER_MS);
        timer.unref();
        this.#asked.set(q.id, { ...q, peer, timer });
      }
      const sent = this.#deps.host.sendSegments({
        type: 'segments-request',
        senderId: this.#deps.ctx.deviceId,
        targetId: peer,
        documentIds: batch.map((q) => q.id),
      });
      if (!sent) for (const q of batch) this.#fallBack(q.id);
    }
  }

  /**
   * A peer went away with segments asked of it and not answered: they are asked again, first, of a
   * peer still connected (or synced the Repo's way when none is), not left to wait for
   * {@link ANSWER_MS} (its link is gone: no answer to those requests can come on it).
   */
  #peerLeft(peer: string): void {
    const lost = [...this.#asked.values()].filter((asked) => asked.peer === peer);
    if (lost.length === 0 || this.#deps.isClosed()) return;
    const requeued = new Map<DocumentId, Queued>(
      lost.map(({ id, device, index, speculative }) => [id, { id, device, index, speculative }]),
    );
    for (const asked of lost) {
      clearTimeout(asked.timer);
      this.#asked.delete(asked.id);
    }
    for (const [id, q] of this.#queued) requeued.set(id, q);
    this.#queued.clear();
    for (const [id, q] of requeued) this.#queued.set(id, q);
    this.#pump();
  }

  #onMessage(message: WireSegmentsMessage): void {
    if (this.#deps.isClosed()) return;
    if (message.type === 'segments-request') {
      const { senderId, documentIds } = message;
      this.#serving = this.#serving.then(() => this.#answer(senderId, documentIds));
      return;
    }
    const id = message.documentId as DocumentId;
    const asked = this.#asked.get(id);
    if (asked === undefined && this.#abandoned.delete(id)) return; // too late: synced the Repo's way
    if (asked === undefined || asked.peer !== message.senderId) {
      if (message.type === 'segment')
        this.#report(
          'LOG_SEGMENT_UNASKED',
          `segment ${id} sent by ${message.senderId} unasked`,
          message.senderId,
        );
      return;
    }
    this.#asked.delete(id);
    clearTimeout(asked.timer);
    if (message.type === 'segment-unavailable') return this.#fallBack(id);
    this.#takingIn.add(id);
    if (asked.speculative && !this.#deps.isSealed(asked.device, asked.index)) {
      // Kept unread until the relay's seal of it is noted.
      const timer = setTimeout(() => {
        if (!this.#parked.delete(id)) return;
        this.#takingIn.delete(id);
        this.#unsealed.add(asked.device);
        this.#fallBack(id);
      }, SPECULATIVE_WAIT_MS);
      timer.unref();
      this.#parked.set(id, { asked, data: message.data, timer });
      return;
    }
    this.#takeInLater(asked, message.data);
  }

  /** Checks, stores and commits a segment a peer sent, on the log's work chain; then asks for the next. */
  #takeInLater(asked: Taking, data: Uint8Array): void {
    const id = asked.id;
    this.#deps.enqueue(async () => {
      let taken: { readonly committed: Promise<void> } | undefined;
      try {
        taken = await this.#takeIn(asked, data);
      } finally {
        // In flight until committed (or refused): then the next queued segment is asked for.
        void (taken?.committed ?? Promise.resolve()).finally(() => {
          this.#takingIn.delete(id);
          this.#pump();
        });
      }
    });
  }

  /**
   * Checks a sealed segment a peer sent whole; stores and commits it only when the relay's seal
   * covers every entry, else reports the peer and syncs the segment the Repo's way. Resolves,
   * once it is checked and stored, with its commit (undefined when it was refused).
   */
  async #takeIn(asked: Taking, data: Uint8Array): Promise<{ readonly committed: Promise<void> } | undefined> {
    const { ctx, ingest, host, segments } = this.#deps;
    // Every entry is at most one event; the slack covers the document's own structure.
    if (data.length > ctx.segmentSize * MAX_EVENT_BYTES + 65_536)
      return this.#reject(asked, 'PROTOCOL_TOO_LARGE', `${data.length} bytes`);
    let doc: { events?: unknown };
    try {
      doc = A.load<{ events?: unknown }>(data);
    } catch {
      return this.#reject(asked, 'PROTOCOL_BAD_ENCODING', 'not an Automerge document');
    }
    let heads: string[];
    let candidates;
    try {
      const list = doc.events;
      if (!Array.isArray(list)) return this.#reject(asked, 'PROTOCOL_BAD_ENCODING', 'no list of events');
      candidates = await ingest.screenWhole(asked, list);
      heads = A.getHeads(doc);
    } finally {
      A.free(doc);
    }
    if (candidates === undefined)
      return this.#reject(asked, 'LOG_SEGMENT_MISMATCH', 'entries the relay seal does not cover');
    // The document first: stored with an event missing, a restart reads the event from it again.
    if (!(await host.storeWhole(asked.id, data, heads))) {
      this.#fallBack(asked.id);
      return undefined;
    }
    segments.sealWhole(asked.id);
    // Not awaited here: the next segment is checked while this one is made durable.
    return { committed: ingest.commitWhole(asked, candidates) };
  }

  /** The peer's answer is refused: an incident, and the segment is synced the Repo's way. */
  #reject(asked: Taking, code: SecurityIncident['code'], detail: string): undefined {
    if (asked.given !== true)
      this.#report(code, `segment ${asked.id} from ${asked.peer}: ${detail}`, asked.peer);
    this.#fallBack(asked.id);
    return undefined;
  }

  #report(code: SecurityIncident['code'], message: string, peer: string): void {
    this.#deps.incidents.report({ code, message, device: peer });
  }

  #fallBack(id: DocumentId): void {
    const asked = this.#asked.get(id);
    if (asked !== undefined) clearTimeout(asked.timer);
    // A speculative request that timed out may still be answered: that answer is not an incident.
    if (asked?.speculative === true) this.#abandoned.add(id);
    this.#asked.delete(id);
    this.#failed.add(id);
    this.#deps.host.stopTakingWhole(id);
    if (this.#deps.isClosed()) return;
    this.#deps.refollow();
    this.#pump();
  }

  /** Answers a peer's request: each sealed segment's stored bytes as they are, or "unavailable". */
  async #answer(peer: string, documentIds: readonly string[]): Promise<void> {
    const { host, ctx } = this.#deps;
    for (const documentId of documentIds) {
      if (this.#deps.isClosed()) return;
      let data: Uint8Array | undefined;
      try {
        data = await this.#stored(peer as DeviceId, documentId as DocumentId);
      } catch {
        data = undefined; // a storage failure: the peer syncs it the Repo's way
      }
      const base = { senderId: ctx.deviceId, targetId: peer, documentId };
      host.sendSegments(
        data === undefined ? { type: 'segment-unavailable', ...base } : { type: 'segment', ...base, data },
      );
    }
  }

  /**
   * The stored bytes of sealed segment `id`, if this log may serve them to `peer` now: sealed here
   * (every event held), final (frozen, or not in memory with changes the Repo may not have saved).
   */
  async #stored(peer: DeviceId, id: DocumentId): Promise<Uint8Array | undefined> {
    const { segments, host, serves } = this.#deps;
    if (!segments.isSealed(id)) return undefined;
    if (!host.isFrozen(id) && host.loaded(id) !== undefined) return undefined;
    if (serves !== undefined && !serves(peer, id, () => false)) return undefined;
    const chunks = await host.storedChunks(id);
    if (chunks.length <= 1) return chunks[0];
    // Automerge loads chunks laid end to end (a snapshot and the changes saved after it).
    const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const chunk of chunks) {
      out.set(chunk, at);
      at += chunk.length;
    }
    return out;
  }
}
