export {
  DEFAULT_MAX_PENDING_HANDSHAKES,
  DEFAULT_MAX_PENDING_HANDSHAKES_PER_ADDRESS,
  WebSocketServerAdapter,
  type WebSocketServerAdapterOptions,
} from './server-adapter.js';
export {
  WebSocketClientAdapter,
  type ClientAdapterStats,
  type ClientState,
  type WebSocketClientAdapterOptions,
} from './client-adapter.js';
export { StaticRoster, type Roster, type RosterEntry } from './roster.js';
export {
  CloseCode,
  refusalCloseCode,
  refusalErrorCode,
  type RefusalReason,
  type SessionEndReason,
} from './close-codes.js';
export {
  DEFAULT_LIMITS,
  DEFAULT_TIMINGS,
  type AdapterStats,
  type CommonAdapterOptions,
  type DocumentPolicy,
  type FaultHooks,
  type MembershipExchange,
  type LinkLimits,
  type LinkTimings,
  type NetworkEvent,
  type NetworkEventListener,
  type PeerStats,
  type Refusal,
} from './types.js';
export { backoffDelay, seededRandom, type BackoffOptions, type RandomSource } from './backoff.js';
export { peerIdOf } from './frames.js';
export { PEER_METADATA } from './handshake.js';
export {
  measureChunks,
  measureSyncMessage,
  type SyncMessageMeasure,
  type SyncMessageProblem,
} from './automerge-guard.js';
export { TokenBucket } from './token-bucket.js';
export {
  DRAIN_LIMIT_FACTOR,
  RequestValidationError,
  checkRequestOrigin,
  createJsonServer,
  describeRequestProblem,
  drainAfterEarlyReply,
  isJsonRequest,
  matchPath,
  requestProblemOf,
  zodValidatorCompiler,
  type JsonServer,
  type JsonServerOptions,
  type JsonServerParts,
  type RequestHeaders,
  type RequestOriginPolicy,
  type RequestOriginProblem,
  type RequestProblem,
  type UnlistedRouteConfig,
  type ZodTypeProvider,
} from './http-json.js';
