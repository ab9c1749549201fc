import type {
  DocumentId,
  Message,
  NetworkAdapter,
  PeerId,
  RepoMessage,
  SessionId,
  StorageId,
} from '@automerge/automerge-repo';
import type { EventEmitter } from 'node:events';
import {
  WIRE_SEGMENTS_EVENT,
  wireFrameHeaderSchema,
  type DeviceId,
  type WireFrame,
  type WireFrameHeader,
  type WireSegmentsMessage,
} from '@accord/protocol';

/**
 * The wire header of an outgoing automerge-repo message, numbered `seq`, and its payload; or
 * undefined when the message does not fit the wire schema (unknown type, malformed field).
 */
export function messageToFrame(
  message: Message,
  seq: number,
): { header: WireFrameHeader; data?: Uint8Array } | undefined {
  const m = message as RepoMessage | WireSegmentsMessage;
  const base = { seq, senderId: String(m.senderId), targetId: String(m.targetId) };
  let candidate: unknown;
  let data: Uint8Array | undefined;
  switch (m.type) {
    case 'sync':
    case 'request':
      candidate = { type: m.type, ...base, documentId: m.documentId };
      data = m.data;
      break;
    case 'doc-unavailable':
      candidate = { type: m.type, ...base, documentId: m.documentId };
      break;
    case 'ephemeral':
      candidate = { type: m.type, ...base, documentId: m.documentId, count: m.count, sessionId: m.sessionId };
      data = m.data;
      break;
    case 'remote-subscription-change':
      candidate = {
        type: m.type,
        ...base,
        ...(m.add === undefined ? {} : { add: m.add }),
        ...(m.remove === undefined ? {} : { remove: m.remove }),
      };
      break;
    case 'remote-heads-changed':
      candidate = { type: m.type, ...base, documentId: m.documentId, newHeads: m.newHeads };
      break;
    case 'segments-request':
      candidate = { type: m.type, ...base, documentIds: m.documentIds };
      break;
    case 'segment':
      candidate = { type: m.type, ...base, documentId: m.documentId };
      data = m.data;
      break;
    case 'segment-unavailable':
      candidate = { type: m.type, ...base, documentId: m.documentId };
      break;
    default:
      return undefined;
  }
  const parsed = wireFrameHeaderSchema.safeParse(candidate);
  if (!parsed.success) return undefined;
  if (data !== undefined && data.length === 0) return undefined;
  return data === undefined ? { header: parsed.data } : { header: parsed.data, data };
}

/** Frame types whose header is routing and one document id, nothing else. */
const DOCUMENT_FRAME_TYPES: ReadonlySet<string> = new Set([
  'sync',
  'request',
  'doc-unavailable',
  'segment',
  'segment-unavailable',
]);
/** Frame types of {@link DOCUMENT_FRAME_TYPES} that carry a payload. */
const PAYLOAD_TYPES: ReadonlySet<string> = new Set(['sync', 'request', 'segment']);
/** Document ids one {@link OutgoingFrames} remembers as checked; past that it starts afresh. */
const MAX_CHECKED_DOCUMENTS = 4096;

/**
 * {@link messageToFrame} for the messages one session sends, without parsing each header again
 * with the wire schema once its values have passed it.
 *
 * @remarks A `sync` (or `request`, `doc-unavailable`, `segment`, `segment-unavailable`) message
 * whose sender and target are this session's, already checked in a header that passed the
 * schema, and whose document id passed it too, gets its header built directly: it holds only
 * values the schema accepted, in the schema's own shape. Anything else goes through
 * {@link messageToFrame}. Only for frames we send: incoming headers are always parsed
 * (`decodeWireFrame`), since the peer may be hostile. The zod parse of every outgoing header
 * was ≈ 7% of a device's main thread in the relay bench.
 */
export class OutgoingFrames {
  readonly #local: string;
  readonly #peer: string;
  #routeChecked = false;
  readonly #documents = new Set<string>();

  constructor(local: DeviceId, peer: DeviceId) {
    this.#local = local;
    this.#peer = peer;
  }

