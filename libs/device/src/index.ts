export {
  DeviceAgent,
  type DeviceAgentOptions,
  type PeerNetwork,
  type PeerNetworkFactory,
  type PeerNetworkOptions,
  type ReadyLine,
} from './agent.js';
export {
  dataFolder,
  fileOwnSeqMark,
  initDevice,
  loadDevice,
  type DataFolderLayout,
  type DeviceConfig,
  type InitDeviceOptions,
  type LoadedDevice,
  type RelayConfig,
} from './data-folder.js';
export {
  DEFAULT_ENROLL_TIMEOUT_MS,
  MAX_ENROLL_RESPONSE_BYTES,
  enrollUrl,
  enrollWithRelay,
  isEnrollToken,
  type EnrollOptions,
  type Enrollment,
} from './enrollment.js';
export { DeviceErrorCode, deviceError } from './errors.js';
export {
  HttpApi,
  ASSET_CSP,
  DEFAULT_MAX_BODY_BYTES,
  EVENT_STATUSES,
  type ApiErrorBody,
  type AuditEntry,
  type DeadletterInfo,
  type DeviceIdentity,
  type EnvironmentInfo,
  type EventDetail,
  type EventVerdict,
  type HttpApiOptions,
  type LastVerdict,
  type LiveStatus,
  type NetworkControl,
  type PeerStatus,
  type RelayStatus,
  type RetryAllSkipped,
  type StaticAsset,
  type IntegrityDay,
  type ResubmitDay,
} from './http-api.js';
export {
  DEFAULT_IDEMPOTENCY_RETENTION_MS,
  isIdempotencyKey,
  LevelIdempotencyStore,
  MAX_IDEMPOTENCY_KEY_LENGTH,
  MemoryIdempotencyStore,
  type IdempotencyStore,
  type IdempotentAnswer,
} from './idempotency.js';
export {
  followRelayRoster,
  type FollowRelayRosterOptions,
  type RelayRosterFollower,
} from './relay-roster.js';
export {
  addToRoster,
  parseRoster,
  readRosterFile,
  rosterFromEvent,
  RosterFile,
  verifiedRelayRoster,
  type RelayRosterExpectation,
  type RosterData,
  type RosterEntry,
  type RosterFileOptions,
} from './roster-file.js';
export { wsPeerNetwork } from './ws-network.js';
export type { Draft } from '@accord/log';
export { httpRelayClient, type HttpRelayClientOptions, type RelayAdminClient } from './relay-client.js';
