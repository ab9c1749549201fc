import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '@accord/testkit';
import { runAccord } from '../accord/run.js';
import { runBaseline } from '../baseline/run.js';
import { SimError } from '../errors.js';
import { checkScenario } from '../scenario.js';
import { expandGrid, parseGrid } from './grid.js';
import type { SweepLine } from './summary.js';
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

/** A sweep small enough to run twice in a test: two tablets for 3 hours, peer to peer. */
const SMALL = `
base: { seed: 7, relay: false, devicesPerFacility: 2, duration: 3h, workload: { ratePerHour: 3 } }
grid:
  network.default.loss: [0, 0.1]
seeds: 2
`;

describe('runSweep', () => {
  it('runs Accord and the baseline in child processes and writes one JSON line per run (in run order) and a CSV summary, the same bytes twice', async () => {
    const dir = await tempDir('sim-sweep');
    try {
      const runs = parseGrid(SMALL);
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
        .map((l) => JSON.parse(l) as SweepLine);
      expect(jsonl.map((l) => l.run)).toEqual([0, 1, 2, 3]);
      // Both systems ran on every run, on its scenario.
      for (const l of jsonl) {
        expect(l.accord.eventsAppended).toBeGreaterThan(0);
        expect(l.baseline.eventsAppended).toBeGreaterThan(0);
      }
      expect(jsonl[3]!.accord.network.droppedLoss).toBeGreaterThan(jsonl[0]!.accord.network.droppedLoss);
      // A run in a child gives the very results of the same run in this process.
      const scenario = checkScenario(runs[3]!.input);
      expect(JSON.stringify(lines[3]!.accord)).toBe(JSON.stringify(await runAccord(scenario)));
      expect(JSON.stringify(lines[3]!.baseline)).toBe(JSON.stringify(runBaseline(scenario)));
      const csv = (await readFile(join(dir.path, 'a', 'summary.csv'), 'utf8')).trim().split('\n');
      expect(csv).toHaveLength(5);
      expect(csv[0]).toMatch(/^point,network\.default\.loss,system,seeds,converged,/);
      expect(csv.slice(1).map((row) => row.split(',').slice(0, 4).join(','))).toEqual([
        '0,0,accord,2',
        '0,0,baseline,2',
        '1,0.1,accord,2',
        '1,0.1,baseline,2',
      ]);
      expect(bars.at(-2)).toContain('4/4 runs');
    } finally {
      await dir.cleanup();
    }
  }, 180_000);

  it('fails with SIM_SWEEP_RUN_FAILED naming the first failed run when a child dies, with the worker it was given', async () => {
    const dir = await tempDir('sim-sweep-fail');
    try {
      const module = join(dir.path, 'dies.mjs');
      await writeFile(module, 'process.exit(3);\n');
      const runs = parseGrid(SMALL);
      const err = await runSweep(runs, {
        outDir: join(dir.path, 'out'),
        workers: 2,
        worker: { module },
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SimError);
      expect((err as SimError).code).toBe('SIM_SWEEP_RUN_FAILED');
      expect((err as SimError).message).toMatch(
        /^\d of 4 sweep runs failed; run 0: sweep child exited with code 3$/,
      );
    } finally {
      await dir.cleanup();
    }
  }, 60_000);
});
