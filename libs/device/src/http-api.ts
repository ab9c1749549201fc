import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:net';
import {
  isAccordError,
  isEventId,
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
  drainAfterEarlyReply,
  isJsonRequest,
  matchPath,
  readJsonBody as readBody,
  type RequestOriginPolicy,
} from '@accord/network-ws';
import type { Draft, DeviceLogApi, EventInfo } from '@accord/log';
import { ClockSkewDetector, zonedDate, type EventStatus } from '@accord/domain';
import { deviceError, DeviceErrorCode } from './errors.js';

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

/** Event statuses accepted by `GET /api/events?status=`. */
export const EVENT_STATUSES: readonly EventStatus[] = ['pending', 'accepted', 'deadletter', 'resolved'];

// A client that keeps sending after a 413 is drained up to this many bytes, then cut off,
// so that it still reads the answer without us buffering an unbounded stream.

const DATE = /^\d{4}-\d{2}-\d{2}$/;

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
  [ErrorCode.PROTOCOL_TOO_LARGE]: 413,
  [ErrorCode.LOG_HOLE]: 503,
  [ErrorCode.LOG_CLOSED]: 503,
  [ErrorCode.STORAGE_CLOSED]: 503,
  [DeviceErrorCode.DEVICE_STOPPING]: 503,
};

function fail(code: ErrorCode | DeviceErrorCode, message: string, details?: Record<string, unknown>): never {
  throw deviceError(code, message, details === undefined ? {} : { details });
}

interface Reply {
  readonly status: number;
  readonly body: unknown;
  /** Extra response headers (e.g. `Accord-Withheld` on projections). */
  readonly headers?: Readonly<Record<string, string>>;
}

/** How many withheld devices a projection's `Accord-Withheld` header lists (status lists them all). */
const MAX_WITHHELD_IN_HEADER = 20;

interface RequestContext {
  readonly req: IncomingMessage;
  readonly params: readonly string[];
  readonly query: URLSearchParams;
}

type Handler = (ctx: RequestContext) => Reply | Promise<Reply>;

interface Route {
  readonly path: readonly string[];
  readonly methods: Readonly<Partial<Record<'GET' | 'POST', Handler>>>;
}

/**
 * The device agent's local JSON API on node:http (see the package README for the route table).
 *
 * @remarks Binds 127.0.0.1 by default, and answers only requests addressed to its own name
 * (`Host` 127.0.0.1, localhost or [::1] with its port) from no page or its own origin, with
 * writes declared `application/json`: any web page on the tablet can reach a loopback port.
 * Never throws out of a request: every failure is an
 * answer `{code, message}` with a 4xx (or 5xx for an internal fault) status. `POST /api/events`
 * answers 201 only after `log.append` resolved, i.e. after the durable write. Projection routes
 * always answer: events that a hole or an equivocation withholds (one device's later events) are
 * left out, and the `Accord-Withheld` header (and `withheld` in the status) says which and why.
 */
export class HttpApi {
  readonly #server: Server;
  readonly #opts: HttpApiOptions;
  readonly #maxBody: number;
  readonly #routes: readonly Route[];
  readonly #inFlight = new Set<Promise<void>>();
  readonly #sockets = new Set<Socket>();
  /** Requests whose handler is still reading the body: a shutdown does not wait for slow senders. */
  readonly #readingBodies = new Set<IncomingMessage>();
  /** Events whose resolution (retry, discard, amend) is being recorded: a second one waits its turn. */
  readonly #resolving = new Set<string>();
  readonly #unsubscribe: () => void;
  #lastVerdict: LastVerdict | undefined;
  #confirmedSeq = 0;
  /** Devices whose clocks are off, from the relay's verdicts (issue #13). */
  readonly #clockSkew: ClockSkewDetector;
  #stopping = false;
  #port = 0;
  /** Who the agent is to a browser: its `host:port` names and origins (set once listening). */
  #own: RequestOriginPolicy = { hosts: new Set(), origins: new Set() };

