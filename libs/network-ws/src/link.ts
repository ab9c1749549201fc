import {
  cbor,
  isValidDocumentId,
  type DocumentId,
  type Message,
  type PeerId,
} from '@automerge/automerge-repo';
import {
  decodeWireFrame,
  encodeWireFrame,
  ErrorCode,
  isWireSegmentsMessage,
  WIRE_FEATURE_SEGMENTS,
  type DeviceId,
  type WireFrameHeader,
  type WireSegmentsMessage,
} from '@accord/protocol';
import type { RawData, WebSocket } from 'ws';
import { measureChunks, measureSyncMessage } from './automerge-guard.js';
import {
  CloseCode,
  refusalCloseCode,
  refusalErrorCode,
  type RefusalReason,
  type SessionEndReason,
} from './close-codes.js';
import { frameToMessage, OutgoingFrames } from './frames.js';
import type { Telemetry } from './telemetry.js';
import { TokenBucket } from './token-bucket.js';
import type { DocumentPolicy, FaultHooks, LinkLimits, LinkTimings, PeerStats } from './types.js';

/** What a {@link Link} needs from the adapter that owns it. */
export interface LinkHost {
  readonly local: DeviceId;
  readonly limits: LinkLimits;
  readonly timings: LinkTimings;
  readonly policy: DocumentPolicy | undefined;
  readonly faults: FaultHooks | undefined;
  readonly telemetry: Telemetry;
  /** Hands a validated message to the Repo. */
  deliver(message: Message): void;
  /** Hands a validated message of the bulk segment transfer to the adapter's listeners (not the Repo). */
  deliverSegments(message: WireSegmentsMessage): void;
  /** Called exactly once when the session ends, whoever ended it. */
  ended(link: Link, reason: SessionEndReason, closeCode: number): void;
}

/** Converts what `ws` hands to a 'message' listener into one byte array. */
export function rawBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}

/**
 * One authenticated session with one peer over one WebSocket: validates every incoming frame
 * before the Repo sees it, applies the document policy both ways, numbers and acknowledges
 * frames, and runs the heartbeat and the stall watchdog.
 *
 * @remarks Created only after the handshake succeeded, so `peer` is a verified device id. Nothing
 * here throws out of a socket callback: any violation closes this session with its close code.
 */
export class Link {
  readonly peer: DeviceId;
  readonly connectedAt: number;
  readonly #ws: WebSocket;
  readonly #host: LinkHost;
  readonly #now: () => number;
  readonly #messages: TokenBucket;
  readonly #bytes: TokenBucket;
  readonly #inflated: TokenBucket;
  readonly #documents: TokenBucket;
  readonly #seenDocuments = new Set<string>();
  readonly #outgoing: OutgoingFrames;
  /** Both sides named the bulk segment transfer ({@link WIRE_FEATURE_SEGMENTS}) at the upgrade. */
  readonly #segments: boolean;
  /** This side speaks the bulk segment transfer: a peer may send its frames. */
  readonly #weSpeakSegments: boolean;
  readonly #timer: ReturnType<typeof setInterval>;
  #ackTimer: ReturnType<typeof setImmediate> | undefined;
  #sent = 0;
  #received = 0;
  #unacked: { seq: number; at: number }[] = [];
  #forbidden = 0;
  #lastContactAt: number;
  #lastPingAt: number;
  #ended = false;
  #framesIn = 0;
  #framesOut = 0;
  #bytesIn = 0;
  #bytesOut = 0;

