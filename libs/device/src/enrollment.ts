import {
  ENROLL_PATH,
  ENROLL_TOKEN_PATTERN,
  ErrorCode,
  isAccordError,
  makeEnrollRequest,
  parseEnrollResponse,
  type DeviceId,
  type DeviceKeyPair,
  type FacilityId,
} from '@accord/protocol';
import { deviceError, DeviceErrorCode } from './errors.js';
import { verifiedRelayRoster, type RosterData } from './roster-file.js';

/** Default time allowed for the whole enrollment exchange with the relay. */
export const DEFAULT_ENROLL_TIMEOUT_MS = 15_000;

/** Largest enrollment answer read from a relay (a roster event is at most 64 KiB). */
export const MAX_ENROLL_RESPONSE_BYTES = 1024 * 1024;

/** Options of {@link enrollWithRelay}. */
export interface EnrollOptions {
  /** The relay's `ws://host:port` (or `wss://`) URL; its HTTP twin answers `POST /enroll`. */
  readonly relay: string;
  /** The one-time enrollment token the relay's administrator handed out. */
  readonly token: string;
  /** The new device's key (its id is what gets enrolled). */
  readonly key: DeviceKeyPair;
  readonly name: string;
  /** When given, the relay must enroll the device in this facility. */
  readonly facility?: FacilityId;
  /**
   * The relay's id as its administrator printed it (`accord relay enroll`): when given, an answer
   * that names or is signed by any other relay is refused, so whoever answers at `relay`'s
   * address cannot become this device's authority.
   */
  readonly relayId?: DeviceId;
  /** Time allowed for the exchange in ms (default {@link DEFAULT_ENROLL_TIMEOUT_MS}). */
  readonly timeoutMs?: number;
}

/** A successful enrollment: the facility, the relay's id and the verified roster to write. */
export interface Enrollment {
  readonly facility: FacilityId;
  readonly relay: DeviceId;
  readonly roster: RosterData & { readonly version: number; readonly relay: DeviceId };
}

/**
 * The HTTP enrollment URL of a relay given by its WebSocket URL: `ws://h:p/…` → `http://h:p/enroll`.
 *
 * @throws AccordError `DEVICE_BAD_REQUEST` when `relay` is not a `ws://` or `wss://` URL.
 */
export function enrollUrl(relay: string): string {
  let url: URL;
  try {
    url = new URL(relay);
  } catch {
    throw deviceError(ErrorCode.DEVICE_BAD_REQUEST, 'relay must be a ws://host:port URL', {
      details: { relay },
    });
  }
  if ((url.protocol !== 'ws:' && url.protocol !== 'wss:') || url.hostname === '') {
    throw deviceError(ErrorCode.DEVICE_BAD_REQUEST, 'relay must be a ws://host:port URL', {
      details: { relay },
    });
  }
  const scheme = url.protocol === 'wss:' ? 'https:' : 'http:';
  return `${scheme}//${url.host}${ENROLL_PATH}`;
}

/** True when `token` has the shape of an enrollment token (`acc1.` + 43 base64url characters). */
export function isEnrollToken(token: string): boolean {
  return ENROLL_TOKEN_PATTERN.test(token);
}

/**
 * Enrolls `key` with a relay: posts the enrollment request, then checks the answer.
 *
 * @remarks The answer's roster must be a `RosterUpdated` event signed by the relay the answer
 * names (signature verified), of the answer's facility (and of `facility` when given), listing
 * this device not revoked. Redirects are not followed. Nothing is written: the caller stores the
 * result.
 * @throws AccordError `DEVICE_ENROLL_FAILED`, `details`: `{url, status, code}` — the relay's HTTP
 * status and error code when it refused (its message is in the error's message), `status: null`
 * when it could not be reached or did not answer in time (`reason: 'unreachable' | 'timeout'`),
 * and `reason: 'bad-response'` or `'untrusted-roster'` for an answer that fails the checks, or
 * `'wrong-relay'` (`details.relay`, `details.expected`) when `relayId` is given and the answer is
 * another relay's.
 */
