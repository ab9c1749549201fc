import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import {
  isAccordError,
  isEventId,
  parseElevationGrant,
  verifyElevationGrantSignature,
  type ElevationAction,
  type ElevationGrant,
  ErrorCode,
  verdictAbout,
  verdictsIn,
  SystemEventType,
  type DeviceId,
  type EventId,
  type JsonValue,
  type SignedEvent,
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
import type { Draft, EventInfo } from '@accord/log';
import { ClockSkewDetector, zonedDate, type EventStatus } from '@accord/domain';
import { deviceError, DeviceErrorCode } from './errors.js';
import type { RelayAdminClient } from './relay-client.js';
import { MemoryIdempotencyStore } from './idempotency.js';
import { ACCORD_VERSION, folderBytes, keyFingerprint } from './http/environment.js';
import { LiveStreams } from './http/live-stream.js';
import { IntegrityCheck } from './http/integrity.js';
import { AuditTrail, auditNoteOf, MAX_AUDIT_TEXT, pathnameOf, type AuditNote } from './http/audit.js';
import {
  decodedPath,
  IdempotentWrites,
  type Reply,
  type RequestContext,
  type Written,
} from './http/idempotent.js';
import {
  AUDIT_DEFAULT_LIMIT,
  PATIENTS_MAX_LIMIT,
  AuditQuery,
  DateQuery,
  DiscardBody,
  DraftBody,
  ElevateBody,
  EmptyBody,
  EventsQuery,
  IdParams,
  NetworkBody,
  NoQuery,
  PatientsQuery,
  RangeQuery,
  ResubmitBody,
} from './http/schemas.js';

export { EVENT_STATUSES } from './http/schemas.js';
export { ASSET_CSP, DEFAULT_MAX_BODY_BYTES } from './http/types.js';
export type {
  ApiErrorBody,
  AuditEntry,
  DeadletterInfo,
  DeviceIdentity,
  EnvironmentInfo,
  EventDetail,
  EventVerdict,
  HttpApiOptions,
  IntegrityDay,
  LastVerdict,
  LiveStatus,
  NetworkControl,
  PeerStatus,
  RelayStatus,
  ResubmitDay,
  RetryAllSkipped,
  StaticAsset,
} from './http/types.js';
import {
  ASSET_CSP,
  DEFAULT_MAX_BODY_BYTES,
  type ApiErrorBody,
  type DeadletterInfo,
  type EnvironmentInfo,
  type EventDetail,
  type HttpApiOptions,
  type LastVerdict,
  type LiveStatus,
  type PeerStatus,
  type RelayStatus,
  type RetryAllSkipped,
  type StaticAsset,
} from './http/types.js';

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

/** Retry-all records this many retries at a time (the log group-commits them). */
const RETRY_ALL_BATCH = 64;

/** How many withheld devices a projection's `Accord-Withheld` header lists (status lists them all). */
const MAX_WITHHELD_IN_HEADER = 20;

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
  /** Writes run once per `Idempotency-Key`. */
  readonly #idempotent: IdempotentWrites;
  /** This device's sync and admin actions. */
  readonly #audit: AuditTrail;
  /** The integrity check and re-submit against the relay. */
  readonly #integrity: IntegrityCheck;
  /** The open `GET /api/stream`s. */
  readonly #streams: LiveStreams;
  /** Who the agent is to a browser: its `host:port` names and origins (set once listening). */
  #own: RequestOriginPolicy = { hosts: new Set(), origins: new Set() };
  /** The static files by path, with their entity tags computed once. */
  readonly #assets: ReadonlyMap<string, ServedAsset>;
  /** The data folder's size being summed for `GET /api/environment`, if a walk is under way. */
  #sizing: Promise<number | null> | undefined;

  private constructor(opts: HttpApiOptions) {
    this.#opts = opts;
    this.#maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    const clock = opts.clock ?? Date.now;
    this.#audit = new AuditTrail({ log: opts.log, device: opts.identity.device, clock });
    this.#integrity = new IntegrityCheck({
      log: opts.log,
      clock,
      relay: () => this.#relayClient(),
      ...(opts.resend === undefined ? {} : { resend: opts.resend }),
    });
    this.#idempotent = new IdempotentWrites({
      store: opts.idempotency ?? new MemoryIdempotencyStore(),
      log: opts.log,
      audit: this.#audit,
      clock,
    });
    this.#assets = servedAssets(opts.assets);
    this.#streams = new LiveStreams({
      status: () => this.#liveStatus(),
      ...(opts.maxStreams === undefined ? {} : { maxStreams: opts.maxStreams }),
      ...(opts.streamHeartbeatMs === undefined ? {} : { heartbeatMs: opts.streamHeartbeatMs }),
      ...(opts.streamCoalesceMs === undefined ? {} : { coalesceMs: opts.streamCoalesceMs }),
      ...(opts.streamCheckMs === undefined ? {} : { checkMs: opts.streamCheckMs }),
    });
    this.#clockSkew = new ClockSkewDetector({
      relay: opts.relay?.id ?? null,
      // Where each verdict's target sits, from its id: at start every verdict of the history is
      // looked at, and reading their targets back from the store cost tens of megabytes at 100k.
      lookup: (id) => opts.log.locate(id),
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
    // Verdicts already visible, then each new one as it becomes visible. Only system events: the
    // others are read from the store one by one, and what #observe takes from them (clock skew)
    // it locates by the verdicts that name them (reading nothing).
    for (const event of opts.log.visibleEvents({ systemOnly: true })) this.#observe(event);
    this.#unsubscribe = opts.log.onEvents((events) => {
      for (const e of events) this.#observe(e);
      this.#streams.changed();
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
      this.#streams.close();
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
      this.#audit.remember({
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
      const written = await this.#idempotent.once(ctx, body, async () => {
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
      if (!this.#streams.reserve()) {
        const limit = this.#streams.limit;
        fail(DeviceErrorCode.DEVICE_TOO_MANY_STREAMS, `at most ${limit} status streams are served at once`, {
          limit,
        });
      }
      reply.hijack();
      reply.raw.writeHead(200, {
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-store',
        'X-Content-Type-Options': 'nosniff',
      });
      await this.#streams.serve(reply.raw);
      return reply;
    });

    app.get('/api/audit', { schema: { querystring: AuditQuery } }, (request) =>
      this.#audit.list(request.query.limit ?? AUDIT_DEFAULT_LIMIT),
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
        const written = await this.#idempotent.once(this.#context(request), {}, async () => {
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
        const written = await this.#idempotent.once(this.#context(request), fingerprinted, async () => {
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
      const { from, to } = this.#integrity.range(request.query.from, request.query.to);
      const report = await this.#integrity.compare(from, to);
      const mismatched = report.days.filter((d) => !d.match).length;
      this.#audit.remember({ action: 'integrity', outcome: 'done', detail: { from, to, mismatched } });
      return report;
    });

    app.post('/api/resubmit', { schema: { querystring: NoQuery, body: ResubmitBody } }, async (request) => {
      const body = request.body;
      const { from, to } = this.#integrity.range(body.from, body.to);
      if (body.adminPassword !== undefined) await this.#elevate(body.adminPassword, 'resubmit');
      else await this.#checkGrant(body.grant, 'resubmit');
      const result = await this.#integrity.resubmit(from, to);
      this.#audit.remember({
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
        answer(reply, await this.#idempotent.once(this.#context(request), {}, () => this.#retryAll())),
    );

    app.get('/api/outbox', { schema: noQuery }, () => log.outbox());
    app.get('/api/incidents', { schema: noQuery }, () => log.incidents());
    app.get('/api/patients', { schema: { querystring: PatientsQuery } }, (request, reply) => {
      const { q, ids, limit, offset } = request.query;
      if (q === undefined && ids === undefined && limit === undefined && offset === undefined)
        return served(reply, log.tentative().patients());
      // A page: what the Sync Centre asks for, so that a screen never loads a whole facility's
      // patients (`Accord-Total` says how many matched).
      const page = log.tentative().findPatients({
        ...(ids === undefined ? {} : { ids }),
        ...(q === undefined ? {} : { text: q }),
        offset: offset ?? 0,
        limit: limit ?? PATIENTS_MAX_LIMIT,
      });
      void reply.header('Accord-Total', String(page.total));
      return served(reply, page.patients);
    });
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
      this.#audit.remember({ action: 'network', outcome: 'done', detail: { online: network.online } });
      this.#streams.changed();
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
    // Only the accepted-verdict batches that name `id` come: the others stay numbers.
    for (const e of this.#opts.log.visibleEvents({ systemOnly: true, naming: id })) {
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
    this.#audit.remember({
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
    this.#audit.remember({
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
