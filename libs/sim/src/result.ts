import type { NetworkCounters } from './network.js';

/** The field symptoms of KB005, counted the same way for every system under test. */
export interface Symptoms {
  /** (device, patient) pairs at the end where a patient some device (or the server) shows is missing on a device of the same facility. */
  readonly patientsMissing: number;
  /** Encounters a user closed that later showed as open again on that user's device, with nothing telling why. */
  readonly encounterReappeared: number;
  /** Pairs of devices of one facility whose counters differ at the end. */
  readonly countersDisagree: number;
  /** Saved changes that later vanished from the user's own device, with nothing telling why. */
  readonly changesAppearLost: number;
}

/** What one system did in one run: the #11 fields. All times are simulated; nothing depends on the wall clock. */
export interface SystemResult {
  /** Every device of each facility shows the same counters and patients as the authority at the end. */
  readonly converged: boolean;
  /** Simulated ms from {@link quiescentAtMs} until the devices agreed for good; null when they never did. */
  readonly convergenceMs: number | null;
  /** Sync rounds (pulls, for the baseline) of the slowest device in that time; null when not converged. */
  readonly rounds: number | null;
  /** The later of the last fault's end and the last user action: convergence is measured from here. */
  readonly quiescentAtMs: number;
  /** Events users saved (re-entries included). */
  readonly eventsAppended: number;
  /** Saved events that at the end are neither at the authority nor still queued to reach it: no other device will ever see them. */
  readonly eventsLost: number;
  /** Extra effective records of one real-world fact (a person registered twice, a change entered twice). */
  readonly duplicates: number;
  /** Changes users entered again because they looked lost. */
  readonly reentries: number;
  readonly messages: number;
  readonly bytes: number;
  readonly messagesPerEvent: number;
  readonly bytesPerEvent: number;
  /** Items or events rejected, by code (`409`, `422`, …; `severed` and `timeout` for transport failures). */
  readonly deadletters: Readonly<Record<string, number>>;
  readonly symptoms: Symptoms;
  /** `[simulated ms, pairs of devices whose counters differ]`, sampled every `sampleEveryMs`. */
  readonly divergence: readonly (readonly [number, number])[];
  readonly network: Readonly<NetworkCounters>;
}

/** Rounds a ratio for reports: three decimals, so results print the same everywhere. */
export function ratio(n: number, d: number): number {
  return d === 0 ? 0 : Math.round((n / d) * 1000) / 1000;
}

/** Object with keys sorted, so JSON output does not depend on insertion order. */
export function sortedRecord(m: ReadonlyMap<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of [...m.keys()].sort()) out[k] = m.get(k)!;
  return out;
}

/** The traffic fields of a result: the network's frames and bytes, in all and per event appended. */
export function trafficOf(
  counters: Readonly<NetworkCounters>,
  appended: number,
): Pick<SystemResult, 'messages' | 'bytes' | 'messagesPerEvent' | 'bytesPerEvent'> {
  return {
    messages: counters.framesSent,
    bytes: counters.bytesSent,
    messagesPerEvent: ratio(counters.framesSent, appended),
    bytesPerEvent: ratio(counters.bytesSent, appended),
  };
}
