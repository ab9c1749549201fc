// `npm run bench`: measures Accord against its targets and prints a table for people
// (or, with --json, one JSON object for scripts). Results and an SVG chart are written
// to bench-results/. Targets are ratios or absolute numbers measured in this same run;
// nothing here is a timed test.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { renderChart, type ChartRow } from './chart.js';
import { benchLog } from './log-bench.js';
import { benchColdSync, benchDeviceMemory } from './sync-bench.js';

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    history: { type: 'string', default: '100000' },
    out: { type: 'string', default: 'bench-results' },
  },
});
const history = Number.parseInt(values.history, 10);
if (!Number.isSafeInteger(history) || history < 5000) {
  console.error('bench: --history must be an integer ≥ 5000');
  process.exit(2);
}

const log = await benchLog(history);
const sync = await benchColdSync(log.device);
const memory = await benchDeviceMemory(log.device);
if (process.env['ACCORD_BENCH_KEEP'] === undefined)
  await rm(log.device.dir, { recursive: true, force: true });
else await writeFile(join(log.device.dir, 'key.json'), JSON.stringify(log.device.storedKey));

const results = { ...log.result, ...sync, ...memory };

const rows: ChartRow[] = [
  {
    label: `appends/s at ${history / 1000}k history`,
    value: results.append_per_s_at_100k,
    target: 10_000,
    kind: 'min',
    unit: '/s',
  },
  {
    label: 'append cost 100k vs 1k',
    value: results.append_cost_ratio_100k_vs_1k,
    target: 1.5,
    kind: 'max',
    unit: '×',
  },
  {
    label: `cold sync of ${history / 1000}k events`,
    value: results.cold_sync_100k_s,
    target: 10,
    kind: 'max',
    unit: 's',
  },
  {
    label: 'wire bytes per event vs gzip',
    value: results.cold_sync_bytes_per_event / results.gzip_bytes_per_event,
    target: 1.5,
    kind: 'max',
    unit: '×',
  },
  {
    label: `device RSS holding ${history / 1000}k events (idle)`,
    value: results.device_rss_mb_100k,
    target: 300,
    kind: 'max',
    unit: 'MB',
  },
];

await mkdir(values.out, { recursive: true });
await writeFile(join(values.out, 'bench.json'), `${JSON.stringify(results, null, 2)}\n`);
await writeFile(join(values.out, 'bench.svg'), renderChart('Accord benchmark: device log', rows));

if (values.json) {
  console.log(JSON.stringify(results));
} else {
  const table = Object.entries(results).map(([metric, value]) => ({
    metric,
    value: Number.isInteger(value) ? value : Number(value.toFixed(3)),
  }));
  console.table(table);
  for (const row of rows) {
    const met = row.kind === 'min' ? row.value >= row.target : row.value <= row.target;
    console.log(
      `${met ? 'MET   ' : 'MISSED'} ${row.label}: ${row.value.toFixed(2)} ${row.unit} (target ${row.kind === 'min' ? '≥' : '≤'} ${row.target})`,
    );
  }
  console.log(`chart: ${join(values.out, 'bench.svg')}`);
}
