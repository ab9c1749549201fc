// eslint-disable-next-line @typescript-eslint/triple-slash-reference -- an ambient declaration (js-yaml ships no types) must travel with this source to every program that compiles it
/// <reference path="./js-yaml.d.ts" />
import { load, JSON_SCHEMA } from 'js-yaml';
import { z } from 'zod';
import { dateStartMs, isIsoDate } from '@accord/domain';
import { parseDuration } from './duration.js';
import { SimError, SimErrorCode } from './errors.js';

/** The kinds of user action the workload mixes (see `workload.ts`). */
export const ACTION_KINDS = [
  'register',
  'checkIn',
  'advance',
  'vaccinate',
  'stock',
  'demographics',
  'appointment',
] as const;
/** One of {@link ACTION_KINDS}. */
export type ActionKind = (typeof ACTION_KINDS)[number];

/** How long a frame takes on a link, beyond the time its bytes take at the link's bandwidth. */
export type LatencyModel =
  | { readonly dist: 'fixed'; readonly ms: number }
  | { readonly dist: 'uniform'; readonly minMs: number; readonly maxMs: number }
  | { readonly dist: 'lognormal'; readonly medianMs: number; readonly sigma: number };

/** What a link does to each frame (probabilities per frame, drawn independently). */
export interface LinkModel {
  readonly latency: LatencyModel;
  /** The frame never arrives. */
  readonly loss: number;
  /** The frame arrives twice (the copy with its own latency). */
  readonly duplicate: number;
  /** The frame is held back by up to {@link reorderMaxMs}, so later frames overtake it. */
  readonly reorder: number;
  readonly reorderMaxMs: number;
  /** Only a prefix of the frame arrives (a severed transfer). */
  readonly truncate: number;
  /** Bytes per second; frames queue behind each other on the link. */
  readonly bandwidth: number;
}

/** A link model for the frames between two nodes (both directions); `"*"` matches any node. */
export interface LinkOverride {
  readonly between: readonly [string, string];
  readonly model: LinkModel;
}

/** A node is offline (every link down) from `fromMs` until `toMs`. */
export interface OfflineWindow {
  readonly node: string;
  readonly fromMs: number;
  readonly toMs: number;
}

/** A node crashes at `atMs` and restarts `downMs` later, losing what it held in memory. */
export interface Crash {
  readonly node: string;
  readonly atMs: number;
  readonly downMs: number;
}

/**
 * The relay is replaced at `atMs` by a copy of its stores as they were at `fromMs` (restored from
 * an older backup): what it stored in between is gone from it.
 */
export interface RelayRestore {
  readonly atMs: number;
  readonly fromMs: number;
}

/** Knobs of the queue-based baseline client (the incumbent's periods and limits, see README). */
export interface BaselineOptions {
  /** The push loop's reschedule when the server cannot be reached ("come back in 30 seconds"). */
  readonly pushRetryMs: number;
  /** The periodic pull. */
  readonly pullIntervalMs: number;
  /** A request with no answer after this long is a timeout. */
  readonly timeoutMs: number;
  /** Timeouts of one outbox item before it goes to the dead-letter queue (the incumbent's 3). */
  readonly maxRetries: number;
  /** The pull asks for records modified since its last pull minus this overlap (1 min). */
  readonly overlapMs: number;
}

/** A fully resolved scenario: every field present, every duration in milliseconds. */
export interface Scenario {
  readonly seed: number;
  /** Unix ms of simulated time 0 (midnight UTC of the scenario's `epoch` date). */
  readonly epochMs: number;
  readonly durationMs: number;
  readonly facilities: number;
  readonly devicesPerFacility: number;
  readonly relay: boolean;
  readonly p2p: boolean;
  readonly workload: {
    /** User actions per device per simulated hour (a Poisson process). */
    readonly ratePerHour: number;
    /** No user acts after this instant, so the run can settle. */
    readonly untilMs: number;
    readonly mix: Readonly<Record<ActionKind, number>>;
    /** Probability that an action is a deliberate rule violation. */
    readonly violations: number;
    /** Probability that an action registers an already registered person again. */
    readonly duplicates: number;
    /** Probability that a user re-enters a change that looks lost. */
    readonly reentry: number;
  };
  readonly network: { readonly default: LinkModel; readonly links: readonly LinkOverride[] };
  readonly partitions: {
    readonly random: { readonly count: number; readonly meanMs: number };
    readonly scripted: readonly OfflineWindow[];
  };
  readonly clockSkew: { readonly randomMs: number; readonly nodes: Readonly<Record<string, number>> };
  readonly crashes: {
    readonly random: { readonly count: number; readonly downMs: number };
    readonly scripted: readonly Crash[];
  };
  /**
   * The relay restored from an older backup, if it is (the baseline's server too: what it accepted
   * after the backup is gone).
   */
  readonly relayRestore: RelayRestore | null;
  readonly baseline: BaselineOptions;
  /** How often divergence between devices is sampled. */
  readonly sampleEveryMs: number;
}

