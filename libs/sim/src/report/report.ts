import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { SimError, SimErrorCode } from '../errors.js';
import { SYSTEMS, type SweepLine, type SystemName } from '../sweep/summary.js';

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

/** A value per system, in {@link SYSTEMS} order's keys. */
type PerSystem<T> = Readonly<Record<SystemName, T>>;

/** What the page draws, computed here so the page's script only plots. */
interface ReportData {
  readonly params: readonly string[];
  /** Per grid parameter: its values, and per system for each value the converged share, mean convergence time (h), mean events lost. */
  readonly against: readonly {
    readonly param: string;
    readonly values: readonly string[];
    readonly convergedShare: PerSystem<readonly number[]>;
    readonly convergenceHours: PerSystem<readonly (number | null)[]>;
    readonly eventsLost: PerSystem<readonly number[]>;
  }[];
  /** Grid point labels, and per system the mean bytes per event at each. */
  readonly points: readonly string[];
  readonly bytesPerEvent: PerSystem<readonly number[]>;
  readonly symptomKinds: readonly string[];
  /** Per system, the mean count of each of {@link symptomKinds} per run. */
  readonly symptoms: PerSystem<readonly number[]>;
  /** Sample instants (simulated hours), and per system the mean device pairs whose counters differ at each. */
  readonly divergenceHours: readonly number[];
  readonly divergence: PerSystem<readonly (number | null)[]>;
}

const mean = (xs: readonly number[]): number =>
  xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length;
const round = (x: number): number => Math.round(x * 1000) / 1000;

/** `f` applied for each system: the per-system fields of {@link ReportData}. */
function perSystem<T>(f: (system: SystemName) => T): PerSystem<T> {
  return Object.fromEntries(SYSTEMS.map((s) => [s, f(s)])) as PerSystem<T>;
}

/** Lines grouped by a key, groups in first-seen order. */
function groupBy<K>(lines: readonly SweepLine[], key: (l: SweepLine) => K): [K, SweepLine[]][] {
  const groups = new Map<K, SweepLine[]>();
  for (const l of lines) groups.set(key(l), [...(groups.get(key(l)) ?? []), l]);
  return [...groups];
}

const SYMPTOM_KINDS = [
  'patientsMissing',
  'encounterReappeared',
  'countersDisagree',
  'changesAppearLost',
] as const;

function reportData(lines: readonly SweepLine[]): ReportData {
  const params = Object.keys(lines[0]?.params ?? {});
  const against = params.map((param) => {
    const groups = groupBy(lines, (l) => JSON.stringify(l.params[param]));
    return {
      param,
      values: groups.map(([k]) => k),
      convergedShare: perSystem((sys) =>
        groups.map(([, g]) => round(mean(g.map((l) => (l[sys].converged ? 1 : 0))))),
      ),
      convergenceHours: perSystem((sys) =>
        groups.map(([, g]) => {
          const done = g.flatMap((l) => (l[sys].convergenceMs === null ? [] : [l[sys].convergenceMs]));
          return done.length === 0 ? null : round(mean(done) / 3_600_000);
        }),
      ),
      eventsLost: perSystem((sys) => groups.map(([, g]) => round(mean(g.map((l) => l[sys].eventsLost))))),
    };
  });
  const byPoint = groupBy(lines, (l) => l.point);
  const points = byPoint.map(([point, group]) =>
    params.length === 0
      ? `point ${point}`
      : params.map((p) => `${p}=${JSON.stringify(group[0]!.params[p])}`).join(' '),
  );
  const times = [
    ...new Set(lines.flatMap((l) => SYSTEMS.flatMap((sys) => l[sys].divergence.map(([t]) => t)))),
  ].sort((a, b) => a - b);
  return {
    params,
    against,
    points,
    bytesPerEvent: perSystem((sys) =>
      byPoint.map(([, g]) => round(mean(g.map((l) => l[sys].bytesPerEvent)))),
    ),
    symptomKinds: SYMPTOM_KINDS,
    symptoms: perSystem((sys) => SYMPTOM_KINDS.map((k) => round(mean(lines.map((l) => l[sys].symptoms[k]))))),
    divergenceHours: times.map((t) => round(t / 3_600_000)),
    divergence: perSystem((sys) => {
      const samples = new Map<number, number[]>();
      for (const l of lines)
        for (const [t, pairs] of l[sys].divergence) samples.set(t, [...(samples.get(t) ?? []), pairs]);
      return times.map((t) => (samples.has(t) ? round(mean(samples.get(t)!)) : null));
    }),
  };
}

