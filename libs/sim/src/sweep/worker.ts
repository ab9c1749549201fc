// The sweep's child process: runs the scenarios it is sent, one at a time, and answers each with
// its result. Started by `runSweep` with an IPC channel; exits when the channel closes.
import { runBaseline } from '../baseline/run.js';
import { checkScenario } from '../scenario.js';
import type { SweepJob, SweepAnswer } from './pool.js';

process.on('message', (job: SweepJob) => {
  let answer: SweepAnswer;
  try {
    answer = { index: job.index, result: runBaseline(checkScenario(job.input)) };
  } catch (cause) {
    answer = { index: job.index, error: String((cause as Error).stack ?? cause) };
  }
  process.send!(answer);
});
process.on('disconnect', () => process.exit(0));
