import type { DeviceLog } from '@accord/log';
import { verdictsIn, type EventId, type SignedEvent } from '@accord/protocol';
import type { SimNetwork } from '../network.js';
import type { SystemResult } from '../result.js';
import { sortedRecord, trafficOf } from '../result.js';
import { disagreeingPairs, duplicatesAmong, missingPatients, projectionFingerprint } from '../symptoms.js';
import type { Run } from './processes.js';

/** The #11 fields of a finished run (see {@link SystemResult}; the README says what each means here). */
export function measure(
  run: Run,
  network: SimNetwork,
  divergence: [number, number][],
  quiescentAtMs: number,
  convergedSince: number | undefined,
): SystemResult {
  const relayId = run.relayKey?.deviceId;
  const all = run.facilities.flatMap((f) => f.tablets);
  // Exact at the end: the ids each log shows, not the tally its listener kept.
  const idsOf = (log: DeviceLog): Set<string> => {
    const ids = new Set<string>();
    for (const e of log.visibleEvents()) ids.add(e.id);
    return ids;
  };
  const shown = new Map(all.map((t) => [t, idsOf(t.log)]));
  let converged = true;
  let eventsLost = 0;
  const deadletters = new Map<string, number>();
  const effective = new Map<string, Set<string>>();
  for (const fac of run.facilities) {
    const logs = [
      ...fac.tablets.map((t) => shown.get(t)!),
      ...(fac.relay ? [idsOf(fac.relay.node.log)] : []),
    ];
    // Every relay event some log holds: the verdicts the relay made, as far as anyone knows.
    const made = new Map<EventId, SignedEvent>();
    for (const log of [...fac.tablets.map((t) => t.log), ...(fac.relay ? [fac.relay.node.log] : [])])
      for (const e of log.visibleEvents()) if (e.device === relayId) made.set(e.id, e);
    const verdicts = new Map<string, number>();
    for (const e of made.values()) {
      for (const v of verdictsIn(e)) {
        verdicts.set(v.target, (verdicts.get(v.target) ?? 0) + 1);
        if (v.outcome === 'deadletter')
          deadletters.set(String(v.code), (deadletters.get(String(v.code)) ?? 0) + 1);
      }
    }
    const wanted = [...fac.saved.keys(), ...made.keys()];
    if (!logs.every((ids) => ids.size === wanted.length && wanted.every((id) => ids.has(id))))
      converged = false;
    if (relayId !== undefined && [...fac.saved.keys()].some((id) => verdicts.get(id) !== 1))
      converged = false;
    for (const [id, fact] of fac.saved) {
      if (!logs.some((ids) => ids.has(id))) eventsLost++;
      else effective.set(fact, (effective.get(fact) ?? new Set()).add(id));
    }
  }
  const convergenceMs =
    converged && convergedSince !== undefined ? Math.round(convergedSince - quiescentAtMs) : null;
  const rounds =
    !converged || convergedSince === undefined
      ? null
      : Math.max(
          0,
          ...all.map((t) => t.syncs.filter((x) => x > quiescentAtMs && x <= convergedSince).length),
        );

  let changesAppearLost = 0;
  for (const t of all) for (const id of t.own) if (!shown.get(t)!.has(id)) changesAppearLost++;
  const duplicates = duplicatesAmong(effective);

  let patientsMissing = 0;
  let countersDisagree = 0;
  for (const fac of run.facilities) {
    const views = fac.tablets.map((t) => t.log.tentative());
    patientsMissing += missingPatients(views);
    countersDisagree += disagreeingPairs(views.map(projectionFingerprint));
  }

  const appended = run.facilities.reduce((n, f) => n + f.saved.size, 0);
  const c = network.counters;
  return {
    converged,
    convergenceMs,
    rounds,
    quiescentAtMs,
    eventsAppended: appended,
    eventsLost,
    duplicates,
    reentries: 0,
    ...trafficOf(c, appended),
    deadletters: sortedRecord(deadletters),
    symptoms: {
      patientsMissing,
      encounterReappeared: all.reduce((n, t) => n + t.reappeared.size, 0),
      countersDisagree,
      changesAppearLost,
    },
    divergence,
    network: { ...c },
  };
}
