// `accord sim` through the real command (separate processes, as users run it): one run's JSON is
// the same bytes for the same seed, flags reach the scenario, errors carry their codes, and a
// sweep and its report hold both systems. Sizes are small (two tablets for a few simulated hours)
// so that each run takes seconds. Accord runs with the relay (the default) unless a test says not.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { simScenario } from './sim-cli.js';
import { runAccord } from './test-support.js';

/** Two tablets and the relay for three simulated hours. */
const SMALL = ['--devices', '2', '--duration', '3h', '--events', '12'];

interface RunJson {
  readonly seed: number;
  readonly converged: boolean;
  readonly convergenceMs: number | null;
  readonly rounds: number | null;
  readonly eventsAppended: number;
  readonly eventsLost: number;
  readonly duplicates: number;
  readonly bytesPerEvent: number;
  readonly deadletters: Record<string, number>;
  readonly symptoms: Record<string, number>;
  readonly network: { readonly droppedLoss: number; readonly truncated: number };
  readonly baseline?: Omit<RunJson, 'baseline'>;
}

async function simJson(...args: string[]): Promise<{ stdout: string; json: RunJson }> {
  const r = await runAccord(['sim', ...SMALL, '--json', ...args]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  // Exactly one JSON object, on one line.
  expect(r.stdout.endsWith('\n')).toBe(true);
  expect(r.stdout.trimEnd().split('\n')).toHaveLength(1);
  return { stdout: r.stdout, json: JSON.parse(r.stdout) as RunJson };
}

const FIELDS = [
  'converged',
  'convergenceMs',
  'rounds',
  'eventsAppended',
  'eventsLost',
  'duplicates',
  'bytesPerEvent',
  'deadletters',
  'symptoms',
  'seed',
];

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'accord-sim-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('accord sim --json', () => {
  it('prints the same bytes for the same seed, with and without --baseline; another seed differs', async () => {
    const [a, b, c, withBaseline, withBaselineAgain] = await Promise.all([
      simJson('--seed', '5'),
      simJson('--seed', '5'),
      simJson('--seed', '6'),
      simJson('--seed', '5', '--baseline'),
      simJson('--seed', '5', '--baseline'),
    ]);
    expect(b.stdout).toBe(a.stdout);
    expect(withBaselineAgain.stdout).toBe(withBaseline.stdout);
    expect(c.stdout).not.toBe(a.stdout);
    for (const f of FIELDS) expect(a.json).toHaveProperty(f);
    expect(a.json.seed).toBe(5);
    expect(c.json.seed).toBe(6);
    expect(a.json.eventsAppended).toBeGreaterThan(0);
    expect(a.json.eventsLost).toBe(0);
    expect(a.json).not.toHaveProperty('baseline');
    // With --baseline: Accord's figures unchanged at the top, the baseline's beside them.
    const { baseline, ...accord } = withBaseline.json;
    expect(JSON.stringify(accord)).toBe(a.stdout.trimEnd());
    for (const f of FIELDS) expect(baseline).toHaveProperty(f);
    expect(baseline!.seed).toBe(5);
  }, 180_000);

  it('passes the network flags into the scenario: --loss and --truncate show in the counters', async () => {
    const [clean, faulty] = await Promise.all([
      simJson('--seed', '8', '--loss', '0'),
      simJson('--seed', '8', '--loss', '0.2', '--truncate', '0.1'),
    ]);
    expect(clean.json.network.droppedLoss).toBe(0);
    expect(clean.json.network.truncated).toBe(0);
    expect(faulty.json.network.droppedLoss).toBeGreaterThan(0);
    expect(faulty.json.network.truncated).toBeGreaterThan(0);
  }, 180_000);
});

