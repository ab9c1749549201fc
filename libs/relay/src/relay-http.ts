import type { IncomingMessage, Server } from 'node:http';
import {
  canonicalEncode,
  DEFAULT_ELEVATION_TTL_MS,
  DEVICE_REQUEST_MAX_SKEW_MS,
  DeviceRequestHeader,
  ELEVATION_ACTIONS,
  ENROLL_PATH,
  ErrorCode,
  isJsonValue,
  verifyDeviceRequest,
  type DayDigest,
  type ElevationAction,
  type ElevationGrant,
  isAccordError,
  isDeviceId,
  isFacilityId,
  parseEnrollRequest,
  verifyEnrollProof,
  type DeviceId,
  type EnrollRequest,
  type EnrollResponse,
  type FacilityId,
} from '@accord/protocol';
import {
  checkRequestOrigin,
  createJsonServer,
  describeRequestProblem,
  drainAfterEarlyReply,
  isJsonRequest,
  requestProblemOf,
} from '@accord/network-ws';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ADMIN_PAGE_HEADERS, renderAdminPage, type AdminPageSnapshot } from './admin-page.js';
import type { RelayLogger } from './logger.js';
import type { RelayMetrics } from './metrics.js';

/** The JSON body of every error answer. */
export interface RelayErrorBody {
  readonly code: string;
  readonly message: string;
  readonly details?: Readonly<Record<string, unknown>>;
}

/** The admin operations behind `/admin/…`; the relay implements them over its data folder. */
export interface RelayAdminApi {
  /** The facilities and what to show about each (`GET /admin/facilities` → `{facilities}`). */
  facilities(): Promise<readonly object[]>;
  /** Creates an enrollment token (`POST /admin/facilities/:id/tokens`, body `{ttlMs?}`). */
  createToken(
    facility: FacilityId,
    ttlMs?: number,
  ): Promise<{ readonly token: string; readonly expires: string }>;
  /** Revokes a device (`POST /admin/devices/:id/revoke`); the result is answered as JSON. */
  revoke(device: DeviceId): Promise<object>;
  /** What the admin page shows (`GET /admin/`); absent: that route answers 404. */
  snapshot?(): Promise<AdminPageSnapshot>;
}

/**
 * What the relay answers to its enrolled devices over HTTP (`/device/…`, each request signed by
 * the device's key): admin elevation and the integrity questions of issue #10.
 */
export interface RelayDeviceApi {
  /** The device's facility and whether it is revoked, or undefined when no facility lists it. */
  member(device: DeviceId): Promise<{ readonly facility: FacilityId; readonly revoked: boolean } | undefined>;
  /** Signs a grant for `device` of `facility` to perform `action` for `ttlMs`. */
  grant(
    device: DeviceId,
    facility: FacilityId,
    action: ElevationAction,
    ttlMs: number,
  ): Promise<ElevationGrant>;
  /** Per-day digests of the facility's event set for the UTC days `from`…`to` (only days with events). */
  digests(facility: FacilityId, from: string, to: string): Promise<readonly DayDigest[]>;
  /** The ids of the facility's events of one UTC day, sorted. */
  ids(facility: FacilityId, day: string): Promise<readonly string[]>;
}

/** A token bucket's shape: `capacity` requests at once, refilled at `refillPerSecond`. */
export interface RateLimit {
  readonly capacity: number;
  readonly refillPerSecond: number;
}

/** Options of {@link createRelayHttp} (all have defaults). */
export interface RelayHttpOptions {
  /** Largest accepted request body in bytes (default 16 KiB). */
  readonly maxBodyBytes?: number;
  /** Per-address limit on `POST /enroll` requests (default 10 at once, then one per 6 s). */
  readonly enrollLimit?: RateLimit;
  /** Per-address limit on failed admin authentications (default 5 at once, then one per 12 s). */
  readonly adminFailureLimit?: RateLimit;
  /** Clock in ms for the rate limiters (default Date.now). */
  readonly clock?: () => number;
  /** Per-device limit on wrong admin passwords at `POST /device/elevate` (default 5 per 10 min). */
  readonly elevationFailureLimit?: RateLimit;
  /** Lifetime of the grants `POST /device/elevate` issues (default 10 min). */
  readonly elevationTtlMs?: number;
  /** Longest `from`…`to` range of `GET /device/integrity`, in days (default 366). */
  readonly maxIntegrityDays?: number;
}

