import type { Projection } from '@accord/domain';
import { describe, expect, it } from 'vitest';
import { disagreeingPairs, duplicatesAmong, missingPatients, projectionFingerprint } from './symptoms.js';

/** A device's view as far as the symptoms read it: its patients and its counters. */
function view(patients: readonly string[], counters: Record<string, number> = {}): Projection {
  return {
    patients: () => patients.map((id) => ({ id })),
    counters: () => counters,
  } as unknown as Projection;
}

describe('symptoms shared by every system under test', () => {
  it('counts, per device, the patients another device or the server shows and it does not', () => {
    expect(missingPatients([view(['p1', 'p2']), view(['p1', 'p2'])])).toBe(0);
    expect(missingPatients([view(['p1', 'p2']), view(['p1']), view([])])).toBe(1 + 2);
    // The server's copy counts as another holder: both tablets miss p3.
    expect(missingPatients([view(['p1']), view(['p1'])], ['p3'])).toBe(2);
  });

  it('counts the pairs of devices whose counters or patients differ', () => {
    const a = projectionFingerprint(view(['p1'], { registered: 1 }));
    const sameAsA = projectionFingerprint(view(['p1'], { registered: 1 }));
    const otherCount = projectionFingerprint(view(['p1'], { registered: 2 }));
    const otherPatient = projectionFingerprint(view(['p2'], { registered: 1 }));
    expect(disagreeingPairs([a, sameAsA])).toBe(0);
    expect(disagreeingPairs([a, sameAsA, otherCount])).toBe(2);
    expect(disagreeingPairs([a, otherCount, otherPatient])).toBe(3);
  });

  it('counts the events that took effect for a fact beyond its first', () => {
    const byFact = new Map([
      ['register Ada', new Set(['e1', 'e2', 'e3'])],
      ['dose 1 for Ada', new Set(['e4'])],
      ['stock L-1', new Set<string>()],
    ]);
    expect(duplicatesAmong(byFact)).toBe(2);
  });
});