  /** As {@link messageToFrame}. */
  frame(message: Message, seq: number): { header: WireFrameHeader; data?: Uint8Array } | undefined {
    const m = message as { type: string; senderId?: unknown; targetId?: unknown; documentId?: unknown };
    if (
      this.#routeChecked &&
      DOCUMENT_FRAME_TYPES.has(m.type) &&
      m.senderId === this.#local &&
      m.targetId === this.#peer &&
      typeof m.documentId === 'string' &&
      this.#documents.has(m.documentId) &&
      Number.isSafeInteger(seq) &&
      seq >= 1
    ) {
      const header = {
        type: m.type,
        seq,
        senderId: this.#local,
        targetId: this.#peer,
        documentId: m.documentId,
      } as WireFrameHeader;
      if (!PAYLOAD_TYPES.has(m.type)) return { header };
      const data = (message as { data?: Uint8Array }).data;
      if (data === undefined) return { header };
      return data.length === 0 ? undefined : { header, data };
    }
    const frame = messageToFrame(message, seq);
    const h = frame?.header;
    if (h !== undefined && DOCUMENT_FRAME_TYPES.has(h.type) && 'documentId' in h) {
      if (h.senderId === this.#local && h.targetId === this.#peer) this.#routeChecked = true;
      if (this.#documents.size >= MAX_CHECKED_DOCUMENTS) this.#documents.clear();
      this.#documents.add(h.documentId);
    }
    return frame;
  }
}

/**
 * The message carried by a validated incoming frame (payload copied): an automerge-repo message, or
 * one of the bulk segment transfer (which the Repo ignores; the log takes it).
 */
export function frameToMessage(frame: WireFrame): RepoMessage | WireSegmentsMessage | undefined {
  const h = frame.header;
  if (h.type === 'ack') return undefined;
  const senderId = h.senderId as string as PeerId;
  const targetId = h.targetId as string as PeerId;
  // Copy: the payload is a view into the socket's buffer, and the Repo may keep it.
  const data = frame.data === undefined ? new Uint8Array() : Uint8Array.from(frame.data);
  switch (h.type) {
    case 'sync':
    case 'request':
      return { type: h.type, senderId, targetId, documentId: h.documentId as DocumentId, data };
    case 'doc-unavailable':
      return { type: h.type, senderId, targetId, documentId: h.documentId as DocumentId };
    case 'ephemeral':
      return {
        type: h.type,
        senderId,
        targetId,
        documentId: h.documentId as DocumentId,
        count: h.count,
        sessionId: h.sessionId as SessionId,
        data,
      };
    case 'remote-subscription-change':
      return {
        type: h.type,
        senderId,
        targetId,
        ...(h.add === undefined ? {} : { add: h.add as StorageId[] }),
        ...(h.remove === undefined ? {} : { remove: h.remove as StorageId[] }),
      };
    case 'remote-heads-changed':
      return {
        type: h.type,
        senderId,
        targetId,
        documentId: h.documentId as DocumentId,
        newHeads: h.newHeads,
      };
    case 'segments-request':
      return { type: h.type, senderId, targetId, documentIds: h.documentIds };
    case 'segment':
      return { type: h.type, senderId, targetId, documentId: h.documentId, data };
    case 'segment-unavailable':
      return { type: h.type, senderId, targetId, documentId: h.documentId };
  }
}

/**
 * Emits a message of the bulk segment transfer from `adapter` as {@link WIRE_SEGMENTS_EVENT}, an
 * event automerge-repo's `NetworkAdapter` does not declare (the Repo must not see these messages).
 */
export function emitSegments(adapter: NetworkAdapter, message: WireSegmentsMessage): void {
  (adapter as unknown as EventEmitter).emit(WIRE_SEGMENTS_EVENT, message);
}

/** The automerge-repo peer id of a device: the device id itself. Use it as the Repo's `peerId`. */
export function peerIdOf(device: DeviceId): PeerId {
  return device as string as PeerId;
}