describe('accord sim with the relay', () => {
  it("gives deadletters by code where users broke rules, and none of the baseline's symptoms on the same seed", async () => {
    const file = join(dir, 'rules.yaml');
    await writeFile(
      file,
      'workload: { violations: 0.3, duplicates: 0.2 }\nnetwork: { default: { loss: 0.02 } }\n',
    );
    const { json } = await simJson('--seed', '3', '--baseline', '--events', '40', '--scenario', file);
    expect(json.converged).toBe(true);
    expect(json.eventsLost).toBe(0);
    // The relay judged the broken rules: 422 for violations, 409 as many as the duplicates.
    expect(json.deadletters['422']).toBeGreaterThan(0);
    expect(json.deadletters['409'] ?? 0).toBe(json.duplicates);
    expect(Object.values(json.symptoms).every((n) => n === 0)).toBe(true);
    const baseline = json.baseline!;
    expect(Object.values(baseline.symptoms).some((n) => n > 0)).toBe(true);
    expect(baseline.deadletters['422']).toBeGreaterThan(0);
  }, 180_000);

  it('runs peer to peer with --no-relay: no verdicts at all', async () => {
    const { json } = await simJson('--seed', '3', '--no-relay');
    expect(json.converged).toBe(true);
    expect(json.deadletters).toEqual({});
  }, 180_000);
});

describe('accord sim: the table', () => {
  it('shows Accord beside the baseline, progress on stderr', async () => {
    const r = await runAccord(['sim', ...SMALL, '--seed', '5', '--baseline']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\s+Accord\s+queue-based baseline$/m);
    expect(r.stdout).toMatch(/^events lost\s+0\s+\d+$/m);
    expect(r.stdout).toMatch(/^seed\s+5$/m);
    expect(r.stderr).toContain('accord sim: Accord: done in');
  }, 120_000);
});

