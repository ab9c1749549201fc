export * from './api.js';
export type {
  LogDocumentStorage,
  LogEventStore,
  LogIterateOptions,
  LogMetaSpace,
  LogStoredEvent,
} from './ports.js';
export { DeviceLog } from './device-log.js';
export { CommitQueue } from './commit-queue.js';
export { verifyReceived } from './ingest.js';
export {
  rootDocumentId,
  segmentDocumentId,
  rootInitialBytes,
  segmentInitialBytes,
  eventsOfEntry,
  joinRun,
  RUN_SEPARATOR,
  type RootDoc,
  type SegmentDoc,
} from './documents.js';
export {
  MemoryOwnSeqMark,
  isOwnSeqMarkState,
  type OwnSeqMark,
  type OwnSeqMarkState,
} from './own-seq-mark.js';
