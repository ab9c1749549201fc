import { DomainEventType, prepareDraft, utcDate } from '@accord/domain';
import { DeviceLog, type LogRoster } from '@accord/log';
import {
  asFacilityId,
  deviceKeyFromSeed,
  type DeviceId,
  type EventId,
  type FacilityId,
} from '@accord/protocol';
import { MemoryEventStore, MemoryStorageAdapter } from '@accord/storage-level';
import { installSimEntropy } from '../entropy.js';
import { SimError } from '../errors.js';
import { planFaults, type FaultPlan } from '../faults.js';
import { SimNetwork } from '../network.js';
import { Prng } from '../prng.js';
import { SimRepoNetwork } from '../repo-network.js';
import type { SystemResult } from '../result.js';
import { trafficOf } from '../result.js';
import { Scheduler, skewedClock } from '../scheduler.js';
import type { Scenario } from '../scenario.js';
import { deviceNode } from '../scenario.js';
import { installSimTimers } from '../timers.js';
import { interpretAction, planWorkload } from '../workload.js';
import { disagreeingPairs, duplicatesAmong, missingPatients, projectionFingerprint } from '../symptoms.js';
import { sharedSyncVerifier } from './verifier.js';

/** One simulated tablet: a real {@link DeviceLog} on in-memory stores. */
interface Tablet {
  readonly node: string;
  readonly facility: number;
  readonly log: DeviceLog;
  readonly clock: () => number;
  /** Events of its facility's appended set this log has shown (own appends and ingest). */
  readonly held: Set<EventId>;
  /** Its own saved events. */
  readonly own: EventId[];
  /** Encounters its user closed, and those of them seen open again. */
  readonly closed: Set<string>;
  readonly reappeared: Set<string>;
  /** When it received each sync message (simulated ms): the rounds of {@link SystemResult}. */
  readonly syncs: number[];
}

/** What {@link runAccord} shows a caller at the end of a run, before the logs close. */
export interface AccordFinalState {
  /** Every simulated tablet's log (its node name and facility number beside it), in node order. */
  readonly devices: readonly {
    readonly node: string;
    readonly facility: number;
    readonly log: DeviceLog;
    /** The events its `log.append` acknowledged to its user, in order: none of them may be lost. */
    readonly acknowledged: readonly EventId[];
  }[];
}

/** Options of {@link runAccord}. */
export interface RunAccordOptions {
  /**
   * Called once at the end of the run, after simulated time has reached the scenario's duration
   * and before any log closes: property tests compare the devices' full state here.
   */
  readonly inspect?: (state: AccordFinalState) => void | Promise<void>;
}

/**
 * Turns of the real event loop taken before each user action, so that work a scheduler callback
 * chained through `setImmediate` (the log's push loop) is done before the action's append, whose
 * signature is computed on libuv's threads while simulated time stands still.
 */
const SETTLE_TURNS = 32;

