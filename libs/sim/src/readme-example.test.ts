// The README's worked example, run as written: if the typed scenario API changes, this breaks.
import { describe, expect, it } from 'vitest';
import { defineScenario, runBaseline } from './index.js';

describe('the README example', () => {
  it('runs the study as the README shows it, with symptoms of the kind it quotes', () => {
    const scenario = defineScenario({
      seed: 42,
      devicesPerFacility: 4,
      duration: '3d',
      workload: { ratePerHour: 5, violations: 0.05, duplicates: 0.02, reentry: 0.5 },
      network: {
        default: { loss: 0.02, truncate: 0.05, latency: { dist: 'lognormal', median: '80ms', sigma: 0.7 } },
      },
      partitions: { scripted: [{ node: 'f1-d3', from: 'day 2', to: 'day 3' }] },
      crashes: { scripted: [{ node: 'relay', at: '30h', downtime: '1h' }] },
      clockSkew: { random: '2m' },
    });
    const result = runBaseline(scenario);
    expect(result.converged).toBe(false);
    expect(result.eventsLost).toBeGreaterThan(0);
    expect(Object.keys(result.deadletters)).toEqual(expect.arrayContaining(['422', 'severed']));
    expect(result.symptoms.patientsMissing).toBeGreaterThan(0);
    // Byte for byte the same when run again.
    expect(JSON.stringify(runBaseline(scenario))).toBe(JSON.stringify(result));
  }, 60_000);
});
