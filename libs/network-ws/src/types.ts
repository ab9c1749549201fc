import type { DocumentId } from '@automerge/automerge-repo';
import type { DeviceId, DeviceKeyPair, ErrorCode, FacilityId, WireFrameHeader } from '@accord/protocol';
import type { RefusalReason, SessionEndReason } from './close-codes.js';
import type { Roster } from './roster.js';

/**
 * Which documents a peer may see: `true` to exchange messages about `documentId` with `peer`.
 *
 * @remarks Applied to every incoming and outgoing message that names a document. Must be fast,
 * synchronous and pure for a given roster state; a throw counts as `false`.
 */
export type DocumentPolicy = (peer: DeviceId, documentId: DocumentId) => boolean;

/** Per-peer bounds on what a link accepts. Every field has a default (see {@link DEFAULT_LIMITS}). */
export interface LinkLimits {
  /** Largest frame accepted, enforced by `ws` while reading (close 4413). */
  readonly maxPayload: number;
  /** Largest JSON header in a binary frame. */
  readonly maxHeaderBytes: number;
  /** Bytes per second a peer may send (token bucket; capacity is the larger of this and maxPayload). */
  readonly maxBytesPerSecond: number;
  /** What one sync message may expand to once its DEFLATE parts are inflated (close 4413). */
  readonly maxInflatedBytes: number;
  /** Inflated bytes per second a peer may send (token bucket, capacity the larger of this and maxInflatedBytes). */
  readonly maxInflatedBytesPerSecond: number;
  /** Frames per second a peer may send (token bucket, refill rate). */
  readonly maxMessagesPerSecond: number;
  /** Burst of frames allowed above the rate (bucket capacity). */
  readonly messageBurst: number;
  /** Document requests per second (a `request`, or the first message naming a document on this link). */
  readonly maxDocumentRequestsPerSecond: number;
  /** Burst of document requests (bucket capacity). */
  readonly documentRequestBurst: number;
  /** Messages about forbidden documents tolerated (answered `doc-unavailable`) before closing with 4404. */
  readonly maxForbiddenRequests: number;
  /** Bytes we may have queued for a peer that is not reading; beyond, the session is reset (4504). */
  readonly maxBufferedBytes: number;
}

/** Defaults of {@link LinkLimits}. */
export const DEFAULT_LIMITS: LinkLimits = {
  maxPayload: 16 * 1024 * 1024,
  maxHeaderBytes: 64 * 1024,
  maxBytesPerSecond: 32 * 1024 * 1024,
  maxInflatedBytes: 256 * 1024 * 1024,
  maxInflatedBytesPerSecond: 256 * 1024 * 1024,
  maxMessagesPerSecond: 2000,
  messageBurst: 4000,
  maxDocumentRequestsPerSecond: 500,
  documentRequestBurst: 2000,
  maxForbiddenRequests: 0,
  maxBufferedBytes: 64 * 1024 * 1024,
};

/** Timers of a link. Every field has a default (see {@link DEFAULT_TIMINGS}). */
export interface LinkTimings {
  /** The handshake must complete within this (close 4408). */
  readonly authTimeoutMs: number;
  /**
   * Server only: a new connection must send its first handshake message (`hello`) within this
   * (close 4408). An honest client sends it as soon as the socket opens; an idle socket should
   * not hold a handshake slot for the whole `authTimeoutMs`. Not much shorter than 5 s: a server
   * whose event loop was busy that long fires the timer before it reads a hello that did arrive.
   */
  readonly helloTimeoutMs: number;
  /** A ping is sent this often. */
  readonly heartbeatIntervalMs: number;
  /** With nothing heard (no frame, no pong) for this long, the socket is terminated. */
  readonly heartbeatTimeoutMs: number;
  /** Sent frames unacknowledged for this long reset the session (close 4504); 0 disables the watchdog. */
  readonly stallTimeoutMs: number;
}

/** Defaults of {@link LinkTimings}. */
export const DEFAULT_TIMINGS: LinkTimings = {
  authTimeoutMs: 10_000,
  helloTimeoutMs: 5_000,
  heartbeatIntervalMs: 15_000,
  heartbeatTimeoutMs: 45_000,
  stallTimeoutMs: 30_000,
};

/** A refused connection or a session cut for misbehaviour. */
export interface Refusal {
  /** When (adapter clock, ms). */
  readonly at: number;
  /** Where: at the HTTP upgrade, during the handshake, or in an authenticated session. */
  readonly stage: 'upgrade' | 'handshake' | 'session';
  readonly reason: RefusalReason;
  /** Stable error code of the reason. */
  readonly code: ErrorCode;
  /** HTTP status (upgrade) or WebSocket close code (handshake, session). */
  readonly status: number;
  /** The device concerned, when known (claimed at upgrade, authenticated after). */
  readonly peer?: DeviceId;
  /** Human-readable detail for logs. */
  readonly detail: string;
}