describe('accord sim: errors', () => {
  it.each([
    [['--loss', '1.5'], 2, 'CLI_USAGE: --loss must be a probability from 0 to 1'],
    [['--devices', 'two'], 2, 'CLI_USAGE: --devices must be a whole number'],
    [['--colour', 'red'], 2, "CLI_USAGE: Unknown option '--colour'"],
    [['--devices', '500'], 1, 'SIM_SCENARIO_INVALID: --devices: '],
    [['--duration', 'soon'], 1, 'SIM_SCENARIO_INVALID: --duration: expected a duration'],
    [['--scenario', '/no/such/file.yaml'], 2, 'CLI_USAGE: cannot read --scenario /no/such/file.yaml: ENOENT'],
    [['fly'], 2, 'CLI_USAGE: unknown sim subcommand "fly"'],
    [['sweep', '--out', 'x'], 2, 'CLI_USAGE: --grid is required'],
    [['report'], 2, 'CLI_USAGE: sim report needs'],
  ])('%j exits %i with %s', async (args, code, message) => {
    const r = await runAccord(['sim', ...args]);
    expect(r.code).toBe(code);
    expect(r.stderr).toContain(`accord: ${message}`);
    expect(r.stderr).not.toMatch(/^\s+at /m);
    expect(r.stdout).toBe('');
  });

  it('names a bad scenario file and its fault: syntax, a field, an unknown node', async () => {
    const cases: [string, string, RegExp][] = [
      [
        'broken.yaml',
        'seed: 1\nnetwork: [unclosed\n',
        /SIM_SCENARIO_INVALID: .*broken\.yaml: scenario is not valid YAML/,
      ],
      [
        'field.json',
        '{"network": {"default": {"loss": 3}}}',
        /SIM_SCENARIO_INVALID: .*field\.json: .*network\.default\.loss/,
      ],
      [
        'node.yaml',
        'partitions: { scripted: [{ node: f1-d9, from: 1h, to: 2h }] }',
        /SIM_UNKNOWN_NODE: .*node\.yaml: .*"f1-d9"/,
      ],
    ];
    for (const [name, text, expected] of cases) {
      const file = join(dir, name);
      await writeFile(file, text);
      const r = await runAccord(['sim', '--scenario', file]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(expected);
      expect(r.stderr).not.toMatch(/^\s+at /m);
    }
  });
});

describe('the scenario of the flags', () => {
  it('keeps the relay on unless --no-relay, and lets flags override the file', async () => {
    expect((await simScenario([])).relay).toBe(true);
    expect((await simScenario(['--no-relay'])).relay).toBe(false);
    expect((await simScenario(['--no-p2p'])).p2p).toBe(false);
    const file = join(dir, 'study.yaml');
    await writeFile(
      file,
      'seed: 9\ndevicesPerFacility: 4\nduration: 2d\nnetwork: { default: { loss: 0.1, truncate: 0.05 } }\n',
    );
    const s = await simScenario(['--scenario', file, '--loss', '0.3', '--seed', '11']);
    expect(s.seed).toBe(11);
    expect(s.devicesPerFacility).toBe(4);
    expect(s.durationMs).toBe(2 * 86_400_000);
    expect(s.network.default.loss).toBe(0.3);
    expect(s.network.default.truncate).toBe(0.05);
  });

  it('maps the fault flags and --events onto the scenario', async () => {
    const s = await simScenario([
      '--facilities',
      '2',
      '--devices',
      '3',
      '--duration',
      '10h',
      '--events',
      '480',
      '--partitions',
      '2',
      '--skew-ms',
      '1500',
      '--crashes',
      '1',
      '--duplicate',
      '0.01',
      '--reorder',
      '0.02',
    ]);
    // 480 events over 6 devices' 8 active hours (the workload stops at 80% of the duration).
    expect(s.workload.ratePerHour).toBe(10);
    expect(s.partitions.random).toEqual({ count: 2, meanMs: 86_400_000 });
    expect(s.clockSkew.randomMs).toBe(1500);
    expect(s.crashes.random).toEqual({ count: 1, downMs: 600_000 });
    expect(s.network.default.duplicate).toBe(0.01);
    expect(s.network.default.reorder).toBe(0.02);
    expect((await simScenario(['--offline-days', '0.5'])).partitions.random).toEqual({
      count: 1,
      meanMs: 43_200_000,
    });
  });
});

describe('accord sim sweep and report', () => {
  it('writes runs.jsonl and summary.csv with both systems, and a self-contained HTML report', async () => {
    const grid = join(dir, 'grid.yaml');
    await writeFile(
      grid,
      [
        'base: { seed: 2, devicesPerFacility: 2, duration: 3h, workload: { ratePerHour: 2 } }',
        'grid:',
        '  network.default.loss: [0, 0.1]',
      ].join('\n'),
    );
    const out = join(dir, 'out');
    const sweep = await runAccord([
      'sim',
      'sweep',
      '--grid',
      grid,
      '--seeds',
      '1',
      '--out',
      out,
      '--jobs',
      '2',
    ]);
    expect(sweep.stderr).toContain('2/2 runs');
    expect(sweep.code).toBe(0);
    expect(sweep.stdout.trim().split('\n')).toEqual([join(out, 'runs.jsonl'), join(out, 'summary.csv')]);
    const lines = (await readFile(join(out, 'runs.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { params: Record<string, number>; accord: RunJson; baseline: RunJson });
    expect(lines.map((l) => l.params['network.default.loss'])).toEqual([0, 0.1]);
    for (const l of lines) {
      expect(l.accord.eventsAppended).toBeGreaterThan(0);
      expect(l.accord.eventsLost).toBe(0);
      expect(l.baseline.eventsAppended).toBeGreaterThan(0);
    }
    const csv = (await readFile(join(out, 'summary.csv'), 'utf8')).trim().split('\n');
    expect(csv.map((row) => row.split(',').slice(0, 3).join(','))).toEqual([
      'point,network.default.loss,system',
      '0,0,accord',
      '0,0,baseline',
      '1,0.1,accord',
      '1,0.1,baseline',
    ]);

    const report = await runAccord(['sim', 'report', out]);
    expect(report.stderr).toBe('');
    expect(report.code).toBe(0);
    expect(report.stdout.trim()).toBe(join(out, 'report.html'));
    const html = await readFile(join(out, 'report.html'), 'utf8');
    expect(html).toContain('<canvas id="bytes"');
    expect(html).not.toMatch(/<script[^>]+src=/);
    const data = JSON.parse(
      /<script type="application\/json" id="accord-data">(.*?)<\/script>/s.exec(html)![1]!,
    ) as {
      bytesPerEvent: Record<string, number[]>;
    };
    expect(Object.keys(data.bytesPerEvent)).toEqual(['accord', 'baseline']);

    const elsewhere = join(dir, 'r.html');
    const named = await runAccord(['sim', 'report', join(out, 'runs.jsonl'), '--out', elsewhere]);
    expect(named.code).toBe(0);
    expect(await readFile(elsewhere, 'utf8')).toBe(html);
  }, 180_000);

  it('refuses a results file that is not a sweep result, naming the line', async () => {
    await writeFile(join(dir, 'runs.jsonl'), '{"run": 0}\n');
    const r = await runAccord(['sim', 'report', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/accord: SIM_RESULTS_INVALID: .*runs\.jsonl: line 1 is not a sweep result/);
  });
});
