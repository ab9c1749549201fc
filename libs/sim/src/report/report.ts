import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { SimError, SimErrorCode } from '../errors.js';
import type { SweepLine } from '../sweep/summary.js';

/** Chart.js's self-contained UMD build, read once: it is inlined into every report. */
let chartJs: string | undefined;
function chartLibrary(): string {
  if (chartJs === undefined) {
    const entry = createRequire(import.meta.url).resolve('chart.js');
    chartJs = readFileSync(join(dirname(entry), 'chart.umd.min.js'), 'utf8');
  }
  return chartJs;
}

/** JSON that is safe inside a `<script>` element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

const escapeHtml = (s: string): string =>
  s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** What the page draws, computed here so the page's script only plots. */
interface ReportData {
  readonly params: readonly string[];
  /** Per grid parameter: its values, and for each the converged share, mean convergence time (h), mean events lost. */
  readonly against: readonly {
    readonly param: string;
    readonly values: readonly string[];
    readonly convergedShare: readonly number[];
    readonly convergenceHours: readonly (number | null)[];
    readonly eventsLost: readonly number[];
  }[];
  readonly points: readonly { readonly label: string; readonly bytesPerEvent: number }[];
  readonly symptoms: Readonly<Record<string, number>>;
  readonly divergence: readonly { readonly hour: number; readonly pairs: number }[];
}

const mean = (xs: readonly number[]): number =>
  xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length;
const round = (x: number): number => Math.round(x * 1000) / 1000;

function reportData(lines: readonly SweepLine[]): ReportData {
  const params = Object.keys(lines[0]?.params ?? {});
  const against = params.map((param) => {
    const groups = new Map<string, SweepLine[]>();
    for (const l of lines) {
      const k = JSON.stringify(l.params[param]);
      groups.set(k, [...(groups.get(k) ?? []), l]);
    }
    const keys = [...groups.keys()];
    return {
      param,
      values: keys,
      convergedShare: keys.map((k) => round(mean(groups.get(k)!.map((l) => (l.baseline.converged ? 1 : 0))))),
      convergenceHours: keys.map((k) => {
        const done = groups
          .get(k)!
          .flatMap((l) => (l.baseline.convergenceMs === null ? [] : [l.baseline.convergenceMs]));
        return done.length === 0 ? null : round(mean(done) / 3_600_000);
      }),
      eventsLost: keys.map((k) => round(mean(groups.get(k)!.map((l) => l.baseline.eventsLost)))),
    };
  });
  const byPoint = new Map<number, SweepLine[]>();
  for (const l of lines) byPoint.set(l.point, [...(byPoint.get(l.point) ?? []), l]);
  const points = [...byPoint].map(([point, group]) => ({
    label:
      params.length === 0
        ? `point ${point}`
        : params.map((p) => `${p}=${JSON.stringify(group[0]!.params[p])}`).join(' '),
    bytesPerEvent: round(mean(group.map((l) => l.baseline.bytesPerEvent))),
  }));
  const kinds = ['patientsMissing', 'encounterReappeared', 'countersDisagree', 'changesAppearLost'] as const;
  const symptoms: Record<string, number> = {};
  for (const k of kinds) symptoms[k] = round(mean(lines.map((l) => l.baseline.symptoms[k])));
  const samples = new Map<number, number[]>();
  for (const l of lines)
    for (const [t, pairs] of l.baseline.divergence) samples.set(t, [...(samples.get(t) ?? []), pairs]);
  const divergence = [...samples]
    .sort((a, b) => a[0] - b[0])
    .map(([t, pairs]) => ({ hour: round(t / 3_600_000), pairs: round(mean(pairs)) }));
  return { params, against, points, symptoms, divergence };
}

