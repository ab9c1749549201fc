import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import {
  dayDigest,
  eventIdTime,
  isAccordError,
  isEventId,
  parseElevationGrant,
  utcDay,
  verifyElevationGrantSignature,
  type DayDigest,
  type ElevationAction,
  type ElevationGrant,
  ErrorCode,
  verdictAbout,
  verdictsIn,
  SystemEventType,
  type DeviceId,
  type EventId,
  type FacilityId,
  type Hlc,
  type JsonValue,
  type SignedEvent,
  type Subject,
  type VerdictData,
} from '@accord/protocol';
import {
  checkRequestOrigin,
  createJsonServer,
  describeRequestProblem,
  drainAfterEarlyReply,
  isJsonRequest,
  requestProblemOf,
  type JsonServer,
  type RequestOriginPolicy,
} from '@accord/network-ws';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Draft, DeviceLogApi, EventInfo, IntegrityReport, LogCounts } from '@accord/log';
import { ClockSkewDetector, zonedDate, type EventStatus } from '@accord/domain';
import { deviceError, DeviceErrorCode } from './errors.js';
import type { RelayAdminClient } from './relay-client.js';
import {
  isIdempotencyKey,
  MAX_IDEMPOTENCY_KEY_LENGTH,
  MemoryIdempotencyStore,
  type IdempotencyStore,
  type IdempotentAnswer,
} from './idempotency.js';
import { ACCORD_VERSION, folderBytes, keyFingerprint } from './http/environment.js';
import {
  AUDIT_DEFAULT_LIMIT,
  AuditQuery,
  DateQuery,
  DiscardBody,
  DraftBody,
  ElevateBody,
  EmptyBody,
  EventsQuery,
  IdParams,
  isCalendarDate,
  NetworkBody,
  NoQuery,
  RangeQuery,
  ResubmitBody,
} from './http/schemas.js';

export { EVENT_STATUSES } from './http/schemas.js';

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

/** The HTTP status of each error code the API answers with (anything else: 500). */
const STATUS_OF_CODE: Readonly<Record<string, number>> = {
  [ErrorCode.DEVICE_BAD_REQUEST]: 400,
  [ErrorCode.PROTOCOL_SCHEMA]: 400,
  [ErrorCode.PROTOCOL_BAD_ENCODING]: 400,
  [ErrorCode.PROTOCOL_NOT_CANONICAL]: 400,
  [ErrorCode.DEVICE_NOT_FOUND]: 404,
  [DeviceErrorCode.DEVICE_NOT_DEADLETTER]: 409,
  [DeviceErrorCode.DEVICE_UNKNOWN_ROUTE]: 404,
  [DeviceErrorCode.DEVICE_METHOD_NOT_ALLOWED]: 405,
  [DeviceErrorCode.DEVICE_BODY_TOO_LARGE]: 413,
  [DeviceErrorCode.DEVICE_FOREIGN_ORIGIN]: 403,
  [DeviceErrorCode.DEVICE_FOREIGN_HOST]: 421,
  [DeviceErrorCode.DEVICE_UNSUPPORTED_MEDIA_TYPE]: 415,
  [DeviceErrorCode.DEVICE_IDEMPOTENCY_MISMATCH]: 422,
  [DeviceErrorCode.DEVICE_TOO_MANY_STREAMS]: 503,
  [DeviceErrorCode.DEVICE_RELAY_UNREACHABLE]: 503,
  [DeviceErrorCode.DEVICE_RELAY_REFUSED]: 502,
  [DeviceErrorCode.DEVICE_ELEVATION_REFUSED]: 403,
  [DeviceErrorCode.DEVICE_ELEVATION_RATE_LIMITED]: 429,
  [DeviceErrorCode.DEVICE_GRANT_INVALID]: 403,
  [ErrorCode.PROTOCOL_TOO_LARGE]: 413,
  [ErrorCode.LOG_HOLE]: 503,
  [ErrorCode.LOG_CLOSED]: 503,
  [ErrorCode.STORAGE_CLOSED]: 503,
  [DeviceErrorCode.DEVICE_STOPPING]: 503,
};

function fail(code: ErrorCode | DeviceErrorCode, message: string, details?: Record<string, unknown>): never {
  throw deviceError(code, message, details === undefined ? {} : { details });
}

/** A JSON answer: status, body and extra headers (`Idempotent-Replayed` on a replay). */
interface Reply {
  readonly status: number;
  readonly body: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

/** The answer to a failure. */
interface ErrorReply {
  readonly status: number;
  readonly body: ApiErrorBody;
}

/** A static file ready to serve: its bytes and their entity tag. */
interface ServedAsset {
  readonly contentType: string;
  readonly body: Buffer;
  readonly etag: string;
}

/** What the audit says of a request while it runs (a handler may refine it: an amend). */
interface AuditNote {
  action: string;
  target?: string;
}

/** A write's answer and the small result remembered for its `Idempotency-Key`. */
interface Written {
  readonly reply: Reply;
  readonly result: JsonValue;
}

/** One open `GET /api/stream`. */
interface LiveStream {
  readonly res: ServerResponse;
  /** The last status sent (JSON), to send only changes. */
  last: string;
}

/** How many non-event audit entries (replays, refusals, retry-alls, network switches) are kept. */
const AUDIT_MEMORY = 200;
/** A stream whose client does not read this much is cut off rather than buffered. */
const STREAM_MAX_BUFFER = 64 * 1024;
/** Retry-all records this many retries at a time (the log group-commits them). */
const RETRY_ALL_BATCH = 64;
/** Longest text from a request (a target, a path) kept in an audit entry. */
const MAX_AUDIT_TEXT = 128;

/** How many withheld devices a projection's `Accord-Withheld` header lists (status lists them all). */
const MAX_WITHHELD_IN_HEADER = 20;

/** What the idempotency and the audit know of a write. */
interface RequestContext {
  readonly req: IncomingMessage;
  /** The URL's path (decoded segments joined by `/`): part of an `Idempotency-Key`'s fingerprint. */
  readonly path: string;
  readonly audit: AuditNote;
}

/**
 * The device agent's local JSON API on Fastify (see the package README for the route table).
 *
 * @remarks Binds 127.0.0.1 by default, and answers only requests addressed to its own name
 * (`Host` 127.0.0.1, localhost or [::1] with its port) from no page or its own origin, with
 * writes declared `application/json`: any web page on the tablet can reach a loopback port.
 * Never throws out of a request: every failure, Fastify's own included (body over the cap, a
 * content type no parser takes, a path that does not decode), is an answer `{code, message}`
 * with a 4xx (or 5xx for an internal fault) status. `POST /api/events` answers 201 only after
 * `log.append` resolved, i.e. after the durable write. Projection routes always answer: events
 * that a hole or an equivocation withholds (one device's later events) are left out, and the
 * `Accord-Withheld` header (and `withheld` in the status) says which and why.
 */
export class HttpApi {
  readonly #app: JsonServer;
  readonly #allowedMethods: (path: string) => readonly string[] | undefined;
  readonly #opts: HttpApiOptions;
  readonly #maxBody: number;
  /** Requests not yet answered (settled when their response closes). */
  readonly #inFlight = new Set<Promise<void>>();
  readonly #sockets = new Set<Socket>();
  /** Requests whose body is still being read: a shutdown does not wait for slow senders. */
  readonly #readingBodies = new Set<IncomingMessage>();
  /** What the audit calls each request (from its method and path; a route may refine it). */
  readonly #auditNotes = new WeakMap<IncomingMessage, AuditNote>();
  /** Events whose resolution (retry, discard, amend) is being recorded: a second one waits its turn. */
  readonly #resolving = new Set<string>();
  readonly #unsubscribe: () => void;
  #lastVerdict: LastVerdict | undefined;
  #confirmedSeq = 0;
  /** Devices whose clocks are off, from the relay's verdicts (issue #13). */
  readonly #clockSkew: ClockSkewDetector;
  #stopping = false;
  #closed: Promise<void> | undefined;
  #port = 0;
  readonly #idempotency: IdempotencyStore;
  /** Keys whose first request is being answered: a second one waits for it. */
  readonly #keysInFlight = new Map<string, Promise<unknown>>();
  /** Audit entries that are not events (newest last), at most {@link AUDIT_MEMORY}. */
  readonly #auditMemory: AuditEntry[] = [];
  readonly #streams = new Set<LiveStream>();
  /** Streams accepted by the route and not yet closed (checked against `maxStreams`). */
  #streamSlots = 0;
  #pushTimer: NodeJS.Timeout | undefined;
  #streamTimers: NodeJS.Timeout[] = [];
  /** Who the agent is to a browser: its `host:port` names and origins (set once listening). */
  #own: RequestOriginPolicy = { hosts: new Set(), origins: new Set() };
  /** The static files by path, with their entity tags computed once. */
  readonly #assets: ReadonlyMap<string, ServedAsset>;
  /** The data folder's size being summed for `GET /api/environment`, if a walk is under way. */
  #sizing: Promise<number | null> | undefined;