  private constructor(opts: HttpApiOptions) {
    this.#opts = opts;
    this.#maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.#routes = this.#makeRoutes();
    this.#clockSkew = new ClockSkewDetector({
      relay: opts.relay?.id ?? null,
      lookup: (id) => opts.log.get(id)?.event,
    });
    // Verdicts already visible, then each new one as it becomes visible.
    for (const event of opts.log.visibleEvents()) this.#observe(event);
    this.#unsubscribe = opts.log.onEvents((events) => {
      for (const e of events) this.#observe(e);
    });
    this.#server = createServer((req, res) => {
      const done = this.#handle(req, res).finally(() => {
        this.#inFlight.delete(done);
      });
      this.#inFlight.add(done);
    });
    this.#server.requestTimeout = 30_000;
    this.#server.headersTimeout = 10_000;
    this.#server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
    this.#server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      if (err.code === 'ECONNRESET' || !socket.writable) {
        socket.destroy();
        return;
      }
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
      const body = JSON.stringify({ code: ErrorCode.DEVICE_BAD_REQUEST, message: 'malformed HTTP request' });
      socket.end(
        `HTTP/1.1 ${status} Bad Request\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    });
  }

  /** Starts the API and resolves once it listens. */
  static async listen(opts: HttpApiOptions): Promise<HttpApi> {
    const api = new HttpApi(opts);
    await new Promise<void>((resolve, reject) => {
      api.#server.once('error', reject);
      api.#server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
        api.#server.off('error', reject);
        api.#port = (api.#server.address() as AddressInfo).port;
        api.#own = ownOrigin(opts.host ?? '127.0.0.1', api.#port);
        resolve();
      });
    });
    return api;
  }

  /** The TCP port the API listens (or listened) on. */
  get port(): number {
    return this.#port;
  }

  /**
   * Stops accepting requests and resolves when every request in flight has been answered.
   *
   * @remarks Requests arriving on kept-alive connections meanwhile get 503 `DEVICE_STOPPING`.
   * Idempotent.
   */
  async close(): Promise<void> {
    this.#stopping = true;
    this.#unsubscribe();
    const closed = new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
    });
    this.#server.closeIdleConnections();
    // A client still sending its body has been acknowledged nothing: cut it off rather than
    // wait for it. Handlers past their body (appending) are awaited.
    for (const req of this.#readingBodies) req.destroy();
    await Promise.allSettled([...this.#inFlight]);
    // Every answer is written: close what the clients left open.
    for (const s of this.#sockets) s.destroy();
    await closed;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    req.on('error', () => {
      // A client that goes away mid-request is not our failure.
    });
    res.on('error', () => {});
    let reply: Reply;
    try {
      this.#guard(req);
      if (this.#stopping) fail(DeviceErrorCode.DEVICE_STOPPING, 'the device agent is shutting down');
      reply = await this.#route(req);
    } catch (e) {
      reply = toErrorReply(e);
    }
    let text: string;
    try {
      text = JSON.stringify(reply.body);
    } catch {
      reply = {
        status: 500,
        body: { code: DeviceErrorCode.DEVICE_INTERNAL, message: 'answer is not serializable' },
      };
      text = JSON.stringify(reply.body);
    }
    // We may answer before the body was read (413, 405…).
    drainAfterEarlyReply(req, res, this.#maxBody);
    if (this.#stopping) res.setHeader('Connection', 'close');
    res.writeHead(reply.status, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(text),
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      ...reply.headers,
    });
    await new Promise<void>((resolve) => {
      res.end(text, () => resolve());
      res.once('close', () => resolve());
    });
  }

  /**
   * Refuses, before any route runs, what a web page other than the agent's own can make a
   * browser send: another `Host` (DNS rebinding), another `Origin` or a cross-site fetch, and a
   * write that is not declared JSON (a form or a no-cors fetch needs no preflight).
   */
  #guard(req: IncomingMessage): void {
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

  async #route(req: IncomingMessage): Promise<Reply> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      fail(ErrorCode.DEVICE_BAD_REQUEST, 'malformed request URL');
    }
    let segments: string[];
    try {
      segments = url.pathname
        .split('/')
        .filter((s) => s !== '')
        .map((s) => decodeURIComponent(s));
    } catch {
      fail(ErrorCode.DEVICE_BAD_REQUEST, 'malformed percent-encoding in the path');
    }
    for (const route of this.#routes) {
      const params = matchPath(route.path, segments);
      if (params === undefined) continue;
      const method = req.method === 'HEAD' ? 'GET' : req.method;
      const handler = method === 'GET' || method === 'POST' ? route.methods[method] : undefined;
      if (handler === undefined) {
        fail(
          DeviceErrorCode.DEVICE_METHOD_NOT_ALLOWED,
          `${req.method ?? '?'} is not allowed on ${url.pathname}`,
          {
            allow: Object.keys(route.methods),
          },
        );
      }
      return handler({ req, params, query: url.searchParams });
    }
    fail(DeviceErrorCode.DEVICE_UNKNOWN_ROUTE, `no route ${url.pathname}`);
  }

  async #readBody(req: IncomingMessage, allowEmpty = false): Promise<unknown> {
    if (this.#stopping) fail(DeviceErrorCode.DEVICE_STOPPING, 'the device agent is shutting down');
    this.#readingBodies.add(req);
    try {
      return await readJsonBody(req, this.#maxBody, allowEmpty);
    } finally {
      this.#readingBodies.delete(req);
    }
  }

  #makeRoutes(): Route[] {
    const log = this.#opts.log;
    const network = this.#opts.network;
    const ok = (body: unknown, status = 200): Reply => ({ status, body });
    // A hole or an equivocation withholds one device's later events, never the whole facility's
    // (issue #13, scenario 4): the projection of everything else is served, and says what is not in it.
    const projection = (query: URLSearchParams, allowed: readonly string[] = []) => {
      checkQuery(query, allowed);
      return log.tentative();
    };
    const served = (body: unknown): Reply => {
      const withheld = log.withheld();
      if (withheld.length === 0) return ok(body);
      const header = withheld
        .slice(0, MAX_WITHHELD_IN_HEADER)
        .map((w) => ({ device: w.device, from: w.from, reason: w.reason, heldBack: w.heldBack }));
      return { status: 200, body, headers: { 'Accord-Withheld': JSON.stringify(header) } };
    };
    return [
      {
        path: ['api', 'status'],
        methods: {
          GET: ({ query }) => {
            checkQuery(query, []);
            const counts = log.counts();
            const peers = network.peers();
            return ok({
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
            });
          },
        },
      },
      {
        path: ['api', 'events'],
        methods: {
          GET: ({ query }) => {
            checkQuery(query, ['status', 'device']);
            const status = query.get('status');
            const device = query.get('device');
            if (status !== null && !EVENT_STATUSES.includes(status as EventStatus)) {
              fail(ErrorCode.DEVICE_BAD_REQUEST, `status must be one of ${EVENT_STATUSES.join(', ')}`);
            }
            const filter: { status?: EventStatus; device?: DeviceId } = {};
            if (status !== null) filter.status = status as EventStatus;
            if (device !== null) filter.device = device as DeviceId;
            return ok(log.list(filter));
          },
          POST: async ({ req, query }) => {
            checkQuery(query, []);
            const draft = parseDraft(await this.#readBody(req));
            // An amend answers a deadletter: refuse one that names anything else.
            const result =
              draft.supersedes === undefined
                ? await log.append(draft)
                : await this.#resolve(draft.supersedes, () => log.append(draft));
            return ok(
              {
                id: result.event.id,
                event: result.event,
                ...(result.warning === undefined ? {} : { warning: result.warning }),
              },
              201,
            );
          },
        },
      },
      {
        path: ['api', 'events', ':id'],
        methods: {
          GET: ({ params, query }) => {
            checkQuery(query, []);
            const id = params[0] ?? '';
            const info = isEventId(id) ? log.get(id) : undefined;
            if (info === undefined) fail(ErrorCode.DEVICE_NOT_FOUND, `no event ${id}`);
            return ok(withVerdictData(info));
          },
        },
      },
      {
        path: ['api', 'events', ':id', 'retry'],
        methods: {
          POST: async ({ req, params, query }) => {
            checkQuery(query, []);
            const body = await this.#readBody(req, true);
            if (body !== undefined && !(isPlainObject(body) && Object.keys(body).length === 0)) {
              fail(ErrorCode.DEVICE_BAD_REQUEST, 'retry takes no body (or {})');
            }
            const id = params[0] ?? '';
            const event = await this.#resolve(id, () =>
              log.appendSystem({
                type: SystemEventType.RetryRequested,
                subject: { kind: 'event', id },
                data: { target: id },
                deps: [id as EventId],
              }),
            );
            return ok({ id: event.id, event }, 201);
          },
        },
      },
      {
        path: ['api', 'events', ':id', 'discard'],
        methods: {
          POST: async ({ req, params, query }) => {
            checkQuery(query, []);
            const body = await this.#readBody(req);
            if (
              !isPlainObject(body) ||
              Object.keys(body).some((k) => k !== 'reason') ||
              typeof body['reason'] !== 'string' ||
              body['reason'].trim() === '' ||
              body['reason'].length > MAX_REASON
            ) {
              fail(ErrorCode.DEVICE_BAD_REQUEST, `body must be {"reason": "…"} (1-${MAX_REASON} characters)`);
            }
            const reason = body['reason'];
            const id = params[0] ?? '';
            const event = await this.#resolve(id, () =>
              log.appendSystem({
                type: SystemEventType.DeadletterDiscarded,
                subject: { kind: 'event', id },
                data: { target: id, reason },
                deps: [id as EventId],
              }),
            );
            return ok({ id: event.id, event }, 201);
          },
        },
      },
      {
        path: ['api', 'deadletters'],
        methods: {
          GET: ({ query }) => {
            checkQuery(query, []);
            return ok(
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
          },
        },
      },
      {
        path: ['api', 'outbox'],
        methods: {
          GET: ({ query }) => {
            checkQuery(query, []);
            return ok(log.outbox());
          },
        },
      },
      {
        path: ['api', 'incidents'],
        methods: {
          GET: ({ query }) => {
            checkQuery(query, []);
            return ok(log.incidents());
          },
        },
      },
      { path: ['api', 'patients'], methods: { GET: ({ query }) => served(projection(query).patients()) } },
      {
        path: ['api', 'patients', ':id'],
        methods: {
          GET: ({ params, query }) => {
            const id = params[0] ?? '';
            const patient = projection(query).patient(id);
            if (patient === undefined) fail(ErrorCode.DEVICE_NOT_FOUND, `no patient ${id}`);
            return served(patient);
          },
        },
      },
      { path: ['api', 'stock'], methods: { GET: ({ query }) => served(projection(query).stock()) } },
      {
        path: ['api', 'queue'],
        methods: {
          GET: ({ query }) => {
            const view = projection(query, ['date']);
            const zone = this.#opts.timeZone;
            return served(
              zone === undefined ? view.queue(this.#date(query)) : view.queue(this.#date(query), zone),
            );
          },
        },
      },
      {
        path: ['api', 'appointments'],
        methods: {
          GET: ({ query }) => served(projection(query, ['date']).appointments(this.#date(query))),
        },
      },
      { path: ['api', 'counters'], methods: { GET: ({ query }) => served(projection(query).counters()) } },
      {
        path: ['api', 'network'],
        methods: {
          GET: ({ query }) => {
            checkQuery(query, []);
            return ok({ online: network.online, peers: network.peers() });
          },
          POST: async ({ req, query }) => {
            checkQuery(query, []);
            const body = await this.#readBody(req);
            if (
              !isPlainObject(body) ||
              typeof body['online'] !== 'boolean' ||
              Object.keys(body).length !== 1
            ) {
              fail(ErrorCode.DEVICE_BAD_REQUEST, 'body must be {"online": true|false}');
            }
            network.setOnline(body['online']);
            return ok({ online: network.online, peers: network.peers() });
          },
        },
      },
    ];
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

  #date(query: URLSearchParams): string {
    const date = query.get('date');
    // "Today" is the facility's business date, not the UTC one (issue #13).
    if (date === null) return zonedDate((this.#opts.clock ?? Date.now)(), this.#opts.timeZone);
    if (!isCalendarDate(date)) fail(ErrorCode.DEVICE_BAD_REQUEST, 'date must be YYYY-MM-DD');
    return date;
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

function checkQuery(query: URLSearchParams, allowed: readonly string[]): void {
  const seen = new Set<string>();
  for (const key of query.keys()) {
    if (!allowed.includes(key)) {
      fail(ErrorCode.DEVICE_BAD_REQUEST, `unknown query parameter ${JSON.stringify(key)}`, { allowed });
    }
    if (seen.has(key)) fail(ErrorCode.DEVICE_BAD_REQUEST, `query parameter ${key} given twice`);
    seen.add(key);
  }
}

function isCalendarDate(s: string): boolean {
  if (!DATE.test(s)) return false;
  const d = new Date(`${s}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === s;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Reads a request body of at most `max` bytes and parses it as JSON.
 *
 * @remarks Refuses early on a declared Content-Length above the cap, and counts bytes as
 * they arrive for chunked bodies.
 */
async function readJsonBody(req: IncomingMessage, max: number, allowEmpty = false): Promise<unknown> {
  const body = await readBody(req, { max, optional: allowEmpty });
  if (body.ok) return body.value;
  switch (body.problem) {
    case 'too-large':
      return fail(DeviceErrorCode.DEVICE_BODY_TOO_LARGE, `request body exceeds ${max} bytes`, { limit: max });
    case 'aborted':
      return fail(ErrorCode.DEVICE_BAD_REQUEST, 'request aborted');
    case 'empty':
      return fail(ErrorCode.DEVICE_BAD_REQUEST, 'request body is empty: expected JSON');
    case 'not-json':
      return fail(ErrorCode.DEVICE_BAD_REQUEST, 'request body is not valid JSON');
  }
}

/** Longest discard reason (the protocol's limit for `DeadletterDiscarded.reason`). */
const MAX_REASON = 4096;

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

const DRAFT_KEYS = new Set(['type', 'data', 'supersedes']);

function parseDraft(body: unknown): Draft {
  if (!isPlainObject(body))
    fail(ErrorCode.DEVICE_BAD_REQUEST, 'body must be a JSON object {"type", "data", "supersedes"?}');
  for (const key of Object.keys(body)) {
    if (!DRAFT_KEYS.has(key)) fail(ErrorCode.DEVICE_BAD_REQUEST, `unknown field ${JSON.stringify(key)}`);
  }
  const { type, data, supersedes } = body;
  if (typeof type !== 'string' || type === '')
    fail(ErrorCode.DEVICE_BAD_REQUEST, 'type must be a non-empty string');
  if (data === undefined) fail(ErrorCode.DEVICE_BAD_REQUEST, 'data is required');
  if (supersedes !== undefined && (typeof supersedes !== 'string' || !isEventId(supersedes))) {
    fail(ErrorCode.DEVICE_BAD_REQUEST, 'supersedes must be an event id');
  }
  return supersedes === undefined ? { type, data } : { type, data, supersedes };
}

function toErrorReply(e: unknown): Reply {
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
