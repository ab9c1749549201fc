// The HTML report end to end: rendered from real runs of Accord and the baseline, written to a file, opened in
// headless Debian chromium (playwright-core) with every network request refused.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { describe, expect, inject, it } from 'vitest';
import { tempDir } from '@accord/testkit';
import { runAccord } from '../accord/run.js';
import { runBaseline } from '../baseline/run.js';
import { SimError } from '../errors.js';
import { checkScenario } from '../scenario.js';
import { expandGrid } from '../sweep/grid.js';
import type { SweepLine } from '../sweep/summary.js';
import { parseRunsJsonl, renderReport } from './report.js';

/** Four small runs (two tablets for 3 hours, peer to peer), both systems, as a sweep's lines. */
async function sweepLines(): Promise<SweepLine[]> {
  const runs = expandGrid({
    base: {
      seed: 3,
      relay: false,
      devicesPerFacility: 2,
      duration: '3h',
      sampleEvery: '10m',
      workload: { ratePerHour: 3, violations: 0.2 },
    },
    grid: { 'network.default.loss': [0, 0.3] },
    seeds: 2,
  });
  const lines: SweepLine[] = [];
  for (const r of runs) {
    const scenario = checkScenario(r.input);
    lines.push({
      run: r.index,
      point: r.point,
      seed: r.seed,
      params: r.params,
      accord: await runAccord(scenario),
      baseline: runBaseline(scenario),
    });
  }
  return lines;
}

describe('renderReport', () => {
  it('opens offline in headless chromium and draws its five charts, Accord beside the baseline, with the inlined Chart.js', async () => {
    const lines = await sweepLines();
    const html = renderReport(parseRunsJsonl(lines.map((l) => JSON.stringify(l)).join('\n')));
    const dir = await tempDir('sim-report');
    const browser = await chromium.launch({ executablePath: inject('chromium'), args: ['--no-sandbox'] });
    try {
      const file = join(dir.path, 'report.html');
      await writeFile(file, html);
      const context = await browser.newContext();
      const outside: string[] = [];
      await context.route('**/*', (route) => {
        const url = route.request().url();
        if (url.startsWith('file:')) return route.continue();
        outside.push(url);
        return route.abort();
      });
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(pathToFileURL(file).href);
      await page.waitForFunction(
        () => (window as unknown as { accordChartsReady?: number }).accordChartsReady !== undefined,
      );
      expect(errors).toEqual([]);
      expect(outside).toEqual([]);
      // Convergence and events lost against the grid's one parameter, then bytes, symptoms and divergence.
      expect(
        await page.evaluate(() => (window as unknown as { accordChartsReady: number }).accordChartsReady),
      ).toBe(5);
      // Every chart plots Accord's series beside the baseline's, with data.
      const series = await page.evaluate(() =>
        Array.from(document.querySelectorAll('canvas'), (c) => {
          const chart = (
            window as unknown as {
              Chart: {
                getChart(c: HTMLCanvasElement): { data: { datasets: { label: string; data: unknown[] }[] } };
              };
            }
          ).Chart.getChart(c);
          return chart.data.datasets.map((d) => ({
            label: d.label,
            points: d.data.filter((v) => typeof v === 'number').length,
          }));
        }),
      );
      expect(series).toHaveLength(5);
      for (const datasets of series) {
        for (const system of ['Accord: ', 'queue-based baseline: ']) {
          const mine = datasets.filter((d) => d.label.startsWith(system));
          // (A convergence time is missing where no run of the system converged, not its share.)
          expect(mine.some((d) => d.points > 0)).toBe(true);
        }
      }
      const inked = await page.evaluate(() =>
        Array.from(document.querySelectorAll('canvas'), (c: HTMLCanvasElement) => {
          const ctx = c.getContext('2d')!;
          const { data } = ctx.getImageData(0, 0, c.width, c.height);
          let painted = 0;
          for (let i = 3; i < data.length; i += 4) if (data[i]! > 0) painted++;
          return painted;
        }),
      );
      expect(inked).toHaveLength(5);
      for (const n of inked) expect(n).toBeGreaterThan(500);
      // Full-width charts of a readable height, not Chart.js's fallback of a sliver.
      for (const box of await page
        .locator('canvas')
        .evaluateAll((cs) => cs.map((c) => c.getBoundingClientRect()))) {
        expect(box.width).toBeGreaterThan(600);
        expect(box.height).toBeGreaterThan(250);
      }
      expect(await page.getByText('queue-based baseline', { exact: false }).count()).toBeGreaterThan(0);
    } finally {
      await browser.close();
      await dir.cleanup();
    }
  }, 120_000);

  it('refuses a results file line that is not a sweep result, naming the line', () => {
    try {
      const result = '{"symptoms": {}, "divergence": []}';
      parseRunsJsonl(`{"accord": ${result}, "baseline": ${result}}\n\n{"baseline": ${result}}\n`);
      throw new Error('expected a refusal');
    } catch (e) {
      expect(e).toBeInstanceOf(SimError);
      expect((e as SimError).code).toBe('SIM_RESULTS_INVALID');
      expect((e as SimError).details['line']).toBe(3);
    }
  });
});
