import type { IncomingMessage, ServerResponse } from 'node:http';
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
  drainAfterEarlyReply,
  isJsonRequest,
  matchPath,
  readJsonBody as readBody,
} from '@accord/network-ws';
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

/** Options of {@link createRelayHttpHandler} (all have defaults). */
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

/** A node:http request listener. */
export type RelayHttpHandler = (req: IncomingMessage, res: ServerResponse) => void;

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

/** An answer to send: JSON unless `text` is given. */
interface Reply {
  readonly status: number;
  readonly body?: unknown;
  readonly text?: string;
  readonly contentType?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** A failure with its HTTP status; everything the handler throws on purpose is one. */
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

interface Route {
  readonly path: readonly string[];
  readonly methods: Readonly<
    Partial<Record<'GET' | 'POST', (req: IncomingMessage, params: string[]) => Promise<Reply>>>
  >;
}

/**
 * The relay's HTTP front as a node:http request listener: health, metrics, enrollment and admin.
 *
 * @remarks Routes: `GET /healthz`, `GET /metrics`, `POST /enroll`, and with HTTP Basic auth (user
 * `admin`) `GET /admin/` (the HTML admin page), `GET /admin/facilities`, `POST /admin/facilities/:id/tokens`,
 * `POST /admin/devices/:id/revoke`. Never throws and never crashes on input: every failure is a
 * JSON `{code, message}` with a 4xx status, or 5xx for a fault: 500 `RELAY_INTERNAL` for an
 * unexpected exception, or an `AccordError`'s own code with its message withheld (both logged).
 * Enrollment requests and failed admin logins are rate-limited per client address (429 with
 * `Retry-After`); an admin attempt reserves a token before the password check, so parallel guesses
 * cannot outrun the limit. Admin requests from another web page (an `Origin` other than
 * `http(s)://` + the request's `Host`, or `Sec-Fetch-Site` other than `same-origin`/`none`) are
 * refused 403 `RELAY_FOREIGN_ORIGIN` before authentication, and authenticated admin `POST`s
 * not declared `application/json` 415 `RELAY_UNSUPPORTED_MEDIA_TYPE`. Counts every enrollment in `accord_relay_enrollments_total` (callers
 * must not count them again). Secrets (tokens, passwords) are never logged.
 */
export function createRelayHttpHandler(deps: RelayHttpDeps): RelayHttpHandler {
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

  const enroll = async (req: IncomingMessage): Promise<Reply> => {
    const ip = clientAddress(req);
    try {
      checkStopping();
      if (!enrollLimiter.take(ip)) throw rateLimited(enrollLimiter, ip, 'enrollment requests');
      const body = await readJsonBody(req, maxBody);
      const parsed = parseEnrollRequest(body);
      if (!parsed.ok) {
        throw new HttpFailure(400, ErrorCode.RELAY_BAD_REQUEST, parsed.error.message, parsed.error.details);
      }
      const request = parsed.value;
      if (!(await verifyEnrollProof(request))) {
        throw new HttpFailure(
          403,
          ErrorCode.RELAY_UNAUTHORIZED,
          'the proof is not the device key’s signature over the token',
        );
      }
      const response = await deps.enroll(request);
      deps.metrics.enrollment('enrolled');
      log.info({ ip, device: request.device, facility: response.facility }, 'device enrolled');
      return { status: 201, body: response };
    } catch (e) {
      deps.metrics.enrollment(errorCodeOf(e));
      if (!(e instanceof HttpFailure && e.status === 429))
        log.info({ ip, code: errorCodeOf(e) }, 'enrollment refused');
      throw e;
    }
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
        {
          'WWW-Authenticate': REALM,
        },
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
      {
        'WWW-Authenticate': REALM,
      },
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

  const elevate = async (req: IncomingMessage): Promise<Reply> => {
    const body = await readJsonBody(req, maxBody);
    const who = await authenticateDevice(req, body);
    const { adminPassword, action } = parseElevateBody(body);
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
    return { status: 200, body: { grant } };
  };

  const dayParam = (query: URLSearchParams, name: string): string => {
    const v = query.get(name);
    if (v === null || !isCalendarDay(v)) {
      throw new HttpFailure(400, ErrorCode.RELAY_BAD_REQUEST, `${name} must be a date YYYY-MM-DD`, {
        [name]: v,
      });
    }
    return v;
  };

  const integrity = async (req: IncomingMessage): Promise<Reply> => {
    const who = await authenticateDevice(req, undefined);
    const query = queryOf(req.url, ['from', 'to']);
    const from = dayParam(query, 'from');
    const to = dayParam(query, 'to');
    const span = (Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000 + 1;
    const max = options.maxIntegrityDays ?? 366;
    if (span < 1 || span > max) {
      throw new HttpFailure(400, ErrorCode.RELAY_BAD_REQUEST, `from…to must be 1-${max} days`, { from, to });
    }
    const days = await deviceApi().digests(who.facility, from, to);
    log.info({ ...who, from, to }, 'integrity digests served');
    return { status: 200, body: { facility: who.facility, zone: 'UTC', from, to, days } };
  };

  const ids = async (req: IncomingMessage): Promise<Reply> => {
    const who = await authenticateDevice(req, undefined);
    const day = dayParam(queryOf(req.url, ['day']), 'day');
    return { status: 200, body: { day, ids: await deviceApi().ids(who.facility, day) } };
  };

  const deviceRoutes: readonly Route[] = [
    { path: ['device', 'elevate'], methods: { POST: elevate } },
    { path: ['device', 'integrity'], methods: { GET: integrity } },
    { path: ['device', 'ids'], methods: { GET: ids } },
  ];

  const publicRoutes: readonly Route[] = [
    {
      path: ['healthz'],
      methods: { GET: () => Promise.resolve({ status: 200, body: { ...deps.health(), status: 'ok' } }) },
    },
    {
      path: ['metrics'],
      methods: {
        GET: async () => ({
          status: 200,
          text: await deps.metrics.text(),
          contentType: deps.metrics.contentType,
        }),
      },
    },
    { path: ENROLL_PATH.split('/').filter((s) => s !== ''), methods: { POST: enroll } },
  ];

  const adminRoutes: readonly Route[] = [
    {
      // `/admin/` and `/admin`: the page, behind the same origin guard and login as the API.
      path: ['admin'],
      methods: {
        GET: async () => {
          if (deps.admin.snapshot === undefined) {
            throw new HttpFailure(404, ErrorCode.RELAY_NOT_FOUND, 'no such route');
          }
          return {
            status: 200,
            text: renderAdminPage(await deps.admin.snapshot()),
            contentType: 'text/html; charset=utf-8',
            headers: ADMIN_PAGE_HEADERS,
          };
        },
      },
    },
    {
      path: ['admin', 'facilities'],
      methods: { GET: async () => ({ status: 200, body: { facilities: await deps.admin.facilities() } }) },
    },
    {
      path: ['admin', 'facilities', ':id', 'tokens'],
      methods: {
        POST: async (req, [id]) => {
          if (id === undefined || !isFacilityId(id)) {
            throw new HttpFailure(400, ErrorCode.RELAY_BAD_REQUEST, 'malformed facility id', {
              facility: id,
            });
          }
          const body = await readJsonBody(req, maxBody, true);
          const ttlMs = parseTtl(body);
          const created = await deps.admin.createToken(id, ...(ttlMs === undefined ? [] : [ttlMs]));
          log.info(
            { ip: clientAddress(req), facility: id, expires: created.expires },
            'enrollment token created',
          );
          return { status: 201, body: { facility: id, token: created.token, expires: created.expires } };
        },
      },
    },
    {
      path: ['admin', 'devices', ':id', 'revoke'],
      methods: {
        POST: async (req, [id]) => {
          if (id === undefined || !isDeviceId(id)) {
            throw new HttpFailure(400, ErrorCode.RELAY_BAD_REQUEST, 'malformed device id', { device: id });
          }
          await readJsonBody(req, maxBody, true);
          const result = await deps.admin.revoke(id);
          log.info({ ip: clientAddress(req), device: id }, 'device revoked');
          return { status: 200, body: result };
        },
      },
    },
  ];

  const route = async (req: IncomingMessage): Promise<Reply> => {
    const segments = pathSegments(req.url);
    if (segments[0] === 'admin') {
      checkStopping();
      // Before the password is checked: a browser sends an admin's cached Basic credentials with
      // a foreign page's requests too, and such a refusal must not spend the login budget.
      if (checkRequestOrigin(req, {}) !== undefined) {
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
      if (req.method === 'POST' && !isJsonRequest(req)) {
        throw new HttpFailure(
          415,
          ErrorCode.RELAY_UNSUPPORTED_MEDIA_TYPE,
          'admin writes need Content-Type: application/json',
          { contentType: req.headers['content-type'] ?? null },
        );
      }
      return dispatch(adminRoutes, segments, req);
    }
    if (segments[0] === 'device') {
      checkStopping();
      deviceApi();
      // Devices are programs, not pages: a browser's request from any page is refused.
      if (req.headers.origin !== undefined || checkRequestOrigin(req, {}) !== undefined) {
        throw new HttpFailure(
          403,
          ErrorCode.RELAY_FOREIGN_ORIGIN,
          'device requests from web pages are refused',
          {
            origin: req.headers.origin ?? null,
          },
        );
      }
      if (req.method === 'POST' && !isJsonRequest(req)) {
        throw new HttpFailure(
          415,
          ErrorCode.RELAY_UNSUPPORTED_MEDIA_TYPE,
          'device writes need Content-Type: application/json',
          { contentType: req.headers['content-type'] ?? null },
        );
      }
      return dispatch(deviceRoutes, segments, req);
    }
    return dispatch(publicRoutes, segments, req);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    req.on('error', () => {
      // A client that goes away mid-request is not our failure.
    });
    res.on('error', () => {});
    let reply: Reply;
    try {
      reply = await route(req);
    } catch (e) {
      reply = toErrorReply(e, req, log);
    }
    send(req, res, reply, maxBody);
  };

  return (req, res) => {
    handle(req, res).catch((e: unknown) => {
      // Only reachable if sending itself failed: the answer is lost, the process is not.
      log.error({ err: e }, 'cannot answer an HTTP request');
      res.destroy();
    });
  };
}

async function dispatch(
  routes: readonly Route[],
  segments: readonly string[],
  req: IncomingMessage,
): Promise<Reply> {
  for (const route of routes) {
    const params = matchPath(route.path, segments);
    if (params === undefined) continue;
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    const handler = method === 'GET' || method === 'POST' ? route.methods[method] : undefined;
    if (handler === undefined) {
      const allow = Object.keys(route.methods);
      throw new HttpFailure(
        405,
        ErrorCode.RELAY_METHOD_NOT_ALLOWED,
        `${req.method ?? '?'} is not allowed here`,
        { allow },
        { Allow: allow.join(', ') },
      );
    }
    return handler(req, params);
  }
  throw new HttpFailure(404, ErrorCode.RELAY_NOT_FOUND, 'no such route');
}

function pathSegments(url: string | undefined): string[] {
  let pathname: string;
  try {
    pathname = new URL(url ?? '/', 'http://relay.invalid').pathname;
  } catch {
    throw new HttpFailure(400, ErrorCode.RELAY_BAD_REQUEST, 'malformed request URL');
  }
  try {
    return pathname
      .split('/')
      .filter((s) => s !== '')
      .map((s) => decodeURIComponent(s));
  } catch {
    throw new HttpFailure(400, ErrorCode.RELAY_BAD_REQUEST, 'malformed percent-encoding in the path');
  }
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

/** The query of a request URL, refusing parameters not in `allowed` and repeated ones. */
function queryOf(url: string | undefined, allowed: readonly string[]): URLSearchParams {
  const query = new URL(url ?? '/', 'http://relay.invalid').searchParams;
  const seen = new Set<string>();
  for (const key of query.keys()) {
    if (!allowed.includes(key) || seen.has(key)) {
      throw new HttpFailure(
        400,
        ErrorCode.RELAY_BAD_REQUEST,
        `unexpected query parameter ${JSON.stringify(key)}`,
        {
          allowed,
        },
      );
    }
    seen.add(key);
  }
  return query;
}

function parseElevateBody(body: unknown): { adminPassword: string; action: ElevationAction } {
  const bad = (): never => {
    throw new HttpFailure(
      400,
      ErrorCode.RELAY_BAD_REQUEST,
      `body must be {"adminPassword": "…", "action": ${ELEVATION_ACTIONS.map((a) => `"${a}"`).join(' | ')}}`,
    );
  };
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return bad();
  const { adminPassword, action, ...rest } = body as Record<string, unknown>;
  if (Object.keys(rest).length > 0) return bad();
  if (typeof adminPassword !== 'string' || adminPassword === '' || adminPassword.length > 4096) return bad();
  if (typeof action !== 'string' || !ELEVATION_ACTIONS.includes(action as ElevationAction)) return bad();
  return { adminPassword, action: action as ElevationAction };
}

function parseTtl(body: unknown): number | undefined {
  if (body === undefined) return undefined;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HttpFailure(400, ErrorCode.RELAY_BAD_REQUEST, 'body must be a JSON object {"ttlMs"?}');
  }
  for (const key of Object.keys(body)) {
    if (key !== 'ttlMs')
      throw new HttpFailure(400, ErrorCode.RELAY_BAD_REQUEST, `unknown field ${JSON.stringify(key)}`);
  }
  const { ttlMs } = body as { ttlMs?: unknown };
  if (ttlMs === undefined) return undefined;
  if (typeof ttlMs !== 'number' || !Number.isSafeInteger(ttlMs) || ttlMs <= 0) {
    throw new HttpFailure(400, ErrorCode.RELAY_BAD_REQUEST, 'ttlMs must be a positive integer', { ttlMs });
  }
  return ttlMs;
}

/** Reads a JSON body of at most `max` bytes; an empty body is undefined when `optional`, else an error. */
async function readJsonBody(req: IncomingMessage, max: number, optional = false): Promise<unknown> {
  const body = await readBody(req, { max, optional });
  if (body.ok) return body.value;
  switch (body.problem) {
    case 'too-large':
      throw new HttpFailure(413, ErrorCode.RELAY_BODY_TOO_LARGE, `request body exceeds ${max} bytes`, {
        limit: max,
      });
    case 'aborted':
      throw new HttpFailure(400, ErrorCode.RELAY_BAD_REQUEST, 'request aborted');
    case 'empty':
      throw new HttpFailure(400, ErrorCode.RELAY_BAD_REQUEST, 'request body is empty: expected JSON');
    case 'not-json':
      throw new HttpFailure(400, ErrorCode.RELAY_BAD_REQUEST, 'request body is not valid JSON');
  }
}

function errorCodeOf(e: unknown): string {
  if (e instanceof HttpFailure) return e.code;
  if (isAccordError(e)) return e.code;
  return ErrorCode.RELAY_INTERNAL;
}

function toErrorReply(e: unknown, req: IncomingMessage, log: RelayLogger): Reply {
  const errorBody = (
    code: string,
    message: string,
    details: Readonly<Record<string, unknown>>,
  ): RelayErrorBody => (Object.keys(details).length === 0 ? { code, message } : { code, message, details });
  if (e instanceof HttpFailure) {
    return { status: e.status, body: errorBody(e.code, e.message, e.details), headers: e.headers };
  }
  if (isAccordError(e)) {
    const status = STATUS_OF_CODE[e.code] ?? 500;
    if (status === 500) {
      // A fault of ours (damaged file, storage): the log gets the story, the client only the code.
      log.error({ err: e, method: req.method, url: req.url }, 'request failed');
      return { status, body: { code: e.code, message: 'internal error (see the relay log)' } };
    }
    return { status, body: errorBody(e.code, e.message, e.details) };
  }
  log.error({ err: e, method: req.method, url: req.url }, 'unexpected failure answering a request');
  return { status: 500, body: { code: ErrorCode.RELAY_INTERNAL, message: 'internal error' } };
}

function send(req: IncomingMessage, res: ServerResponse, reply: Reply, maxBody: number): void {
  if (res.headersSent || res.destroyed) return;
  let text: string;
  let contentType: string;
  if (reply.text !== undefined) {
    text = reply.text;
    contentType = reply.contentType ?? 'text/plain; charset=utf-8';
  } else {
    try {
      text = JSON.stringify(reply.body ?? {});
    } catch {
      reply = { status: 500 };
      text = JSON.stringify({ code: ErrorCode.RELAY_INTERNAL, message: 'answer is not serializable' });
    }
    contentType = 'application/json; charset=utf-8';
  }
  // We may answer before the body was read (413, 429, 401…).
  drainAfterEarlyReply(req, res, maxBody);
  res.writeHead(reply.status, {
    ...reply.headers,
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(text);
}
