// The shapes the device agent's HTTP API takes and answers (its options, the JSON of its routes).
import type {
  DeviceId,
  EventId,
  FacilityId,
  Hlc,
  JsonValue,
  SignedEvent,
  Subject,
  VerdictData,
} from '@accord/protocol';
import type { DeviceLogApi, EventInfo, IntegrityReport, LogCounts } from '@accord/log';
import type { RelayAdminClient } from '../relay-client.js';
import type { IdempotencyStore } from '../idempotency.js';

/** One peer connection as shown by `GET /api/status`. */
export interface PeerStatus {
  /** The peer's device id (or its URL while not yet authenticated). */
  readonly peer: string;
  readonly connected: boolean;
  /** ISO 8601 time of the last frame exchanged with this peer, or null. */
  readonly lastContact: string | null;
  /** `server` when the peer dialed us, `client` when we dialed it. */
  readonly direction?: 'server' | 'client';
  readonly url?: string;
  /** For dialed peers: the dialer's state (`connecting`, `connected`, `waiting`, `offline`, …). */
  readonly state?: string;
  /** True for the link to the facility's relay. */
  readonly relay?: boolean;
}

/** What the HTTP API needs from the network side of the agent. */
export interface NetworkControl {
  /** True when the device is on the network. */
  readonly online: boolean;
  /** Takes the device off (false) or back on (true) the network: every adapter. */
  setOnline(online: boolean): void;
  /** Current peers and their last contact. */
  peers(): readonly PeerStatus[];
}

/** Who this device is, for `GET /api/status`. */
export interface DeviceIdentity {
  readonly device: DeviceId;
  readonly name: string;
  readonly facility: FacilityId;
}

/** Options of {@link HttpApi.listen}. */
export interface HttpApiOptions {
  readonly log: DeviceLogApi;
  readonly identity: DeviceIdentity;
  readonly network: NetworkControl;
  /** TCP port on 127.0.0.1 (0 = any free port). */
  readonly port?: number;
  /** Interface to bind (default 127.0.0.1: the API is for the local user only). */
  readonly host?: string;
  /** Largest accepted request body in bytes (default 1 MiB). */
  readonly maxBodyBytes?: number;
  /** Wall clock in ms, for the default `date` of the queue and appointments (default Date.now). */
  readonly clock?: () => number;
  /**
   * The facility's IANA time zone: the default `date` of the queue and appointments is today
   * there, and encounters belong to the day of their check-in there (default UTC).
   */
  readonly timeZone?: string;
  /**
   * The relay whose verdicts count (`id`) and the URL it is dialed at (null when it is not
   * dialed): shown by `GET /api/status`. Absent or null: no relay known.
   */
  readonly relay?: { readonly id: DeviceId; readonly url: string | null } | null;
  /**
   * Where `Idempotency-Key`s and their first answers are kept (default: in memory, 1000 keys,
   * lost on restart). The agent passes its LevelDB's {@link LevelIdempotencyStore}.
   */
  readonly idempotency?: IdempotencyStore;
  /** Most live status streams (`GET /api/stream`) served at once (default 8). */
  readonly maxStreams?: number;
  /** Interval of the streams' comment heartbeat, in ms (default 15 000). */
  readonly streamHeartbeatMs?: number;
  /** A change is pushed to the streams at most this long after it happened, coalesced (default 250 ms). */
  readonly streamCoalesceMs?: number;
  /** How often the streams' status is recomputed to catch network changes, in ms (default 1000). */
  readonly streamCheckMs?: number;
  /**
   * Static files served to `GET`/`HEAD` by path (`/index.html`, `/app.js`, …; `/` is `/index.html`):
   * the Sync Centre page. Absent: only the API is served.
   */
  readonly assets?: ReadonlyMap<string, StaticAsset>;
  /**
   * How the agent asks its relay for elevations and digests (issue #10); absent or null: those
   * routes answer 503 `DEVICE_RELAY_UNREACHABLE`.
   */
  readonly relayClient?: RelayAdminClient | null;
  /** Re-adds events to the sync documents for re-submit (the agent passes `DeviceLog.republish`). */
  readonly resend?: (events: readonly SignedEvent[]) => Promise<number>;
  /** The agent's data folder, shown (with the bytes it holds) by `GET /api/environment`; absent: null. */
  readonly dataFolder?: string;
  /** The Accord version shown by `GET /api/environment` (default: this package's). */
  readonly version?: string;
}

/** One static file of {@link HttpApiOptions.assets}. */
export interface StaticAsset {
  /** The `Content-Type` header, e.g. `text/html; charset=utf-8`. */
  readonly contentType: string;
  readonly body: Uint8Array | string;
}

/**
 * The `Content-Security-Policy` of every static file: only the agent's own scripts, styles and
 * API; no inline code, no frames, no other origin (a clinic's tablet is offline, and a page that
 * can reach the local API must not be able to load anything else).
 */
export const ASSET_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** One row of `GET /api/audit`: a sync or admin action of this device. */
export interface AuditEntry {
  /** ISO 8601 time (for a recorded event: its HLC wall time). */
  readonly at: string;
  /** `retry`, `retry-all`, `discard`, `amend`, `record`, `network` or `request` (any other write). */
  readonly action: string;
  /** The event the action is about (the deadletter retried, discarded or amended). */
  readonly target?: string;
  /** The event the action recorded (or, for a replay, the one the first request recorded). */
  readonly event?: string;
  /** `recorded` (an event), `done` (no event: a network switch), `replayed` (an idempotent repeat), `refused`. */
  readonly outcome: 'recorded' | 'done' | 'replayed' | 'refused';
  readonly detail?: Readonly<Record<string, JsonValue>>;
}