/** Events an adapter reports to the device agent (status page, logs). */
export type NetworkEvent =
  | { readonly type: 'peer-connected'; readonly at: number; readonly peer: DeviceId }
  | {
      readonly type: 'peer-disconnected';
      readonly at: number;
      readonly peer: DeviceId;
      readonly reason: SessionEndReason;
      readonly closeCode: number;
    }
  | { readonly type: 'refused'; readonly at: number; readonly refusal: Refusal }
  | {
      readonly type: 'reconnect-scheduled';
      readonly at: number;
      readonly attempt: number;
      readonly delayMs: number;
    }
  | { readonly type: 'online'; readonly at: number; readonly online: boolean };

/** A listener of {@link NetworkEvent}s. Exceptions it throws are caught and logged. */
export type NetworkEventListener = (event: NetworkEvent) => void;

/** Fault injection for tests and the simulator. Never set in production. */
export interface FaultHooks {
  /** Return true to drop an outgoing frame after it was numbered (as if lost in transit). */
  readonly dropOutgoing?: (header: WireFrameHeader, peer: DeviceId) => boolean;
}

/**
 * How devices that joined at different times recognise each other: each can show a membership
 * statement signed by a common authority (the relay's roster), and learn a newer one.
 *
 * @remarks The server sends `proof()` in its challenge (when it fits the frame cap). A client that
 * finds the server unknown to its roster calls `learn(proof, server)`; when that resolves true
 * (the statement was verified and adopted), the roster is consulted again. The adapter never
 * trusts the statement itself: only the roster decides.
 */
export interface MembershipExchange {
  /** This device's newest signed membership statement (base64url), if it has one. */
  proof(): string | undefined;
  /** Verifies and adopts a statement shown by `from`; true when the roster changed. Must not throw. */
  learn(proof: string, from: DeviceId): Promise<boolean>;
}

/** Options shared by the server and the client adapter. */
export interface CommonAdapterOptions {
  /** This device's key pair; the Repo's peer id must be `identity.deviceId` (see `peerIdOf`). */
  readonly identity: DeviceKeyPair;
  /** This device's facility. */
  readonly facility: FacilityId;
  /** Who may connect (server) or be connected to (client). */
  readonly roster: Roster;
  /** Which documents each peer may see; default: all. */
  readonly documentPolicy?: DocumentPolicy;
  readonly limits?: Partial<LinkLimits>;
  readonly timings?: Partial<LinkTimings>;
  /** Clock in ms for rate limits, timeouts and stats; default `Date.now`. */
  readonly now?: () => number;
  /** Called for every {@link NetworkEvent}. */
  readonly onEvent?: NetworkEventListener;
  /** Called for every {@link Refusal} (also reported as a `refused` event). */
  readonly onRefused?: (refusal: Refusal) => void;
  /** One line per notable happening (refusals, closes, dropped messages). */
  readonly log?: (line: string) => void;
  readonly faults?: FaultHooks;
  /** Membership statements to show and learn (see {@link MembershipExchange}); default none. */
  readonly membership?: MembershipExchange;
  /**
   * The optional wire features this side speaks, named to the peer at the upgrade (default: all,
   * i.e. `WIRE_FEATURE_SEGMENTS`); `[]` behaves as a version without them (tests of the fallback).
   */
  readonly features?: readonly string[];
}

/** Counters and last contact of one connected peer. */
export interface PeerStats {
  readonly peer: DeviceId;
  readonly connectedAt: number;
  readonly lastContactAt: number;
  readonly framesIn: number;
  readonly framesOut: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** Frames sent and not yet acknowledged. */
  readonly unacked: number;
}

/** A snapshot of an adapter's activity. */
export interface AdapterStats {
  readonly online: boolean;
  readonly peers: readonly PeerStats[];
  /** Totals over every session since the adapter started. */
  readonly framesIn: number;
  readonly framesOut: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** Refusals by reason. */
  readonly refused: Readonly<Partial<Record<RefusalReason, number>>>;
  /** Ended sessions by reason. */
  readonly sessionsEnded: Readonly<Partial<Record<SessionEndReason, number>>>;
  /** Messages about forbidden documents received from peers. */
  readonly forbiddenDocuments: number;
  /** Outgoing messages not sent because the policy forbids them (or they could not be sent). */
  readonly withheld: number;
  /** Sessions established after an earlier one ended (client), or re-established by a known peer (server). */
  readonly reconnects: number;
  /** Sessions reset by the watchdog (unacknowledged frames or a sequence gap). */
  readonly stalls: number;
}
