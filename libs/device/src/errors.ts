import { AccordError, ErrorCode } from '@accord/protocol';

/**
 * Error codes of the device agent (members of the shared `ErrorCode` list).
 *
 * @remarks HTTP answers and the CLI carry them verbatim, so their spelling is stable.
 */
export const DeviceErrorCode = {
  /** The request body exceeds the cap (HTTP 413). */
  DEVICE_BODY_TOO_LARGE: ErrorCode.DEVICE_BODY_TOO_LARGE,
  /** No route has this path (HTTP 404). */
  DEVICE_UNKNOWN_ROUTE: ErrorCode.DEVICE_UNKNOWN_ROUTE,
  /** The route exists but not for this method (HTTP 405). */
  DEVICE_METHOD_NOT_ALLOWED: ErrorCode.DEVICE_METHOD_NOT_ALLOWED,
  /** The roster file is unreadable, malformed or belongs to another facility. */
  DEVICE_ROSTER_INVALID: ErrorCode.DEVICE_ROSTER_INVALID,
  /** A data-folder file (`device.json`, `key.json`) is malformed. */
  DEVICE_CONFIG_INVALID: ErrorCode.DEVICE_CONFIG_INVALID,
  /** The agent is shutting down and no longer accepts writes (HTTP 503). */
  DEVICE_STOPPING: ErrorCode.DEVICE_STOPPING,
  /** An unexpected failure inside the agent (HTTP 500); the agent keeps running. */
  DEVICE_INTERNAL: ErrorCode.DEVICE_INTERNAL,
  /** Enrollment with a relay failed: refused (`details.status`, `details.code`), unreachable, or a bad answer. */
  DEVICE_ENROLL_FAILED: ErrorCode.DEVICE_ENROLL_FAILED,
  /** A resolution (retry, discard, amend) names an event that is not a deadletter (HTTP 409). */
  DEVICE_NOT_DEADLETTER: ErrorCode.DEVICE_NOT_DEADLETTER,
  /** A request from a web page of another origin (`Origin`, or `Sec-Fetch-Site: cross-site`) (HTTP 403). */
  DEVICE_FOREIGN_ORIGIN: ErrorCode.DEVICE_FOREIGN_ORIGIN,
  /** A request whose `Host` is not the agent's own address: DNS rebinding (HTTP 421). */
  DEVICE_FOREIGN_HOST: ErrorCode.DEVICE_FOREIGN_HOST,
  /** A write (POST) whose `Content-Type` is not `application/json` (HTTP 415). */
  DEVICE_UNSUPPORTED_MEDIA_TYPE: ErrorCode.DEVICE_UNSUPPORTED_MEDIA_TYPE,
  /** An `Idempotency-Key` sent again with another route or body than its first use (HTTP 422). */
  DEVICE_IDEMPOTENCY_MISMATCH: ErrorCode.DEVICE_IDEMPOTENCY_MISMATCH,
  /** More live status streams than the agent serves at once (HTTP 503). */
  DEVICE_TOO_MANY_STREAMS: ErrorCode.DEVICE_TOO_MANY_STREAMS,
  /** An action that needs the relay (elevation, integrity, re-submit) while it cannot be reached (HTTP 503). */
  DEVICE_RELAY_UNREACHABLE: ErrorCode.DEVICE_RELAY_UNREACHABLE,
  /** The relay refused a request of this device or answered nonsense (HTTP 502, `details.status`, `details.code`). */
  DEVICE_RELAY_REFUSED: ErrorCode.DEVICE_RELAY_REFUSED,
  /** The relay refused the admin password (HTTP 403). */
  DEVICE_ELEVATION_REFUSED: ErrorCode.DEVICE_ELEVATION_REFUSED,
  /** Too many wrong admin passwords from this device: the relay waits (HTTP 429, `details.retryAfter`). */
  DEVICE_ELEVATION_RATE_LIMITED: ErrorCode.DEVICE_ELEVATION_RATE_LIMITED,
  /** A grant that is malformed, not signed by this device's relay, for another device or action, or expired (HTTP 403). */
  DEVICE_GRANT_INVALID: ErrorCode.DEVICE_GRANT_INVALID,
} as const;

/** One of the {@link DeviceErrorCode} codes. */
export type DeviceErrorCode = (typeof DeviceErrorCode)[keyof typeof DeviceErrorCode];

/** An {@link AccordError} with one of the device's codes. */
export function deviceError(
  code: ErrorCode,
  message: string,
  options: { cause?: unknown; details?: Record<string, unknown> } = {},
): AccordError {
  return new AccordError(code, message, options);
}
