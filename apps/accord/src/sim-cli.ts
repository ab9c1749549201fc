// `accord sim`: the convergence simulator (@accord/sim) on the command line. One run of Accord
// (and with --baseline the queue-based model, same seed) from flags and an optional scenario
// file; `sim sweep` runs a grid × seeds on every core, `sim report` draws a sweep's results.
// cli.ts imports this module on demand, so the simulator loads only for `accord sim`.
import { readFile, stat, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { AccordError, ErrorCode } from '@accord/protocol';
import {
  SimError,
  checkScenario,
  parseGrid,
  parseRunsJsonl,
  parseScenarioText,
  renderReport,
  runAccord,
  runBaseline,
  runSweep,
  serveSweepJobs,
  withField,
  type Scenario,
  type SystemResult,
} from '@accord/sim';
import { parse, required, usage } from './cli-args.js';
import type { CliIo } from './cli.js';
import { formatPairs, formatTable } from './text-table.js';

/** What a numeric flag takes, and so how its text is checked and turned into a scenario value. */
type FlagKind = 'count' | 'probability' | 'days' | 'ms' | 'duration';

/**
 * The numeric flags of `accord sim` and the scenario fields (dotted paths of a scenario file)
 * they set; a flag overrides the file's field.
 */
const NUMERIC_FLAGS: Readonly<Record<string, { readonly path: string; readonly kind: FlagKind }>> = {
  seed: { path: 'seed', kind: 'count' },
  duration: { path: 'duration', kind: 'duration' },
  facilities: { path: 'facilities', kind: 'count' },
  devices: { path: 'devicesPerFacility', kind: 'count' },
  loss: { path: 'network.default.loss', kind: 'probability' },
  duplicate: { path: 'network.default.duplicate', kind: 'probability' },
  reorder: { path: 'network.default.reorder', kind: 'probability' },
  truncate: { path: 'network.default.truncate', kind: 'probability' },
  partitions: { path: 'partitions.random.count', kind: 'count' },
  'offline-days': { path: 'partitions.random.meanLength', kind: 'days' },
  'skew-ms': { path: 'clockSkew.random', kind: 'ms' },
  crashes: { path: 'crashes.random.count', kind: 'count' },
};

/** `--events E` sets this field (see {@link ratePerHourFor}). */
const EVENTS_PATH = 'workload.ratePerHour';

/** Defaults for the other half of a random fault the flags ask for and the file does not describe. */
const DEFAULT_OFFLINE_DAYS = 1;
const DEFAULT_CRASH_DOWNTIME = '10m';

const DAY_MS = 86_400_000;

/**
 * A numeric flag's value, checked: a usage error names the flag and what it takes. A duration
 * stays text ("36h", "2d"): the scenario reads it, and names the flag if it refuses it.
 */
function flagValue(flag: string, text: string, kind: FlagKind): number | string {
  const decimal = /^(?:\d+(?:\.\d+)?|\.\d+)$/.test(text);
  const n = Number(text);
  switch (kind) {
    case 'count':
    case 'ms':
      if (!/^\d{1,10}$/.test(text))
        usage(
          `--${flag} must be a whole number${kind === 'ms' ? ' of milliseconds' : ''}, got ${JSON.stringify(text)}`,
        );
      return n;
    case 'probability':
      if (!decimal || n > 1)
        usage(`--${flag} must be a probability from 0 to 1, got ${JSON.stringify(text)}`);
      return n;
    case 'days':
      if (!decimal || n <= 0)
        usage(`--${flag} must be a number of days above 0, got ${JSON.stringify(text)}`);
      return Math.round(n * DAY_MS);
    case 'duration':
      return text;
  }
}

/**
 * The workload rate that appends about `events` events in all: users act at `ratePerHour` per
 * device per simulated hour until `workload.until`, so the rate is `events` over every device's
 * active hours. "About": the workload is a Poisson process, a draft the rules' catalogue refuses
 * in the form is never saved, and the baseline's users re-enter what looks lost.
 */
function ratePerHourFor(events: number, s: Scenario): number {
  const deviceHours = (s.facilities * s.devicesPerFacility * s.workload.untilMs) / 3_600_000;
  if (deviceHours === 0) usage('--events needs a workload that runs for some time (workload.until above 0)');
  return events / deviceHours;
}

/** The flags `accord sim` parses (the run's, and the scenario's). */
const RUN_OPTIONS = {
  ...Object.fromEntries(Object.keys(NUMERIC_FLAGS).map((f) => [f, { type: 'string' as const }])),
  events: { type: 'string' },
  'no-relay': { type: 'boolean' },
  'no-p2p': { type: 'boolean' },
  baseline: { type: 'boolean' },
  scenario: { type: 'string' },
  json: { type: 'boolean' },
} as const;

type RunValues = Readonly<Record<string, string | boolean | undefined>>;

async function readText(path: string, flag: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    usage(`cannot read ${flag} ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

/** `read(text)` of a file; a simulator error it throws is thrown again naming the file. */
function inFile<T>(file: string, read: () => T): T {
  try {
    return read();
  } catch (e) {
    if (e instanceof SimError) throw new SimError(e.code, `${file}: ${e.message}`, { ...e.details, file });
    throw e;
  }
}

/**
 * The scenario of `accord sim`'s flags: the scenario file's fields (if any), each flag given
 * overriding its field, checked by the simulator.
 *
 * @throws AccordError `CLI_USAGE` for a malformed flag; the simulator's `SIM_SCENARIO_INVALID` or
 * `SIM_UNKNOWN_NODE` for a file or a combination it refuses (the message names the file or the
 * flag where one is to blame).
 */
async function scenarioFromFlags(values: RunValues): Promise<Scenario> {
  const file = typeof values['scenario'] === 'string' ? values['scenario'] : undefined;
  let input: unknown = {};
  if (file !== undefined) {
    const text = await readText(file, '--scenario');
    input = inFile(file, () => parseScenarioText(text));
  }
  /** Which flag set which field, to name it when the simulator refuses the value. */
  const blame = new Map<string, string>();
  const set = (flag: string, path: string, value: unknown): void => {
    input = withField(input, path, value);
    blame.set(path, `--${flag}`);
  };
  for (const [flag, { path, kind }] of Object.entries(NUMERIC_FLAGS)) {
    const text = values[flag];
    if (typeof text === 'string') set(flag, path, flagValue(flag, text, kind));
  }
  const has = (path: string): boolean =>
    path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], input) !==
    undefined;
  // A random fault is a count and a length: a flag for one half takes the other from the file, else a default.
  if (has('partitions.random.count') !== has('partitions.random.meanLength')) {
    if (has('partitions.random.count'))
      input = withField(input, 'partitions.random.meanLength', DEFAULT_OFFLINE_DAYS * DAY_MS);
    else input = withField(input, 'partitions.random.count', 1);
  }
  if (has('crashes.random.count') && !has('crashes.random.downtime'))
    input = withField(input, 'crashes.random.downtime', DEFAULT_CRASH_DOWNTIME);
  if (values['no-relay'] === true) set('no-relay', 'relay', false);
  if (values['no-p2p'] === true) set('no-p2p', 'p2p', false);
  // A refusal names the flag that set the refused field, else the file that did.
  const check = (value: unknown): Scenario => {
    try {
      return checkScenario(value);
    } catch (e) {
      const issues = e instanceof SimError ? e.details['issues'] : undefined;
      const first = Array.isArray(issues) ? (issues[0] as { path?: string; message?: string }) : undefined;
      const flag = first?.path === undefined ? undefined : blame.get(first.path);
      if (e instanceof SimError && flag !== undefined)
        throw new SimError(e.code, `${flag}: ${first!.message ?? e.message}`, { ...e.details, flag });
      if (file !== undefined) return inFile(file, () => checkScenario(value));
      throw e;
    }
  };
  const events = values['events'];
  if (typeof events !== 'string') return check(input);
  const count = flagValue('events', events, 'count') as number;
  set('events', EVENTS_PATH, ratePerHourFor(count, check(input)));
  return check(input);
}

/** The scenario `accord sim …args` runs (see {@link scenarioFromFlags}), without running it. */
export async function simScenario(args: readonly string[]): Promise<Scenario> {
  return scenarioFromFlags(parse(args, RUN_OPTIONS).values);
}

/** The `--json` fields of one system's run: its seed, then every field of its result. */
function resultJson(seed: number, r: SystemResult): Record<string, unknown> {
  return { seed, ...r };
}

/** Simulated milliseconds as people read them: "850 ms", "42 s", "14 min", "2.5 h", "3.2 d". */
function simulated(ms: number | null): string {
  if (ms === null) return 'never';
  if (ms < 1000) return `${ms} ms`;
  const one = (x: number): string => String(Math.round(x * 10) / 10);
  if (ms < 60_000) return `${one(ms / 1000)} s`;
  if (ms < 3_600_000) return `${one(ms / 60_000)} min`;
  if (ms < DAY_MS) return `${one(ms / 3_600_000)} h`;
  return `${one(ms / DAY_MS)} d`;
}

/** The rows of the side-by-side table: a label and each system's cell. */
const TABLE_ROWS: readonly (readonly [string, (r: SystemResult) => string])[] = [
  ['converged', (r) => (r.converged ? 'yes' : 'no')],
  ['convergence (after the last fault)', (r) => simulated(r.convergenceMs)],
  ['rounds', (r) => (r.rounds === null ? '-' : String(r.rounds))],
  ['events appended', (r) => String(r.eventsAppended)],
  ['events lost', (r) => String(r.eventsLost)],
  ['duplicates', (r) => String(r.duplicates)],
  ['re-entries', (r) => String(r.reentries)],
  ['messages per event', (r) => String(r.messagesPerEvent)],
  ['bytes per event', (r) => String(r.bytesPerEvent)],
  [
    'deadletters',
    (r) =>
      Object.entries(r.deadletters)
        .map(([code, n]) => `${code}: ${n}`)
        .join(', ') || 'none',
  ],
  ['patients missing', (r) => String(r.symptoms.patientsMissing)],
  ['encounters re-appeared', (r) => String(r.symptoms.encounterReappeared)],
  ['counters disagree (pairs)', (r) => String(r.symptoms.countersDisagree)],
  ['changes appear lost', (r) => String(r.symptoms.changesAppearLost)],
  [
    'frames lost / offline / cut',
    (r) => `${r.network.droppedLoss} / ${r.network.droppedOffline} / ${r.network.truncated}`,
  ],
];

/** Wall seconds since `start` (progress only: never in the results). */
const wallSeconds = (start: bigint): string => (Number(process.hrtime.bigint() - start) / 1e9).toFixed(1);

async function simRun(args: readonly string[], io: CliIo): Promise<number> {
  const { values } = parse(args, RUN_OPTIONS);
  const scenario = await scenarioFromFlags(values);
  const json = values.json === true;
  const devices = scenario.facilities * scenario.devicesPerFacility;
  const progress = (line: string): void => {
    if (!json) io.err(`accord sim: ${line}`);
  };
  progress(
    `Accord: ${devices} device${devices === 1 ? '' : 's'} over ${simulated(scenario.durationMs)} simulated (seed ${scenario.seed})…`,
  );
  let start = process.hrtime.bigint();
  const accord = await runAccord(scenario);
  progress(`Accord: done in ${wallSeconds(start)} s of wall time`);
  let baseline: SystemResult | undefined;
  if (values.baseline === true) {
    progress('queue-based baseline, same seed…');
    start = process.hrtime.bigint();
    baseline = runBaseline(scenario);
    progress(`baseline: done in ${wallSeconds(start)} s of wall time`);
  }
  if (json) {
    io.out(
      JSON.stringify({
        ...resultJson(scenario.seed, accord),
        ...(baseline === undefined ? {} : { baseline: resultJson(scenario.seed, baseline) }),
      }),
    );
    return 0;
  }
  for (const line of formatPairs([
    ['seed', String(scenario.seed)],
    ['facilities × devices', `${scenario.facilities} × ${scenario.devicesPerFacility}`],
    ['simulated', simulated(scenario.durationMs)],
    ['relay', scenario.relay ? 'yes' : 'no'],
    ['peer to peer', scenario.p2p ? 'yes' : 'no'],
  ]))
    io.out(line);
  io.out('');
  const systems: [string, SystemResult][] = [['Accord', accord]];
  if (baseline !== undefined) systems.push(['queue-based baseline', baseline]);
  for (const line of formatTable(
    ['', ...systems.map(([name]) => name)],
    TABLE_ROWS.map(([label, cell]) => [label, ...systems.map(([, r]) => cell(r))]),
  ))
    io.out(line);
  return 0;
}

/** A positive whole-number flag, or undefined when absent. */
function positive(value: string | undefined, flag: string, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,6}$/.test(value) || Number(value) < 1 || Number(value) > max)
    usage(`${flag} must be a whole number from 1 to ${max}, got ${JSON.stringify(value)}`);
  return Number(value);
}

/**
 * Where a sweep's progress bar goes: redrawn in place on a terminal (`io.progress`), else one line
 * per update on stderr.
 */
function progressWriter(io: CliIo): (text: string) => void {
  if (io.progress !== undefined) return io.progress;
  return (text) => {
    const line = text.replace(/\r/g, '').trim();
    if (line !== '') io.err(line);
  };
}

async function simSweep(args: readonly string[], io: CliIo): Promise<number> {
  const { values } = parse(args, {
    grid: { type: 'string' },
    seeds: { type: 'string' },
    out: { type: 'string' },
    jobs: { type: 'string' },
  });
  const gridFile = required(values.grid, '--grid');
  const out = required(values.out, '--out');
  const seeds = positive(values.seeds, '--seeds', 10_000);
  const jobs = positive(values.jobs, '--jobs', 256) ?? availableParallelism();
  const text = await readText(gridFile, '--grid');
  const runs = inFile(gridFile, () => parseGrid(text, seeds));
  io.err(
    `accord sim sweep: ${runs.length} runs (Accord and the baseline each) on ${Math.min(jobs, runs.length)} processes`,
  );
  const start = process.hrtime.bigint();
  await runSweep(runs, {
    outDir: out,
    workers: jobs,
    // Each child is this very program, started again as `accord sim sweep-worker` (see simCommand).
    worker: { module: process.argv[1]!, args: ['sim', SWEEP_WORKER], execArgv: process.execArgv },
    progress: { write: progressWriter(io) },
  });
  io.err(`accord sim sweep: done in ${wallSeconds(start)} s of wall time`);
  io.out(`${join(out, 'runs.jsonl')}`);
  io.out(`${join(out, 'summary.csv')}`);
  return 0;
}

async function simReport(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, { out: { type: 'string' } }, true);
  const [target, surplus] = positionals;
  if (target === undefined) usage("sim report needs the sweep's output folder (or its runs.jsonl)");
  if (surplus !== undefined) usage(`unexpected argument ${JSON.stringify(surplus)}`);
  const isDir = await stat(target).then(
    (s) => s.isDirectory(),
    () => false,
  );
  const runsFile = isDir ? join(target, 'runs.jsonl') : target;
  const out = values.out ?? join(isDir ? target : dirname(target), 'report.html');
  const text = await readText(runsFile, 'results');
  const lines = inFile(runsFile, () => parseRunsJsonl(text));
  if (lines.length === 0)
    throw new SimError('SIM_RESULTS_INVALID', `${runsFile} holds no runs`, { file: runsFile });
  try {
    await writeFile(out, renderReport(lines));
  } catch (e) {
    throw new AccordError(
      ErrorCode.CLI_USAGE,
      `cannot write --out ${out}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
    );
  }
  io.out(out);
  return 0;
}

/** The hidden subcommand a sweep's children run: not for people (it needs the sweep's IPC channel). */
const SWEEP_WORKER = 'sweep-worker';

/**
 * Runs `accord sim …args` and returns the exit code (errors are thrown for `runCli`: `CLI_USAGE`
 * exit 2, the simulator's `SIM_*` codes exit 1).
 */
export async function simCommand(args: readonly string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'sweep') return simSweep(rest, io);
  if (sub === 'report') return simReport(rest, io);
  if (sub === SWEEP_WORKER) {
    if (process.send === undefined) usage(`sim ${SWEEP_WORKER} is started by accord sim sweep, not by hand`);
    await serveSweepJobs();
    return 0;
  }
  if (sub !== undefined && !sub.startsWith('-')) usage(`unknown sim subcommand ${JSON.stringify(sub)}`);
  return simRun(args, io);
}
