import { describe, expect, it } from 'vitest';
import { withSeed } from '@accord/testkit';
import { runBaseline } from '../baseline/run.js';
import { defineScenario, type ScenarioInput } from '../scenario.js';
import type { DeviceLog } from '@accord/log';
import { verdictsIn, type DeviceId } from '@accord/protocol';
import { runAccord, type AccordFinalState } from './run.js';

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

describe('runAccord peer to peer (no relay)', () => {
  it(
    "through loss, cut frames and a partition every tablet ends with every saved event, none lost, and none of the baseline's p2p-observable symptoms that the baseline shows on the same seed",
    () =>
      withSeed('accord p2p', async (seed) => {
        // The incumbent with its server (without one it never syncs at all); Accord peer to peer.
        const baseline = runBaseline(defineScenario(input(seed, true)));
        expect(baseline.symptoms.patientsMissing).toBeGreaterThan(0);
        expect(baseline.symptoms.countersDisagree).toBeGreaterThan(0);
        expect(baseline.symptoms.changesAppearLost).toBeGreaterThan(0);
        expect(baseline.eventsLost).toBeGreaterThan(0);
        // (Same seed, same JSON: the relay replay test below, whose tablets also sync peer to peer.)
        const accord = await runAccord(defineScenario(input(seed)));
        expect(accord.eventsAppended).toBeGreaterThan(50);
        // The faults happened: frames were cut and lost, the partition dropped traffic…
        expect(accord.network.truncated).toBeGreaterThan(0);
        expect(accord.network.droppedLoss).toBeGreaterThan(0);
        expect(accord.network.droppedOffline).toBeGreaterThan(0);
        expect(accord.divergence.some(([, pairs]) => pairs > 0)).toBe(true);
        // …and once they stopped every tablet held the same events, none lost.
        expect(accord.converged).toBe(true);
        // Measured from the last user action (the partition ended before it): that event still had to travel.
        expect(accord.quiescentAtMs).toBeGreaterThan(9 * 3_600_000);
        expect(accord.convergenceMs).toBeGreaterThan(0);
        expect(accord.eventsLost).toBe(0);
        expect(accord.deadletters).toEqual({});
        expect(accord.symptoms).toEqual({
          patientsMissing: 0,
          encounterReappeared: 0,
          countersDisagree: 0,
          changesAppearLost: 0,
        });
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
});

/**
 * Three tablets of one clinic and the relay for 8 hours: lossy links with cut frames, tablet 3
 * offline from 1 h to 2 h, skewed clocks, users (with deliberate violations and duplicates) until
 * 6 h. `extra` adds faults.
 */
const withRelay = (seed: number, extra: ScenarioInput = {}): ScenarioInput => ({
  seed,
  relay: true,
  devicesPerFacility: 3,
  duration: '8h',
  workload: { ratePerHour: 5, until: '6h', violations: 0.1, duplicates: 0.08 },
  network: { default: { loss: 0.03, truncate: 0.03 } },
  partitions: { scripted: [{ node: 'f1-d3', from: '1h', to: '2h' }] },
  clockSkew: { random: '30s' },
  sampleEvery: '1h',
  ...extra,
});

/** The verdicts `log` holds about each device event, by target (relay-signed events only). */
function verdictCounts(log: DeviceLog, relay: DeviceId): { targets: number; counts: Map<string, number> } {
  const counts = new Map<string, number>();
  let targets = 0;
  for (const e of log.visibleEvents()) {
    if (e.device !== relay) {
      targets++;
      continue;
    }
    for (const v of verdictsIn(e)) counts.set(v.target, (counts.get(v.target) ?? 0) + 1);
  }
  return { targets, counts };
}

/**
 * Checks the final state of a relay run: every log (tablets and relay) holds the same events, one
 * verdict per device event, no security incident; returns the deadletter verdicts by code.
 */
function checkOneVerdictEach(state: AccordFinalState, appended: number): Record<string, number> {
  const [relay] = state.relays;
  expect(relay).toBeDefined();
  const logs = [...state.devices.map((d) => d.log), relay!.log];
  const ids = (log: DeviceLog): string[] => [...log.visibleEvents()].map((e) => e.id).sort();
  const relayIds = ids(relay!.log);
  for (const log of logs) {
    expect(ids(log)).toEqual(relayIds);
    const { targets, counts } = verdictCounts(log, relay!.relay);
    expect(targets).toBe(appended);
    expect(counts.size).toBe(appended);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    expect(log.incidents()).toEqual([]);
  }
  const byCode: Record<string, number> = {};
  for (const e of relay!.log.visibleEvents())
    for (const v of verdictsIn(e)) if (v.outcome === 'deadletter') byCode[v.code] = (byCode[v.code] ?? 0) + 1;
  return byCode;
}

describe('runAccord with the relay (the real FacilityNode)', () => {
  it(
    'every tablet ends with every saved event and exactly one relay verdict each; deadletters by code come from the verdicts',
    () =>
      withSeed('accord relay', async (seed) => {
        let byCode: Record<string, number> = {};
        const r = await runAccord(defineScenario(withRelay(seed)), {
          inspect: (state) => {
            byCode = checkOneVerdictEach(state, state.relays[0]!.log.list().length);
          },
        });
        expect(r.eventsAppended).toBeGreaterThan(40);
        expect(r.network.truncated).toBeGreaterThan(0);
        expect(r.network.droppedOffline).toBeGreaterThan(0);
        expect(r.converged).toBe(true);
        expect(r.convergenceMs).toBeGreaterThanOrEqual(0);
        expect(r.eventsLost).toBe(0);
        // The relay judged the deliberate faults: each duplicate registration a 409, violations 422.
        expect(r.deadletters).toEqual(byCode);
        expect(r.deadletters['409'] ?? 0).toBe(r.duplicates);
        expect(r.duplicates).toBeGreaterThan(0);
        expect(r.deadletters['422']).toBeGreaterThan(0);
        expect(r.symptoms).toEqual({
          patientsMissing: 0,
          encounterReappeared: 0,
          countersDisagree: 0,
          changesAppearLost: 0,
        });
      }),
    120_000,
  );

  it(
    'judges nothing 409 or 422 when users make no violation and no duplicate',
    () =>
      withSeed('accord relay clean', async (seed) => {
        const base = withRelay(seed);
        const r = await runAccord(
          defineScenario({
            ...base,
            duration: '3h',
            workload: { ratePerHour: 5, until: '2h', violations: 0, duplicates: 0 },
            partitions: {},
          }),
        );
        expect(r.eventsAppended).toBeGreaterThan(10);
        expect(r.converged).toBe(true);
        expect(r.deadletters['409']).toBeUndefined();
        expect(r.deadletters['422']).toBeUndefined();
      }),
    60_000,
  );

  it(
    'serves two facilities from the one relay node, each by its own FacilityNode, through a relay crash',
    () =>
      withSeed('accord relay two facilities', async (seed) => {
        const seen: { facility: number; facilities: string[]; lives: number }[] = [];
        const r = await runAccord(
          defineScenario({
            ...withRelay(seed),
            facilities: 2,
            devicesPerFacility: 2,
            duration: '3h',
            workload: { ratePerHour: 5, until: '2h', violations: 0.1, duplicates: 0.08 },
            partitions: {},
            crashes: { scripted: [{ node: 'relay', at: '70m', downtime: '10m' }] },
          }),
          {
            inspect: ({ relays, devices }) => {
              for (const relay of relays) {
                const facilities = new Set([...relay.log.visibleEvents()].map((e) => e.facility));
                seen.push({
                  facility: relay.facility,
                  facilities: [...facilities],
                  lives: relay.lives.length,
                });
                const tablets = devices.filter((d) => d.facility === relay.facility);
                expect(tablets).toHaveLength(2);
                for (const t of tablets) expect(t.log.list().length).toBe(relay.log.list().length);
              }
            },
          },
        );
        expect(seen).toEqual([
          { facility: 1, facilities: ['f1'], lives: 2 },
          { facility: 2, facilities: ['f2'], lives: 2 },
        ]);
        expect(r.converged).toBe(true);
        expect(r.eventsLost).toBe(0);
      }),
    60_000,
  );

  it(
    'the same seed gives the same JSON, another seed another one',
    () =>
      withSeed('accord relay replay', async (seed) => {
        const small = (s: number): ScenarioInput => ({
          ...withRelay(s),
          duration: '3h',
          workload: { ratePerHour: 5, until: '2h', violations: 0.1, duplicates: 0.08 },
          partitions: { scripted: [{ node: 'f1-d2', from: '30m', to: '1h' }] },
          crashes: { scripted: [{ node: 'relay', at: '70m', downtime: '10m' }] },
        });
        const first = JSON.stringify(await runAccord(defineScenario(small(seed))));
        const again = JSON.stringify(await runAccord(defineScenario(small(seed))));
        expect(again).toBe(first);
        const other = JSON.stringify(await runAccord(defineScenario(small((seed + 1) >>> 0))));
        expect(other).not.toBe(first);
      }),
    120_000,
  );

  it(
    'a tablet and the relay that crash mid-run (their logs closed, reopened from what their stores held) converge with nothing lost',
    () =>
      withSeed('accord relay crashes', async (seed) => {
        let lives: AccordFinalState['relays'][number]['lives'] = [];
        const r = await runAccord(
          defineScenario(
            withRelay(seed, {
              crashes: {
                scripted: [
                  { node: 'f1-d1', at: '150m', downtime: '30m' },
                  { node: 'relay', at: '4h', downtime: '20m' },
                ],
              },
            }),
          ),
          {
            inspect: (state) => {
              checkOneVerdictEach(state, state.relays[0]!.log.list().length);
              lives = state.relays[0]!.lives;
            },
          },
        );
        // The relay ran twice: the second process started from its store, and went on past it.
        expect(lives.map((l) => l.openedAtMs)).toEqual([0, 4 * 3_600_000 + 20 * 60_000]);
        expect(lives[1]!.ownAtOpen).toBeGreaterThan(0);
        expect(lives[1]!.ownAtEnd).toBeGreaterThan(lives[1]!.ownAtOpen);
        expect(r.converged).toBe(true);
        expect(r.eventsLost).toBe(0);
        expect(r.symptoms.changesAppearLost).toBe(0);
      }),
    120_000,
  );

  it(
    'a relay restored from an older backup relearns its later verdicts from the tablets and continues its sequence: no verdict twice, nothing lost',
    () =>
      withSeed('accord relay restore', async (seed) => {
        let lives: AccordFinalState['relays'][number]['lives'] = [];
        const r = await runAccord(
          defineScenario(withRelay(seed, { relayRestore: { at: '5h', from: '3h' } })),
          {
            inspect: (state) => {
              checkOneVerdictEach(state, state.relays[0]!.log.list().length);
              lives = state.relays[0]!.lives;
            },
          },
        );
        expect(lives.map((l) => l.openedAtMs)).toEqual([0, 5 * 3_600_000]);
        // The backup lacked what the relay wrote between 3 h and 5 h…
        expect(lives[1]!.ownAtOpen).toBeLessThan(lives[0]!.ownAtEnd);
        // …and the restored relay got it back from the tablets and numbered on after it.
        expect(lives[1]!.ownAtEnd).toBeGreaterThan(lives[0]!.ownAtEnd);
        expect(r.converged).toBe(true);
        expect(r.eventsLost).toBe(0);
      }),
    120_000,
  );
  it(
    'a restored relay waits for the tablet holding its latest verdicts, away when the others came back, instead of forking its sequence',
    () =>
      withSeed('accord relay restore, late tablet', async (seed) => {
        const HOUR = 3_600_000;
        let lives: AccordFinalState['relays'][number]['lives'] = [];
        let problems: readonly string[] = [];
        const r = await runAccord(
          defineScenario(
            withRelay(seed, {
              relayRestore: { at: '5h', from: '3h' },
              partitions: {
                scripted: [
                  // f1-d2 and f1-d3 miss the relay's last hour before the restore, and come back
                  // with the restore; f1-d1, which holds that hour's verdicts, goes away just before
                  // it and comes back 20 s after: a relay going ahead with the first tablet back
                  // numbered its next verdicts as those it had given f1-d1 (bug 1 of #11).
                  { node: 'f1-d2', from: '4h', to: '5h' },
                  { node: 'f1-d3', from: '4h', to: '5h' },
                  { node: 'f1-d1', from: 5 * HOUR - 60_000, to: 5 * HOUR + 20_000 },
                ],
              },
            }),
          ),
          {
            inspect: (state) => {
              // One verdict per event on every tablet and the relay, and no incident (a fork is a
              // LOG_EQUIVOCATION of the relay on every log).
              checkOneVerdictEach(state, state.relays[0]!.log.list().length);
              lives = state.relays[0]!.lives;
              problems = state.relays[0]!.problems;
            },
          },
        );
        expect(lives.map((l) => l.openedAtMs)).toEqual([0, 5 * HOUR]);
        expect(lives[1]!.ownAtOpen).toBeLessThan(lives[0]!.ownAtEnd);
        expect(lives[1]!.ownAtEnd).toBeGreaterThan(lives[0]!.ownAtEnd);
        // It waited for f1-d1 rather than going ahead without it.
        expect(problems.filter((p) => p.includes('writing before every enrolled device'))).toEqual([]);
        expect(r.converged).toBe(true);
        expect(r.eventsLost).toBe(0);
      }),
    120_000,
  );

  it('a restored relay waiting for a tablet that crashed while away takes back the verdicts its restarted log holds, not only those its first sync message names', async () => {
    // The convergence property's counterexample (FC_SEED=1196194495, run 119, shrunk), as the
    // scenario it printed: the relay is restored at 3 min from its backup of minute 0 (its roster
    // alone); f1-d2 missed minutes 1–3, so only f1-d1 holds the relay's verdicts of those minutes,
    // and f1-d1 is away from 3 to 6 min, then down until 7 min. The restarted f1-d1 opened the
    // relay's segment after its session with the relay was up, and its Repo synced the document's
    // first change before its stored chunks were merged: the relay, told f1-d1 held none of its
    // verdicts, wrote its next one under the number of the verdict f1-d1 held (LOG_EQUIVOCATION on
    // every log, four events never judged). The seed is the counterexample's: other seeds time
    // that session differently (`repo-host-open.test.ts` pins the mechanism for any timing).
    let lives: AccordFinalState['relays'][number]['lives'] = [];
    let problems: readonly string[] = [];
    const r = await runAccord(
      defineScenario({
        seed: 2624798403,
        relay: true,
        p2p: false,
        devicesPerFacility: 2,
        duration: '12m',
        workload: { ratePerHour: 54, until: '5m', violations: 0, duplicates: 0 },
        network: { default: { loss: 0, duplicate: 0, reorder: 0.03, reorderMax: 0, truncate: 0.03 } },
        partitions: {
          scripted: [
            { node: 'f1-d2', from: '1m', to: '3m' },
            { node: 'f1-d1', from: '3m', to: '6m' },
          ],
        },
        crashes: { scripted: [{ node: 'f1-d1', at: '6m', downtime: '1m' }] },
        relayRestore: { at: '3m', from: '0m' },
        sampleEvery: '1m',
      }),
      {
        inspect: (state) => {
          checkOneVerdictEach(state, state.relays[0]!.log.list().length);
          lives = state.relays[0]!.lives;
          problems = state.relays[0]!.problems;
        },
      },
    );
    expect(problems).toEqual([]);
    // The backup held the roster alone; the restored relay took back the verdicts f1-d1 held and
    // numbered on after them.
    expect(lives.map((l) => [l.openedAtMs, l.ownAtOpen])).toEqual([
      [0, 0],
      [3 * 60_000, 1],
    ]);
    expect(lives[1]!.ownAtEnd).toBeGreaterThan(lives[0]!.ownAtEnd);
    expect(r.converged).toBe(true);
    expect(r.eventsLost).toBe(0);
  });
});