// The page's own script: plots the data with Chart.js, then sets `window.accordChartsReady` to the
// number of charts drawn (the browser test waits on it). No animation: the page is a document.
const PAGE_SCRIPT = `
const data = JSON.parse(document.getElementById('accord-data').textContent);
Chart.defaults.animation = false;
Chart.defaults.maintainAspectRatio = false;
const charts = [];
const grid = document.getElementById('against');
for (const a of data.against) {
  const box = document.createElement('figure');
  const canvas = document.createElement('canvas');
  canvas.setAttribute('aria-label', 'Convergence against ' + a.param);
  canvas.setAttribute('role', 'img');
  const caption = document.createElement('figcaption');
  caption.textContent = 'Convergence and events lost against ' + a.param + ' (queue-based baseline)';
  const frame = document.createElement('div');
  frame.className = 'chart';
  frame.append(canvas);
  box.append(caption, frame);
  grid.append(box);
  charts.push(new Chart(canvas, {
    type: 'line',
    data: { labels: a.values, datasets: [
      { label: 'converged (share of runs)', data: a.convergedShare, yAxisID: 'share' },
      { label: 'convergence time (h)', data: a.convergenceHours, yAxisID: 'hours' },
      { label: 'events lost (mean)', data: a.eventsLost, yAxisID: 'events' },
    ] },
    options: { scales: {
      share: { position: 'left', min: 0, max: 1, title: { display: true, text: 'share converged' } },
      hours: { position: 'right', beginAtZero: true, title: { display: true, text: 'hours' } },
      events: { position: 'right', beginAtZero: true, title: { display: true, text: 'events lost' } },
    } },
  }));
}
charts.push(new Chart(document.getElementById('bytes'), {
  type: 'bar',
  data: { labels: data.points.map((p) => p.label), datasets: [{ label: 'bytes per event (baseline)', data: data.points.map((p) => p.bytesPerEvent) }] },
}));
charts.push(new Chart(document.getElementById('symptoms'), {
  type: 'bar',
  data: { labels: Object.keys(data.symptoms), datasets: [{ label: 'queue-based baseline (mean per run)', data: Object.values(data.symptoms) }] },
}));
charts.push(new Chart(document.getElementById('divergence'), {
  type: 'line',
  data: { labels: data.divergence.map((d) => d.hour), datasets: [{ label: 'device pairs whose counters differ (baseline, mean)', data: data.divergence.map((d) => d.pairs) }] },
  options: { scales: { x: { title: { display: true, text: 'simulated hours' } } } },
}));
window.accordChartsReady = charts.length;
`;

/**
 * A self-contained HTML report of a sweep's results: Chart.js is inlined, the data is embedded, and
 * the page loads nothing from anywhere (it opens from a file, offline).
 *
 * @remarks Charts: convergence (share, time) and events lost against each grid parameter; bytes
 * per event per grid point; the field symptoms; divergence over simulated time. Today every series
 * is the queue-based baseline's: the page says so, and gains the Accord series when the simulator
 * runs the real Accord logs.
 */
export function renderReport(lines: readonly SweepLine[], title = 'Accord convergence simulator'): string {
  const data = reportData(lines);
  const seeds = new Set(lines.map((l) => l.seed)).size;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<title>${escapeHtml(title)}</title>
<style>
body { font: 15px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; padding: 0 1rem; color: #1d232a; }
figure { margin: 1.5rem 0; }
figcaption { font-weight: 600; margin-bottom: .5rem; }
/* Chart.js sizes a responsive chart from its container: one of its own, with a height. */
.chart { position: relative; width: 100%; height: 22rem; }
.note { background: #fff6d6; border-left: 4px solid #c9a400; padding: .5rem 1rem; }
</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<p>${lines.length} runs (${seeds} seeds) over ${data.params.length === 0 ? 'one scenario' : `the grid ${escapeHtml(data.params.join(' × '))}`}.</p>
<p class="note">Every series here is the queue-based baseline (the incumbent's client). The Accord side of the simulator, which runs the real Accord logs, is not built yet: its series will appear beside these.</p>
<section id="against"></section>
<figure><figcaption>Bytes per event</figcaption><div class="chart"><canvas id="bytes" role="img" aria-label="Bytes per event"></canvas></div></figure>
<figure><figcaption>Field symptoms (mean per run)</figcaption><div class="chart"><canvas id="symptoms" role="img" aria-label="Field symptoms"></canvas></div></figure>
<figure><figcaption>Divergence over simulated time</figcaption><div class="chart"><canvas id="divergence" role="img" aria-label="Divergence over time"></canvas></div></figure>
<script type="application/json" id="accord-data">${scriptJson(data)}</script>
<script>${chartLibrary()}</script>
<script>${PAGE_SCRIPT}</script>
</body>
</html>
`;
}

/**
 * Parses a sweep's `runs.jsonl` text into its lines (blank lines ignored).
 *
 * @throws SimError `SIM_RESULTS_INVALID` naming the first line that is not JSON or has no
 * `baseline` result with its symptoms and divergence.
 */
export function parseRunsJsonl(text: string): SweepLine[] {
  const out: SweepLine[] = [];
  text.split('\n').forEach((raw, i) => {
    if (raw.trim() === '') return;
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch {
      v = undefined;
    }
    const b = (v as { baseline?: { symptoms?: unknown; divergence?: unknown } } | undefined)?.baseline;
    if (
      typeof b !== 'object' ||
      b === null ||
      typeof b.symptoms !== 'object' ||
      !Array.isArray(b.divergence)
    ) {
      throw new SimError(SimErrorCode.SIM_RESULTS_INVALID, `line ${i + 1} is not a sweep result`, {
        line: i + 1,
      });
    }
    out.push(v as SweepLine);
  });
  return out;
}