// The page's own script: plots the data with Chart.js, Accord and the baseline in fixed colours
// (solid: times and counts; dashed: shares), then sets `window.accordChartsReady` to the number of
// charts drawn (the browser test waits on it). No animation: the page is a document.
const PAGE_SCRIPT = `
const data = JSON.parse(document.getElementById('accord-data').textContent);
Chart.defaults.animation = false;
Chart.defaults.maintainAspectRatio = false;
const SYSTEMS = [
  { key: 'accord', name: 'Accord', colour: '#1b7f5b' },
  { key: 'baseline', name: 'queue-based baseline', colour: '#c0392b' },
];
const charts = [];
const grid = document.getElementById('against');
function figure(title) {
  const box = document.createElement('figure');
  const canvas = document.createElement('canvas');
  canvas.setAttribute('aria-label', title);
  canvas.setAttribute('role', 'img');
  const caption = document.createElement('figcaption');
  caption.textContent = title;
  const frame = document.createElement('div');
  frame.className = 'chart';
  frame.append(canvas);
  box.append(caption, frame);
  grid.append(box);
  return canvas;
}
const series = (label, values, s, extra) =>
  Object.assign({ label: s.name + ': ' + label, data: values[s.key], borderColor: s.colour, backgroundColor: s.colour }, extra);
for (const a of data.against) {
  charts.push(new Chart(figure('Convergence against ' + a.param), {
    type: 'line',
    data: { labels: a.values, datasets: SYSTEMS.flatMap((s) => [
      series('convergence time (h, runs that converged)', a.convergenceHours, s, { yAxisID: 'hours' }),
      series('converged (share of runs)', a.convergedShare, s, { yAxisID: 'share', borderDash: [6, 4] }),
    ]) },
    options: { scales: {
      hours: { position: 'left', beginAtZero: true, title: { display: true, text: 'hours after the last fault' } },
      share: { position: 'right', min: 0, max: 1, title: { display: true, text: 'share converged' } },
    } },
  }));
  charts.push(new Chart(figure('Events lost against ' + a.param), {
    type: 'line',
    data: { labels: a.values, datasets: SYSTEMS.map((s) => series('events lost (mean)', a.eventsLost, s)) },
    options: { scales: { y: { beginAtZero: true } } },
  }));
}
charts.push(new Chart(document.getElementById('bytes'), {
  type: 'bar',
  data: { labels: data.points, datasets: SYSTEMS.map((s) => series('bytes per event', data.bytesPerEvent, s)) },
}));
charts.push(new Chart(document.getElementById('symptoms'), {
  type: 'bar',
  data: { labels: data.symptomKinds, datasets: SYSTEMS.map((s) => series('mean per run', data.symptoms, s)) },
}));
charts.push(new Chart(document.getElementById('divergence'), {
  type: 'line',
  data: { labels: data.divergenceHours, datasets: SYSTEMS.map((s) => series('device pairs whose counters differ (mean)', data.divergence, s)) },
  options: { scales: { x: { title: { display: true, text: 'simulated hours' } } } },
}));
window.accordChartsReady = charts.length;
`;

/**
 * A self-contained HTML report of a sweep's results: Chart.js is inlined, the data is embedded, and
 * the page loads nothing from anywhere (it opens from a file, offline).
 *
 * @remarks Charts, each with Accord's series beside the queue-based baseline's: convergence (time,
 * share of runs) and events lost against each grid parameter; bytes per event per grid point; the
 * field symptoms; divergence over simulated time.
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
<p>${lines.length} runs (${seeds} seed${seeds === 1 ? '' : 's'}) over ${data.params.length === 0 ? 'one scenario' : `the grid ${escapeHtml(data.params.join(' × '))}`}.</p>
<p class="note">Each chart sets <strong>Accord</strong> (the real device logs on the simulated network and clock) beside the <strong>queue-based baseline</strong> (a model of the incumbent's client), both driven by the same seeds, workload and faults.</p>
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
 * @throws SimError `SIM_RESULTS_INVALID` naming the first line that is not JSON or lacks an
 * `accord` or a `baseline` result with its symptoms and divergence.
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
    const results = SYSTEMS.map(
      (sys) =>
        (v as Partial<Record<SystemName, { symptoms?: unknown; divergence?: unknown }>> | undefined)?.[sys],
    );
    if (
      !results.every(
        (r) =>
          typeof r === 'object' &&
          r !== null &&
          typeof r.symptoms === 'object' &&
          Array.isArray(r.divergence),
      )
    ) {
      throw new SimError(SimErrorCode.SIM_RESULTS_INVALID, `line ${i + 1} is not a sweep result`, {
        line: i + 1,
      });
    }
    out.push(v as SweepLine);
  });
  return out;
}
