export { Relay, type RelayFacility, type RelayOptions, type RelayReadyLine } from './relay.js';
export {
  FacilityNode,
  type FacilityNetwork,
  type FacilityNetworkFactory,
  type FacilityNetworkWiring,
  type FacilityNodeOptions,
  type FacilityObserver,
  type FacilityStores,
} from './facility-node.js';
export type { SealDigestStats } from './segment-sealer.js';
export {
  Adjudicator,
  type AdjudicatorElevation,
  type AdjudicatorOptions,
  type OpenDeadletter,
} from './adjudicator.js';
export {
  ADMIN_PAGE_CSP,
  escapeHtml,
  renderAdminPage,
  summarizeDeadletters,
  type AdminPageDeadletters,
  type AdminPageDevice,
  type AdminPageFacility,
  type AdminPageSnapshot,
} from './admin-page.js';
export { LastContactTracker, type DeviceContact } from './last-contact.js';
export {
  DEFAULT_FACILITY_POLICY,
  GrantChecker,
  RULE_ELEVATION_REQUIRED,
  type FacilityPolicy,
  type GrantExpectation,
} from './elevation.js';
export {
  relayFolder,
  openRelayFolder,
  loadRelayFolder,
  listFacilities,
  type OpenedRelayFolder,
  type RelayConfig,
  type RelayFolderLayout,
} from './relay-folder.js';
export { setAdminPassword, verifyAdminPassword, hasAdminPassword } from './admin-password.js';
export {
  createEnrollmentToken,
  consumeEnrollmentToken,
  listEnrollmentTokens,
  pruneEnrollmentTokens,
  type EnrollmentToken,
} from './tokens.js';
export {
  adoptRoster,
  enrollMember,
  enrollWithToken,
  ensureFacility,
  readMembers,
  revokeMember,
  deviceIndex,
  MembershipWatcher,
  type FacilityMembersFile,
  type MemberRecord,
  type RevokeResult,
} from './membership.js';
export { RelayMetrics } from './metrics.js';
export { createRelayLogger, type RelayLogger } from './logger.js';
export {
  createRelayHttp,
  DEFAULT_ELEVATION_FAILURE_LIMIT,
  type RateLimit,
  type RelayDeviceApi,
  type RelayHttpDeps,
  type RelayHttpFront,
  type RelayHttpOptions,
} from './relay-http.js';
