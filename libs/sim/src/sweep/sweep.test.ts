import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '@accord/testkit';
import { runBaseline } from '../baseline/run.js';
import { SimError } from '../errors.js';
import { checkScenario } from '../scenario.js';
import { expandGrid, parseGrid } from './grid.js';
import { progressBar, runSweep } from './sweep.js';

const GRID = `
base:
  seed: 40
  devicesPerFacility: 2
  duration: 12h
  workload: { ratePerHour: 3 }
grid:
  network.default.loss: [0, 0.2]
  workload.violations: [0, 0.3]
seeds: 2
`;

describe('sweep grid', () => {
  it('expands the grid × seeds, last field fastest, and sets dotted paths without touching the base', () => {
    const runs = parseGrid(GRID);
    expect(runs).toHaveLength(8);
    expect(runs.map((r) => [r.point, r.seed])).toEqual([
      [0, 40],
      [0, 41],
      [1, 40],
      [1, 41],
      [2, 40],
      [2, 41],
      [3, 40],
      [3, 41],
    ]);
    expect(runs[2]!.params).toEqual({ 'network.default.loss': 0, 'workload.violations': 0.3 });
    expect(runs[2]!.input).toMatchObject({
      workload: { ratePerHour: 3, violations: 0.3 },
      network: { default: { loss: 0 } },
    });
    expect(parseGrid(GRID, 3)).toHaveLength(12);
  });

  it('refuses a malformed grid or a grid point the scenario refuses, naming it', () => {
    for (const bad of [null, { grid: [] }, { grid: { seed: [] } }, { grid: { seed: [1] }, seeds: 0 }]) {
      expect(() => expandGrid(bad)).toThrow(SimError);
    }
    try {
      expandGrid({ grid: { 'network.default.loss': [0.1, 2] } });
      throw new Error('expected a refusal');
    } catch (e) {
      expect((e as SimError).code).toBe('SIM_SCENARIO_INVALID');
      expect((e as SimError).details['params']).toEqual({ 'network.default.loss': 2 });
    }
  });

  it('draws a progress bar', () => {
    expect(progressBar(0, 4, 8)).toBe('[--------] 0/4 runs');
    expect(progressBar(2, 4, 8)).toBe('[####----] 2/4 runs');
  });
});

describe('runSweep', () => {
  it('runs in child processes and writes one JSON line per run (in run order) and a CSV summary, the same bytes twice', async () => {
    const dir = await tempDir('sim-sweep');
    try {
      const runs = parseGrid(GRID);
      const bars: string[] = [];
      const lines = await runSweep(runs, {
        outDir: join(dir.path, 'a'),
        workers: 2,
        progress: { write: (t) => bars.push(t) },
      });
      await runSweep(runs, { outDir: join(dir.path, 'b'), workers: 2 });
      const a = await readFile(join(dir.path, 'a', 'runs.jsonl'), 'utf8');
      expect(await readFile(join(dir.path, 'b', 'runs.jsonl'), 'utf8')).toBe(a);
      const jsonl = a
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { run: number; seed: number });
      expect(jsonl.map((l) => l.run)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      // A run in a child gives the very result of the same run in this process.
      expect(JSON.stringify(lines[5]!.baseline)).toBe(
        JSON.stringify(runBaseline(checkScenario(runs[5]!.input))),
      );
      const csv = (await readFile(join(dir.path, 'a', 'summary.csv'), 'utf8')).trim().split('\n');
      expect(csv).toHaveLength(5);
      expect(csv[0]).toMatch(/^point,network\.default\.loss,workload\.violations,system,seeds,converged,/);
      expect(csv[4]).toMatch(/^3,0\.2,0\.3,baseline,2,/);
      expect(bars.at(-2)).toContain('8/8 runs');
    } finally {
      await dir.cleanup();
    }
  }, 120_000);
});