/** What the HTTP front needs; everything is injected so it can be tested alone. */
export interface RelayHttpDeps {
  readonly metrics: RelayMetrics;
  /** Extra fields of `GET /healthz` (merged after `status: 'ok'`). */
  readonly health: () => Readonly<Record<string, unknown>>;
  /** Enrolls a device whose proof was verified; throws `RELAY_TOKEN_*`, `RELAY_ALREADY_ENROLLED`, … */
  readonly enroll: (request: EnrollRequest) => Promise<EnrollResponse>;
  /** True when `password` is the admin password. */
  readonly verifyAdmin: (password: string) => Promise<boolean>;
  readonly admin: RelayAdminApi;
  /** The device routes; absent: `/device/…` answers 404. */
  readonly device?: RelayDeviceApi;
  readonly logger: RelayLogger;
  /** True while the relay shuts down: enroll and admin answer 503 `RELAY_STOPPING`. */
  readonly stopping?: () => boolean;
  readonly options?: RelayHttpOptions;
}

/** Default body cap of the relay's HTTP front: 16 KiB. */
export const DEFAULT_RELAY_MAX_BODY = 16 * 1024;
/** Default per-address limit on enrollment requests. */
export const DEFAULT_ENROLL_LIMIT: RateLimit = { capacity: 10, refillPerSecond: 1 / 6 };
/** Default per-address limit on failed admin authentications. */
export const DEFAULT_ADMIN_FAILURE_LIMIT: RateLimit = { capacity: 5, refillPerSecond: 1 / 12 };
/** Default per-device limit on wrong admin passwords when asking for an elevation: 5 per 10 min. */
export const DEFAULT_ELEVATION_FAILURE_LIMIT: RateLimit = { capacity: 5, refillPerSecond: 5 / 600 };

const DAY = /^\d{4}-\d{2}-\d{2}$/;

const ADMIN_USER = 'admin';
const REALM = 'Basic realm="accord-relay", charset="UTF-8"';

/**
 * Per-key token buckets (keys are client addresses): each key starts with `capacity` tokens and
 * regains `refillPerSecond`.
 *
 * @remarks Remembers at most `maxKeys` keys, forgetting the least recently used (a forgotten key
 * starts full again: the bound protects memory, not precision).
 */
