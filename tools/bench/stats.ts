/** Small measurement helpers for the benchmark: percentiles, timing, progress, CPU. */
import { readdir, readFile } from 'node:fs/promises';

/** The p-th percentile (0–100) of `values` by nearest rank; NaN for an empty list. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/** Runs `count` async jobs with at most `concurrency` in flight; returns elapsed ms. */
export async function runConcurrent(
  count: number,
  concurrency: number,
  job: (i: number) => Promise<unknown>,
): Promise<number> {
  let next = 0;
  const start = performance.now();
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      await job(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return performance.now() - start;
}

/** Writes a one-line progress indicator to stderr (not stdout, which may carry JSON). */
export function progress(label: string, done: number, total: number): void {
  if (!process.stderr.isTTY && done !== total && done % Math.max(1, Math.floor(total / 10)) !== 0) return;
  const pct = total === 0 ? 100 : Math.floor((done / total) * 100);
  process.stderr.write(
    `${process.stderr.isTTY ? '\r' : ''}[bench] ${label}: ${done}/${total} (${pct}%)${process.stderr.isTTY ? '' : '\n'}`,
  );
  if (process.stderr.isTTY && done === total) process.stderr.write('\n');
}

/**
 * Lets the bench process collect its own garbage before a window in which only device processes
 * are measured: a major collection of the harness's heap (it holds the whole history, and what the
 * set-up left) would otherwise take CPU from them on a 2-core machine. Needs `--expose-gc`.
 */
export async function settleHarness(): Promise<void> {
  (globalThis as { gc?: () => void }).gc?.();
  await new Promise((resolve) => setTimeout(resolve, 200));
}

/** Each thread of this process: its id, name and CPU seconds so far (Linux: `/proc`; none elsewhere). */
async function threadStats(): Promise<{ tid: string; name: string; cpuS: number }[]> {
  const out: { tid: string; name: string; cpuS: number }[] = [];
  for (const tid of await readdir('/proc/self/task').catch(() => [])) {
    const stat = await readFile(`/proc/self/task/${tid}/stat`, 'utf8').catch(() => '');
    // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields.length <= 12) continue; // the thread ended meanwhile
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    out.push({ tid, name, cpuS: (Number(fields[11]) + Number(fields[12])) / 100 });
  }
  return out;
}

/**
 * CPU seconds of each of this process's threads so far, by `name/tid` (the main thread as
 * `main`; Linux: `/proc`, empty elsewhere): where the work off the main thread goes.
 */
export async function threadsCpuS(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const { tid, name, cpuS } of await threadStats()) {
    const key = tid === String(process.pid) ? 'main' : `${name}/${tid}`;
    out[key] = (out[key] ?? 0) + cpuS;
  }
  return out;
}

/**
 * CPU seconds of each of this process's threads so far, by thread id (Linux: `/proc`; empty
 * elsewhere). Node 20 names every thread `node`: callers tell them apart by when they started.
 */
export async function threadCpuS(): Promise<Map<string, number>> {
  return new Map((await threadStats()).map(({ tid, cpuS }) => [tid, cpuS]));
}

/**
 * CPU seconds of this process's main thread so far (Linux: `/proc`), 0 elsewhere: verification
 * runs on worker threads and V8 collects garbage on helper threads, the main thread does the rest.
 */
export async function mainThreadCpuS(): Promise<number> {
  try {
    const stat = await readFile(`/proc/self/task/${process.pid}/stat`, 'utf8');
    // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}
