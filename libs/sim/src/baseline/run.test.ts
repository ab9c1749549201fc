import { describe, expect, it } from 'vitest';
import { withSeed } from '@accord/testkit';
import type { ScenarioInput } from '../scenario.js';
import { defineScenario } from '../scenario.js';
import { runBaseline } from './run.js';

/** A clean network: no loss, no cuts, so only what a test adds causes trouble. */
const CLEAN = { latency: { dist: 'fixed', ms: 20 }, loss: 0, truncate: 0 } as const;

function scenario(seed: number, extra: ScenarioInput = {}) {
  return defineScenario({
    seed,
    devicesPerFacility: 3,
    duration: '2d',
    network: { default: CLEAN },
    ...extra,
    workload: { ratePerHour: 5, violations: 0, duplicates: 0, reentry: 1, ...extra.workload },
  });
}

describe('runBaseline (the queue-based client)', () => {
  it('gives identical JSON for the same seed and different JSON for another seed', () =>
    withSeed('baseline determinism', (seed) => {
      const s = scenario(seed, {
        devicesPerFacility: 2,
        duration: '1d',
        network: { default: { loss: 0.05, truncate: 0.02, duplicate: 0.01, reorder: 0.05 } },
        clockSkew: { random: '5m' },
        partitions: { random: { count: 1, meanLength: '3h' } },
        crashes: { random: { count: 1, downtime: '20m' } },
        workload: { violations: 0.05, duplicates: 0.05 },
      });
      const a = JSON.stringify(runBaseline(s));
      expect(JSON.stringify(runBaseline(s))).toBe(a);
      expect(JSON.stringify(runBaseline({ ...s, seed: s.seed + 1 }))).not.toBe(a);
      // No wall-clock figure can hide in the result: it parses back to the same bytes.
      expect(JSON.stringify(JSON.parse(a))).toBe(a);
    }));

  it('reproduces the field symptoms under server rejections and pull-overwrite', () =>
    withSeed('baseline rejections', (seed) => {
      const r = runBaseline(scenario(seed, { workload: { violations: 0.15 } }));
      // Rejected changes sit in the hidden dead-letter queue …
      expect(r.deadletters['422'] ?? 0).toBeGreaterThan(10);
      expect(r.eventsLost).toBeGreaterThan(10);
      // … the next pull overwrites them: the user sees the change gone and, here always, enters it again.
      expect(r.symptoms.changesAppearLost).toBeGreaterThan(10);
      expect(r.reentries).toBe(r.symptoms.changesAppearLost);
      expect(r.eventsAppended).toBeGreaterThan(r.reentries);
      // Tablets of one facility end up showing different numbers.
      expect(r.symptoms.countersDisagree).toBeGreaterThan(0);
      expect(r.converged).toBe(false);
      expect(r.divergence.some(([, pairs]) => pairs > 0)).toBe(true);

      // Users who do not re-enter add no events of their own.
      const calm = runBaseline(scenario(seed, { workload: { violations: 0.15, reentry: 0 } }));
      expect(calm.reentries).toBe(0);
      expect(calm.eventsAppended).toBeLessThan(r.eventsAppended);
    }));

  it('reproduces the field symptoms under severed transfers', () =>
    withSeed('baseline severed', (seed) => {
      const r = runBaseline(scenario(seed, { network: { default: { ...CLEAN, truncate: 0.08 } } }));
      // A cut-off request or answer moves the item to the dead-letter queue at once …
      expect(r.deadletters['severed'] ?? 0).toBeGreaterThan(10);
      expect(r.eventsLost).toBeGreaterThan(10);
      // … so registrations never reach the other tablets, and encounters closed here re-open.
      expect(r.symptoms.patientsMissing).toBeGreaterThan(0);
      expect(r.symptoms.changesAppearLost).toBeGreaterThan(0);
      expect(r.symptoms.encounterReappeared + r.symptoms.countersDisagree).toBeGreaterThan(0);
      expect(r.network.truncated).toBeGreaterThan(0);

      // The same users on an intact network see no severed transfers at all.
      const intact = runBaseline(scenario(seed));
      expect(intact.deadletters['severed']).toBeUndefined();
      expect(intact.network.truncated).toBe(0);
      expect(intact.eventsLost).toBeLessThan(r.eventsLost);
    }));

  it('loses what the server accepted after its backup when it is restored, without telling anyone', () =>
    withSeed('baseline restore', (seed) => {
      const HOUR = 3_600_000;
      // f1-d3 is away from before the backup until after the restore: the registrations the server
      // accepted in between reach it from nowhere.
      const s = scenario(seed, {
        duration: '1d',
        workload: { until: '20h' },
        partitions: { scripted: [{ node: 'f1-d3', from: '2h', to: '7h' }] },
      });
      const intact = runBaseline(s);
      const restored = runBaseline({ ...s, relayRestore: { atMs: 6 * HOUR, fromMs: 3 * HOUR } });
      // The items accepted between 3 h and 6 h left the tablets' outboxes when they were accepted
      // and are gone from the server: acknowledged, then lost; later changes to the patients it
      // lost are refused as changes to nobody (404), into the hidden queue too.
      expect(restored.eventsLost).toBeGreaterThan(intact.eventsLost + 10);
      expect(restored.deadletters['404'] ?? 0).toBeGreaterThan((intact.deadletters['404'] ?? 0) + 5);
      // The tablet that was away never gets the patients registered meanwhile; the others keep
      // showing them, and no tablet shows what the server holds.
      expect(intact.symptoms.patientsMissing).toBe(0);
      expect(restored.symptoms.patientsMissing).toBeGreaterThan(0);
      expect(restored.symptoms.countersDisagree).toBeGreaterThan(0);
      expect(restored.converged).toBe(false);
    }));

  it('syncs nothing without a server: every tablet keeps its own patients', () =>
    withSeed('baseline no relay', (seed) => {
      const r = runBaseline(scenario(seed, { relay: false, duration: '1d' }));
      expect(r.messages).toBe(0);
      expect(r.symptoms.patientsMissing).toBeGreaterThan(0);
      expect(r.converged).toBe(false);
    }));

  it('holds pushes while a tablet is offline or the server is down, and delivers them afterwards', () =>
    withSeed('baseline partition', (seed) => {
      const s = scenario(seed, {
        duration: '2d',
        workload: { until: '1d' },
        partitions: { scripted: [{ node: 'f1-d2', from: '2h', to: '20h' }] },
        crashes: { scripted: [{ node: 'relay', at: '4h', downtime: '3h' }] },
      });
      const r = runBaseline(s);
      expect(r.quiescentAtMs).toBeGreaterThanOrEqual(20 * 3_600_000);
      // Offline, or with the server down, the client does not even try: no timeouts pile up into
      // the dead-letter queue.
      expect(r.deadletters['timeout']).toBeUndefined();
      expect(r.eventsAppended).toBeGreaterThan(100);
    }));
});
