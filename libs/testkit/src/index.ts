export { seededRandom, type SeededRandom } from './random.js';
export {
  FakeNetwork,
  REPO_SYNC_THROTTLE_MS,
  type FakeNetworkOptions,
  type FakeNetworkStats,
  type FaultRates,
} from './fake-network.js';
export {
  compareReplicas,
  type CompareResult,
  type ReferenceSnapshot,
  type ReplicaSnapshot,
} from './oracle.js';
export { tempDir, type TempDir } from './temp-dir.js';
export { testSeed, withSeed } from './with-seed.js';
export { propertyBudget, type PropertyBudget } from './property-budget.js';
export { seedEntropy, type SeededEntropy } from './entropy.js';
export {
  HostileDevice,
  type HostileDeviceOptions,
  type HostileDocuments,
  type HostileEnvelope,
} from './hostile.js';