const duration = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const ms = parseDuration(v);
  if (ms === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a duration (ms, "90s", "15m", "36h", "2d") or "day N", got ${JSON.stringify(v)}`,
    });
    return z.NEVER;
  }
  return ms;
});
const probability = z.number().min(0).max(1);
const count = z.number().int().min(0);

const latency = z.discriminatedUnion('dist', [
  z.strictObject({ dist: z.literal('fixed'), ms: duration }),
  z.strictObject({ dist: z.literal('uniform'), min: duration, max: duration }),
  z.strictObject({ dist: z.literal('lognormal'), median: duration, sigma: z.number().min(0).max(5) }),
]);

const linkFields = {
  latency: latency.optional(),
  loss: probability.optional(),
  duplicate: probability.optional(),
  reorder: probability.optional(),
  reorderMax: duration.optional(),
  truncate: probability.optional(),
  bandwidth: z.number().positive().optional(),
};
const link = z.strictObject(linkFields);

const input = z.strictObject({
  seed: z.number().int().min(0).max(0xffff_ffff).default(1),
  epoch: z
    .string()
    .refine(isIsoDate, { message: 'expected a calendar date YYYY-MM-DD' })
    .default('2024-06-03'),
  duration: duration.default(7 * 86_400_000),
  facilities: z.number().int().min(1).max(100).default(1),
  devicesPerFacility: z.number().int().min(1).max(200).default(3),
  relay: z.boolean().default(true),
  p2p: z.boolean().default(true),
  workload: z
    .strictObject({
      ratePerHour: z.number().min(0).max(3600).default(4),
      until: duration.optional(),
      mix: z.partialRecord(z.enum(ACTION_KINDS), z.number().min(0)).optional(),
      violations: probability.default(0.03),
      duplicates: probability.default(0.02),
      reentry: probability.default(0.5),
    })
    .default({ ratePerHour: 4, violations: 0.03, duplicates: 0.02, reentry: 0.5 }),
  network: z
    .strictObject({
      default: link.optional(),
      links: z
        .array(z.strictObject({ between: z.tuple([z.string(), z.string()]), ...linkFields }))
        .default([]),
    })
    .default({ links: [] }),
  partitions: z
    .strictObject({
      random: z.strictObject({ count, meanLength: duration }).optional(),
      scripted: z.array(z.strictObject({ node: z.string(), from: duration, to: duration })).default([]),
    })
    .default({ scripted: [] }),
  clockSkew: z
    .strictObject({
      random: duration.default(0),
      nodes: z.record(z.string(), z.number()).default({}),
    })
    .default({ random: 0, nodes: {} }),
  crashes: z
    .strictObject({
      random: z.strictObject({ count, downtime: duration }).optional(),
      scripted: z.array(z.strictObject({ node: z.string(), at: duration, downtime: duration })).default([]),
    })
    .default({ scripted: [] }),
  relayRestore: z.strictObject({ at: duration, from: duration }).optional(),
  baseline: z
    .strictObject({
      pushRetry: duration.default(30_000),
      pullInterval: duration.default(15 * 60_000),
      timeout: duration.default(60_000),
      maxRetries: count.default(3),
      overlap: duration.default(60_000),
    })
    .default({ pushRetry: 30_000, pullInterval: 900_000, timeout: 60_000, maxRetries: 3, overlap: 60_000 }),
  sampleEvery: duration.default(3_600_000),
});

/** What a scenario file or object may say: every field optional, durations as numbers (ms) or text. */
export type ScenarioInput = z.input<typeof input>;

/** The default action mix: weights, not probabilities. */
export const DEFAULT_MIX: Readonly<Record<ActionKind, number>> = Object.freeze({
  register: 3,
  checkIn: 3,
  advance: 6,
  vaccinate: 4,
  stock: 2,
  demographics: 1,
  appointment: 1,
});

/** The default link: 40 ms ± (lognormal), 1% loss, 250 kB/s — a fair clinic Wi-Fi to a 3G uplink. */
export const DEFAULT_LINK: LinkModel = Object.freeze({
  latency: Object.freeze({ dist: 'lognormal', medianMs: 40, sigma: 0.6 }),
  loss: 0.01,
  duplicate: 0,
  reorder: 0,
  reorderMaxMs: 500,
  truncate: 0,
  bandwidth: 250_000,
});

/** The id of the relay (the baseline's server) in node names. */
export const RELAY_NODE = 'relay';

/** The node id of device `d` (1-based) of facility `f` (1-based): `f1-d3`. */
export function deviceNode(f: number, d: number): string {
  return `f${f}-d${d}`;
}

/** Every device node of a scenario, facility by facility. */
export function deviceNodes(s: Pick<Scenario, 'facilities' | 'devicesPerFacility'>): string[] {
  const out: string[] = [];
  for (let f = 1; f <= s.facilities; f++)
    for (let d = 1; d <= s.devicesPerFacility; d++) out.push(deviceNode(f, d));
  return out;
}

type Issue = { path: string; message: string };

function invalid(message: string, issues: Issue[]): SimError {
  return new SimError(SimErrorCode.SIM_SCENARIO_INVALID, message, { issues });
}

function resolveLink(base: LinkModel, o: z.output<typeof link>): LinkModel {
  const l = o.latency;
  return {
    latency:
      l === undefined
        ? base.latency
        : l.dist === 'fixed'
          ? { dist: 'fixed', ms: l.ms }
          : l.dist === 'uniform'
            ? { dist: 'uniform', minMs: Math.min(l.min, l.max), maxMs: Math.max(l.min, l.max) }
            : { dist: 'lognormal', medianMs: l.median, sigma: l.sigma },
    loss: o.loss ?? base.loss,
    duplicate: o.duplicate ?? base.duplicate,
    reorder: o.reorder ?? base.reorder,
    reorderMaxMs: o.reorderMax ?? base.reorderMaxMs,
    truncate: o.truncate ?? base.truncate,
    bandwidth: o.bandwidth ?? base.bandwidth,
  };
}

/**
 * Checks a scenario object (from a study's code or a parsed file) and resolves it: defaults
 * filled in, durations in ms, node names checked.
 *
 * @throws SimError `SIM_SCENARIO_INVALID` with `details.issues` (`{path, message}` each) when a
 * field is missing its type or range; `SIM_UNKNOWN_NODE` when a partition, crash, skew or link
 * names a node the scenario does not have.
 */
export function defineScenario(value: ScenarioInput = {}): Scenario {
  return checkScenario(value);
}

/** {@link defineScenario} for a value of unknown shape (a parsed file, CLI flags); same errors. */
export function checkScenario(value: unknown): Scenario {
  const parsed = input.safeParse(value);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 20).map((i) => ({
      path: i.path.map(String).join('.') || '(root)',
      message: i.message,
    }));
    const first = issues[0]!;
    throw invalid(`scenario is invalid: ${first.path}: ${first.message}`, issues);
  }
  const v = parsed.data;
  const nodes = new Set([...deviceNodes(v), RELAY_NODE]);
  const known = (node: string, path: string): string => {
    if (!nodes.has(node)) {
      throw new SimError(
        SimErrorCode.SIM_UNKNOWN_NODE,
        `${path}: no node ${JSON.stringify(node)} in this scenario`,
        {
          path,
          node,
          example: deviceNode(1, 1),
        },
      );
    }
    return node;
  };
  const issues: Issue[] = [];
  v.partitions.scripted.forEach((p, i) => {
    known(p.node, `partitions.scripted.${i}.node`);
    if (p.to <= p.from)
      issues.push({ path: `partitions.scripted.${i}`, message: '`to` must come after `from`' });
  });
  v.crashes.scripted.forEach((c, i) => known(c.node, `crashes.scripted.${i}.node`));
  for (const n of Object.keys(v.clockSkew.nodes)) known(n, `clockSkew.nodes.${n}`);
  v.network.links.forEach((l, i) =>
    l.between.forEach((n, k) => (n === '*' ? n : known(n, `network.links.${i}.between.${k}`))),
  );
  if (v.relayRestore !== undefined) {
    const r = v.relayRestore;
    if (!v.relay) issues.push({ path: 'relayRestore', message: 'needs a relay (`relay: true`)' });
    if (r.from >= r.at)
      issues.push({
        path: 'relayRestore.from',
        message: 'the backup must be older than the restore (`from` < `at`)',
      });
    if (r.at > v.duration) issues.push({ path: 'relayRestore.at', message: 'must not exceed `duration`' });
  }
  const untilMs = v.workload.until ?? Math.round(v.duration * 0.8);
  if (untilMs > v.duration) issues.push({ path: 'workload.until', message: 'must not exceed `duration`' });
  if (issues.length > 0)
    throw invalid(`scenario is invalid: ${issues[0]!.path}: ${issues[0]!.message}`, issues);

  const base = resolveLink(DEFAULT_LINK, v.network.default ?? {});
  return {
    seed: v.seed,
    epochMs: dateStartMs(v.epoch),
    durationMs: v.duration,
    facilities: v.facilities,
    devicesPerFacility: v.devicesPerFacility,
    relay: v.relay,
    p2p: v.p2p,
    workload: {
      ratePerHour: v.workload.ratePerHour,
      untilMs,
      mix: { ...DEFAULT_MIX, ...v.workload.mix },
      violations: v.workload.violations,
      duplicates: v.workload.duplicates,
      reentry: v.workload.reentry,
    },
    network: {
      default: base,
      links: v.network.links.map(({ between, ...o }) => ({ between, model: resolveLink(base, o) })),
    },
    partitions: {
      random:
        v.partitions.random === undefined
          ? { count: 0, meanMs: 0 }
          : { count: v.partitions.random.count, meanMs: v.partitions.random.meanLength },
      scripted: v.partitions.scripted.map((p) => ({ node: p.node, fromMs: p.from, toMs: p.to })),
    },
    clockSkew: { randomMs: v.clockSkew.random, nodes: { ...v.clockSkew.nodes } },
    crashes: {
      random:
        v.crashes.random === undefined
          ? { count: 0, downMs: 0 }
          : { count: v.crashes.random.count, downMs: v.crashes.random.downtime },
      scripted: v.crashes.scripted.map((c) => ({ node: c.node, atMs: c.at, downMs: c.downtime })),
    },
    relayRestore:
      v.relayRestore === undefined ? null : { atMs: v.relayRestore.at, fromMs: v.relayRestore.from },
    baseline: {
      pushRetryMs: v.baseline.pushRetry,
      pullIntervalMs: v.baseline.pullInterval,
      timeoutMs: v.baseline.timeout,
      maxRetries: v.baseline.maxRetries,
      overlapMs: v.baseline.overlap,
    },
    sampleEveryMs: Math.max(60_000, v.sampleEvery),
  };
}

/**
 * The value of a scenario or grid file's text, unchecked: JSON when it starts with `{`, YAML
 * otherwise (or as `format` says); an empty file is `{}`.
 *
 * @throws SimError `SIM_SCENARIO_INVALID` for a syntax error (`details.line` when known).
 */
export function parseScenarioText(text: string, format?: 'json' | 'yaml', what = 'scenario'): unknown {
  const kind = format ?? (text.trimStart().startsWith('{') ? 'json' : 'yaml');
  try {
    return (kind === 'json' ? JSON.parse(text) : load(text, { schema: JSON_SCHEMA })) ?? {};
  } catch (cause) {
    const mark = (cause as { mark?: { line?: number } }).mark;
    throw new SimError(
      SimErrorCode.SIM_SCENARIO_INVALID,
      `${what} is not valid ${kind.toUpperCase()}: ${String((cause as Error).message ?? cause).split('\n')[0]}`,
      { format: kind, ...(mark?.line !== undefined ? { line: mark.line + 1 } : {}) },
    );
  }
}

/**
 * `input` with the field at a dotted `path` (`network.default.loss`) set to `value`; objects on
 * the way are copied (or created), never mutated. Sweep grids and the CLI's flags vary a scenario
 * this way, before {@link checkScenario} checks the result.
 */
export function withField(input: unknown, path: string, value: unknown): Record<string, unknown> {
  const set = (obj: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> => {
    const [head, ...rest] = keys;
    if (head === undefined) return obj;
    const inner = obj[head];
    const object = (v: unknown): v is Record<string, unknown> =>
      typeof v === 'object' && v !== null && !Array.isArray(v);
    return { ...obj, [head]: rest.length === 0 ? value : set(object(inner) ? inner : {}, rest) };
  };
  const root = typeof input === 'object' && input !== null && !Array.isArray(input) ? input : {};
  return set(root as Record<string, unknown>, path.split('.'));
}

/**
 * Parses a scenario file's text (see {@link parseScenarioText}) and checks it.
 *
 * @throws SimError `SIM_SCENARIO_INVALID` for a syntax error (`details.line` when known) and for
 * everything {@link defineScenario} refuses; `SIM_UNKNOWN_NODE` as there.
 */
export function parseScenario(text: string, format?: 'json' | 'yaml'): Scenario {
  return checkScenario(parseScenarioText(text, format));
}
