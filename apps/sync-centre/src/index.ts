// The Sync Centre page's pure parts, for other code and tests: the string catalogue and the
// functions that put the agent's JSON into words. The page itself is src/main.tsx.
export { en, syncCentreStrings, type Details, type SyncCentreStrings } from './strings.js';
export {
  describeCode,
  describeEvent,
  describeRule,
  groupByCode,
  hlcTime,
  patientNamer,
  type PatientName,
} from './describe.js';