export async function enrollWithRelay(opts: EnrollOptions): Promise<Enrollment> {
  const url = enrollUrl(opts.relay);
  const fail = (message: string, details: Record<string, unknown>, cause?: unknown): never => {
    throw deviceError(DeviceErrorCode.DEVICE_ENROLL_FAILED, message, {
      details: { url, status: null, code: null, ...details },
      ...(cause === undefined ? {} : { cause }),
    });
  };
  const request = await makeEnrollRequest(opts.key, opts.token, opts.name);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_ENROLL_TIMEOUT_MS;
  let status: number;
  let text: string;
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(request),
      redirect: 'error',
      signal: AbortSignal.timeout(timeoutMs),
    });
    status = res.status;
    text = await readCapped(res, MAX_ENROLL_RESPONSE_BYTES);
  } catch (e) {
    if (isAccordError(e)) throw e;
    const timedOut = e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError');
    const cause = e instanceof Error && e.cause instanceof Error ? e.cause : e;
    return fail(
      timedOut
        ? `the relay at ${url} did not answer within ${timeoutMs} ms`
        : `cannot reach the relay at ${url}: ${cause instanceof Error ? cause.message : String(cause)}`,
      { reason: timedOut ? 'timeout' : 'unreachable' },
      e,
    );
  }
  let body: unknown;
  try {
    body = JSON.parse(text) as unknown;
  } catch {
    body = undefined;
  }
  if (status !== 201) {
    const refusal = readRefusal(body);
    return fail(
      refusal === undefined
        ? `the relay refused the enrollment (HTTP ${status})`
        : `the relay refused the enrollment: ${refusal.code}: ${refusal.message}`,
      { status, code: refusal?.code ?? null },
    );
  }
  const parsed = parseEnrollResponse(body);
  if (!parsed.ok) {
    return fail(`the relay's answer is not an enrollment response: ${parsed.error.message}`, {
      status,
      reason: 'bad-response',
    });
  }
  const answer = parsed.value;
  // Checked first: the roster's signature below is verified against the relay the answer names.
  if (opts.relayId !== undefined && answer.relay !== opts.relayId) {
    return fail(`the relay at ${url} is ${answer.relay}, not the expected relay ${opts.relayId}`, {
      status,
      reason: 'wrong-relay',
      relay: answer.relay,
      expected: opts.relayId,
    });
  }
  const untrusted = (message: string, cause?: unknown): never =>
    fail(`the relay's roster cannot be trusted: ${message}`, { status, reason: 'untrusted-roster' }, cause);
  if (opts.facility !== undefined && answer.facility !== opts.facility) {
    untrusted(`the relay enrolled this device in facility ${answer.facility}, not ${opts.facility}`);
  }
  if (answer.relay === opts.key.deviceId) untrusted('the relay claims this device’s own id');
  let roster: Awaited<ReturnType<typeof verifiedRelayRoster>>;
  try {
    roster = await verifiedRelayRoster(answer.roster, { relay: answer.relay, facility: answer.facility });
  } catch (e) {
    return untrusted(e instanceof Error ? e.message : String(e), e);
  }
  const me = roster.devices.find((d) => d.id === opts.key.deviceId);
  if (me === undefined || me.revoked) untrusted('it does not list this device as a member');
  return { facility: answer.facility, relay: answer.relay, roster };
}

function readRefusal(body: unknown): { code: string; message: string } | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const { code, message } = body as Record<string, unknown>;
  if (typeof code !== 'string' || code === '' || code.length > 100) return undefined;
  return { code, message: typeof message === 'string' ? message.slice(0, 1000) : '' };
}

async function readCapped(res: Response, max: number): Promise<string> {
  const declared = Number(res.headers.get('content-length') ?? '0');
  const tooLarge = (): never => {
    throw deviceError(DeviceErrorCode.DEVICE_ENROLL_FAILED, `the relay's answer exceeds ${max} bytes`, {
      details: { url: res.url, status: res.status, code: null, reason: 'bad-response' },
    });
  };
  if (declared > max) {
    await res.body?.cancel();
    tooLarge();
  }
  if (res.body === null) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = (await reader.read()) as { done: boolean; value?: Uint8Array };
    if (done || value === undefined) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel();
      tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}
