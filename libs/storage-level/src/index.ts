export { STORAGE_CONFLICT, type StorageErrorCode } from './errors.js';
export { crc32c } from './crc32c.js';
export {
  frameValue,
  unframeValue,
  FRAME_HEADER_BYTES,
  FRAME_MAGIC,
  FRAME_VERSION,
  type CorruptionReason,
  type Unframed,
} from './frame.js';
export type { CommitStats } from './group-commit.js';
export { encodeSegments, decodeSegments } from './keys.js';
export {
  MemoryKeyValue,
  type LevelDatabase,
  type RawOp,
  type RawStore,
  type RawEntry,
  type RawRange,
} from './raw-store.js';
export {
  openLevel,
  isLevelCorruption,
  setAsideAndRepair,
  type BinaryLevel,
  type SetAsideResult,
} from './level-open.js';
export {
  LevelStorageAdapter,
  MemoryStorageAdapter,
  storageAdapterRawKey,
  type ChecksummedStorageAdapter,
  type CorruptionReport,
  type MemoryStorageAdapterOptions,
  type StorageAdapterOptions,
  type StorageScanReport,
} from './storage-adapter.js';
export {
  LevelEventStore,
  MemoryEventStore,
  eventStoreRawKey,
  type EventStore,
  type EventStoreMeta,
  type EventStoreOptions,
  type EventStoreRawTarget,
  type IndexProblem,
  type IterateOptions,
  type MemoryEventStoreOptions,
  type SeqRange,
  type StoredEvent,
  type VerifyReport,
} from './event-store.js';
export { openDeviceDatabase, type DeviceDatabase, type DeviceDatabaseOptions } from './device-database.js';
export { benchRawLevelPuts, type RawLevelBenchOptions, type RawLevelBenchResult } from './bench.js';
export {
  isErrno,
  pathExists,
  readJsonFile,
  syncDir,
  withFileLock,
  writeJsonAtomic,
  writeJsonExclusive,
} from './json-file.js';