  private constructor(opts: HttpApiOptions) {
    this.#opts = opts;
    this.#maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.#idempotency = opts.idempotency ?? new MemoryIdempotencyStore();
    this.#assets = servedAssets(opts.assets);
    this.#clockSkew = new ClockSkewDetector({
      relay: opts.relay?.id ?? null,
      lookup: (id) => opts.log.get(id)?.event,
    });
    const { app, allowedMethods } = createJsonServer({
      bodyLimit: this.#maxBody,
      badRequestCode: ErrorCode.DEVICE_BAD_REQUEST,
      requestTimeoutMs: 30_000,
      headersTimeoutMs: 10_000,
    });
    this.#app = app;
    this.#allowedMethods = allowedMethods;
    this.#hooks(app);
    this.#declareRoutes(app);
    // Verdicts already visible, then each new one as it becomes visible.
    for (const event of opts.log.visibleEvents()) this.#observe(event);
    this.#unsubscribe = opts.log.onEvents((events) => {
      for (const e of events) this.#observe(e);
      this.#statusChanged();
    });
    app.server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  /** Starts the API and resolves once it listens. */
  static async listen(opts: HttpApiOptions): Promise<HttpApi> {
    const api = new HttpApi(opts);
    try {
      await api.#app.listen({ port: opts.port ?? 0, host: opts.host ?? '127.0.0.1' });
    } catch (e) {
      api.#unsubscribe();
      await api.#app.close();
      throw e;
    }
    api.#port = (api.#app.server.address() as AddressInfo).port;
    api.#own = ownOrigin(opts.host ?? '127.0.0.1', api.#port);
    return api;
  }

  /** The TCP port the API listens (or listened) on. */
  get port(): number {
    return this.#port;
  }

  /**
   * Stops accepting requests and resolves when every request in flight has been answered.
   *
   * @remarks Requests arriving on kept-alive connections meanwhile get 503 `DEVICE_STOPPING`, and
   * so do requests whose body was still arriving (they are cut off). Idempotent.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#stopping = true;
      this.#unsubscribe();
      // Live streams never finish by themselves: end them, or the close would wait for ever.
      for (const s of this.#streams) s.res.end();
      this.#stopStreamTimers();
      const closed = this.#app.close();
      this.#app.server.closeIdleConnections();
      // A client still sending its body has been acknowledged nothing: cut it off rather than
      // wait for it. Handlers past their body (appending) are awaited.
      for (const req of this.#readingBodies) req.destroy();
      await Promise.allSettled([...this.#inFlight]);
      // Every answer is written: close what the clients left open.
      for (const s of this.#sockets) s.destroy();
      await closed;
    })();
    return this.#closed;
  }

  /**
   * What runs around every route: the guard, the refusal while stopping, 404 and 405 (before any
   * body is read), the body reads a shutdown may cut off, the headers of every answer, and the
   * one error handler that turns every failure into `{code, message}`.
   */
  #hooks(app: JsonServer): void {
    app.addHook('onRequest', async (request, reply) => {
      const req = request.raw;
      const done = new Promise<void>((resolve) => reply.raw.once('close', resolve));
      this.#inFlight.add(done);
      void done.then(() => this.#inFlight.delete(done));
      req.on('error', () => {
        // A client that goes away mid-request is not our failure.
      });
      reply.raw.on('error', () => {});
      this.#auditNotes.set(req, auditNoteOf(req));
      void reply.header('Cache-Control', 'no-store').header('X-Content-Type-Options', 'nosniff');
      this.#guard(request);
      if (this.#stopping) fail(DeviceErrorCode.DEVICE_STOPPING, 'the device agent is shutting down');
      if (request.is404) {
        const pathname = pathnameOf(req.url);
        const allow = this.#allowedMethods(req.url ?? '/');
        if (allow !== undefined) {
          fail(
            DeviceErrorCode.DEVICE_METHOD_NOT_ALLOWED,
            `${req.method ?? '?'} is not allowed on ${pathname}`,
            {
              allow,
            },
          );
        }
        fail(DeviceErrorCode.DEVICE_UNKNOWN_ROUTE, `no route ${pathname}`);
      }
    });
    // Reached only by what the onRequest hook let through (nothing, in practice).
    app.setNotFoundHandler((request) => {
      fail(DeviceErrorCode.DEVICE_UNKNOWN_ROUTE, `no route ${pathnameOf(request.raw.url)}`);
    });
    app.addHook('preParsing', async (request, _reply, payload) => {
      if (this.#stopping) fail(DeviceErrorCode.DEVICE_STOPPING, 'the device agent is shutting down');
      const req = request.raw;
      this.#readingBodies.add(req);
      req.once('close', () => this.#readingBodies.delete(req));
      return payload;
    });
    app.addHook('preValidation', (request, _reply, done) => {
      this.#readingBodies.delete(request.raw);
      done();
    });
    app.addHook('onSend', async (request, reply, payload) => {
      // We may answer before the body was read (413, 405…).
      drainAfterEarlyReply(request.raw, reply.raw, this.#maxBody);
      if (this.#stopping) void reply.header('Connection', 'close');
      return payload;
    });
    app.setErrorHandler((error, request, reply) => {
      let answer: ErrorReply;
      try {
        answer = this.#errorReply(error, request.raw);
      } catch {
        answer = { status: 500, body: { code: DeviceErrorCode.DEVICE_INTERNAL, message: 'internal error' } };
      }
      void reply.code(answer.status).type('application/json; charset=utf-8').send(answer.body);
    });
  }

  /** The answer to a failure, audited when it refused a write (or a request from another page). */
  #errorReply(error: unknown, req: IncomingMessage): ErrorReply {
    const answer = this.#failure(error, req);
    const audit = this.#auditNotes.get(req) ?? auditNoteOf(req);
    const { code } = answer.body;
    if (
      req.method === 'POST' ||
      code === DeviceErrorCode.DEVICE_FOREIGN_ORIGIN ||
      code === DeviceErrorCode.DEVICE_FOREIGN_HOST
    ) {
      this.#remember({
        action: audit.action,
        ...(audit.target === undefined ? {} : { target: audit.target }),
        outcome: 'refused',
        detail: {
          status: answer.status,
          code,
          ...(audit.action === 'request'
            ? { method: String(req.method).slice(0, 16), path: String(req.url).slice(0, MAX_AUDIT_TEXT) }
            : {}),
        },
      });
    }
    return answer;
  }

  /** Fastify's failures (body, content type, URL, schemas) in our codes; our own errors as they are. */
  #failure(error: unknown, req: IncomingMessage): ErrorReply {
    const problem = requestProblemOf(error);
    const bad = (message: string): ErrorReply => ({
      status: 400,
      body: { code: ErrorCode.DEVICE_BAD_REQUEST, message },
    });
    if (problem === undefined) return toErrorReply(error);
    switch (problem.kind) {
      case 'too-large':
        return {
          status: 413,
          body: {
            code: DeviceErrorCode.DEVICE_BODY_TOO_LARGE,
            message: `request body exceeds ${this.#maxBody} bytes`,
            details: { limit: this.#maxBody },
          },
        };
      case 'unsupported-media-type':
        return {
          status: 415,
          body: {
            code: DeviceErrorCode.DEVICE_UNSUPPORTED_MEDIA_TYPE,
            message: 'writes need Content-Type: application/json',
            details: { contentType: req.headers['content-type'] ?? null },
          },
        };
      case 'bad-length':
        return bad('request aborted');
      default:
        return bad(describeRequestProblem(problem, this.#maxBody));
    }
  }

  /**
   * Refuses, before any route runs, what a web page other than the agent's own can make a
   * browser send: another `Host` (DNS rebinding), another `Origin` or a cross-site fetch, and a
   * write that is not declared JSON (a form or a no-cors fetch needs no preflight).
   */
  #guard(req: FastifyRequest): void {
    const problem = checkRequestOrigin(req, this.#own);
    if (problem === 'foreign-host') {
      fail(DeviceErrorCode.DEVICE_FOREIGN_HOST, 'the Host header is not this agent’s address', {
        host: req.headers.host ?? null,
      });
    }
    if (problem !== undefined) {
      fail(DeviceErrorCode.DEVICE_FOREIGN_ORIGIN, 'requests from other web pages are refused', {
        origin: req.headers.origin ?? null,
      });
    }
    if (req.method === 'POST' && !isJsonRequest(req)) {
      fail(DeviceErrorCode.DEVICE_UNSUPPORTED_MEDIA_TYPE, 'writes need Content-Type: application/json', {
        contentType: req.headers['content-type'] ?? null,
      });
    }
  }

  /** What the idempotency and the audit need to know of a write. */
  #context(request: FastifyRequest): RequestContext {
    const req = request.raw;
    let note = this.#auditNotes.get(req);
    if (note === undefined) this.#auditNotes.set(req, (note = auditNoteOf(req)));
    return { req, path: decodedPath(req.url), audit: note };
  }

  /** Each route: its path, its schemas and its work (the guard and the errors are the hooks'). */
  #declareRoutes(app: JsonServer): void {
    const log = this.#opts.log;
    const network = this.#opts.network;
    const answer = (reply: FastifyReply, r: Reply): unknown => {
      void reply.code(r.status);
      if (r.headers !== undefined) void reply.headers(r.headers);
      return r.body;
    };
    // A hole or an equivocation withholds one device's later events, never the whole facility's
    // (issue #13, scenario 4): the projection of everything else is served, and says what is not in it.
    const served = (reply: FastifyReply, body: unknown): unknown => {
      const withheld = log.withheld();
      if (withheld.length > 0) {
        const header = withheld
          .slice(0, MAX_WITHHELD_IN_HEADER)
          .map((w) => ({ device: w.device, from: w.from, reason: w.reason, heldBack: w.heldBack }));
        void reply.header('Accord-Withheld', JSON.stringify(header));
      }
      return body;
    };
    const noQuery = { querystring: NoQuery };

    for (const [path, asset] of this.#assets) {
      for (const url of path === '/index.html' ? ['/', path] : [path]) {
        app.get(url, { schema: noQuery, config: { unlisted: true } }, async (request, reply) =>
          this.#serveAsset(request, reply, asset),
        );
      }
    }

    app.get('/api/status', { schema: noQuery }, () => {
      const counts = log.counts();
      const peers = network.peers();
      return {
        ...this.#opts.identity,
        online: network.online,
        counts,
        pending: counts.pending,
        outbox: counts.outbox,
        peers,
        relay: this.#relayStatus(peers),
        lastVerdict: this.#lastVerdict ?? null,
        confirmedSeq: this.#confirmedSeq,
        integrity: log.integrity(),
        withheld: log.withheld(),
        clockSkews: this.#clockSkew.skews(),
        heads: log.heads(),
      };
    });

    app.get('/api/events', { schema: { querystring: EventsQuery } }, (request) => {
      const { status, device } = request.query;
      const filter: { status?: EventStatus; device?: DeviceId } = {};
      if (status !== undefined) filter.status = status;
      if (device !== undefined) filter.device = device as DeviceId;
      return log.list(filter);
    });

    app.post('/api/events', { schema: { querystring: NoQuery, body: DraftBody } }, async (request, reply) => {
      const body = request.body;
      const draft: Draft =
        body.supersedes === undefined
          ? { type: body.type, data: body.data }
          : { type: body.type, data: body.data, supersedes: body.supersedes };
      const ctx = this.#context(request);
      if (draft.supersedes !== undefined) {
        ctx.audit.action = 'amend';
        ctx.audit.target = draft.supersedes;
      }
      const written = await this.#once(ctx, body, async () => {
        // An amend answers a deadletter: refuse one that names anything else.
        const result =
          draft.supersedes === undefined
            ? await log.append(draft)
            : await this.#resolve(draft.supersedes, () => log.append(draft));
        const warning = result.warning as unknown as JsonValue | undefined;
        return {
          reply: {
            status: 201,
            body: { id: result.event.id, event: result.event, ...(warning === undefined ? {} : { warning }) },
          },
          result: { event: result.event.id, ...(warning === undefined ? {} : { warning }) },
        };
      });
      return answer(reply, written);
    });

    app.get('/api/stream', { schema: noQuery, exposeHeadRoute: false }, async (_request, reply) => {
      const max = this.#opts.maxStreams ?? 8;
      if (this.#streamSlots >= max) {
        fail(DeviceErrorCode.DEVICE_TOO_MANY_STREAMS, `at most ${max} status streams are served at once`, {
          limit: max,
        });
      }
      this.#streamSlots++;
      reply.hijack();
      reply.raw.writeHead(200, {
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-store',
        'X-Content-Type-Options': 'nosniff',
      });
      await this.#serveStream(reply.raw);
      return reply;
    });

    app.get('/api/audit', { schema: { querystring: AuditQuery } }, (request) =>
      this.#auditTrail(request.query.limit ?? AUDIT_DEFAULT_LIMIT),
    );

    app.get('/api/events/:id', { schema: { querystring: NoQuery, params: IdParams } }, (request) => {
      const id = request.params.id;
      const info = isEventId(id) ? log.get(id) : undefined;
      if (info === undefined) fail(ErrorCode.DEVICE_NOT_FOUND, `no event ${id}`);
      return this.#eventDetail(info);
    });

    app.get('/api/environment', { schema: noQuery }, async (): Promise<EnvironmentInfo> => {
      const { device, facility } = this.#opts.identity;
      return {
        device,
        facility,
        keyFingerprint: keyFingerprint(device),
        version: this.#opts.version ?? ACCORD_VERSION,
        node: process.version,
        relay: this.#opts.relay?.url ?? null,
        dataFolder: this.#opts.dataFolder ?? null,
        dataFolderBytes: await this.#dataFolderBytes(),
        counts: log.counts(),
        integrity: log.integrity(),
      };
    });

    app.post(
      '/api/events/:id/retry',
      { schema: { querystring: NoQuery, params: IdParams, body: EmptyBody('retry') } },
      async (request, reply) => {
        const id = request.params.id;
        // No body and `{}` are the same request.
        const written = await this.#once(this.#context(request), {}, async () => {
          const event = await this.#retry(id);
          return { reply: { status: 201, body: { id: event.id, event } }, result: { event: event.id } };
        });
        return answer(reply, written);
      },
    );

    app.post(
      '/api/events/:id/discard',
      { schema: { querystring: NoQuery, params: IdParams, body: DiscardBody } },
      async (request, reply) => {
        const body = request.body;
        const { reason, adminPassword: password } = body;
        const id = request.params.id;
        // The password never reaches the idempotency store, not even hashed.
        const fingerprinted = password === undefined ? body : { reason, adminPassword: true };
        const written = await this.#once(this.#context(request), fingerprinted, async () => {
          const grant =
            password !== undefined
              ? await this.#elevate(password, 'discard')
              : body.grant === undefined
                ? undefined
                : await this.#checkGrant(body.grant, 'discard');
          const event = await this.#resolve(id, () =>
            log.appendSystem({
              type: SystemEventType.DeadletterDiscarded,
              subject: { kind: 'event', id },
              data:
                grant === undefined
                  ? { target: id, reason }
                  : { target: id, reason, grant: grant as unknown as JsonValue },
              deps: [id as EventId],
            }),
          );
          return { reply: { status: 201, body: { id: event.id, event } }, result: { event: event.id } };
        });
        return answer(reply, written);
      },
    );

    app.post('/api/elevate', { schema: { querystring: NoQuery, body: ElevateBody } }, async (request) => {
      const grant = await this.#elevate(request.body.adminPassword, request.body.action);
      return { grant };
    });

    app.get('/api/integrity', { schema: { querystring: RangeQuery } }, async (request) => {
      const { from, to } = this.#range(request.query.from, request.query.to);
      const report = await this.#compare(from, to);
      const mismatched = report.days.filter((d) => !d.match).length;
      this.#remember({ action: 'integrity', outcome: 'done', detail: { from, to, mismatched } });
      return report;
    });

    app.post('/api/resubmit', { schema: { querystring: NoQuery, body: ResubmitBody } }, async (request) => {
      const body = request.body;
      const { from, to } = this.#range(body.from, body.to);
      if (body.adminPassword !== undefined) await this.#elevate(body.adminPassword, 'resubmit');
      else await this.#checkGrant(body.grant, 'resubmit');
      const result = await this.#resubmit(from, to);
      this.#remember({
        action: 'resubmit',
        outcome: 'done',
        detail: {
          from,
          to,
          missing: result.days.reduce((n, d) => n + d.missing, 0),
          resent: result.days.reduce((n, d) => n + d.resent, 0),
        },
      });
      return result;
    });

    app.get('/api/deadletters', { schema: noQuery }, () =>
      log
        .list({ status: 'deadletter' })
        .flatMap((info) => {
          const row = deadletterInfo(info);
          return row === undefined ? [] : [row];
        })
        .sort((a, b) =>
          a.verdictHlc !== b.verdictHlc
            ? a.verdictHlc < b.verdictHlc
              ? 1
              : -1
            : a.hlc !== b.hlc
              ? a.hlc < b.hlc
                ? 1
                : -1
              : a.id < b.id
                ? 1
                : -1,
        ),
    );

    app.post(
      '/api/deadletters/retry-all',
      { schema: { querystring: NoQuery, body: EmptyBody('retry-all') } },
      async (request, reply) =>
        answer(reply, await this.#once(this.#context(request), {}, () => this.#retryAll())),
    );

    app.get('/api/outbox', { schema: noQuery }, () => log.outbox());
    app.get('/api/incidents', { schema: noQuery }, () => log.incidents());
    app.get('/api/patients', { schema: noQuery }, (_request, reply) =>
      served(reply, log.tentative().patients()),
    );
    app.get('/api/patients/:id', { schema: { querystring: NoQuery, params: IdParams } }, (request, reply) => {
      const id = request.params.id;
      const patient = log.tentative().patient(id);
      if (patient === undefined) fail(ErrorCode.DEVICE_NOT_FOUND, `no patient ${id}`);
      return served(reply, patient);
    });
    app.get('/api/stock', { schema: noQuery }, (_request, reply) => served(reply, log.tentative().stock()));
    app.get('/api/queue', { schema: { querystring: DateQuery } }, (request, reply) => {
      const view = log.tentative();
      const date = this.#date(request.query.date);
      const zone = this.#opts.timeZone;
      return served(reply, zone === undefined ? view.queue(date) : view.queue(date, zone));
    });
    app.get('/api/appointments', { schema: { querystring: DateQuery } }, (request, reply) =>
      served(reply, log.tentative().appointments(this.#date(request.query.date))),
    );
    app.get('/api/counters', { schema: noQuery }, (_request, reply) =>
      served(reply, log.tentative().counters()),
    );

    app.get('/api/network', { schema: noQuery }, () => ({ online: network.online, peers: network.peers() }));
    app.post('/api/network', { schema: { querystring: NoQuery, body: NetworkBody } }, (request) => {
      network.setOnline(request.body.online);
      this.#remember({ action: 'network', outcome: 'done', detail: { online: network.online } });
      this.#statusChanged();
      return { online: network.online, peers: network.peers() };
    });
  }

  /**
   * Writes a static file: revalidated on every load (`no-cache` with an entity tag, answered 304
   * when unchanged), since its name stays the same across versions of the page.
   */
  #serveAsset(request: FastifyRequest, reply: FastifyReply, asset: ServedAsset): Buffer | undefined {
    void reply.headers({
      'Cache-Control': 'no-cache',
      ETag: asset.etag,
      'Content-Security-Policy': ASSET_CSP,
      'X-Content-Type-Options': 'nosniff',
      'X-Frame-Options': 'DENY',
      'Referrer-Policy': 'no-referrer',
    });
    if (request.headers['if-none-match'] === asset.etag) {
      void reply.code(304);
      return undefined;
    }
    void reply.type(asset.contentType);
    return asset.body;
  }

  /**
   * An event's info with its verdicts and what answered it.
   *
   * @remarks Reads the log's own classification (`status`, latest `verdict`, `resolvedBy`: the
   * domain's fold) and only gathers the relay statements that name the event, in one pass over
   * the visible events: verdicts from the relay alone, decoded by the protocol's `verdictAbout`,
   * ordered by the relay's sequence as the domain orders them.
   */
  #eventDetail(info: EventInfo): EventDetail {
    const id = info.event.id;
    const relay = this.#opts.relay?.id;
    const verdicts: { event: SignedEvent; data: VerdictData }[] = [];
    const retries: SignedEvent[] = [];
    for (const e of this.#opts.log.visibleEvents()) {
      if (e.type === SystemEventType.RetryRequested) {
        if ((e.data as { target?: unknown } | null)?.target === id) retries.push(e);
        continue;
      }
      if (relay === undefined || e.device !== relay || !namesTarget(e, id)) continue;
      const data = verdictAbout(e, id);
      if (data !== undefined) verdicts.push({ event: e, data });
    }
    verdicts.sort((a, b) => a.event.seq - b.event.seq);
    let resolvedBy: EventId | null = null;
    if (info.status === 'resolved') resolvedBy = info.resolvedBy ?? null;
    else if (info.status !== 'deadletter' && verdicts.some((v) => v.data.outcome === 'deadletter')) {
      // A retry the relay refused (its own verdict a deadletter) answered nothing.
      const answered = retries
        .filter((r) => this.#opts.log.get(r.id)?.status !== 'deadletter')
        .sort((a, b) => (a.hlc !== b.hlc ? (a.hlc < b.hlc ? -1 : 1) : a.id < b.id ? -1 : 1));
      resolvedBy = answered.at(-1)?.id ?? null;
    }
    return {
      ...withVerdictData(info),
      verdicts: verdicts.map(({ event, data }) => ({
        verdictId: event.id,
        seq: event.seq,
        outcome: data.outcome,
        ...(data.outcome === 'deadletter'
          ? { code: data.code, rule: data.rule, reason: data.reason, details: data.details }
          : {}),
        at: event.hlc.slice(0, 24),
      })),
      resolvedBy,
    };
  }

  /** The data folder's size now; concurrent requests share one walk of the folder. */
  #dataFolderBytes(): Promise<number | null> {
    const dir = this.#opts.dataFolder;
    if (dir === undefined) return Promise.resolve(null);
    this.#sizing ??= folderBytes(dir)
      .catch(() => null)
      .finally(() => (this.#sizing = undefined));
    return this.#sizing;
  }

  #observe(event: SignedEvent): void {
    this.#observeVerdict(event);
    this.#clockSkew.add(event);
  }

  #observeVerdict(event: SignedEvent): void {
    const relay = this.#opts.relay?.id;
    if (relay === undefined || event.device !== relay) return;
    // The last verdict an event states: a `Verdict`'s own, or the last target of an `AcceptedVerdicts`.
    const v = verdictsIn(event).at(-1);
    if (v === undefined) return;
    if (v.outcome === 'accepted' && v.seq > this.#confirmedSeq) this.#confirmedSeq = v.seq;
    const last = this.#lastVerdict;
    if (last !== undefined && (event.hlc < last.hlc || (event.hlc === last.hlc && event.id <= last.id)))
      return;
    this.#lastVerdict = {
      id: event.id,
      target: v.target,
      outcome: v.outcome,
      ...(v.outcome === 'accepted' ? { seq: v.seq } : { code: v.code }),
      hlc: event.hlc,
    };
  }

  #relayStatus(peers: readonly PeerStatus[]): RelayStatus | null {
    const relay = this.#opts.relay;
    if (relay === undefined || relay === null) return null;
    let connected = false;
    let lastContact: string | null = null;
    let state: string | undefined;
    for (const p of peers) {
      if (p.peer !== relay.id && !(p.relay === true)) continue;
      connected ||= p.connected && p.peer === relay.id;
      if (p.lastContact !== null && (lastContact === null || p.lastContact > lastContact))
        lastContact = p.lastContact;
      if (p.relay === true && p.state !== undefined) state = p.state;
    }
    return {
      url: relay.url,
      id: relay.id,
      connected,
      lastContact,
      ...(state === undefined ? {} : { state }),
    };
  }

  /**
   * Records a resolution of the deadletter `id` with `record`: 404 when the event is unknown,
   * 409 `DEVICE_NOT_DEADLETTER` when it is not (or no longer) a deadletter, or when another
   * resolution of it is being recorded right now.
   */
  async #resolve<T>(id: string, record: () => Promise<T>): Promise<T> {
    const info = isEventId(id) ? this.#opts.log.get(id) : undefined;
    if (info === undefined) fail(ErrorCode.DEVICE_NOT_FOUND, `no event ${id}`);
    if (this.#resolving.has(id)) {
      fail(DeviceErrorCode.DEVICE_NOT_DEADLETTER, `a resolution of event ${id} is being recorded`, {
        status: info.status,
      });
    }
    if (info.status !== 'deadletter') {
      fail(DeviceErrorCode.DEVICE_NOT_DEADLETTER, `event ${id} is ${info.status}, not a deadletter`, {
        status: info.status,
      });
    }
    this.#resolving.add(id);
    try {
      return await record();
    } finally {
      this.#resolving.delete(id);
    }
  }

  #relayClient(): RelayAdminClient {
    const client = this.#opts.relayClient;
    if (client === undefined || client === null) {
      fail(DeviceErrorCode.DEVICE_RELAY_UNREACHABLE, 'this action needs the relay, and this device has none');
    }
    if (!this.#opts.network.online) {
      fail(
        DeviceErrorCode.DEVICE_RELAY_UNREACHABLE,
        'this action needs the relay, and the device is offline',
      );
    }
    return client;
  }

  /** Asks the relay for a grant (the password goes to the relay only) and audits the outcome. */
  async #elevate(password: string, action: ElevationAction): Promise<ElevationGrant> {
    const grant = await this.#relayClient().elevate(password, action);
    this.#remember({
      action: 'elevate',
      outcome: 'done',
      detail: { action, expires: new Date(grant.expires).toISOString() },
    });
    return grant;
  }

  /**
   * A grant given by the caller, checked here for quick feedback (the relay checks it again where
   * it counts): signed by this device's relay, for this device and `action`, not expired.
   */
  async #checkGrant(value: unknown, action: ElevationAction): Promise<ElevationGrant> {
    const parsed = parseElevationGrant(value);
    const now = (this.#opts.clock ?? Date.now)();
    const problem = !parsed.ok
      ? 'malformed'
      : parsed.value.relay !== this.#opts.relay?.id
        ? 'other-relay'
        : parsed.value.device !== this.#opts.identity.device
          ? 'other-device'
          : parsed.value.action !== action
            ? 'other-action'
            : parsed.value.expires < now
              ? 'expired'
              : !(await verifyElevationGrantSignature(parsed.value))
                ? 'bad-signature'
                : undefined;
    if (problem !== undefined || !parsed.ok) {
      fail(
        DeviceErrorCode.DEVICE_GRANT_INVALID,
        `the grant is not valid for ${action} (${problem ?? 'malformed'})`,
        {
          problem: problem ?? 'malformed',
        },
      );
    }
    return parsed.value;
  }

  /** `from`…`to` as UTC days (default: the 30 days up to today), at most {@link MAX_RANGE_DAYS}. */
  #range(from: unknown, to: unknown): { from: string; to: string } {
    const today = utcDay((this.#opts.clock ?? Date.now)());
    const end = to ?? today;
    if (typeof end !== 'string' || !isCalendarDate(end)) {
      fail(ErrorCode.DEVICE_BAD_REQUEST, 'from and to must be dates YYYY-MM-DD');
    }
    const start = from ?? utcDay(Date.parse(`${end}T00:00:00Z`) - 29 * 86_400_000);
    if (
      typeof start !== 'string' ||
      typeof end !== 'string' ||
      !isCalendarDate(start) ||
      !isCalendarDate(end)
    ) {
      fail(ErrorCode.DEVICE_BAD_REQUEST, 'from and to must be dates YYYY-MM-DD');
    }
    const span = (Date.parse(`${end}T00:00:00Z`) - Date.parse(`${start}T00:00:00Z`)) / 86_400_000 + 1;
    if (span < 1 || span > MAX_RANGE_DAYS) {
      fail(ErrorCode.DEVICE_BAD_REQUEST, `from…to must be 1-${MAX_RANGE_DAYS} days`, {
        from: start,
        to: end,
      });
    }
    return { from: start, to: end };
  }

  /** This device's events by UTC day of their id, for `from`…`to` (one pass over the log's memory). */
  #eventsByDay(from: string, to: string): Map<string, SignedEvent[]> {
    const byDay = new Map<string, SignedEvent[]>();
    for (const e of this.#opts.log.visibleEvents()) {
      const day = utcDay(eventIdTime(e.id));
      if (day < from || day > to) continue;
      const list = byDay.get(day);
      if (list === undefined) byDay.set(day, [e]);
      else list.push(e);
    }
    return byDay;
  }

  /** Compares this device's per-day digests with the relay's. */
  async #compare(
    from: string,
    to: string,
  ): Promise<{
    from: string;
    to: string;
    zone: 'UTC';
    match: boolean;
    days: IntegrityDay[];
    mine: Map<string, SignedEvent[]>;
  }> {
    const relayDays = await this.#relayClient().digests(from, to);
    const mine = this.#eventsByDay(from, to);
    const theirs = new Map<string, DayDigest>(relayDays.map((d) => [d.day, d]));
    const days: IntegrityDay[] = [];
    for (const day of [...new Set([...mine.keys(), ...theirs.keys()])].sort()) {
      const own = await dayDigest(
        day,
        (mine.get(day) ?? []).map((e) => e.id),
      );
      const relay = theirs.get(day);
      days.push({
        day,
        device: own.count,
        relay: relay?.count ?? 0,
        match: relay !== undefined && relay.digest === own.digest,
      });
    }
    return { from, to, zone: 'UTC', match: days.every((d) => d.match), days, mine };
  }

  /** Finds, per mismatching day, the events the relay lacks and re-adds them to the sync documents. */
  async #resubmit(from: string, to: string): Promise<{ from: string; to: string; days: ResubmitDay[] }> {
    const { days: compared, mine } = await this.#compare(from, to);
    const days: ResubmitDay[] = [];
    const client = this.#relayClient();
    for (const d of compared) {
      if (d.match) continue;
      const own = mine.get(d.day) ?? [];
      const held = new Set(d.relay === 0 ? [] : await client.ids(d.day));
      const missing = own.filter((e) => !held.has(e.id));
      const resent =
        missing.length === 0 || this.#opts.resend === undefined ? 0 : await this.#opts.resend(missing);
      days.push({ day: d.day, missing: missing.length, resent });
    }
    return { from, to, days };
  }

  /** Records a `RetryRequested` for the deadletter `id` (see {@link HttpApi.#resolve}). */
  #retry(id: string): Promise<SignedEvent> {
    return this.#resolve(id, () =>
      this.#opts.log.appendSystem({
        type: SystemEventType.RetryRequested,
        subject: { kind: 'event', id },
        data: { target: id },
        deps: [id as EventId],
      }),
    );
  }

  /**
   * Retries every open deadletter of the facility, oldest event first: one `RetryRequested`
   * each, recorded {@link RETRY_ALL_BATCH} at a time. One that cannot be retried (being resolved
   * right now, resolved meanwhile) is skipped with its code and reason; nothing else stops the rest.
   */
  async #retryAll(): Promise<Written> {
    const open = this.#opts.log
      .list({ status: 'deadletter' })
      .map((info) => info.event)
      .sort((a, b) => (a.hlc !== b.hlc ? (a.hlc < b.hlc ? -1 : 1) : a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const retried: { id: EventId; event: SignedEvent }[] = [];
    const skipped: RetryAllSkipped[] = [];
    for (let i = 0; i < open.length; i += RETRY_ALL_BATCH) {
      const outcomes = await Promise.allSettled(
        open.slice(i, i + RETRY_ALL_BATCH).map((e) => this.#retry(e.id)),
      );
      outcomes.forEach((o, j) => {
        const id = open[i + j]!.id;
        if (o.status === 'fulfilled') retried.push({ id, event: o.value });
        else {
          const e: unknown = o.reason;
          skipped.push({
            id,
            code: isAccordError(e) ? e.code : DeviceErrorCode.DEVICE_INTERNAL,
            reason: e instanceof Error ? e.message : String(e),
          });
        }
      });
    }
    this.#remember({
      action: 'retry-all',
      outcome: retried.length > 0 ? 'recorded' : 'done',
      detail: { retried: retried.length, skipped: skipped.length },
    });
    return {
      reply: { status: 200, body: { retried, skipped } },
      result: {
        retried: retried.map((r) => [r.id, r.event.id]),
        skipped: skipped.map((s) => ({ id: s.id, code: s.code, reason: s.reason })),
      },
    };
  }

  /**
   * Runs a write once per `Idempotency-Key` (none: just runs it).
   *
   * @remarks The key's first answer that recorded something (a 2xx) is kept durably as its
   * status and event ids; the same key with the same method, path and body answers it again
   * (events re-read from the log, header `Idempotent-Replayed: true`), with another one 422
   * `DEVICE_IDEMPOTENCY_MISMATCH`. A refused request keeps nothing: it may be sent again. A key
   * whose first request is still running makes the second wait for it, then answer as above.
   */
  async #once(ctx: RequestContext, body: unknown, run: () => Promise<Written>): Promise<Reply> {
    const key = idempotencyKeyOf(ctx.req);
    if (key === undefined) return (await run()).reply;
    const fingerprint = createHash('sha256')
      .update(`${ctx.req.method ?? ''} /${ctx.path}\n${JSON.stringify(body ?? null)}`)
      .digest('base64url');
    for (let first = this.#keysInFlight.get(key); first !== undefined; first = this.#keysInFlight.get(key)) {
      await first.catch(() => {});
    }
    // No await between the check above and this: one request per key runs at a time.
    const answer = this.#onceLocked(ctx, key, fingerprint, run);
    this.#keysInFlight.set(key, answer);
    try {
      return await answer;
    } finally {
      this.#keysInFlight.delete(key);
    }
  }

  async #onceLocked(
    ctx: RequestContext,
    key: string,
    fingerprint: string,
    run: () => Promise<Written>,
  ): Promise<Reply> {
    const first = await this.#idempotency.get(key);
    if (first !== undefined) {
      if (first.fingerprint !== fingerprint) {
        fail(
          DeviceErrorCode.DEVICE_IDEMPOTENCY_MISMATCH,
          'this Idempotency-Key was first used for another request (route or body)',
          { key },
        );
      }
      const reply = this.#replay(first);
      const event = (first.result as { event?: unknown }).event;
      this.#remember({
        action: ctx.audit.action,
        ...(ctx.audit.target === undefined ? {} : { target: ctx.audit.target }),
        ...(typeof event === 'string' ? { event } : {}),
        outcome: 'replayed',
        detail: { key, status: first.status },
      });
      return { ...reply, headers: { ...reply.headers, 'Idempotent-Replayed': 'true' } };
    }
    const written = await run();
    if (written.reply.status >= 200 && written.reply.status < 300) {
      try {
        await this.#idempotency.put(key, {
          fingerprint,
          status: written.reply.status,
          result: written.result,
          at: (this.#opts.clock ?? Date.now)(),
        });
      } catch {
        // The write is recorded and durable: say so. Only a repeat of this very key could
        // record it again, and only if the database failed right here.
      }
    }
    return written.reply;
  }

  /** The first answer of an `Idempotency-Key` again, its events re-read from the log. */
  #replay(first: IdempotentAnswer): Reply {
    const event = (id: unknown): SignedEvent => {
      const info = typeof id === 'string' && isEventId(id) ? this.#opts.log.get(id) : undefined;
      if (info === undefined)
        fail(DeviceErrorCode.DEVICE_INTERNAL, `the first answer's event ${String(id)} is not in the log`);
      return info.event;
    };
    const result = first.result as {
      event?: unknown;
      warning?: JsonValue;
      retried?: unknown;
      skipped?: JsonValue;
    };
    if (Array.isArray(result.retried)) {
      const retried = (result.retried as unknown[]).map((pair) => {
        const [id, by] = Array.isArray(pair) ? (pair as unknown[]) : [];
        return { id, event: event(by) };
      });
      return { status: first.status, body: { retried, skipped: result.skipped ?? [] } };
    }
    const e = event(result.event);
    return {
      status: first.status,
      body: { id: e.id, event: e, ...(result.warning === undefined ? {} : { warning: result.warning }) },
    };
  }

  /** Keeps an audit entry that is not an event (the oldest go beyond {@link AUDIT_MEMORY}). */
  #remember(entry: Omit<AuditEntry, 'at'>): void {
    const at = new Date((this.#opts.clock ?? Date.now)()).toISOString();
    // A target comes from the URL: keep what fits an event id and a little more.
    const target = entry.target === undefined ? {} : { target: entry.target.slice(0, MAX_AUDIT_TEXT) };
    this.#auditMemory.push({ at, ...entry, ...target });
    if (this.#auditMemory.length > AUDIT_MEMORY) this.#auditMemory.shift();
  }

  /**
   * This device's sync and admin actions, newest first: its own resolution events from the log
   * (retries, discards, amends: durable, the same on every device) and the entries kept in
   * memory (retry-alls, replays, refusals, network switches: since the agent started).
   */
  #auditTrail(limit: number): AuditEntry[] {
    const entries: { entry: AuditEntry; order: number }[] = [];
    for (const { event } of this.#opts.log.list({ device: this.#opts.identity.device })) {
      const at = event.hlc.slice(0, 24);
      const data = event.data as { target?: unknown; reason?: unknown } | null;
      const target = typeof data?.target === 'string' ? data.target : undefined;
      let entry: AuditEntry | undefined;
      if (event.type === SystemEventType.RetryRequested && target !== undefined) {
        entry = { at, action: 'retry', target, event: event.id, outcome: 'recorded' };
      } else if (event.type === SystemEventType.DeadletterDiscarded && target !== undefined) {
        entry = {
          at,
          action: 'discard',
          target,
          event: event.id,
          outcome: 'recorded',
          ...(typeof data?.reason === 'string' ? { detail: { reason: data.reason } } : {}),
        };
      } else if (event.supersedes !== undefined) {
        entry = { at, action: 'amend', target: event.supersedes, event: event.id, outcome: 'recorded' };
      }
      if (entry !== undefined) entries.push({ entry, order: -1 });
    }
    this.#auditMemory.forEach((entry, order) => entries.push({ entry, order }));
    return entries
      .sort((a, b) =>
        a.entry.at !== b.entry.at
          ? a.entry.at < b.entry.at
            ? 1
            : -1
          : a.order !== b.order
            ? b.order - a.order
            : (b.entry.event ?? '') < (a.entry.event ?? '')
              ? -1
              : 1,
      )
      .slice(0, limit)
      .map((e) => e.entry);
  }

  /** The compact status of the live stream. */
  #liveStatus(): LiveStatus {
    const { log, network } = this.#opts;
    const counts = log.counts();
    const peers = network.peers();
    const relay = this.#relayStatus(peers);
    return {
      online: network.online,
      relay: relay === null ? null : { connected: relay.connected, lastContact: relay.lastContact },
      peers: { connected: peers.filter((p) => p.connected).length, known: peers.length },
      pending: counts.pending,
      outbox: counts.outbox,
      needsAttention: counts.deadletter,
      confirmedSeq: this.#confirmedSeq,
    };
  }

  /** Serves one live stream until its client leaves or the API closes. */
  #serveStream(res: ServerResponse): Promise<void> {
    return new Promise<void>((resolve) => {
      const stream: LiveStream = { res, last: '' };
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        this.#streams.delete(stream);
        this.#streamSlots--;
        if (this.#streams.size === 0) this.#stopStreamTimers();
        resolve();
      };
      res.once('close', finish);
      res.once('finish', finish);
      if (this.#stopping) {
        res.end();
        return;
      }
      this.#streams.add(stream);
      this.#startStreamTimers();
      // Reconnect after 2 s if the connection drops (EventSource's default is 3 s).
      res.write('retry: 2000\n\n');
      this.#send(stream, JSON.stringify(this.#liveStatus()));
    });
  }

  #send(stream: LiveStream, status: string): void {
    if (stream.last === status) return;
    stream.last = status;
    this.#write(stream, `event: status\ndata: ${status}\n\n`);
  }

  #write(stream: LiveStream, text: string): void {
    // A client that stops reading is cut off rather than buffered without bound.
    if (stream.res.writableLength > STREAM_MAX_BUFFER) stream.res.destroy();
    else stream.res.write(text);
  }

  /** Something the status shows may have changed: push it, coalesced, to every stream. */
  #statusChanged(): void {
    if (this.#streams.size === 0 || this.#pushTimer !== undefined) return;
    this.#pushTimer = setTimeout(() => {
      this.#pushTimer = undefined;
      this.#pushStatus();
    }, this.#opts.streamCoalesceMs ?? 250);
    this.#pushTimer.unref();
  }

  #pushStatus(): void {
    if (this.#streams.size === 0) return;
    let status: string;
    try {
      status = JSON.stringify(this.#liveStatus());
    } catch {
      return; // The log is closing: the streams end with the API.
    }
    for (const s of this.#streams) this.#send(s, status);
  }

  #startStreamTimers(): void {
    if (this.#streamTimers.length > 0) return;
    // The network adapters announce no changes: the status is recomputed now and then, and sent
    // only when it differs from what each stream was last sent.
    const check = setInterval(() => this.#pushStatus(), this.#opts.streamCheckMs ?? 1000);
    const heartbeat = setInterval(() => {
      for (const s of this.#streams) this.#write(s, ': keep-alive\n\n');
    }, this.#opts.streamHeartbeatMs ?? 15_000);
    check.unref();
    heartbeat.unref();
    this.#streamTimers = [check, heartbeat];
  }

  #stopStreamTimers(): void {
    for (const t of this.#streamTimers) clearInterval(t);
    this.#streamTimers = [];
    if (this.#pushTimer !== undefined) clearTimeout(this.#pushTimer);
    this.#pushTimer = undefined;
  }

  #date(date: string | undefined): string {
    // "Today" is the facility's business date, not the UTC one (issue #13).
    return date ?? zonedDate((this.#opts.clock ?? Date.now)(), this.#opts.timeZone);
  }
}

/**
 * The agent's own `host:port` names and origins when it listens on `host`:`port`: the loopback
 * names always, and `host` itself unless it is a wildcard.
 */

function ownOrigin(host: string, port: number): RequestOriginPolicy {
  const names = new Set(['127.0.0.1', 'localhost', '[::1]']);
  if (host !== '0.0.0.0' && host !== '::' && host !== '') {
    names.add(host.includes(':') && !host.startsWith('[') ? `[${host.toLowerCase()}]` : host.toLowerCase());
  }
  const hosts = new Set([...names].map((n) => `${n}:${port}`));
  return { hosts, origins: new Set([...hosts].map((h) => `http://${h}`)) };
}

/** The `Idempotency-Key` of a request, if it has one; 400 when it is malformed (or sent twice). */
function idempotencyKeyOf(req: IncomingMessage): string | undefined {
  const key = req.headers['idempotency-key'];
  if (key === undefined) return undefined;
  if (typeof key !== 'string' || !isIdempotencyKey(key)) {
    fail(
      ErrorCode.DEVICE_BAD_REQUEST,
      `Idempotency-Key must be 1-${MAX_IDEMPOTENCY_KEY_LENGTH} characters of A-Z a-z 0-9 . _ : ~ -`,
      { header: 'Idempotency-Key' },
    );
  }
  return key;
}

/** What the audit calls a request, from its method and path (a handler may refine it). */
function auditNoteOf(req: IncomingMessage): AuditNote {
  let segments: string[] = [];
  try {
    segments = pathnameOf(req.url)
      .split('/')
      .filter((s) => s !== '');
  } catch {
    // A malformed URL is a plain "request".
  }
  const [a, b, c, d] = segments;
  if (req.method === 'POST' && a === 'api') {
    if (b === 'events' && segments.length === 2) return { action: 'record' };
    if (b === 'events' && c !== undefined && segments.length === 4 && (d === 'retry' || d === 'discard')) {
      let target = c;
      try {
        target = decodeURIComponent(c);
      } catch {
        // Kept as sent.
      }
      return { action: d, target };
    }
    if (b === 'deadletters' && c === 'retry-all' && segments.length === 3) return { action: 'retry-all' };
    if ((b === 'elevate' || b === 'resubmit') && segments.length === 2) return { action: b };
    if (b === 'network' && segments.length === 2) return { action: 'network' };
  }
  return { action: 'request' };
}

/** The static files of {@link HttpApiOptions.assets} as served: bytes and a strong entity tag. */
function servedAssets(
  assets: ReadonlyMap<string, StaticAsset> | undefined,
): ReadonlyMap<string, ServedAsset> {
  const out = new Map<string, ServedAsset>();
  for (const [path, a] of assets ?? []) {
    if (!path.startsWith('/') || path.startsWith('/api/')) {
      throw deviceError(
        ErrorCode.DEVICE_BAD_REQUEST,
        `asset path ${JSON.stringify(path)} must start with / outside /api/`,
      );
    }
    const body = typeof a.body === 'string' ? Buffer.from(a.body, 'utf8') : Buffer.from(a.body);
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
    out.set(path, { contentType: a.contentType, body, etag });
  }
  return out;
}

/** The path of a request URL as sent (for messages; not `new URL`, which takes `//a/b` for a host). */
function pathnameOf(url: string | undefined): string {
  return (url ?? '/').split('?')[0]!;
}

/** The path of a request URL as its decoded segments joined by `/` (`api/events/E1/retry`). */
function decodedPath(url: string | undefined): string {
  const segments = pathnameOf(url)
    .split('/')
    .filter((s) => s !== '');
  try {
    return segments.map((s) => decodeURIComponent(s)).join('/');
  } catch {
    return segments.join('/');
  }
}

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

/** Longest range of the integrity check and re-submit, in days. */
const MAX_RANGE_DAYS = 366;

/** True when a relay statement may name `id` (read cheaply, before `verdictAbout` decodes it). */
function namesTarget(event: SignedEvent, id: EventId): boolean {
  const data = event.data as { target?: unknown; targets?: unknown } | null;
  if (event.type === SystemEventType.Verdict) return data?.target === id;
  if (event.type === SystemEventType.AcceptedVerdicts)
    return Array.isArray(data?.targets) && data.targets.includes(id);
  return false;
}

/** An event's info with its latest verdict's data decoded (`verdictData`) when it has one. */
function withVerdictData(info: EventInfo): EventInfo & { readonly verdictData?: VerdictData } {
  if (info.verdict === undefined) return info;
  const verdictData = verdictAbout(info.verdict, info.event.id);
  return verdictData !== undefined ? { ...info, verdictData } : info;
}

function deadletterInfo(info: EventInfo): DeadletterInfo | undefined {
  const { event, verdict } = info;
  if (verdict === undefined) return undefined;
  const stated = verdictAbout(verdict, event.id);
  const d = stated?.outcome === 'deadletter' ? stated : undefined;
  return {
    id: event.id,
    type: event.type,
    device: event.device,
    seq: event.seq,
    hlc: event.hlc,
    subject: event.subject,
    data: event.data,
    code: d?.code ?? null,
    rule: d?.rule ?? null,
    reason: d?.reason ?? null,
    details: d?.details ?? null,
    verdictId: verdict.id,
    verdictHlc: verdict.hlc,
    verdictAt: verdict.hlc.slice(0, 24),
  };
}

function toErrorReply(e: unknown): ErrorReply {
  if (isAccordError(e)) {
    const body: ApiErrorBody =
      Object.keys(e.details).length === 0
        ? { code: e.code, message: e.message }
        : { code: e.code, message: e.message, details: e.details };
    // Schema failures of the domain catalogue may carry DOMAIN_* codes: the caller's input is wrong.
    const status = STATUS_OF_CODE[e.code] ?? (e.code.startsWith('DOMAIN_') ? 400 : 500);
    return { status, body };
  }
  return {
    status: 500,
    body: {
      code: DeviceErrorCode.DEVICE_INTERNAL,
      message: e instanceof Error ? e.message : 'internal error',
    },
  };
}
