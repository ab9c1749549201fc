/**
 * Stable error codes for every operational failure in Accord. Each code is documented
 * under "Errors" in the README of the package that throws it.
 *
 * @remarks Codes are SCREAMING_SNAKE with a domain prefix. Never rename a code: scripts,
 * logs and other devices match on it. Add new codes here so the whole system shares one list.
 */
export const ErrorCode = {
  // protocol
  PROTOCOL_BAD_ENCODING: 'PROTOCOL_BAD_ENCODING',
  PROTOCOL_TOO_LARGE: 'PROTOCOL_TOO_LARGE',
  PROTOCOL_SCHEMA: 'PROTOCOL_SCHEMA',
  PROTOCOL_BAD_SIGNATURE: 'PROTOCOL_BAD_SIGNATURE',
  PROTOCOL_BAD_KEY: 'PROTOCOL_BAD_KEY',
  PROTOCOL_BAD_FRAME: 'PROTOCOL_BAD_FRAME',
  PROTOCOL_NOT_CANONICAL: 'PROTOCOL_NOT_CANONICAL',
  PROTOCOL_CLOCK: 'PROTOCOL_CLOCK',
  // storage
  STORAGE_CORRUPT: 'STORAGE_CORRUPT',
  STORAGE_IO: 'STORAGE_IO',
  STORAGE_CLOSED: 'STORAGE_CLOSED',
  STORAGE_CONFLICT: 'STORAGE_CONFLICT',
  // log
  LOG_HOLE: 'LOG_HOLE',
  LOG_CONFLICTING_EVENT: 'LOG_CONFLICTING_EVENT',
  LOG_FORGED_EVENT: 'LOG_FORGED_EVENT',
  LOG_EQUIVOCATION: 'LOG_EQUIVOCATION',
  LOG_UNKNOWN_DEVICE: 'LOG_UNKNOWN_DEVICE',
  LOG_WRONG_FACILITY: 'LOG_WRONG_FACILITY',
  LOG_CLOSED: 'LOG_CLOSED',
  // network
  NETWORK_AUTH_FAILED: 'NETWORK_AUTH_FAILED',
  NETWORK_UNKNOWN_DEVICE: 'NETWORK_UNKNOWN_DEVICE',
  NETWORK_REVOKED_DEVICE: 'NETWORK_REVOKED_DEVICE',
  NETWORK_WRONG_FACILITY: 'NETWORK_WRONG_FACILITY',
  NETWORK_FRAME_TOO_LARGE: 'NETWORK_FRAME_TOO_LARGE',
  NETWORK_BAD_FRAME: 'NETWORK_BAD_FRAME',
  NETWORK_RATE_LIMITED: 'NETWORK_RATE_LIMITED',
  NETWORK_PEER_ID_MISMATCH: 'NETWORK_PEER_ID_MISMATCH',
  NETWORK_FORBIDDEN_DOCUMENT: 'NETWORK_FORBIDDEN_DOCUMENT',
  NETWORK_STALLED: 'NETWORK_STALLED',
  // device agent / HTTP API / CLI
  DEVICE_BAD_REQUEST: 'DEVICE_BAD_REQUEST',
  DEVICE_NOT_FOUND: 'DEVICE_NOT_FOUND',
  DEVICE_NOT_INITIALIZED: 'DEVICE_NOT_INITIALIZED',
  DEVICE_ALREADY_INITIALIZED: 'DEVICE_ALREADY_INITIALIZED',
  DEVICE_BODY_TOO_LARGE: 'DEVICE_BODY_TOO_LARGE',
  DEVICE_UNKNOWN_ROUTE: 'DEVICE_UNKNOWN_ROUTE',
  DEVICE_METHOD_NOT_ALLOWED: 'DEVICE_METHOD_NOT_ALLOWED',
  DEVICE_ROSTER_INVALID: 'DEVICE_ROSTER_INVALID',
  DEVICE_CONFIG_INVALID: 'DEVICE_CONFIG_INVALID',
  DEVICE_STOPPING: 'DEVICE_STOPPING',
  DEVICE_INTERNAL: 'DEVICE_INTERNAL',
  DEVICE_ENROLL_FAILED: 'DEVICE_ENROLL_FAILED',
  DEVICE_NOT_DEADLETTER: 'DEVICE_NOT_DEADLETTER',
  DEVICE_FOREIGN_ORIGIN: 'DEVICE_FOREIGN_ORIGIN',
  DEVICE_FOREIGN_HOST: 'DEVICE_FOREIGN_HOST',
  DEVICE_UNSUPPORTED_MEDIA_TYPE: 'DEVICE_UNSUPPORTED_MEDIA_TYPE',
  DEVICE_IDEMPOTENCY_MISMATCH: 'DEVICE_IDEMPOTENCY_MISMATCH',
  DEVICE_TOO_MANY_STREAMS: 'DEVICE_TOO_MANY_STREAMS',
  CLI_USAGE: 'CLI_USAGE',
  CLI_UNREACHABLE: 'CLI_UNREACHABLE',
  CLI_BAD_RESPONSE: 'CLI_BAD_RESPONSE',
  CLI_NOT_AVAILABLE: 'CLI_NOT_AVAILABLE',
  // relay
  RELAY_NOT_INITIALIZED: 'RELAY_NOT_INITIALIZED',
  RELAY_CONFIG_INVALID: 'RELAY_CONFIG_INVALID',
  RELAY_BAD_REQUEST: 'RELAY_BAD_REQUEST',
  RELAY_TOKEN_INVALID: 'RELAY_TOKEN_INVALID',
  RELAY_TOKEN_EXPIRED: 'RELAY_TOKEN_EXPIRED',
  RELAY_TOKEN_USED: 'RELAY_TOKEN_USED',
  RELAY_UNAUTHORIZED: 'RELAY_UNAUTHORIZED',
  RELAY_UNKNOWN_FACILITY: 'RELAY_UNKNOWN_FACILITY',
  RELAY_UNKNOWN_DEVICE: 'RELAY_UNKNOWN_DEVICE',
  RELAY_ALREADY_ENROLLED: 'RELAY_ALREADY_ENROLLED',
  RELAY_NOT_FOUND: 'RELAY_NOT_FOUND',
  RELAY_STOPPING: 'RELAY_STOPPING',
  RELAY_INTERNAL: 'RELAY_INTERNAL',
  RELAY_RATE_LIMITED: 'RELAY_RATE_LIMITED',
  RELAY_METHOD_NOT_ALLOWED: 'RELAY_METHOD_NOT_ALLOWED',
  RELAY_BODY_TOO_LARGE: 'RELAY_BODY_TOO_LARGE',
  RELAY_FOREIGN_ORIGIN: 'RELAY_FOREIGN_ORIGIN',
  RELAY_UNSUPPORTED_MEDIA_TYPE: 'RELAY_UNSUPPORTED_MEDIA_TYPE',
} as const;

/** One of the stable error codes in {@link ErrorCode}. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * The one error class for operational failures. Expected business outcomes are values
 * (verdicts), never exceptions.
 */
export class AccordError extends Error {
  /** Stable, documented code. */
  readonly code: ErrorCode;
  /** Structured, JSON-safe details for logs and API answers. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: ErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AccordError';
    this.code = code;
    this.details = options.details ?? {};
  }

  /** A JSON-safe view, as sent in HTTP answers: `{code, message, details}`. */
  toJSON(): { code: ErrorCode; message: string; details: Readonly<Record<string, unknown>> } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

/** True when `err` is an {@link AccordError}, optionally with the given code. */
export function isAccordError(err: unknown, code?: ErrorCode): err is AccordError {
  return err instanceof AccordError && (code === undefined || err.code === code);
}
