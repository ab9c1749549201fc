import type { Projection } from '@accord/domain';

// One definition of the field symptoms that compare devices, used by every system under test,
// so that Accord and the baseline are measured the same way.

/** What two devices must agree on for "counters that disagree": the counters and the patients. */
export function projectionFingerprint(view: Projection): string {
  return JSON.stringify([view.counters(), view.patients().map((p) => p.id)]);
}

/** Pairs of devices (of one facility) whose fingerprints differ. */
export function disagreeingPairs(fingerprints: readonly string[]): number {
  let pairs = 0;
  for (let i = 0; i < fingerprints.length; i++)
    for (let j = i + 1; j < fingerprints.length; j++) if (fingerprints[i] !== fingerprints[j]) pairs++;
  return pairs;
}

/**
 * Patients missing on a device of one facility: for each device, the patients that another
 * device (or `alsoKnown`, e.g. the server's copy) shows and this one does not.
 */
export function missingPatients(views: readonly Projection[], alsoKnown: Iterable<string> = []): number {
  const seen = views.map((v) => new Set<string>(v.patients().map((p) => p.id)));
  const union = new Set<string>(alsoKnown);
  for (const ids of seen) for (const id of ids) union.add(id);
  let missing = 0;
  for (const mine of seen) for (const id of union) if (!mine.has(id)) missing++;
  return missing;
}

/**
 * Duplicates created: for each fact the users meant to record once (a registration, a dose),
 * the events that took effect for it beyond the first.
 */
export function duplicatesAmong(effectiveByFact: ReadonlyMap<string, ReadonlySet<string>>): number {
  let duplicates = 0;
  for (const ids of effectiveByFact.values()) duplicates += Math.max(0, ids.size - 1);
  return duplicates;
}
