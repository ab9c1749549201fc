import { isAccordError } from '@accord/protocol';
import { runAccord } from '../accord/run.js';
import { runBaseline } from '../baseline/run.js';
import { checkScenario } from '../scenario.js';
import type { SweepAnswer, SweepJob } from './pool.js';

/** Why a run failed, for the sweep's error: an Accord error's code and message, else the stack. */
function describeFailure(cause: unknown): string {
  if (isAccordError(cause)) return `${cause.code}: ${cause.message}`;
  return cause instanceof Error ? (cause.stack ?? cause.message) : String(cause);
}

/**
 * The body of a sweep child: answers each job the parent sends over the IPC channel with both
 * systems' results on its scenario (Accord first, then the baseline), one job at a time; resolves
 * when the parent closes the channel.
 *
 * @remarks Exported so that a bundled program (the `accord` CLI) can be its own sweep child:
 * `runSweep`'s `worker` option forks it with arguments that lead here. One job at a time matters:
 * `runAccord` puts simulated timers and entropy in place of the globals for its run's length.
 */
export function serveSweepJobs(): Promise<void> {
  const send = process.send?.bind(process);
  if (send === undefined) throw new Error('serveSweepJobs needs an IPC channel (a child forked by runSweep)');
  process.on('message', (job: SweepJob) => {
    void (async () => {
      let answer: SweepAnswer;
      try {
        const scenario = checkScenario(job.input);
        const accord = await runAccord(scenario);
        answer = { index: job.index, result: { accord, baseline: runBaseline(scenario) } };
      } catch (cause) {
        answer = { index: job.index, error: describeFailure(cause) };
      }
      send(answer);
    })();
  });
  return new Promise((resolve) => process.once('disconnect', resolve));
}
