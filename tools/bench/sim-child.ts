// A child process of the bench's simulator section (`sim-bench.ts`): runs one seeded Accord run
// of the bench's scenario when the parent says so and answers with its deliveries, its CPU time,
// its result and (if asked) the run's events, for the parent's Ed25519 anchor. One run per
// process: `runAccord` puts simulated timers and entropy in place of the globals.
import { defineScenario, runAccord } from '@accord/sim';
import type { SignedEvent } from '@accord/protocol';
import { simBenchScenario, type SimChildAnswer, type SimChildJob } from './sim-bench.js';

// The run puts simulated timers and clock in place of the global ones; progress is reported from
// the real ones, taken here, reading the simulated time through the patched `Date.now`.
const realSetInterval = globalThis.setInterval;
const realClearInterval = globalThis.clearInterval;

const send = (answer: SimChildAnswer): void => {
  process.send!(answer);
};

/** Sends the last answer, then ends the process (nothing else is left to run in it). */
const finish = (answer: SimChildAnswer): void => {
  process.send!(answer, () => process.exit(0));
};

async function run(job: SimChildJob): Promise<SimChildAnswer> {
  const scenario = defineScenario(simBenchScenario(job.devices, job.events, job.seed));
  const ticker = realSetInterval(() => {
    const done = (Date.now() - scenario.epochMs) / scenario.durationMs;
    // Before the run installs its clock (and after it), Date.now is the real one: years away.
    if (done >= 0 && done <= 1) send({ kind: 'progress', done });
  }, 1000);
  let deliveries = 0;
  const sample: SignedEvent[] = [];
  const cpu = process.cpuUsage();
  const result = await runAccord(scenario, {
    inspect: ({ devices: tablets }) => {
      for (const t of tablets) {
        const infos = t.log.list();
        deliveries += infos.length;
        if (job.sample && sample.length === 0) sample.push(...infos.map((i) => i.event));
      }
    },
  }).finally(() => realClearInterval(ticker));
  const used = process.cpuUsage(cpu);
  return { kind: 'done', deliveries, cpuS: (used.user + used.system) / 1e6, result, sample };
}

process.on('message', (job: SimChildJob) => {
  run(job).then(finish, (cause: unknown) =>
    finish({
      kind: 'failed',
      error: cause instanceof Error ? (cause.stack ?? cause.message) : String(cause),
    }),
  );
});
send({ kind: 'ready' });