/** The compact status pushed by `GET /api/stream` (as `event: status`). */
export interface LiveStatus {
  readonly online: boolean;
  /** The relay link, or null without a relay. */
  readonly relay: { readonly connected: boolean; readonly lastContact: string | null } | null;
  readonly peers: { readonly connected: number; readonly known: number };
  /** Events of the facility without a verdict yet. */
  readonly pending: number;
  /** This device's events without a verdict yet. */
  readonly outbox: number;
  /** Open deadletters of the facility. */
  readonly needsAttention: number;
  readonly confirmedSeq: number;
}

/** One deadletter retry-all could not retry, and why. */
export interface RetryAllSkipped {
  readonly id: EventId;
  readonly code: string;
  readonly reason: string;
}

/** The relay link as shown by `GET /api/status` (`relay`). */
export interface RelayStatus {
  readonly url: string | null;
  readonly id: DeviceId;
  readonly connected: boolean;
  /** ISO 8601 time of the last frame exchanged with the relay, or null. */
  readonly lastContact: string | null;
  /** The dialer's state, when the relay is dialed. */
  readonly state?: string;
}

/** The newest relay verdict seen (by HLC), as shown by `GET /api/status` (`lastVerdict`). */
export interface LastVerdict {
  /** The verdict event's id. */
  readonly id: EventId;
  readonly target: EventId;
  readonly outcome: 'accepted' | 'deadletter';
  /** Accepted: the relay's confirmed sequence number. */
  readonly seq?: number;
  /** Deadletter: the rejection code (500, 422, 409, 404, 410, 403). */
  readonly code?: number;
  readonly hlc: Hlc;
}

/**
 * One relay verdict about an event, as `GET /api/events/:id` lists them (`verdicts`, oldest first).
 *
 * @remarks What the verdict event carries: its id, its `seq` (the relay's own sequence number of
 * that event: verdicts count in this order, the latest is the highest; an accepted verdict's
 * confirmed position is `verdictData.seq` of the event's answer), its outcome and, for a
 * deadletter, the rejection's code, rule, reason and details.
 */
export interface EventVerdict {
  readonly verdictId: EventId;
  readonly seq: number;
  readonly outcome: 'accepted' | 'deadletter';
  readonly code?: number;
  readonly rule?: string;
  readonly reason?: string;
  readonly details?: { readonly [key: string]: JsonValue };
  /** ISO 8601 wall time of the verdict event (from its HLC). */
  readonly at: string;
}

/** The answer of `GET /api/events/:id`: the event's info, its verdicts and what resolved it. */
export interface EventDetail extends Omit<EventInfo, 'resolvedBy'> {
  /** The latest verdict's data about this event, when it has one. */
  readonly verdictData?: VerdictData;
  /** Every relay verdict the log holds about the event, oldest first. */
  readonly verdicts: readonly EventVerdict[];
  /**
   * The event that answered it: the discard or amend that resolved it, or (pending again or
   * accepted after a rejection) the latest retry of it the relay did not refuse; null otherwise.
   */
  readonly resolvedBy: EventId | null;
}

/** What `GET /api/environment` shows: who and where this agent is, and what it holds. */
export interface EnvironmentInfo {
  readonly device: DeviceId;
  readonly facility: FacilityId;
  /** `SHA256:` + base64 of the SHA-256 of the device's public key (as `ssh-keygen -l` shows keys). */
  readonly keyFingerprint: string;
  /** The Accord version the agent runs. */
  readonly version: string;
  /** Node's version (`process.version`). */
  readonly node: string;
  /** The relay's URL, or null when this device dials none. */
  readonly relay: string | null;
  /** The agent's data folder, or null when the API was not told it. */
  readonly dataFolder: string | null;
  /** Bytes of the files under the data folder, summed at the request; null without one or when it cannot be read. */
  readonly dataFolderBytes: number | null;
  readonly counts: LogCounts;
  readonly integrity: IntegrityReport;
}

/** One row of `GET /api/deadletters`: a rejected, unresolved event and why. */
export interface DeadletterInfo {
  readonly id: EventId;
  readonly type: string;
  readonly device: DeviceId;
  readonly seq: number;
  readonly hlc: Hlc;
  readonly subject: Subject;
  readonly data: JsonValue;
  /** The rejection code, rule, reason and details of the latest verdict (null if it is malformed). */
  readonly code: number | null;
  readonly rule: string | null;
  readonly reason: string | null;
  readonly details: { readonly [key: string]: JsonValue } | null;
  readonly verdictId: EventId;
  readonly verdictHlc: Hlc;
  /** ISO 8601 wall time of the verdict (from its HLC). */
  readonly verdictAt: string;
}

/** The JSON body of every error answer. */
export interface ApiErrorBody {
  readonly code: string;
  readonly message: string;
  readonly details?: Readonly<Record<string, unknown>>;
}

/** Default request body cap: 1 MiB. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/** One day of `GET /api/integrity`: how many events each side holds and whether the sets match. */
export interface IntegrityDay {
  readonly day: string;
  readonly device: number;
  readonly relay: number;
  readonly match: boolean;
}

/** One day of `POST /api/resubmit`: events the relay lacked, and how many were re-sent. */
export interface ResubmitDay {
  readonly day: string;
  readonly missing: number;
  readonly resent: number;
}
