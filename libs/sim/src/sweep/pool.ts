import { fork, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { SystemResult } from '../result.js';
import type { ScenarioInput } from '../scenario.js';

/** What the parent sends a sweep child. */
export interface SweepJob {
  readonly index: number;
  readonly input: ScenarioInput;
}

/** Both systems' results on one run's scenario. */
export interface SweepRunResult {
  readonly accord: SystemResult;
  readonly baseline: SystemResult;
}

/** What a sweep child answers: the results, or the error that stopped the run. */
export type SweepAnswer =
  | { readonly index: number; readonly result: SweepRunResult; readonly error?: undefined }
  | { readonly index: number; readonly error: string; readonly result?: undefined };

/**
 * The program a sweep child runs: a module that ends up in `serveSweepJobs`, its arguments and
 * the Node flags it needs.
 */
export interface SweepWorker {
  readonly module: string;
  readonly args?: readonly string[];
  readonly execArgv?: readonly string[];
}

/**
 * This package's own child module: `worker.ts` through tsx (as the tests and `npm run bench` run
 * the sources), or `worker.js` beside a compiled build. A bundle, whose `import.meta.url` is the
 * bundle's, passes its own {@link SweepWorker} instead.
 */
function defaultWorker(): SweepWorker {
  const here = import.meta.url;
  const ts = here.endsWith('.ts');
  const module = fileURLToPath(new URL(ts ? './worker.ts' : './worker.js', here));
  return { module, execArgv: ts ? ['--conditions=@accord/source', '--import', 'tsx'] : [] };
}

/**
 * Runs `jobs` on `workers` child processes (default: one per core) running `worker`, calling
 * `onAnswer` as each finishes (in completion order; each answer carries its job's index).
 *
 * @remarks Child processes rather than worker threads: each run is CPU-bound and independent, and a
 * child can load the TypeScript sources through tsx. A child that dies fails its job with an error
 * answer instead of hanging the sweep.
 */
export async function runPool(
  jobs: readonly SweepJob[],
  onAnswer: (a: SweepAnswer) => void,
  workers = availableParallelism(),
  worker: SweepWorker = defaultWorker(),
): Promise<void> {
  let next = 0;
  const lane = (): Promise<void> =>
    new Promise((resolve) => {
      if (next >= jobs.length) {
        resolve();
        return;
      }
      const child: ChildProcess = fork(worker.module, [...(worker.args ?? [])], {
        execArgv: [...(worker.execArgv ?? [])],
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      });
      let current: SweepJob | undefined;
      const feed = (): void => {
        current = jobs[next++];
        if (current === undefined) {
          child.disconnect();
          return;
        }
        child.send(current);
      };
      child.on('message', (a: SweepAnswer) => {
        onAnswer(a);
        feed();
      });
      child.on('exit', (code) => {
        if (current !== undefined)
          onAnswer({ index: current.index, error: `sweep child exited with code ${String(code)}` });
        current = undefined;
        resolve();
      });
      feed();
    });
  await Promise.all(Array.from({ length: Math.max(1, Math.min(workers, jobs.length)) }, lane));
}
