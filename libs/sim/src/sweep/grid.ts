import { SimError, SimErrorCode } from '../errors.js';
import type { ScenarioInput } from '../scenario.js';
import { checkScenario, parseScenarioText, withField } from '../scenario.js';

/**
 * A sweep: a base scenario, the values to try for some of its fields (dotted paths such as
 * `network.default.loss`), and how many seeds to run each combination with.
 */
export interface SweepGrid {
  readonly base?: ScenarioInput;
  readonly grid: Readonly<Record<string, readonly unknown[]>>;
  readonly seeds?: number;
}

/** One run of a sweep: its place, the grid values it takes, its seed and its full scenario input. */
export interface SweepRun {
  readonly index: number;
  /** Index of the grid point (runs of one point differ only in their seed). */
  readonly point: number;
  readonly params: Readonly<Record<string, unknown>>;
  readonly seed: number;
  readonly input: ScenarioInput;
}

function invalid(message: string, details: Record<string, unknown> = {}): SimError {
  return new SimError(SimErrorCode.SIM_SCENARIO_INVALID, message, details);
}

/**
 * Every run of a sweep, grid points in order (the last field varies fastest), `seeds` runs per
 * point with seeds `base.seed`, `base.seed + 1`, ….
 *
 * @throws SimError `SIM_SCENARIO_INVALID` when the grid is malformed or any run's scenario is
 * refused (`details.params` names the grid point, `details.cause` the scenario's own error).
 */
export function expandGrid(value: unknown, seedsOverride?: number): SweepRun[] {
  if (typeof value !== 'object' || value === null) throw invalid('a sweep grid must be an object');
  const g = value as Record<string, unknown>;
  const grid = g['grid'];
  if (typeof grid !== 'object' || grid === null || Array.isArray(grid)) {
    throw invalid('`grid` must map field paths to lists of values', { path: 'grid' });
  }
  const fields = Object.entries(grid as Record<string, unknown>);
  for (const [path, values] of fields) {
    if (!Array.isArray(values) || values.length === 0) {
      throw invalid(`grid.${path} must be a non-empty list`, { path: `grid.${path}` });
    }
  }
  const seeds = seedsOverride ?? g['seeds'] ?? 1;
  if (typeof seeds !== 'number' || !Number.isSafeInteger(seeds) || seeds < 1 || seeds > 10_000) {
    throw invalid('`seeds` must be an integer from 1 to 10000', { path: 'seeds' });
  }
  const base = (g['base'] ?? {}) as Record<string, unknown>;
  const firstSeed = typeof base['seed'] === 'number' ? base['seed'] : 1;
  let points: Record<string, unknown>[] = [{}];
  for (const [path, values] of fields) {
    points = points.flatMap((p) => (values as unknown[]).map((v) => ({ ...p, [path]: v })));
  }
  const runs: SweepRun[] = [];
  points.forEach((params, point) => {
    let input: Record<string, unknown> = base;
    for (const [path, v] of Object.entries(params)) input = withField(input, path, v);
    for (let k = 0; k < seeds; k++) {
      const seed = firstSeed + k;
      const withSeed = { ...input, seed } as ScenarioInput;
      try {
        checkScenario(withSeed);
      } catch (cause) {
        throw invalid(`grid point ${JSON.stringify(params)}: ${(cause as Error).message}`, {
          params,
          cause: cause instanceof SimError ? cause.toJSON() : String(cause),
        });
      }
      runs.push({ index: runs.length, point, params, seed, input: withSeed });
    }
  });
  return runs;
}

/** Parses a grid file's text (JSON or YAML, as for scenarios); see {@link expandGrid}. */
export function parseGrid(text: string, seedsOverride?: number): SweepRun[] {
  return expandGrid(parseScenarioText(text, undefined, 'grid file'), seedsOverride);
}
