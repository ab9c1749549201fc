import { describe, expect, it } from 'vitest';
import { withSeed } from '@accord/testkit';
import { runBaseline } from '../baseline/run.js';
import { SimError } from '../errors.js';
import { defineScenario, type ScenarioInput } from '../scenario.js';
import { runAccord } from './run.js';

/**
 * Three tablets of one clinic for a day: lossy links with cut frames, tablet 3 offline from 3 h
 * to 9 h, skewed clocks, users (with deliberate violations and duplicates) until 16 h.
 */
const input = (seed: number, relay = false): ScenarioInput => ({
  seed,
  relay,
  devicesPerFacility: 3,
  duration: '1d',
  workload: { ratePerHour: 4, until: '16h', violations: 0.05, duplicates: 0.02 },
  network: { default: { loss: 0.03, truncate: 0.03 } },
  partitions: { scripted: [{ node: 'f1-d3', from: '3h', to: '9h' }] },
  clockSkew: { random: '30s' },
  sampleEvery: '2h',
});

describe('runAccord (peer to peer, no relay yet)', () => {
  it(
    'through loss, cut frames and a partition every tablet ends with every saved event and none is lost; the same seed gives the same JSON',
    () =>
      withSeed('accord p2p', async (seed) => {
        const first = await runAccord(defineScenario(input(seed)));
        expect(first.eventsAppended).toBeGreaterThan(50);
        // The faults happened: frames were cut and lost, the partition dropped traffic…
        expect(first.network.truncated).toBeGreaterThan(0);
        expect(first.network.droppedLoss).toBeGreaterThan(0);
        expect(first.network.droppedOffline).toBeGreaterThan(0);
        expect(first.divergence.some(([, pairs]) => pairs > 0)).toBe(true);
        // …and once they stopped every tablet held the same events, none lost.
        expect(first.converged).toBe(true);
        // Measured from the last user action (the partition ended before it): that event still had to travel.
        expect(first.quiescentAtMs).toBeGreaterThan(9 * 3_600_000);
        expect(first.convergenceMs).toBeGreaterThan(0);
        expect(first.eventsLost).toBe(0);
        expect(first.deadletters).toEqual({});
        const again = await runAccord(defineScenario(input(seed)));
        expect(JSON.stringify(again)).toBe(JSON.stringify(first));
      }),
    300_000,
  );

  it(
    "shows none of the baseline's p2p-observable symptoms where the baseline, on the same seed, workload and faults, shows them",
    () =>
      withSeed('accord vs baseline symptoms', async (seed) => {
        // The incumbent with its server (without one it never syncs at all); Accord peer to peer.
        const baseline = runBaseline(defineScenario(input(seed, true)));
        expect(baseline.symptoms.patientsMissing).toBeGreaterThan(0);
        expect(baseline.symptoms.countersDisagree).toBeGreaterThan(0);
        expect(baseline.symptoms.changesAppearLost).toBeGreaterThan(0);
        expect(baseline.eventsLost).toBeGreaterThan(0);
        const accord = await runAccord(defineScenario(input(seed)));
        expect(accord.symptoms).toEqual({
          patientsMissing: 0,
          encounterReappeared: 0,
          countersDisagree: 0,
          changesAppearLost: 0,
        });
        expect(accord.eventsLost).toBe(0);
      }),
    300_000,
  );

  it("counts what stays apart: with p2p off no tablet sees another one's events", () =>
    withSeed('accord no p2p', async (seed) => {
      const base = input(seed);
      const r = await runAccord(
        defineScenario({ ...base, p2p: false, duration: '6h', workload: { ...base.workload, until: '5h' } }),
      );
      expect(r.eventsAppended).toBeGreaterThan(10);
      expect(r.converged).toBe(false);
      expect(r.convergenceMs).toBeNull();
      expect(r.symptoms.patientsMissing).toBeGreaterThan(0);
      expect(r.eventsLost).toBe(0);
      expect(r.messages).toBe(0);
    }));

  it("shows the caller every tablet's live log at the end of the run, before the logs close", () =>
    withSeed('accord inspect', async (seed) => {
      const base = input(seed);
      const seen: { node: string; events: number; acknowledged: number }[] = [];
      const r = await runAccord(
        defineScenario({
          ...base,
          duration: '3h',
          workload: { ...base.workload, until: '2h' },
          partitions: {},
        }),
        {
          inspect: ({ devices }) =>
            devices.forEach((d) =>
              seen.push({ node: d.node, events: d.log.list().length, acknowledged: d.acknowledged.length }),
            ),
        },
      );
      expect(seen.map((d) => d.node)).toEqual(['f1-d1', 'f1-d2', 'f1-d3']);
      // Converged: every live log lists every saved event when the hook runs.
      expect(r.converged).toBe(true);
      for (const d of seen) expect(d.events).toBe(r.eventsAppended);
      // Each tablet's acknowledged appends: together, every event saved.
      expect(seen.reduce((n, d) => n + d.acknowledged, 0)).toBe(r.eventsAppended);
      expect(seen.every((d) => d.acknowledged > 0)).toBe(true);
    }));

  it('refuses a scenario with a relay, which it does not run yet', async () => {
    const err: unknown = await runAccord(defineScenario(input(1, true))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SimError);
    expect((err as SimError).code).toBe('SIM_SCENARIO_INVALID');
    expect((err as SimError).details['issues']).toEqual([
      { path: 'relay', message: 'runAccord runs peer to peer only (no relay yet)' },
    ]);
  });
});
