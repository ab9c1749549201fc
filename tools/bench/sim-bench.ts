// The simulator section of `npm run bench` (issue #11): one seeded Accord run of a facility's
// tablets through `runAccord` (every simulated tablet applies every event through the real
// DeviceLog), timed on the wall clock, next to this machine's Ed25519 verification rate measured
// in the same process right after it.
import { defineScenario, runAccord, type ScenarioInput } from '@accord/sim';
import type { SignedEvent } from '@accord/protocol';
import { benchVerifyRate } from './anchor-bench.js';
import { sizeLabel } from './log-bench.js';
import { progress } from './stats.js';

/**
 * Where the bench's tablets sync: with the relay, as in the field (every tablet syncs with the
 * relay's real `FacilityNode`, which judges every event); no peer-to-peer links, whose count
 * grows with the square of the tablets (see libs/sim's README, "Speed").
 */
export const SIM_BENCH_TOPOLOGY = { relay: true, p2p: false } as const;

/** Simulated hours the users work; the run lasts a quarter longer, so the facility can settle. */
const WORK_HOURS = 16;

/**
 * The bench's scenario: `devices` tablets of one facility whose users save about `events` events
 * in {@link WORK_HOURS} simulated hours (Poisson, the default workload mix; a few of the planned
 * actions are refused in the form, so a run saves somewhat fewer), 5% of frames lost on every
 * link, fixed seed.
 */
export function simBenchScenario(devices: number, events: number): ScenarioInput {
  return {
    seed: 11,
    ...SIM_BENCH_TOPOLOGY,
    devicesPerFacility: devices,
    duration: `${WORK_HOURS * 1.25}h`,
    workload: { ratePerHour: events / devices / WORK_HOURS, until: `${WORK_HOURS}h` },
    network: { default: { loss: 0.05 } },
    sampleEvery: '1h',
  };
}

/** Verifications timed for the anchor (the run's own events, repeated when it saved fewer). */
const VERIFY_SAMPLE = 20_000;

// The run puts simulated timers and clock in place of the global ones; progress is shown from
// the real ones, taken here, reading the simulated time through the patched `Date.now`.
const realSetInterval = globalThis.setInterval;
const realClearInterval = globalThis.clearInterval;

export interface SimBench {
  readonly [key: string]: number;
  readonly sim_deliveries_per_s: number;
  readonly sim_ed25519_verify_per_s: number;
  readonly sim_vs_verify_ratio: number;
  readonly sim_events: number;
  readonly sim_deliveries: number;
}

/**
 * Runs the scenario once and returns the section's keys: `sim_deliveries_per_s` (one event shown
 * by one tablet's log is one delivery, its author's included, counted at the end of the run),
 * `sim_wall_s_<devices>x<events>`, the run's CPU seconds, events, deliveries, traffic, whether it
 * converged, and the anchor `sim_ed25519_verify_per_s` with the ratio.
 */
export async function benchSim(devices: number, events: number): Promise<SimBench> {
  const scenario = defineScenario(simBenchScenario(devices, events));
  const label = `sim: ${devices} tablets × ~${events} events, simulated time`;
  let shown = -1;
  const ticker = realSetInterval(() => {
    const done = (Date.now() - scenario.epochMs) / scenario.durationMs;
    // Whole tenths, each shown once (stats.progress shows only those when stderr is not a TTY).
    const pct = Math.floor(done * 10) * 10;
    // Before the run installs its clock (and after it), Date.now is the real one: years away.
    if (done < 0 || done > 1 || pct === shown) return;
    shown = pct;
    progress(label, pct, 100);
  }, 1000);
  let deliveries = 0;
  const sample: SignedEvent[] = [];
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  const result = await runAccord(scenario, {
    inspect: ({ devices: tablets }) => {
      for (const t of tablets) {
        const infos = t.log.list();
        deliveries += infos.length;
        if (sample.length === 0) sample.push(...infos.map((i) => i.event));
      }
    },
  }).finally(() => realClearInterval(ticker));
  const wall = Number(process.hrtime.bigint() - start) / 1e9;
  const used = process.cpuUsage(cpu);
  progress(label, 100, 100);
  if (sample.length === 0) throw new Error('the simulated run saved no event');
  const verify = await benchVerifyRate(
    Array.from({ length: VERIFY_SAMPLE }, (_, i) => sample[i % sample.length]!),
  );
  const perSecond = deliveries / wall;
  return {
    sim_deliveries_per_s: perSecond,
    [`sim_wall_s_${devices}x${sizeLabel(events)}`]: wall,
    sim_cpu_s: (used.user + used.system) / 1e6,
    sim_devices: devices,
    sim_events: result.eventsAppended,
    sim_deliveries: deliveries,
    sim_converged: result.converged ? 1 : 0,
    sim_messages_per_event: result.messagesPerEvent,
    sim_bytes_per_event: result.bytesPerEvent,
    sim_ed25519_verify_per_s: verify,
    sim_vs_verify_ratio: perSecond / verify,
  };
}
