// The simulator section of `npm run bench` (issue #11): seeded Accord runs of a facility's tablets
// through `runAccord` (every simulated tablet applies every event through the real DeviceLog),
// one per core in child processes as a sweep runs them, timed on the wall clock, next to this
// machine's Ed25519 verification rate measured in this process right after them.
import { fork } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { ScenarioInput, SystemResult } from '@accord/sim';
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

/** The seed of the first run; run `i` of a section takes `SIM_BENCH_SEED + i`. */
export const SIM_BENCH_SEED = 11;

/**
 * The bench's scenario: `devices` tablets of one facility whose users save about `events` events
 * in {@link WORK_HOURS} simulated hours (Poisson, the default workload mix; a few of the planned
 * actions are refused in the form, so a run saves somewhat fewer), 5% of frames lost on every
 * link.
 */
export function simBenchScenario(devices: number, events: number, seed = SIM_BENCH_SEED): ScenarioInput {
  return {
    seed,
    ...SIM_BENCH_TOPOLOGY,
    devicesPerFacility: devices,
    duration: `${WORK_HOURS * 1.25}h`,
    workload: { ratePerHour: events / devices / WORK_HOURS, until: `${WORK_HOURS}h` },
    network: { default: { loss: 0.05 } },
    sampleEvery: '1h',
  };
}

/** What the parent asks a child (`sim-child.ts`): one run, and whether to send its events back. */
export interface SimChildJob {
  readonly devices: number;
  readonly events: number;
  readonly seed: number;
  readonly sample: boolean;
}

/** What a child tells the parent. */
export type SimChildAnswer =
  | { readonly kind: 'ready' }
  | { readonly kind: 'progress'; readonly done: number }
  | {
      readonly kind: 'done';
      readonly deliveries: number;
      readonly cpuS: number;
      readonly result: SystemResult;
      readonly sample: readonly SignedEvent[];
    }
  | { readonly kind: 'failed'; readonly error: string };

type Done = Extract<SimChildAnswer, { readonly kind: 'done' }>;

/** Verifications timed for the anchor (the run's own events, repeated when it saved fewer). */
const VERIFY_SAMPLE = 20_000;

export interface SimBench {
  readonly [key: string]: number;
  readonly sim_deliveries_per_s: number;
  readonly sim_ed25519_verify_per_s: number;
  readonly sim_vs_verify_ratio: number;
  readonly sim_events: number;
  readonly sim_deliveries: number;
}

/** A forked child running one job: `ready` once it has loaded the sources, `go` starts the run. */
interface SimChild {
  readonly ready: Promise<void>;
  readonly go: () => void;
  readonly done: Promise<Done>;
}

function startChild(job: SimChildJob, onProgress: (done: number) => void): SimChild {
  const module = fileURLToPath(new URL('./sim-child.ts', import.meta.url));
  // Node's default heap, as a sweep's children have: not the bench process's 2 MB semi-space (its
  // memory sections measure RSS), at which the scavenger took ≈ 15% more CPU for the same run
  // (6 tablets × 300 events, interleaved runs against a 32 MB semi-space).
  const child = fork(module, [], {
    execArgv: ['--conditions=@accord/source', '--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let ready: () => void = () => undefined;
  const readyP = new Promise<void>((resolve) => (ready = resolve));
  const done = new Promise<Done>((resolve, reject) => {
    child.on('message', (a: SimChildAnswer) => {
      if (a.kind === 'ready') ready();
      else if (a.kind === 'progress') onProgress(a.done);
      else if (a.kind === 'done') resolve(a);
      else reject(new Error(`sim bench run (seed ${job.seed}) failed: ${a.error}`));
    });
    // After an answer this changes nothing; before one, the run is lost.
    child.once('exit', (code) =>
      reject(new Error(`sim bench child (seed ${job.seed}) exited with code ${String(code)}`)),
    );
  });
  // A child that dies before it is ready fails `done`, which the caller awaits with `ready`.
  return { ready: Promise.race([readyP, done.then(() => undefined)]), go: () => child.send(job), done };
}

/**
 * Runs `jobs` runs of the scenario at once (seeds {@link SIM_BENCH_SEED}, +1, …), each in its own
 * child process, and returns the section's keys: `sim_deliveries_per_s` (one event shown by one
 * tablet's log is one delivery, its author's included, counted at the end of each run; all runs'
 * deliveries over the wall time from their common start to the last one's end),
 * `sim_wall_s_<devices>x<events>` (that wall time), `sim_jobs`, the runs' CPU seconds, the first
 * run's events, traffic and convergence (seed 11: the figures earlier benches printed), and the
 * anchor `sim_ed25519_verify_per_s` with the ratio.
 *
 * @remarks One run per core is how a sweep uses the machine (`runSweep`: one child per core);
 * `jobs: 1` times one run alone, as the bench did before.
 */
export async function benchSim(
  devices: number,
  events: number,
  jobs = availableParallelism(),
): Promise<SimBench> {
  const label = `sim: ${jobs} × ${devices} tablets × ~${events} events, simulated time`;
  const progressOf = new Array<number>(jobs).fill(0);
  let shown = -1;
  const children = Array.from({ length: jobs }, (_, i) =>
    startChild({ devices, events, seed: SIM_BENCH_SEED + i, sample: i === 0 }, (done) => {
      progressOf[i] = done;
      // Whole tenths of the slowest run, each shown once.
      const pct = Math.floor(Math.min(...progressOf) * 10) * 10;
      if (pct !== shown) progress(label, (shown = pct), 100);
    }),
  );
  await Promise.all(children.map((c) => c.ready));
  const start = process.hrtime.bigint();
  for (const c of children) c.go();
  const runs = await Promise.all(children.map((c) => c.done));
  const wall = Number(process.hrtime.bigint() - start) / 1e9;
  progress(label, 100, 100);
  const first = runs[0]!;
  if (first.sample.length === 0) throw new Error('the simulated run saved no event');
  const verify = await benchVerifyRate(
    Array.from({ length: VERIFY_SAMPLE }, (_, i) => first.sample[i % first.sample.length]!),
  );
  const deliveries = runs.reduce((n, r) => n + r.deliveries, 0);
  const perSecond = deliveries / wall;
  return {
    sim_deliveries_per_s: perSecond,
    [`sim_wall_s_${devices}x${sizeLabel(events)}`]: wall,
    sim_jobs: jobs,
    sim_cpu_s: runs.reduce((n, r) => n + r.cpuS, 0),
    sim_devices: devices,
    sim_events: first.result.eventsAppended,
    sim_deliveries: deliveries,
    sim_converged: runs.every((r) => r.result.converged) ? 1 : 0,
    sim_messages_per_event: first.result.messagesPerEvent,
    sim_bytes_per_event: first.result.bytesPerEvent,
    sim_ed25519_verify_per_s: verify,
    sim_vs_verify_ratio: perSecond / verify,
  };
}