  /**
   * @param peerFeatures - the optional wire features the peer named at the upgrade
   * @param features - the ones this side speaks (default: all)
   */
  constructor(
    ws: WebSocket,
    peer: DeviceId,
    host: LinkHost,
    peerFeatures: ReadonlySet<string> = new Set(),
    features: readonly string[] = [WIRE_FEATURE_SEGMENTS],
  ) {
    this.#ws = ws;
    this.peer = peer;
    this.#weSpeakSegments = features.includes(WIRE_FEATURE_SEGMENTS);
    this.#segments = this.#weSpeakSegments && peerFeatures.has(WIRE_FEATURE_SEGMENTS);
    this.#host = host;
    this.#outgoing = new OutgoingFrames(host.local, peer);
    this.#now = host.telemetry.now;
    const l = host.limits;
    this.#messages = new TokenBucket(l.maxMessagesPerSecond, Math.max(1, l.messageBurst), this.#now);
    this.#bytes = new TokenBucket(
      l.maxBytesPerSecond,
      Math.max(l.maxBytesPerSecond, l.maxPayload),
      this.#now,
    );
    this.#inflated = new TokenBucket(
      l.maxInflatedBytesPerSecond,
      Math.max(l.maxInflatedBytesPerSecond, l.maxInflatedBytes),
      this.#now,
    );
    this.#documents = new TokenBucket(
      l.maxDocumentRequestsPerSecond,
      Math.max(1, l.documentRequestBurst),
      this.#now,
    );
    this.connectedAt = this.#now();
    this.#lastContactAt = this.connectedAt;
    this.#lastPingAt = this.connectedAt;
    ws.binaryType = 'nodebuffer';
    ws.on('message', (data, isBinary) => this.#guard(() => this.#onFrame(rawBytes(data), isBinary)));
    ws.on('pong', () => {
      this.#lastContactAt = this.#now();
    });
    ws.on('close', (code) => this.#end(code === CloseCode.Replaced ? 'replaced' : 'remote-closed', code));
    ws.on('error', (e: Error & { code?: string }) => this.#guard(() => this.#onSocketError(e)));
    const t = host.timings;
    const tick = Math.max(
      10,
      Math.min(t.heartbeatIntervalMs, t.stallTimeoutMs > 0 ? t.stallTimeoutMs / 4 : Infinity),
    );
    this.#timer = setInterval(() => this.#guard(() => this.#tick()), tick);
    this.#timer.unref();
  }

  /** True once the session ended (no more frames in or out). */
  get ended(): boolean {
    return this.#ended;
  }

  /** This session's counters. */
  stats(): PeerStats {
    return {
      peer: this.peer,
      connectedAt: this.connectedAt,
      lastContactAt: this.#lastContactAt,
      framesIn: this.#framesIn,
      framesOut: this.#framesOut,
      bytesIn: this.#bytesIn,
      bytesOut: this.#bytesOut,
      unacked: this.#unacked.length,
    };
  }

  /**
   * Sends a Repo message to the peer, unless the policy forbids its document.
   *
   * @remarks A withheld `request` is answered locally with `doc-unavailable` from the peer, so
   * the local Repo does not wait for an answer that will never come.
   */
  send(message: Message): void {
    if (this.#ended) return;
    const telemetry = this.#host.telemetry;
    if (isWireSegmentsMessage(message)) {
      const outgoing = this.#segmentsOutgoing(message);
      if (outgoing === undefined) return;
      message = outgoing as unknown as Message;
    }
    if (message.documentId !== undefined && !this.#allowed(message.documentId)) {
      telemetry.withheld++;
      if (message.type === 'request') {
        this.#host.deliver({
          type: 'doc-unavailable',
          senderId: this.peer as string as PeerId,
          targetId: this.#host.local as string as PeerId,
          documentId: message.documentId,
        });
      }
      return;
    }
    // Gossiped ephemeral messages keep their original sender, which the next hop could not
    // authenticate; Accord does not relay them.
    if (message.senderId !== (this.#host.local as string)) {
      telemetry.withheld++;
      return;
    }
    const seq = this.#sent + 1;
    const frame = this.#outgoing.frame(message, seq);
    if (frame === undefined) {
      telemetry.withheld++;
      telemetry.log(`withheld a ${message.type} message to ${this.peer}: not representable on the wire`);
      return;
    }
    const bytes = encodeWireFrame(frame.header, frame.data);
    if (bytes.length > this.#host.limits.maxPayload) {
      telemetry.withheld++;
      telemetry.log(`withheld a ${bytes.length}-byte ${message.type} frame to ${this.peer}: over maxPayload`);
      return;
    }
    this.#sent = seq;
    this.#unacked.push({ seq, at: this.#now() });
    this.#write(frame.header, bytes);
    // A peer that does not read makes our send buffer grow without bound: cut it loose.
    if (this.#ws.bufferedAmount > this.#host.limits.maxBufferedBytes) {
      telemetry.log(`${this.peer} is not reading (${this.#ws.bufferedAmount} bytes buffered)`);
      this.close(CloseCode.Stalled, 'stalled', ErrorCode.NETWORK_STALLED);
    }
  }

  /**
   * What of a bulk segment message may go to the peer: nothing to a peer that does not speak the
   * transfer (an older version), and of a request only the documents the policy allows. A
   * document that is not asked is answered locally `segment-unavailable` from the peer, so the
   * log falls back to the Repo's sync for it at once.
   */
  #segmentsOutgoing(message: WireSegmentsMessage): WireSegmentsMessage | undefined {
    if (message.type !== 'segments-request') {
      if (this.#segments) return message;
      this.#host.telemetry.withheld++;
      return undefined;
    }
    const allowed = this.#segments ? message.documentIds.filter((id) => this.#allowed(id)) : [];
    for (const documentId of message.documentIds) {
      if (allowed.includes(documentId)) continue;
      this.#host.deliverSegments({
        type: 'segment-unavailable',
        senderId: this.peer,
        targetId: this.#host.local,
        documentId,
      });
    }
    return allowed.length === 0 ? undefined : { ...message, documentIds: allowed };
  }

  /** Ends the session with a close code (the peer sees it); idempotent. */
  close(code: number, reason: SessionEndReason, text: string = reason): void {
    if (this.#ended) return;
    try {
      this.#ws.close(code, text.slice(0, 120));
    } catch {
      this.#ws.terminate();
    }
    this.#end(reason, code);
  }

  /** Ends the session without a closing handshake (dead peer); idempotent. */
  terminate(reason: SessionEndReason): void {
    if (this.#ended) return;
    this.#ws.terminate();
    this.#end(reason, 1006);
  }

  #write(header: WireFrameHeader, bytes: Uint8Array): void {
    if (this.#host.faults?.dropOutgoing?.(header, this.peer) === true) return;
    const telemetry = this.#host.telemetry;
    this.#framesOut++;
    this.#bytesOut += bytes.length;
    telemetry.framesOut++;
    telemetry.bytesOut += bytes.length;
    this.#ws.send(bytes, (e) => {
      if (e !== undefined && e !== null) telemetry.log(`send to ${this.peer} failed: ${e.message}`);
    });
  }

  #allowed(documentId: string): boolean {
    const policy = this.#host.policy;
    if (policy === undefined) return true;
    try {
      return policy(this.peer, documentId as DocumentId);
    } catch (e) {
      this.#host.telemetry.log(`document policy threw for ${documentId}: ${String(e)}`);
      return false;
    }
  }

  #guard(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.#host.telemetry.log(
        `internal error with ${this.peer}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`,
      );
      this.close(CloseCode.Internal, 'internal');
    }
  }

  #violate(reason: RefusalReason, detail: string): void {
    if (this.#ended) return;
    const code = refusalCloseCode(reason);
    this.#host.telemetry.refuse('session', reason, code, detail, this.peer);
    this.close(code, reason, refusalErrorCode(reason));
  }

  #onSocketError(e: Error & { code?: string }): void {
    if (this.#ended) return;
    // ws already started closing with its own code (renamed by GuardedWebSocket).
    if (e.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') this.#violate('too-large', e.message);
    else if (e.code?.startsWith('WS_ERR_') === true) this.#violate('bad-frame', e.message);
    else {
      this.#host.telemetry.log(`socket error with ${this.peer}: ${e.message}`);
      this.terminate('transport-error');
    }
  }

  #onFrame(bytes: Uint8Array, isBinary: boolean): void {
    if (this.#ended) return;
    const { limits, telemetry } = this.#host;
    this.#lastContactAt = this.#now();
    this.#framesIn++;
    this.#bytesIn += bytes.length;
    telemetry.framesIn++;
    telemetry.bytesIn += bytes.length;
    if (!isBinary) return this.#violate('bad-frame', 'text frame after authentication');
    if (bytes.length > limits.maxPayload) return this.#violate('too-large', `${bytes.length}-byte frame`);
    if (!this.#bytes.take(bytes.length))
      return this.#violate('rate-limited', 'over the bytes-per-second budget');
    if (!this.#messages.take(1)) return this.#violate('rate-limited', 'over the messages-per-second budget');
    const decoded = decodeWireFrame(bytes, limits.maxHeaderBytes);
    if (!decoded.ok) {
      const tooLarge = decoded.error.code === ErrorCode.PROTOCOL_TOO_LARGE;
      return this.#violate(tooLarge ? 'too-large' : 'bad-frame', decoded.error.message);
    }
    const { header, data } = decoded.value;
    if (header.type === 'ack') return this.#onAck(header.seq);
    if (header.seq !== this.#received + 1) {
      if (header.seq <= this.#received)
        return this.#violate('bad-frame', `frame ${header.seq} repeats an earlier number`);
      // A gap: a frame was lost on the way. Sync state is no longer trustworthy: start afresh.
      telemetry.log(`frame ${this.#received + 1} from ${this.peer} lost (got ${header.seq})`);
      return this.close(CloseCode.Stalled, 'lost-frame', ErrorCode.NETWORK_STALLED);
    }
    this.#received = header.seq;
    this.#scheduleAck();
    if (header.senderId !== this.peer)
      return this.#violate('peer-id-mismatch', `frame claims sender ${header.senderId}`);
    if (header.targetId !== this.#host.local)
      return this.#violate('peer-id-mismatch', `frame targets ${header.targetId}`);
    if ('documentId' in header) {
      const documentId = header.documentId;
      if (!isValidDocumentId(documentId))
        return this.#violate('bad-frame', `malformed document id ${documentId}`);
      if (!this.#allowed(documentId)) {
        telemetry.forbiddenDocuments++;
        if (++this.#forbidden > limits.maxForbiddenRequests) {
          return this.#violate('forbidden-document', `${header.type} for forbidden document ${documentId}`);
        }
        telemetry.log(`refused ${header.type} from ${this.peer} for forbidden document ${documentId}`);
        if (header.type === 'request' || header.type === 'sync')
          this.#answerUnavailable(documentId, 'doc-unavailable');
        return;
      }
      if (header.type === 'request' || !this.#seenDocuments.has(documentId)) {
        if (!this.#documents.take(1))
          return this.#violate('rate-limited', 'over the document-requests-per-second budget');
        this.#seenDocuments.add(documentId);
      }
    }
    if (isWireSegmentsMessage(header) && !this.#weSpeakSegments)
      return this.#violate('bad-frame', `${header.type} frame: the transfer was not offered`);
    if (header.type === 'segments-request') {
      const asked: string[] = [];
      for (const documentId of header.documentIds) {
        if (!isValidDocumentId(documentId))
          return this.#violate('bad-frame', `malformed document id ${documentId}`);
        if (!this.#allowed(documentId)) {
          telemetry.forbiddenDocuments++;
          if (++this.#forbidden > limits.maxForbiddenRequests)
            return this.#violate(
              'forbidden-document',
              `segments-request for forbidden document ${documentId}`,
            );
          this.#answerUnavailable(documentId, 'segment-unavailable');
          continue;
        }
        if (!this.#documents.take(1))
          return this.#violate('rate-limited', 'over the document-requests-per-second budget');
        asked.push(documentId);
      }
      if (asked.length === 0) return;
      return this.#host.deliverSegments({
        type: 'segments-request',
        senderId: header.senderId,
        targetId: header.targetId,
        documentIds: asked,
      });
    }
    if (data !== undefined && header.type === 'segment') {
      // A stored document: its DEFLATE columns are measured inflated, as a sync message's are.
      const measure = measureChunks(data, limits.maxInflatedBytes);
      if (!measure.ok)
        return this.#violate(measure.problem === 'too-large' ? 'too-large' : 'bad-frame', measure.detail);
      if (!this.#inflated.take(measure.expandedBytes))
        return this.#violate('rate-limited', 'over the inflated-bytes-per-second budget');
    } else if (data !== undefined && (header.type === 'sync' || header.type === 'request')) {
      const measure = measureSyncMessage(data, limits.maxInflatedBytes);
      if (!measure.ok)
        return this.#violate(measure.problem === 'too-large' ? 'too-large' : 'bad-frame', measure.detail);
      if (!this.#inflated.take(measure.expandedBytes))
        return this.#violate('rate-limited', 'over the inflated-bytes-per-second budget');
    } else if (data !== undefined && header.type === 'ephemeral') {
      try {
        cbor.decode(data);
      } catch {
        return this.#violate('bad-frame', 'ephemeral payload is not CBOR');
      }
    }
    const message = frameToMessage(decoded.value);
    if (message === undefined) return;
    if (isWireSegmentsMessage(message)) this.#host.deliverSegments(message);
    else this.#host.deliver(message);
  }

  // Answers a tolerated request for a forbidden document. Bypasses the policy on purpose: the
  // answer only echoes the document id the peer itself sent, and says "not here".
  #answerUnavailable(documentId: string, type: 'doc-unavailable' | 'segment-unavailable'): void {
    const seq = this.#sent + 1;
    const header: WireFrameHeader = {
      type,
      seq,
      senderId: this.#host.local,
      targetId: this.peer,
      documentId,
    };
    this.#sent = seq;
    this.#unacked.push({ seq, at: this.#now() });
    this.#write(header, encodeWireFrame(header));
  }

  #onAck(seq: number): void {
    if (seq > this.#sent) return this.#violate('bad-frame', `ack of frame ${seq} never sent`);
    let drop = 0;
    while (drop < this.#unacked.length && this.#unacked[drop]!.seq <= seq) drop++;
    if (drop > 0) this.#unacked = this.#unacked.slice(drop);
  }

  // One ack per burst: acknowledges everything received before the event loop moves on.
  #scheduleAck(): void {
    if (this.#ackTimer !== undefined) return;
    this.#ackTimer = setImmediate(() => {
      this.#ackTimer = undefined;
      if (this.#ended) return;
      const header: WireFrameHeader = { type: 'ack', seq: this.#received };
      this.#write(header, encodeWireFrame(header));
    });
  }

  #tick(): void {
    if (this.#ended) return;
    const now = this.#now();
    const t = this.#host.timings;
    if (now - this.#lastContactAt > t.heartbeatTimeoutMs) {
      this.#host.telemetry.log(`no sign of life from ${this.peer} for ${now - this.#lastContactAt} ms`);
      return this.terminate('heartbeat-timeout');
    }
    if (now - this.#lastPingAt >= t.heartbeatIntervalMs) {
      this.#lastPingAt = now;
      this.#ws.ping();
    }
    const oldest = this.#unacked[0];
    if (t.stallTimeoutMs > 0 && oldest !== undefined && now - oldest.at > t.stallTimeoutMs) {
      this.#host.telemetry.log(
        `frame ${oldest.seq} to ${this.peer} unacknowledged for ${now - oldest.at} ms`,
      );
      this.close(CloseCode.Stalled, 'stalled', ErrorCode.NETWORK_STALLED);
    }
  }

  #end(reason: SessionEndReason, closeCode: number): void {
    if (this.#ended) return;
    this.#ended = true;
    clearInterval(this.#timer);
    if (this.#ackTimer !== undefined) clearImmediate(this.#ackTimer);
    this.#host.ended(this, reason, closeCode);
  }
}
