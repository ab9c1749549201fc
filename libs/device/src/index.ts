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
  initDevice,
  loadDevice,
  type DataFolderLayout,
  type DeviceConfig,
  type InitDeviceOptions,
  type LoadedDevice,
} from './data-folder.js';
export { DeviceErrorCode, deviceError } from './errors.js';
export {
  HttpApi,
  DEFAULT_MAX_BODY_BYTES,
  EVENT_STATUSES,
  type ApiErrorBody,
  type DeviceIdentity,
  type HttpApiOptions,
  type NetworkControl,
  type PeerStatus,
} from './http-api.js';
export {
  addToRoster,
  parseRoster,
  readRosterFile,
  RosterFile,
  type RosterData,
  type RosterEntry,
  type RosterFileOptions,
} from './roster-file.js';
export { wsPeerNetwork } from './ws-network.js';
export type { Draft } from '@accord/log';