export class RateLimiter {
  readonly #limit: RateLimit;
  readonly #clock: () => number;
  readonly #maxKeys: number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(limit: RateLimit, clock: () => number = Date.now, maxKeys = 10_000) {
    if (!(limit.capacity >= 1) || !(limit.refillPerSecond > 0)) {
      throw new RangeError('a rate limit needs capacity >= 1 and refillPerSecond > 0');
    }
    this.#limit = limit;
    this.#clock = clock;
    this.#maxKeys = maxKeys;
  }

  #bucket(key: string): { tokens: number; at: number } {
    const now = this.#clock();
    const previous = this.#buckets.get(key);
    const bucket =
      previous === undefined
        ? { tokens: this.#limit.capacity, at: now }
        : {
            tokens: Math.min(
              this.#limit.capacity,
              previous.tokens + (Math.max(0, now - previous.at) / 1000) * this.#limit.refillPerSecond,
            ),
            at: now,
          };
    // Re-insert to keep the map in least-recently-used order.
    this.#buckets.delete(key);
    this.#buckets.set(key, bucket);
    if (this.#buckets.size > this.#maxKeys) {
      const oldest = this.#buckets.keys().next();
      if (oldest.done !== true) this.#buckets.delete(oldest.value);
    }
    return bucket;
  }

  /** Takes one token for `key`; false (nothing taken) when its bucket is empty. */
  take(key: string): boolean {
    const bucket = this.#bucket(key);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** Gives back a token taken by {@link take} (e.g. the attempt turned out legitimate). */
  refund(key: string): void {
    const bucket = this.#bucket(key);
    bucket.tokens = Math.min(this.#limit.capacity, bucket.tokens + 1);
  }

  /** Whole seconds until `key` has a token again (0 when it has one now). */
  retryAfterSeconds(key: string): number {
    const bucket = this.#bucket(key);
    return bucket.tokens >= 1 ? 0 : Math.ceil((1 - bucket.tokens) / this.#limit.refillPerSecond);
  }
}

/** A failure with its HTTP status; everything the routes and hooks throw on purpose is one. */
class HttpFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Readonly<Record<string, unknown>> = {},
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

/** The HTTP status of each shared error code the relay's handlers may throw (anything else: 500). */
const STATUS_OF_CODE: Readonly<Record<string, number>> = {
  [ErrorCode.RELAY_BAD_REQUEST]: 400,
  [ErrorCode.RELAY_UNAUTHORIZED]: 403,
  [ErrorCode.RELAY_TOKEN_INVALID]: 403,
  [ErrorCode.RELAY_TOKEN_EXPIRED]: 403,
  [ErrorCode.RELAY_TOKEN_USED]: 403,
  [ErrorCode.RELAY_UNKNOWN_FACILITY]: 404,
  [ErrorCode.RELAY_UNKNOWN_DEVICE]: 404,
  [ErrorCode.RELAY_NOT_FOUND]: 404,
  [ErrorCode.RELAY_DEVICE_UNAUTHENTICATED]: 401,
  [ErrorCode.RELAY_ELEVATION_REFUSED]: 403,
  [ErrorCode.RELAY_ALREADY_ENROLLED]: 409,
  [ErrorCode.RELAY_NOT_INITIALIZED]: 503,
  [ErrorCode.RELAY_STOPPING]: 503,
};

/** `POST /device/elevate`. */
const ElevateBody = z
  .strictObject({
    adminPassword: z.string().min(1).max(4096),
    action: z.enum(ELEVATION_ACTIONS),
  })
  .describe(
    `body must be {"adminPassword": "…", "action": ${ELEVATION_ACTIONS.map((a) => `"${a}"`).join(' | ')}}`,
  );

/** `POST /admin/facilities/:id/tokens`: no body, or `{ttlMs?}`. */
const TokenBody = z
  .strictObject(
    { ttlMs: z.number().int().positive({ error: 'ttlMs must be a positive integer' }).optional() },
    { error: 'body must be a JSON object {"ttlMs"?}' },
  )
  .nullish();

/** A UTC day `YYYY-MM-DD` in a query. */
const day = (name: string) =>
  z.string({ error: `${name} must be a date YYYY-MM-DD` }).refine(isCalendarDay, {
    error: `${name} must be a date YYYY-MM-DD`,
  });

const IntegrityQuery = z.strictObject({ from: day('from'), to: day('to') });
const IdsQuery = z.strictObject({ day: day('day') });
const IdParams = z.object({ id: z.string() });

/** The relay's HTTP front: the node:http server it answers on, and when it is ready to. */
export interface RelayHttpFront {
  /**
   * The server: listen on it once {@link RelayHttpFront.ready} resolved. Upgrade requests are left
   * alone (the relay's WebSocket endpoint attaches its `upgrade` listener here).
   */
  readonly server: Server;
  /** Resolves once every route is in place. */
  ready(): Promise<void>;
}

/**
 * The relay's HTTP front on Fastify: health, metrics, enrollment, the device routes and admin.
 *
 * @remarks Routes: `GET /healthz`, `GET /metrics`, `POST /enroll`, the signed device routes
 * (`POST /device/elevate`, `GET /device/integrity`, `GET /device/ids`), and with HTTP Basic auth
 * (user `admin`) `GET /admin/` (the HTML admin page), `GET /admin/facilities`,
 * `POST /admin/facilities/:id/tokens`, `POST /admin/devices/:id/revoke`. Never throws and never
 * crashes on input: every failure, Fastify's own included, is a JSON `{code, message}` with a 4xx
 * status, or 5xx for a fault: 500 `RELAY_INTERNAL` for an unexpected exception, or an
 * `AccordError`'s own code with its message withheld (both logged). Enrollment requests and
 * failed admin logins are rate-limited per client address (429 with `Retry-After`); an admin
 * attempt reserves a token before the password check, so parallel guesses cannot outrun the
 * limit. Admin requests from another web page (an `Origin` other than `http(s)://` + the
 * request's `Host`, or `Sec-Fetch-Site` other than `same-origin`/`none`) are refused 403
 * `RELAY_FOREIGN_ORIGIN` before authentication, and authenticated admin `POST`s not declared
 * `application/json` 415 `RELAY_UNSUPPORTED_MEDIA_TYPE`. Counts every enrollment in
 * `accord_relay_enrollments_total` (callers must not count them again). Secrets (tokens,
 * passwords) are never logged.
 */
export function createRelayHttp(deps: RelayHttpDeps): RelayHttpFront {
  const options = deps.options ?? {};
  const clock = options.clock ?? Date.now;
  const maxBody = options.maxBodyBytes ?? DEFAULT_RELAY_MAX_BODY;
  const enrollLimiter = new RateLimiter(options.enrollLimit ?? DEFAULT_ENROLL_LIMIT, clock);
  const adminLimiter = new RateLimiter(options.adminFailureLimit ?? DEFAULT_ADMIN_FAILURE_LIMIT, clock);
  const elevationLimiter = new RateLimiter(
    options.elevationFailureLimit ?? DEFAULT_ELEVATION_FAILURE_LIMIT,
    clock,
  );
  const log = deps.logger;
  // `/enroll` has always read its body as JSON whatever its declared type.
  const { app, allowedMethods } = createJsonServer({
    bodyLimit: maxBody,
    accept: 'any',
    badRequestCode: ErrorCode.RELAY_BAD_REQUEST,
  });
  /** The device that signed each `/device/…` request (set before its route runs). */
  const signers = new WeakMap<IncomingMessage, { device: DeviceId; facility: FacilityId }>();

  const checkStopping = (): void => {
    if (deps.stopping?.() === true) {
      throw new HttpFailure(503, ErrorCode.RELAY_STOPPING, 'the relay is shutting down');
    }
  };

  const rateLimited = (limiter: RateLimiter, ip: string, what: string): HttpFailure => {
    const retry = Math.max(1, limiter.retryAfterSeconds(ip));
    log.warn({ ip, what }, 'rate limited');
    return new HttpFailure(
      429,
      ErrorCode.RELAY_RATE_LIMITED,
      `too many ${what} from this address; retry in ${retry} s`,
      { retryAfter: retry },
      { 'Retry-After': String(retry) },
    );
  };

  const authenticate = async (req: IncomingMessage): Promise<void> => {
    const ip = clientAddress(req);
    const credentials = basicCredentials(req.headers.authorization);
    if (credentials === undefined) {
      throw new HttpFailure(
        401,
        ErrorCode.RELAY_UNAUTHORIZED,
        'admin credentials required (HTTP Basic, user "admin")',
        {},
        { 'WWW-Authenticate': REALM },
      );
    }
    // Reserve before checking: parallel wrong guesses each spend a token up front.
    if (!adminLimiter.take(ip)) throw rateLimited(adminLimiter, ip, 'failed admin logins');
    const ok = credentials.user === ADMIN_USER && (await deps.verifyAdmin(credentials.password));
    if (ok) {
      adminLimiter.refund(ip);
      return;
    }
    log.warn({ ip }, 'admin authentication failed');
    throw new HttpFailure(
      401,
      ErrorCode.RELAY_UNAUTHORIZED,
      'wrong admin credentials',
      {},
      { 'WWW-Authenticate': REALM },
    );
  };

  const deviceApi = (): RelayDeviceApi => {
    if (deps.device === undefined) throw new HttpFailure(404, ErrorCode.RELAY_NOT_FOUND, 'no such route');
    return deps.device;
  };

  /**
   * Who signed this request: an enrolled, unrevoked device whose signature covers the method, the
   * path with its query, a time near the relay's clock and the body (its canonical JSON).
   */
  const authenticateDevice = async (
    req: IncomingMessage,
    body: unknown,
  ): Promise<{ device: DeviceId; facility: FacilityId }> => {
    const api = deviceApi();
    const refuse = (reason: string, status = 401): HttpFailure =>
      new HttpFailure(status, ErrorCode.RELAY_DEVICE_UNAUTHENTICATED, `device request refused: ${reason}`, {
        reason,
      });
    const device = req.headers[DeviceRequestHeader.Device];
    const time = req.headers[DeviceRequestHeader.Time];
    const signature = req.headers[DeviceRequestHeader.Signature];
    if (typeof device !== 'string' || typeof time !== 'string' || typeof signature !== 'string') {
      throw refuse('unsigned');
    }
    if (!isDeviceId(device) || !/^\d{1,16}$/.test(time)) throw refuse('malformed');
    const at = Number(time);
    if (Math.abs(clock() - at) > DEVICE_REQUEST_MAX_SKEW_MS) throw refuse('stale');
    if (body !== undefined && !isJsonValue(body)) throw refuse('malformed');
    const bytes = body === undefined ? new Uint8Array() : canonicalEncode(body);
    if (!(await verifyDeviceRequest(device, req.method ?? '', req.url ?? '', at, bytes, signature))) {
      throw refuse('bad-signature');
    }
    const member = await api.member(device);
    if (member === undefined) throw refuse('unknown-device', 403);
    if (member.revoked) throw refuse('revoked-device', 403);
    return { device, facility: member.facility };
  };

  const signer = (req: IncomingMessage): { device: DeviceId; facility: FacilityId } => {
    const who = signers.get(req);
    if (who === undefined) throw new Error('a device route ran without its signature checked');
    return who;
  };

  /**
   * The guards of each area, before any body is read, in the order the relay has always applied
   * them: `/admin/…` (stopping, other web pages, login, JSON writes), `/device/…` (stopping, no
   * device routes, any web page, JSON writes), `POST /enroll` (stopping, rate limit); then 405 or
   * 404 for what no route takes.
   */
  app.addHook('onRequest', async (request, reply) => {
    const req = request.raw;
    req.on('error', () => {
      // A client that goes away mid-request is not our failure.
    });
    reply.raw.on('error', () => {});
    void reply.header('Cache-Control', 'no-store').header('X-Content-Type-Options', 'nosniff');
    const [area] = pathSegments(req.url);
    if (area === 'admin') {
      checkStopping();
      // Before the password is checked: a browser sends an admin's cached Basic credentials with
      // a foreign page's requests too, and such a refusal must not spend the login budget.
      if (checkRequestOrigin(request, {}) !== undefined) {
        throw new HttpFailure(
          403,
          ErrorCode.RELAY_FOREIGN_ORIGIN,
          'admin requests from other web pages are refused',
          {
            origin: req.headers.origin ?? null,
          },
        );
      }
      await authenticate(req);
      // A form's content types (text/plain, urlencoded, multipart) need no CORS preflight.
      if (req.method === 'POST' && !isJsonRequest(request)) {
        throw new HttpFailure(
          415,
          ErrorCode.RELAY_UNSUPPORTED_MEDIA_TYPE,
          'admin writes need Content-Type: application/json',
          { contentType: req.headers['content-type'] ?? null },
        );
      }
    } else if (area === 'device') {
      checkStopping();
      deviceApi();
      // Devices are programs, not pages: a browser's request from any page is refused.
      if (req.headers.origin !== undefined || checkRequestOrigin(request, {}) !== undefined) {
        throw new HttpFailure(
          403,
          ErrorCode.RELAY_FOREIGN_ORIGIN,
          'device requests from web pages are refused',
          {
            origin: req.headers.origin ?? null,
          },
        );
      }
      if (req.method === 'POST' && !isJsonRequest(request)) {
        throw new HttpFailure(
          415,
          ErrorCode.RELAY_UNSUPPORTED_MEDIA_TYPE,
          'device writes need Content-Type: application/json',
          { contentType: req.headers['content-type'] ?? null },
        );
      }
    } else if (isEnroll(request)) {
      checkStopping();
      const ip = clientAddress(req);
      if (!enrollLimiter.take(ip)) throw rateLimited(enrollLimiter, ip, 'enrollment requests');
    }
    if (request.is404) {
      const allow = allowedMethods(req.url ?? '/');
      if (allow === undefined) throw new HttpFailure(404, ErrorCode.RELAY_NOT_FOUND, 'no such route');
      throw new HttpFailure(
        405,
        ErrorCode.RELAY_METHOD_NOT_ALLOWED,
        `${req.method ?? '?'} is not allowed here`,
        { allow },
        { Allow: allow.join(', ') },
      );
    }
  });
  app.setNotFoundHandler(() => {
    throw new HttpFailure(404, ErrorCode.RELAY_NOT_FOUND, 'no such route');
  });
  // A device's signature covers its body as sent: checked before the body's schema.
  app.addHook('preValidation', async (request) => {
    if (pathSegments(request.raw.url)[0] !== 'device') return;
    signers.set(request.raw, await authenticateDevice(request.raw, request.body));
  });
  app.addHook('onSend', async (request, reply, payload) => {
    // We may answer before the body was read (413, 429, 401…).
    drainAfterEarlyReply(request.raw, reply.raw, maxBody);
    return payload;
  });
  app.setErrorHandler((error, request, reply) => {
    let answer: ErrorReply;
    try {
      answer = toErrorReply(error, request.raw, log, maxBody);
      if (isEnroll(request)) {
        deps.metrics.enrollment(answer.body.code);
        if (answer.status !== 429)
          log.info({ ip: clientAddress(request.raw), code: answer.body.code }, 'enrollment refused');
      }
    } catch {
      answer = {
        status: 500,
        body: { code: ErrorCode.RELAY_INTERNAL, message: 'internal error' },
        headers: {},
      };
    }
    void reply
      .code(answer.status)
      .headers(answer.headers)
      .type('application/json; charset=utf-8')
      .send(answer.body);
  });

  app.get('/healthz', () => ({ ...deps.health(), status: 'ok' }));
  app.get('/metrics', async (_request, reply) => {
    const text = await deps.metrics.text();
    return reply.type(deps.metrics.contentType).send(text);
  });

  app.post(ENROLL_PATH, async (request, reply) => {
    const ip = clientAddress(request.raw);
    // The protocol's own schema: its refusal names the field.
    const parsed = parseEnrollRequest(request.body);
    if (!parsed.ok) {
      throw new HttpFailure(400, ErrorCode.RELAY_BAD_REQUEST, parsed.error.message, parsed.error.details);
    }
    const enrollment = parsed.value;
    if (!(await verifyEnrollProof(enrollment))) {
      throw new HttpFailure(
        403,
        ErrorCode.RELAY_UNAUTHORIZED,
        'the proof is not the device key’s signature over the token',
      );
    }
    const response = await deps.enroll(enrollment);
    deps.metrics.enrollment('enrolled');
    log.info({ ip, device: enrollment.device, facility: response.facility }, 'device enrolled');
    return reply.code(201).send(response);
  });

  app.post('/device/elevate', { schema: { body: ElevateBody } }, async (request) => {
    const who = signer(request.raw);
    const { adminPassword, action } = request.body;
    // Reserve before checking, as for admin logins: parallel guesses each spend a token.
    if (!elevationLimiter.take(who.device)) {
      const retry = Math.max(1, elevationLimiter.retryAfterSeconds(who.device));
      log.warn({ ...who, action, outcome: 'rate-limited' }, 'elevation refused');
      throw new HttpFailure(
        429,
        ErrorCode.RELAY_RATE_LIMITED,
        `too many wrong admin passwords from this device; retry in ${retry} s`,
        { retryAfter: retry },
        { 'Retry-After': String(retry) },
      );
    }
    if (!(await deps.verifyAdmin(adminPassword))) {
      log.warn({ ...who, action, outcome: 'wrong-password' }, 'elevation refused');
      throw new HttpFailure(403, ErrorCode.RELAY_ELEVATION_REFUSED, 'wrong admin password', { action });
    }
    elevationLimiter.refund(who.device);
    const grant = await deviceApi().grant(
      who.device,
      who.facility,
      action,
      options.elevationTtlMs ?? DEFAULT_ELEVATION_TTL_MS,
    );
    log.info({ ...who, action, expires: new Date(grant.expires).toISOString() }, 'elevation granted');
    return { grant };
  });

  app.get('/device/integrity', { schema: { querystring: IntegrityQuery } }, async (request) => {
    const who = signer(request.raw);
    const { from, to } = request.query;
    const span = (Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000 + 1;
    const max = options.maxIntegrityDays ?? 366;
    if (span < 1 || span > max) {
      throw new HttpFailure(400, ErrorCode.RELAY_BAD_REQUEST, `from…to must be 1-${max} days`, { from, to });
    }
    const days = await deviceApi().digests(who.facility, from, to);
    log.info({ ...who, from, to }, 'integrity digests served');
    return { facility: who.facility, zone: 'UTC', from, to, days };
  });

  app.get('/device/ids', { schema: { querystring: IdsQuery } }, async (request) => {
    const who = signer(request.raw);
    const { day } = request.query;
    return { day, ids: await deviceApi().ids(who.facility, day) };
  });

  // `/admin/` and `/admin`: the page, behind the same origin guard and login as the API.
  app.get('/admin', async (_request, reply) => {
    if (deps.admin.snapshot === undefined) {
      throw new HttpFailure(404, ErrorCode.RELAY_NOT_FOUND, 'no such route');
    }
    const page = renderAdminPage(await deps.admin.snapshot());
    return reply.headers(ADMIN_PAGE_HEADERS).type('text/html; charset=utf-8').send(page);
  });

  app.get('/admin/facilities', async () => ({ facilities: await deps.admin.facilities() }));

  app.post(
    '/admin/facilities/:id/tokens',
    { schema: { params: IdParams, body: TokenBody } },
    async (request, reply) => {
      const id = request.params.id;
      if (!isFacilityId(id)) {
        throw new HttpFailure(400, ErrorCode.RELAY_BAD_REQUEST, 'malformed facility id', { facility: id });
      }
      const ttlMs = request.body?.ttlMs;
      const created = await deps.admin.createToken(id, ...(ttlMs === undefined ? [] : [ttlMs]));
      log.info(
        { ip: clientAddress(request.raw), facility: id, expires: created.expires },
        'enrollment token created',
      );
      return reply.code(201).send({ facility: id, token: created.token, expires: created.expires });
    },
  );

  app.post(
    '/admin/devices/:id/revoke',
    // Any JSON body (or none) is taken and ignored, as it always was.
    { schema: { params: IdParams } },
    async (request) => {
      const id = request.params.id;
      if (!isDeviceId(id)) {
        throw new HttpFailure(400, ErrorCode.RELAY_BAD_REQUEST, 'malformed device id', { device: id });
      }
      const result = await deps.admin.revoke(id);
      log.info({ ip: clientAddress(request.raw), device: id }, 'device revoked');
      return result;
    },
  );

  return { server: app.server, ready: async () => void (await app.ready()) };
}

/** True for `POST /enroll`, the one public write (rate-limited, and counted whatever its outcome). */
function isEnroll(request: FastifyRequest): boolean {
  return request.method === 'POST' && request.routeOptions.url === ENROLL_PATH;
}

/** The path's segments as sent (`//admin/` is `['admin']`), for telling the areas apart. */
function pathSegments(url: string | undefined): string[] {
  return (url ?? '/')
    .split('?')[0]!
    .split('/')
    .filter((s) => s !== '');
}

/** The client's address, IPv4-mapped IPv6 folded to IPv4. */
function clientAddress(req: IncomingMessage): string {
  const address = req.socket.remoteAddress ?? 'unknown';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

function basicCredentials(header: string | undefined): { user: string; password: string } | undefined {
  const match = header === undefined ? null : /^Basic +([A-Za-z0-9+/=]+) *$/i.exec(header);
  if (match?.[1] === undefined) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function isCalendarDay(s: string): boolean {
  if (!DAY.test(s)) return false;
  const d = new Date(`${s}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === s;
}

/** The answer to a failure. */
interface ErrorReply {
  readonly status: number;
  readonly body: RelayErrorBody;
  readonly headers: Readonly<Record<string, string>>;
}

function toErrorReply(e: unknown, req: IncomingMessage, log: RelayLogger, maxBody: number): ErrorReply {
  const errorBody = (
    code: string,
    message: string,
    details: Readonly<Record<string, unknown>>,
  ): RelayErrorBody => (Object.keys(details).length === 0 ? { code, message } : { code, message, details });
  if (e instanceof HttpFailure) {
    return { status: e.status, body: errorBody(e.code, e.message, e.details), headers: e.headers };
  }
  const problem = requestProblemOf(e);
  if (problem !== undefined) {
    // Fastify's own refusals (body, content type, schemas) in the relay's codes.
    if (problem.kind === 'too-large') {
      return {
        status: 413,
        body: errorBody(ErrorCode.RELAY_BODY_TOO_LARGE, `request body exceeds ${maxBody} bytes`, {
          limit: maxBody,
        }),
        headers: {},
      };
    }
    const message =
      problem.kind === 'bad-length' ? 'request aborted' : describeRequestProblem(problem, maxBody);
    return { status: 400, body: { code: ErrorCode.RELAY_BAD_REQUEST, message }, headers: {} };
  }
  if (isAccordError(e)) {
    const status = STATUS_OF_CODE[e.code] ?? 500;
    if (status === 500) {
      // A fault of ours (damaged file, storage): the log gets the story, the client only the code.
      log.error({ err: e, method: req.method, url: req.url }, 'request failed');
      return { status, body: { code: e.code, message: 'internal error (see the relay log)' }, headers: {} };
    }
    return { status, body: errorBody(e.code, e.message, e.details), headers: {} };
  }
  log.error({ err: e, method: req.method, url: req.url }, 'unexpected failure answering a request');
  return { status: 500, body: { code: ErrorCode.RELAY_INTERNAL, message: 'internal error' }, headers: {} };
}