async function settle(): Promise<void> {
  for (let i = 0; i < SETTLE_TURNS; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * Runs Accord on a scenario, peer to peer: every facility's tablets are real `DeviceLog`s on
 * in-memory stores, syncing over {@link SimRepoNetwork} with the scenario's link faults and
 * partitions, on simulated timers, clock (skew per device) and entropy; the planned users of
 * {@link planWorkload} append through `log.append`. No relay yet: a scenario with `relay: true`
 * is refused (`SIM_SCENARIO_INVALID`).
 *
 * @remarks Deterministic: the same scenario gives the same result, byte for byte. The log's
 * signatures come from libuv's threads, so each action's append is awaited with simulated time
 * standing still; received events are verified on this thread ({@link sharedSyncVerifier}).
 * Installs the simulated timers and entropy for the run's length: one run at a time per process.
 * A crashed tablet's user does nothing and the network treats it as down; its log is not yet
 * closed and reopened.
 */
export async function runAccord(s: Scenario, opts: RunAccordOptions = {}): Promise<SystemResult> {
  if (s.relay)
    throw new SimError('SIM_SCENARIO_INVALID', 'the Accord runner has no relay yet: set relay to false', {
      issues: [{ path: 'relay', message: 'runAccord runs peer to peer only (no relay yet)' }],
    });
  const root = new Prng(s.seed);
  const scheduler = new Scheduler();
  const faults = planFaults(s, root.stream('faults'));
  const network = new SimNetwork(scheduler, root.stream('network/accord'), faults, s.network);
  const restoreTimers = installSimTimers(scheduler, s.epochMs);
  const restoreEntropy = installSimEntropy(root.stream('entropy/accord'));
  const tablets: Tablet[] = [];
  try {
    const sim = new SimRepoNetwork(scheduler, network);
    const keys = await Promise.all(
      Array.from({ length: s.facilities * s.devicesPerFacility }, (_, i) => {
        const f = Math.floor(i / s.devicesPerFacility) + 1;
        const d = (i % s.devicesPerFacility) + 1;
        return deviceKeyFromSeed(root.stream(`${deviceNode(f, d)}/key`).bytes(32));
      }),
    );
    const members = new Map<DeviceId, { facility: FacilityId; revoked: boolean }>();
    keys.forEach((k, i) =>
      members.set(k.deviceId, {
        facility: asFacilityId(`f${Math.floor(i / s.devicesPerFacility) + 1}`),
        revoked: false,
      }),
    );
    const roster: LogRoster = { lookup: (device) => members.get(device) };
    const verifier = sharedSyncVerifier();
    for (let f = 1; f <= s.facilities; f++) {
      const nodes = Array.from({ length: s.devicesPerFacility }, (_, i) => deviceNode(f, i + 1));
      for (const [i, node] of nodes.entries()) {
        const adapter = sim.adapter(node, s.p2p ? nodes : []);
        const storage = new MemoryStorageAdapter();
        // automerge-repo draws a fresh storage's id from `uuid`, which no seeded source reaches
        // (see the README): give it one from the seed, so stored bytes replay too.
        await storage.save(['storage-adapter-id'], new TextEncoder().encode(crypto.randomUUID()));
        const skewed = skewedClock(scheduler, s.epochMs, faults.skews[node] ?? 0);
        const clock = (): number => skewed.now();
        const log = await DeviceLog.open({
          facility: asFacilityId(`f${f}`),
          key: keys[(f - 1) * s.devicesPerFacility + i]!,
          eventStore: new MemoryEventStore(),
          storage,
          roster,
          network: [adapter],
          clock,
          verifier,
        });
        const tablet: Tablet = {
          node,
          facility: f,
          log,
          clock,
          held: new Set(),
          own: [],
          closed: new Set(),
          reappeared: new Set(),
          syncs: [],
        };
        adapter.on('message', () => tablet.syncs.push(scheduler.now));
        tablets.push(tablet);
      }
    }
    const result = await drive(s, root, scheduler, faults, network, tablets);
    await opts.inspect?.({
      devices: tablets.map((t) => ({ node: t.node, facility: t.facility, log: t.log, acknowledged: t.own })),
    });
    return result;
  } finally {
    for (const t of tablets) await t.log.close();
    restoreEntropy();
    restoreTimers();
  }
}

async function drive(
  s: Scenario,
  root: Prng,
  scheduler: Scheduler,
  faults: FaultPlan,
  network: SimNetwork,
  tablets: Tablet[],
): Promise<SystemResult> {
  const byNode = new Map(tablets.map((t) => [t.node, t]));
  const facilities = Array.from({ length: s.facilities }, (_, i) =>
    tablets.filter((t) => t.facility === i + 1),
  );
  /** Every event saved in each facility, with the fact it records. */
  const saved = facilities.map(() => new Map<EventId, string>());
  const actions = planWorkload(s, root);
  const quiescentAtMs = Math.max(faults.lastFaultMs, actions.at(-1)?.atMs ?? 0);
  let convergedSince: number | undefined;

  const agreed = (): boolean => facilities.every((ts, i) => ts.every((t) => t.held.size === saved[i]!.size));
  const check = (): void => {
    if (scheduler.now < quiescentAtMs) return;
    if (agreed()) convergedSince ??= scheduler.now;
    else convergedSince = undefined;
  };
  for (const t of tablets) {
    t.log.onEvents((events) => {
      for (const e of events) if (saved[t.facility - 1]!.has(e.id)) t.held.add(e.id);
      check();
    });
  }
  const pairsDisagreeing = (): number =>
    facilities.reduce(
      (n, ts) => n + disagreeingPairs(ts.map((t) => projectionFingerprint(t.log.tentative()))),
      0,
    );
  const checkQueues = (): void => {
    for (const t of tablets) {
      const view = t.log.tentative();
      for (const id of t.closed) {
        if (t.reappeared.has(id)) continue;
        const e = view.encounter(id);
        if (e !== undefined && (e.state === 'waiting' || e.state === 'in-progress')) t.reappeared.add(id);
      }
    }
  };
  const divergence: [number, number][] = [];
  for (let at = 0; at <= s.durationMs; at += s.sampleEveryMs) {
    scheduler.at(at, () => {
      divergence.push([at, pairsDisagreeing()]);
      checkQueues();
      check();
    });
  }
  scheduler.at(quiescentAtMs, check);

  const crashedAt = (node: string, ms: number): boolean =>
    faults.crashes.some((c) => c.node === node && ms >= c.atMs && ms < c.atMs + c.downMs);
  for (const a of actions) {
    await scheduler.runAsync(a.atMs);
    await settle();
    const t = byNode.get(a.node)!;
    if (crashedAt(a.node, a.atMs)) continue;
    const view = t.log.tentative();
    const intent = interpretAction(a, view, utcDate(t.clock()));
    // A draft the catalogue refuses is refused in the form and never saved, as for the baseline.
    if (intent === undefined || !prepareDraft(view, intent.draft).ok) continue;
    const { event } = await t.log.append(intent.draft);
    saved[t.facility - 1]!.set(event.id, intent.fact);
    t.held.add(event.id);
    t.own.push(event.id);
    if (
      event.type === DomainEventType.EncounterCompleted ||
      event.type === DomainEventType.EncounterCancelled
    )
      t.closed.add(event.subject.id);
    // The listeners checked before the event was counted as saved: check again with it.
    check();
  }
  await scheduler.runAsync(s.durationMs);
  await settle();
  checkQueues();
  check();
  return measure(facilities, saved, network, divergence, quiescentAtMs, convergedSince);
}

/** The #11 fields of a finished run (see {@link SystemResult}; the README says what each means without a relay). */
function measure(
  facilities: readonly (readonly Tablet[])[],
  saved: readonly ReadonlyMap<EventId, string>[],
  network: SimNetwork,
  divergence: [number, number][],
  quiescentAtMs: number,
  convergedSince: number | undefined,
): SystemResult {
  const all = facilities.flat();
  // Exact at the end: the ids each log shows, not the tally its listener kept.
  const idsOf = (t: Tablet): Set<string> => new Set(t.log.list().map((i) => i.event.id));
  const shown = all.map(idsOf);
  const converged = facilities.every((ts, f) =>
    ts.every((t) => {
      const mine = shown[all.indexOf(t)]!;
      return mine.size === saved[f]!.size && [...saved[f]!.keys()].every((id) => mine.has(id));
    }),
  );
  const convergenceMs =
    converged && convergedSince !== undefined ? Math.round(convergedSince - quiescentAtMs) : null;
  const rounds =
    !converged || convergedSince === undefined
      ? null
      : Math.max(
          0,
          ...all.map((t) => t.syncs.filter((x) => x > quiescentAtMs && x <= convergedSince).length),
        );

  let eventsLost = 0;
  let changesAppearLost = 0;
  const effective = new Map<string, Set<string>>();
  facilities.forEach((ts, f) => {
    for (const [id, fact] of saved[f]!) {
      const holders = ts.filter((t) => shown[all.indexOf(t)]!.has(id));
      if (holders.length === 0) eventsLost++;
      else effective.set(fact, (effective.get(fact) ?? new Set()).add(id));
    }
  });
  for (const t of all) for (const id of t.own) if (!shown[all.indexOf(t)]!.has(id)) changesAppearLost++;
  const duplicates = duplicatesAmong(effective);

  let patientsMissing = 0;
  let countersDisagree = 0;
  for (const ts of facilities) {
    const views = ts.map((t) => t.log.tentative());
    patientsMissing += missingPatients(views);
    countersDisagree += disagreeingPairs(views.map(projectionFingerprint));
  }

  const appended = saved.reduce((n, m) => n + m.size, 0);
  const c = network.counters;
  return {
    converged,
    convergenceMs,
    rounds,
    quiescentAtMs,
    eventsAppended: appended,
    eventsLost,
    duplicates,
    reentries: 0,
    ...trafficOf(c, appended),
    deadletters: {},
    symptoms: {
      patientsMissing,
      encounterReappeared: all.reduce((n, t) => n + t.reappeared.size, 0),
      countersDisagree,
      changesAppearLost,
    },
    divergence,
    network: { ...c },
  };
}
