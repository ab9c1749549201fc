// The Sync Centre page's pure parts, for other code and tests: the string catalogue and the
// functions that put the agent's JSON into words. The page itself is src/main.tsx.
export { en, syncCentreStrings, type Details, type SyncCentreStrings } from './strings.js';
export {
  ADMIN_DISCARD_TYPES,
  conflictFields,
  daysToResubmit,
  defaultRange,
  demographicChanges,
  describeCode,
  describeEvent,
  describeRule,
  discardNeedsAdmin,
  groupByCode,
  hlcTime,
  humanBytes,
  keepMine,
  patientNamer,
  stockCorrection,
  utcDay,
  verdictHistory,
  type FieldConflict,
  type KeepMinePlan,
  type PatientName,
  type VerdictEntry,
} from './describe.js';
