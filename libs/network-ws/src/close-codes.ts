import { ErrorCode } from '@accord/protocol';

/**
 * WebSocket close codes used by Accord links. 1000/1001 are the standard codes; 44xx mirror the
 * HTTP status of the same meaning; 4000 and 4504 ask the peer to reconnect with fresh sync state.
 *
 * @remarks Stable: peers, logs and tests match on them. Documented in the README's table.
 */
export const CloseCode = {
  /** Orderly close (the Repo or the application disconnected). */
  Normal: 1000,
  /** Going away: the device went offline or shut down. */
  GoingAway: 1001,
  /** Operator or watchdog reset: reconnect at once with fresh sync state. */
  Reset: 4000,
  /** Malformed, undecodable or invalid frame. */
  BadFrame: 4400,
  /** Handshake failed: bad signature, bad or out-of-order handshake message. */
  AuthFailed: 4401,
  /** Refused by the roster after the upgrade (unknown, revoked, other facility), or server identity refused. */
  Forbidden: 4403,
  /** Asked for (or sent) a document the document policy forbids. */
  ForbiddenDocument: 4404,
  /** A frame named another sender or another target than the authenticated peers. */
  PeerIdMismatch: 4406,
  /** The handshake did not complete within the auth timeout. */
  AuthTimeout: 4408,
  /** A newer connection from the same device replaced this one. */
  Replaced: 4409,
  /** Frame over `maxPayload`, header over its limit, or Automerge data inflating over `maxInflatedBytes`. */
  TooLarge: 4413,
  /** Over the per-peer budget of messages, bytes, inflated bytes or document requests per second. */
  RateLimited: 4429,
  /** An unexpected internal failure while handling the peer (a bug; logged). */
  Internal: 4500,
  /** A frame was lost (sequence gap) or sent frames were not acknowledged within `stallTimeoutMs`. */
  Stalled: 4504,
} as const;

/** One of the {@link CloseCode} values. */
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/**
 * Why a connection was refused or a peer's session was cut for misbehaviour.
 *
 * @remarks Upgrade-time reasons answer with an HTTP status; handshake and session reasons close
 * the WebSocket with the code of {@link refusalCloseCode}.
 */
export type RefusalReason =
  | 'bad-request'
  | 'unsupported-version'
  | 'offline'
  | 'busy'
  | 'self'
  | 'unknown-device'
  | 'revoked-device'
  | 'wrong-facility'
  | 'server-refused'
  | 'server-identity'
  | 'auth-failed'
  | 'auth-timeout'
  | 'bad-frame'
  | 'peer-id-mismatch'
  | 'too-large'
  | 'rate-limited'
  | 'forbidden-document';

/** Why an authenticated session ended, as counted in stats and reported in events. */
export type SessionEndReason =
  | 'remote-closed'
  | 'transport-error'
  | 'heartbeat-timeout'
  | 'stalled'
  | 'lost-frame'
  | 'replaced'
  | 'reset'
  | 'offline'
  | 'shutdown'
  | 'internal'
  | RefusalReason;

const REFUSAL_CLOSE: Record<RefusalReason, CloseCode> = {
  'bad-request': CloseCode.AuthFailed,
  'unsupported-version': CloseCode.AuthFailed,
  offline: CloseCode.GoingAway,
  busy: CloseCode.RateLimited,
  self: CloseCode.Forbidden,
  'unknown-device': CloseCode.Forbidden,
  'revoked-device': CloseCode.Forbidden,
  'wrong-facility': CloseCode.Forbidden,
  'server-refused': CloseCode.Forbidden,
  'server-identity': CloseCode.Forbidden,
  'auth-failed': CloseCode.AuthFailed,
  'auth-timeout': CloseCode.AuthTimeout,
  'bad-frame': CloseCode.BadFrame,
  'peer-id-mismatch': CloseCode.PeerIdMismatch,
  'too-large': CloseCode.TooLarge,
  'rate-limited': CloseCode.RateLimited,
  'forbidden-document': CloseCode.ForbiddenDocument,
};

const REFUSAL_ERROR: Record<RefusalReason, ErrorCode> = {
  'bad-request': ErrorCode.NETWORK_AUTH_FAILED,
  'unsupported-version': ErrorCode.NETWORK_AUTH_FAILED,
  offline: ErrorCode.NETWORK_AUTH_FAILED,
  busy: ErrorCode.NETWORK_RATE_LIMITED,
  self: ErrorCode.NETWORK_AUTH_FAILED,
  'unknown-device': ErrorCode.NETWORK_UNKNOWN_DEVICE,
  'revoked-device': ErrorCode.NETWORK_REVOKED_DEVICE,
  'wrong-facility': ErrorCode.NETWORK_WRONG_FACILITY,
  'server-refused': ErrorCode.NETWORK_AUTH_FAILED,
  'server-identity': ErrorCode.NETWORK_AUTH_FAILED,
  'auth-failed': ErrorCode.NETWORK_AUTH_FAILED,
  'auth-timeout': ErrorCode.NETWORK_AUTH_FAILED,
  'bad-frame': ErrorCode.NETWORK_BAD_FRAME,
  'peer-id-mismatch': ErrorCode.NETWORK_PEER_ID_MISMATCH,
  'too-large': ErrorCode.NETWORK_FRAME_TOO_LARGE,
  'rate-limited': ErrorCode.NETWORK_RATE_LIMITED,
  'forbidden-document': ErrorCode.NETWORK_FORBIDDEN_DOCUMENT,
};

/** The close code a refusal closes the WebSocket with. */
export function refusalCloseCode(reason: RefusalReason): CloseCode {
  return REFUSAL_CLOSE[reason];
}

/** The stable error code reported for a refusal (in events, logs and the close reason text). */
export function refusalErrorCode(reason: RefusalReason): ErrorCode {
  return REFUSAL_ERROR[reason];
}
