import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SimError, SimErrorCode } from '../errors.js';
import type { SweepRun } from './grid.js';
import { runPool, type SweepWorker } from './pool.js';
import type { SweepLine } from './summary.js';
import { summaryCsv } from './summary.js';

/** Where a sweep writes and how it shows progress. */
export interface SweepOptions {
  readonly outDir: string;
  /** Child processes (default: one per core). */
  readonly workers?: number;
  /** Where the progress bar goes (default: nothing); a CLI passes `process.stderr`. */
  readonly progress?: { write(text: string): unknown };
  /** The children's program (default: this package's worker); a bundle passes itself, see `serveSweepJobs`. */
  readonly worker?: SweepWorker;
}

/** The text of a progress bar: `[#####---------------]  5/20 runs`. */
export function progressBar(done: number, total: number, width = 30): string {
  const filled = total === 0 ? width : Math.round((done / total) * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(done).padStart(String(total).length)}/${total} runs`;
}

/**
 * Runs every run of a sweep in parallel, Accord and the baseline on each run's scenario, and writes `runs.jsonl` (one {@link SweepLine} per run, in
 * run order, whatever order they finished in) and `summary.csv` (see `summaryCsv`) into `outDir`.
 *
 * @remarks The files hold no wall-clock figure: the same grid gives the same bytes. A run that
 * fails makes the sweep fail with `SIM_SWEEP_RUN_FAILED` after the others finished.
 */
export async function runSweep(runs: readonly SweepRun[], opts: SweepOptions): Promise<SweepLine[]> {
  const lines = new Array<SweepLine | undefined>(runs.length);
  const failures: { run: number; error: string }[] = [];
  let done = 0;
  opts.progress?.write(`\r${progressBar(0, runs.length)}`);
  await runPool(
    runs.map((r) => ({ index: r.index, input: r.input })),
    (a) => {
      const run = runs[a.index]!;
      if (a.result !== undefined) {
        lines[a.index] = {
          run: run.index,
          point: run.point,
          seed: run.seed,
          params: run.params,
          accord: a.result.accord,
          baseline: a.result.baseline,
        };
      } else failures.push({ run: a.index, error: a.error });
      done++;
      opts.progress?.write(`\r${progressBar(done, runs.length)}`);
    },
    opts.workers,
    opts.worker,
  );
  opts.progress?.write('\n');
  if (failures.length > 0) {
    failures.sort((a, b) => a.run - b.run);
    const first = failures[0]!;
    throw new SimError(
      SimErrorCode.SIM_SWEEP_RUN_FAILED,
      `${failures.length} of ${runs.length} sweep runs failed; run ${first.run}: ${first.error.split('\n')[0]}`,
      { failures: failures.slice(0, 10) },
    );
  }
  const complete = lines as SweepLine[];
  await mkdir(opts.outDir, { recursive: true });
  await writeFile(join(opts.outDir, 'runs.jsonl'), complete.map((l) => JSON.stringify(l)).join('\n') + '\n');
  await writeFile(join(opts.outDir, 'summary.csv'), summaryCsv(runs, complete));
  return complete;
}
