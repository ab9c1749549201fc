import type { SystemResult } from '../result.js';
import type { SweepRun } from './grid.js';

/** One line of a sweep's `runs.jsonl`: a run's place and both systems' results on its scenario. */
export interface SweepLine {
  readonly run: number;
  readonly point: number;
  readonly seed: number;
  readonly params: Readonly<Record<string, unknown>>;
  readonly accord: SystemResult;
  readonly baseline: SystemResult;
}

/** The systems a sweep compares, in the order their rows and series appear. */
export const SYSTEMS = ['accord', 'baseline'] as const;
/** One of {@link SYSTEMS}: the key of its result in a {@link SweepLine}. */
export type SystemName = (typeof SYSTEMS)[number];

const METRICS: readonly [string, (r: SystemResult) => number | null][] = [
  ['converged', (r) => (r.converged ? 1 : 0)],
  ['convergenceMs', (r) => r.convergenceMs],
  ['rounds', (r) => r.rounds],
  ['eventsAppended', (r) => r.eventsAppended],
  ['eventsLost', (r) => r.eventsLost],
  ['duplicates', (r) => r.duplicates],
  ['reentries', (r) => r.reentries],
  ['messagesPerEvent', (r) => r.messagesPerEvent],
  ['bytesPerEvent', (r) => r.bytesPerEvent],
  ['deadletters', (r) => Object.values(r.deadletters).reduce((a, b) => a + b, 0)],
  ['patientsMissing', (r) => r.symptoms.patientsMissing],
  ['encounterReappeared', (r) => r.symptoms.encounterReappeared],
  ['countersDisagree', (r) => r.symptoms.countersDisagree],
  ['changesAppearLost', (r) => r.symptoms.changesAppearLost],
];

function csvCell(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * The CSV summary of a sweep: one row per grid point and system (Accord, then the baseline), with the grid values, the number
 * of seeds, and the mean of each metric over the seeds (`converged` becomes the share that
 * converged; `convergenceMs` and `rounds` are averaged over the runs that converged, empty if none).
 */
export function summaryCsv(runs: readonly SweepRun[], lines: readonly SweepLine[]): string {
  const params = Object.keys(runs[0]?.params ?? {});
  const header = ['point', ...params, 'system', 'seeds', ...METRICS.map(([k]) => k)];
  const rows = [header.join(',')];
  const byPoint = new Map<number, SweepLine[]>();
  for (const l of lines) byPoint.set(l.point, [...(byPoint.get(l.point) ?? []), l]);
  for (const [point, group] of [...byPoint].sort((a, b) => a[0] - b[0])) {
    const first = group[0]!;
    for (const system of SYSTEMS) {
      const cells: unknown[] = [point, ...params.map((p) => first.params[p]), system, group.length];
      for (const [, get] of METRICS) {
        const values = group.map((l) => get(l[system])).filter((v): v is number => v !== null);
        cells.push(
          values.length === 0
            ? ''
            : Math.round((values.reduce((a, b) => a + b, 0) / values.length) * 1000) / 1000,
        );
      }
      rows.push(cells.map(csvCell).join(','));
    }
  }
  return `${rows.join('\n')}\n`;
}
