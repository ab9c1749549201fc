import {
  AccordError,
  canonicalEncode,
  ErrorCode,
  parseElevationGrant,
  signDeviceRequest,
  type DayDigest,
  type DeviceKeyPair,
  type ElevationAction,
  type ElevationGrant,
  type JsonValue,
} from '@accord/protocol';

/** What the device agent asks its relay over HTTP (issue #10): every request signed by the device key. */
export interface RelayAdminClient {
  /**
   * Sends the admin password to the relay and answers its grant.
   *
   * @throws AccordError `DEVICE_ELEVATION_REFUSED` (wrong password), `DEVICE_ELEVATION_RATE_LIMITED`,
   * `DEVICE_RELAY_UNREACHABLE`, `DEVICE_RELAY_REFUSED` (any other refusal or a bad answer).
   */
  elevate(adminPassword: string, action: ElevationAction): Promise<ElevationGrant>;
  /** The relay's per-day digests of the facility's event set (UTC days, only days with events). */
  digests(from: string, to: string): Promise<readonly DayDigest[]>;
  /** The ids of the facility's events of one UTC day that the relay holds. */
  ids(day: string): Promise<readonly string[]>;
}

/** Options of {@link httpRelayClient}. */
export interface HttpRelayClientOptions {
  readonly key: DeviceKeyPair;
  /** The relay's URL as the device dials it (`ws://host:port`; `http(s)://` works too). */
  readonly url: string;
  readonly clock?: () => number;
  /** Give up on one request after this long (default 10 s): then the relay is unreachable. */
  readonly timeoutMs?: number;
}

const fail = (code: ErrorCode, message: string, details: Record<string, unknown> = {}): never => {
  throw new AccordError(code, message, { details });
};

/**
 * A {@link RelayAdminClient} over the relay's HTTP port (the one it is dialed on for sync).
 *
 * @remarks The password travels to the relay in the request body and is never kept: not in
 * memory after the request, not on disk. Each request carries the device's signature over its
 * method, path, time and body, so the relay knows which device asks (and rate-limits it).
 */
export function httpRelayClient(opts: HttpRelayClientOptions): RelayAdminClient {
  const base = new URL(opts.url);
  base.protocol = base.protocol === 'wss:' || base.protocol === 'https:' ? 'https:' : 'http:';
  const clock = opts.clock ?? Date.now;

  const call = async (method: 'GET' | 'POST', path: string, body?: JsonValue): Promise<unknown> => {
    const bytes = body === undefined ? new Uint8Array() : canonicalEncode(body);
    const headers: Record<string, string> = await signDeviceRequest(opts.key, method, path, clock(), bytes);
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(new URL(path, base), {
        method,
        headers,
        ...(body === undefined ? {} : { body: new TextDecoder().decode(bytes) }),
        signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
      });
    } catch (e) {
      return fail(
        ErrorCode.DEVICE_RELAY_UNREACHABLE,
        'this action needs the relay, and the relay cannot be reached now',
        { relay: base.origin, cause: e instanceof Error ? e.message : String(e) },
      );
    }
    let answer: unknown;
    try {
      answer = await res.json();
    } catch {
      return fail(ErrorCode.DEVICE_RELAY_REFUSED, `the relay answered ${res.status} without JSON`, {
        status: res.status,
      });
    }
    if (res.ok) return answer;
    const code = (answer as { code?: unknown } | null)?.code;
    const message = (answer as { message?: unknown } | null)?.message;
    if (res.status === 403 && code === ErrorCode.RELAY_ELEVATION_REFUSED) {
      return fail(ErrorCode.DEVICE_ELEVATION_REFUSED, 'the relay refused the admin password');
    }
    if (res.status === 429) {
      const retryAfter = Number(res.headers.get('retry-after') ?? '0');
      return fail(
        ErrorCode.DEVICE_ELEVATION_RATE_LIMITED,
        `too many wrong admin passwords from this device; retry in ${retryAfter} s`,
        { retryAfter },
      );
    }
    return fail(
      ErrorCode.DEVICE_RELAY_REFUSED,
      `the relay refused: ${typeof message === 'string' ? message : res.status}`,
      {
        status: res.status,
        code: typeof code === 'string' ? code : null,
      },
    );
  };

  const badAnswer = (what: string): never =>
    fail(ErrorCode.DEVICE_RELAY_REFUSED, `the relay's answer is not ${what}`);

  return {
    elevate: async (adminPassword, action) => {
      const answer = await call('POST', '/device/elevate', { adminPassword, action });
      const parsed = parseElevationGrant((answer as { grant?: unknown } | null)?.grant);
      return parsed.ok ? parsed.value : badAnswer('a grant');
    },
    digests: async (from, to) => {
      const q = new URLSearchParams({ from, to });
      const answer = (await call('GET', `/device/integrity?${q.toString()}`)) as { days?: unknown } | null;
      const days = answer?.days;
      if (!Array.isArray(days)) return badAnswer('a list of days');
      return days.map((d: unknown): DayDigest => {
        const { day, count, digest } = (d ?? {}) as Record<string, unknown>;
        if (typeof day !== 'string' || typeof count !== 'number' || typeof digest !== 'string') {
          return badAnswer('a list of day digests');
        }
        return { day, count, digest };
      });
    },
    ids: async (day) => {
      const q = new URLSearchParams({ day });
      const answer = (await call('GET', `/device/ids?${q.toString()}`)) as { ids?: unknown } | null;
      const ids = answer?.ids;
      if (!Array.isArray(ids) || !ids.every((i) => typeof i === 'string')) return badAnswer('a list of ids');
      return ids;
    },
  };
}
