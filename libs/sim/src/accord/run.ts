import type { NetworkAdapter } from '@automerge/automerge-repo';
import { DomainEventType, prepareDraft, utcDate } from '@accord/domain';
import { DeviceLog, type EventVerifier, type LogRoster } from '@accord/log';
import {
  asFacilityId,
  deviceKeyFromSeed,
  verdictsIn,
  type DeviceId,
  type DeviceKeyPair,
  type EventId,
  type FacilityId,
  type SignedEvent,
} from '@accord/protocol';
import type { FacilityMembersFile, FacilityNode } from '@accord/relay';
import { installSimEntropy } from '../entropy.js';
import { planFaults, type FaultPlan } from '../faults.js';
import { SimNetwork } from '../network.js';
import { Prng } from '../prng.js';
import { SimRepoNetwork } from '../repo-network.js';
import type { SystemResult } from '../result.js';
import { sortedRecord, trafficOf } from '../result.js';
import { Scheduler, skewedClock } from '../scheduler.js';
import type { Scenario } from '../scenario.js';
import { deviceNode, RELAY_NODE } from '../scenario.js';
import { installSimTimers } from '../timers.js';
import { interpretAction, planWorkload } from '../workload.js';
import { disagreeingPairs, duplicatesAmong, missingPatients, projectionFingerprint } from '../symptoms.js';
import { Disk } from './disk.js';
import { openSimRelay } from './relay-node.js';
import { syncSigner } from './signer.js';
import { sharedSyncVerifier } from './verifier.js';

/** What the runner tracks of a log while it runs (a tablet's, or the relay's of a facility). */
interface Holder {
  /** The log is open (its process is up). */
  up: boolean;
  /** Saved events of its facility this log has shown. */
  held: Set<EventId>;
  /** Relay-signed events this log has shown. */
  heldRelay: Set<EventId>;
  /** Stops the runner's listener on the current log (at a crash: the dying process tells nothing). */
  unwatch: () => void;
  /** The process's disk (after a crash: the copy the restarted process finds). */
  disk: Disk;
}

/** One simulated tablet: a real {@link DeviceLog} on in-memory stores. */
interface Tablet extends Holder {
  readonly node: string;
  readonly facility: number;
  readonly key: DeviceKeyPair;
  log: DeviceLog;
  adapter: NetworkAdapter;
  readonly clock: () => number;
  /** Its own saved events. */
  readonly own: EventId[];
  /** Encounters its user closed, and those of them seen open again. */
  readonly closed: Set<string>;
  readonly reappeared: Set<string>;
  /** When it received each sync message (simulated ms): the rounds of {@link SystemResult}. */
  readonly syncs: number[];
}

/** The relay of one facility: the real {@link FacilityNode} on in-memory stores. */
interface RelaySlot extends Holder {
  node: FacilityNode<NetworkAdapter>;
  readonly members: FacilityMembersFile;
  /** The node names of the facility's tablets. */
  readonly devices: readonly string[];
  /** The copy of its disk a scheduled restore puts back (taken at `relayRestore.from`). */
  backup: Disk | undefined;
  /** What the node reported to its observer as a problem, in order. */
  readonly problems: string[];
  /** Each process of the relay, oldest first (see {@link RelayLife}). */
  readonly lives: RelayLife[];
}

/** One process of a facility's relay: from its open until its crash, restore or the end of the run. */
export interface RelayLife {
  readonly openedAtMs: number;
  /** The relay's own events (`ownHistory().assigned`) its log held at open, and at its end. */
  readonly ownAtOpen: number;
  ownAtEnd: number;
}

/** A facility: its tablets, its relay if the scenario has one, and what was saved and judged. */
interface Facility {
  readonly index: number;
  readonly id: FacilityId;
  readonly roster: LogRoster;
  /** Its tablets' node names. */
  readonly nodes: readonly string[];
  readonly tablets: Tablet[];
  relay: RelaySlot | undefined;
  /** Every event saved in the facility, with the fact it records. */
  readonly saved: Map<EventId, string>;
  /** Relay-signed events some open log holds (recounted after each restart), by id. */
  relayEvents: Map<EventId, SignedEvent>;
  /** The relay's verdict events about each target, among {@link relayEvents}. */
  verdicts: Map<EventId, Set<EventId>>;
}

/** What {@link runAccord} shows a caller at the end of a run, before the logs close. */
export interface AccordFinalState {
  /** Every simulated tablet's log (its node name and facility number beside it), in node order. */
  readonly devices: readonly { readonly node: string; readonly facility: number; readonly log: DeviceLog }[];
  /**
   * With a relay: each facility's relay log (`FacilityNode.log`), the relay's device id, and the
   * problems its node reported (as `<simulated ms> <message>`: a catch-up that ran out of time, a
   * failed round), in facility order.
   */
  readonly relays: readonly {
    readonly facility: number;
    readonly relay: DeviceId;
    readonly log: DeviceLog;
    readonly problems: readonly string[];
    /** Its processes: a crash or a restore ends one and (at the restart) opens the next. */
    readonly lives: readonly Readonly<RelayLife>[];
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
 * Turns of the real event loop taken before each user action and each crash or restart, so that
 * work a scheduler callback chained through `setImmediate` (the log's push loop) is done first.
 */
const SETTLE_TURNS = 32;

async function settle(): Promise<void> {
  for (let i = 0; i < SETTLE_TURNS; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Most simulated seconds the runner steps on after the end for logs still closing. */
const CLOSE_STEPS = 600;

/** Everything one run shares. */
interface Run {
  readonly s: Scenario;
  readonly scheduler: Scheduler;
  readonly faults: FaultPlan;
  readonly sim: SimRepoNetwork;
  readonly verifier: EventVerifier;
  readonly relayKey: DeviceKeyPair | undefined;
  readonly facilities: Facility[];
  /** Closes of crashed processes, running in the background on simulated time. */
  readonly closing: Promise<void>[];
  /** Called on every event a log shows, and at samples: tracks convergence. */
  check: () => void;
}

/**
 * Runs Accord on a scenario: every facility's tablets are real `DeviceLog`s on in-memory stores,
 * syncing over {@link SimRepoNetwork} with the scenario's link faults and partitions (with each
 * other when `p2p`), and with `relay` each facility's relay is the real relay core
 * (`FacilityNode` of `@accord/relay`: adjudicator, signed verdicts, seals, catch-up after a
 * restore); on simulated timers, clock (skew per node) and entropy; the planned users of
 * {@link planWorkload} append through `log.append`.
 *
 * @remarks Deterministic: the same scenario gives the same result, byte for byte. Signatures are
 * made and checked on this thread ({@link syncSigner}, {@link sharedSyncVerifier}). A crash is
 * real: the process's log (or relay node) stops at once, its disk is what its stores held at that
 * instant, and the restart opens a new log on it. `relayRestore` replaces the relay by a copy of
 * its disk taken earlier. Installs the simulated timers and entropy for the run's length: one run
 * at a time per process.
 */
export async function runAccord(s: Scenario, opts: RunAccordOptions = {}): Promise<SystemResult> {
  const root = new Prng(s.seed);
  const scheduler = new Scheduler();
  const faults = planFaults(s, root.stream('faults'));
  const network = new SimNetwork(scheduler, root.stream('network/accord'), faults, s.network);
  const restoreTimers = installSimTimers(scheduler, s.epochMs);
  const restoreEntropy = installSimEntropy(root.stream('entropy/accord'));
  const run: Run = {
    s,
    scheduler,
    faults,
    sim: new SimRepoNetwork(scheduler, network),
    verifier: sharedSyncVerifier(),
    relayKey: s.relay ? await deviceKeyFromSeed(root.stream(`${RELAY_NODE}/key`).bytes(32)) : undefined,
    facilities: [],
    closing: [],
    check: () => undefined,
  };
  try {
    await openAll(run, root);
    const result = await drive(run, root, network);
    await opts.inspect?.({
      devices: run.facilities.flatMap((f) =>
        f.tablets.map((t) => ({ node: t.node, facility: t.facility, log: t.log })),
      ),
      relays: run.facilities.flatMap((f) =>
        f.relay === undefined
          ? []
          : [
              {
                facility: f.index,
                relay: run.relayKey!.deviceId,
                log: f.relay.node.log,
                problems: f.relay.problems,
                lives: f.relay.lives,
              },
            ],
      ),
    });
    return result;
  } finally {
    await closeAll(run);
    restoreEntropy();
    restoreTimers();
  }
}

/** Opens every facility's relay and tablets (relay first: tablets dial it). */
async function openAll(run: Run, root: Prng): Promise<void> {
  const { s } = run;
  for (let f = 1; f <= s.facilities; f++) {
    const nodes = Array.from({ length: s.devicesPerFacility }, (_, i) => deviceNode(f, i + 1));
    const keys = await Promise.all(nodes.map((n) => deviceKeyFromSeed(root.stream(`${n}/key`).bytes(32))));
    const id = asFacilityId(`f${f}`);
    const members = new Map<DeviceId, { facility: FacilityId; revoked: boolean }>(
      keys.map((k) => [k.deviceId, { facility: id, revoked: false }]),
    );
    if (run.relayKey !== undefined) members.set(run.relayKey.deviceId, { facility: id, revoked: false });
    const fac: Facility = {
      index: f,
      id,
      roster: { lookup: (device) => members.get(device) },
      nodes,
      tablets: [],
      relay: undefined,
      saved: new Map(),
      relayEvents: new Map(),
      verdicts: new Map(),
    };
    run.facilities.push(fac);
    if (run.relayKey !== undefined) {
      const file: FacilityMembersFile = {
        facility: id,
        version: 1,
        devices: keys.map((k, i) => ({
          id: k.deviceId,
          name: nodes[i]!,
          revoked: false,
          enrolled: new Date(s.epochMs).toISOString(),
        })),
      };
      const holder = emptyHolder(await freshDisk());
      const problems: string[] = [];
      const node = await openRelayNode(run, { members: file, devices: nodes, disk: holder.disk, problems });
      const slot: RelaySlot = {
        ...holder,
        node,
        members: file,
        devices: nodes,
        backup: undefined,
        problems,
        lives: [],
      };
      fac.relay = slot;
      watchRelay(run, fac, slot);
    }
    for (const [i, node] of nodes.entries()) {
      const skewed = skewedClock(run.scheduler, s.epochMs, run.faults.skews[node] ?? 0);
      const base = {
        ...emptyHolder(await freshDisk()),
        node,
        key: keys[i]!,
        clock: () => skewed.now(),
        syncs: [],
      };
      const tablet: Tablet = {
        ...base,
        ...(await openTabletLog(run, fac, base)),
        facility: f,
        own: [],
        closed: new Set(),
        reappeared: new Set(),
      };
      fac.tablets.push(tablet);
      watch(run, fac, tablet, tablet.log);
    }
  }
}

function emptyHolder(disk: Disk): Holder {
  return { up: false, held: new Set(), heldRelay: new Set(), unwatch: () => undefined, disk };
}

/**
 * A new process's empty disk. automerge-repo draws a fresh storage's id from `uuid`, which no
 * seeded source reaches (see the README): it is saved from the seed first, so stored bytes replay too.
 */
async function freshDisk(): Promise<Disk> {
  const disk = new Disk();
  const storage = disk.storage();
  await storage.save(['storage-adapter-id'], new TextEncoder().encode(crypto.randomUUID()));
  await storage.close();
  return disk;
}

/** Opens the relay node of a facility on `disk` (at the start, and at each restart). */
function openRelayNode(
  run: Run,
  o: Pick<RelaySlot, 'members' | 'devices' | 'disk' | 'problems'>,
): Promise<FacilityNode<NetworkAdapter>> {
  const skewed = skewedClock(run.scheduler, run.s.epochMs, run.faults.skews[RELAY_NODE] ?? 0);
  return openSimRelay({
    members: o.members,
    key: run.relayKey!,
    devices: o.devices,
    disk: o.disk,
    sim: run.sim,
    clock: () => skewed.now(),
    verifier: run.verifier,
    signer: syncSigner(run.relayKey!),
    onProblem: (message) => o.problems.push(`${Math.round(run.scheduler.now)} ${message}`),
  });
}

async function restartRelay(run: Run, fac: Facility, slot: RelaySlot): Promise<void> {
  slot.node = await openRelayNode(run, slot);
  watchRelay(run, fac, slot);
}

/** {@link watch} for the relay's newly opened node, which begins a new {@link RelayLife}. */
function watchRelay(run: Run, fac: Facility, slot: RelaySlot): void {
  const own = slot.node.log.ownHistory().assigned;
  slot.lives.push({ openedAtMs: run.scheduler.now, ownAtOpen: own, ownAtEnd: own });
  watch(run, fac, slot, slot.node.log);
}

/** Opens a tablet's log on its disk (at the start, and at each restart), with a new adapter. */
async function openTabletLog(
  run: Run,
  fac: Facility,
  t: Pick<Tablet, 'node' | 'key' | 'disk' | 'clock' | 'syncs'>,
): Promise<{ log: DeviceLog; adapter: NetworkAdapter }> {
  const peers = [...(run.relayKey === undefined ? [] : [RELAY_NODE]), ...(run.s.p2p ? fac.nodes : [])];
  const adapter = run.sim.adapter(t.node, peers);
  adapter.on('message', () => t.syncs.push(run.scheduler.now));
  const log = await DeviceLog.open({
    facility: fac.id,
    key: t.key,
    eventStore: t.disk.eventStore(),
    storage: t.disk.storage(),
    roster: fac.roster,
    relay: run.relayKey?.deviceId ?? null,
    network: [adapter],
    clock: t.clock,
    verifier: run.verifier,
    signer: syncSigner(t.key),
  });
  return { log, adapter };
}

async function restartTablet(run: Run, fac: Facility, t: Tablet): Promise<void> {
  Object.assign(t, await openTabletLog(run, fac, t));
  watch(run, fac, t, t.log);
}

/**
 * Marks `holder` up with `log`: what the log holds now, and a listener for what it shows next.
 * Then recounts the relay's events every open log holds: a restart may have lost some.
 */
function watch(run: Run, fac: Facility, holder: Holder, log: DeviceLog): void {
  const relay = run.relayKey?.deviceId;
  const take = (e: SignedEvent): void => {
    if (fac.saved.has(e.id)) holder.held.add(e.id);
    else if (e.device === relay) {
      holder.heldRelay.add(e.id);
      noteRelayEvent(fac, e);
    }
  };
  holder.up = true;
  holder.held = new Set();
  holder.heldRelay = new Set();
  for (const e of log.visibleEvents()) take(e);
  holder.unwatch = log.onEvents((events) => {
    for (const e of events) take(e);
    run.check();
  });
  recount(fac);
}

function noteRelayEvent(fac: Facility, e: SignedEvent): void {
  if (fac.relayEvents.has(e.id)) return;
  fac.relayEvents.set(e.id, e);
  for (const v of verdictsIn(e)) {
    const about = fac.verdicts.get(v.target) ?? new Set();
    fac.verdicts.set(v.target, about.add(e.id));
  }
}

/** The relay events some open log holds, and their verdicts (what a crash or restore left). */
function recount(fac: Facility): void {
  const holders: Holder[] = [...fac.tablets, ...(fac.relay === undefined ? [] : [fac.relay])];
  const kept = new Set(holders.filter((h) => h.up).flatMap((h) => [...h.heldRelay]));
  const events = fac.relayEvents;
  fac.relayEvents = new Map();
  fac.verdicts = new Map();
  for (const [id, e] of events) if (kept.has(id)) noteRelayEvent(fac, e);
}

/**
 * Crashes a process: its listener stops, its disk is what the stores held this instant (a copy:
 * what the dying log still writes is lost), and its log closes in the background, unheard.
 */
function crash(run: Run, holder: Holder, adapter: NetworkAdapter, close: () => Promise<void>): void {
  if (!holder.up) return;
  holder.up = false;
  holder.unwatch();
  holder.disk = holder.disk.copy();
  adapter.disconnect();
  run.closing.push(close().catch(() => undefined));
}

function crashTablet(run: Run, t: Tablet): void {
  const log = t.log;
  crash(run, t, t.adapter, () => log.close());
}

function crashRelay(run: Run, slot: RelaySlot): void {
  const node = slot.node;
  if (slot.up) slot.lives.at(-1)!.ownAtEnd = node.log.ownHistory().assigned;
  crash(run, slot, node.network, () => node.close());
}

async function drive(run: Run, root: Prng, network: SimNetwork): Promise<SystemResult> {
  const { s, scheduler, faults, facilities } = run;
  const tablets = facilities.flatMap((f) => f.tablets);
  const byNode = new Map(tablets.map((t) => [t.node, t]));
  const actions = planWorkload(s, root);
  const quiescentAtMs = Math.max(faults.lastFaultMs, actions.at(-1)?.atMs ?? 0);
  let convergedSince: number | undefined;

  const agreed = (): boolean =>
    facilities.every((fac) => {
      const holders: Holder[] = [...fac.tablets, ...(fac.relay === undefined ? [] : [fac.relay])];
      return (
        holders.every(
          (h) => h.up && h.held.size === fac.saved.size && h.heldRelay.size === fac.relayEvents.size,
        ) &&
        (fac.relay === undefined || fac.verdicts.size >= fac.saved.size)
      );
    });
  run.check = (): void => {
    if (scheduler.now < quiescentAtMs) return;
    if (agreed()) convergedSince ??= scheduler.now;
    else convergedSince = undefined;
  };
  const check = run.check;
  const pairsDisagreeing = (): number =>
    facilities.reduce(
      (n, fac) => n + disagreeingPairs(fac.tablets.map((t) => projectionFingerprint(t.log.tentative()))),
      0,
    );
  const checkQueues = (): void => {
    for (const t of tablets) {
      if (!t.up) continue;
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

  const steps = processSteps(run, byNode);
  let next = 0;
  const due = async (atMs: number): Promise<void> => {
    for (; next < steps.length && steps[next]!.atMs <= atMs; next++) {
      await scheduler.runAsync(steps[next]!.atMs);
      await settle();
      await steps[next]!.run();
    }
    await scheduler.runAsync(atMs);
    await settle();
  };
  for (const a of actions) {
    await due(a.atMs);
    const t = byNode.get(a.node)!;
    if (!t.up) continue;
    const fac = facilities[t.facility - 1]!;
    const view = t.log.tentative();
    const intent = interpretAction(a, view, utcDate(t.clock()));
    // A draft the catalogue refuses is refused in the form and never saved, as for the baseline.
    if (intent === undefined || !prepareDraft(view, intent.draft).ok) continue;
    const { event } = await t.log.append(intent.draft);
    fac.saved.set(event.id, intent.fact);
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
  await due(s.durationMs);
  for (const f of facilities)
    if (f.relay?.up === true) f.relay.lives.at(-1)!.ownAtEnd = f.relay.node.log.ownHistory().assigned;
  checkQueues();
  check();
  return measure(run, network, divergence, quiescentAtMs, convergedSince);
}

/** A crash, restart, backup or restore, at its simulated instant. */
interface Step {
  readonly atMs: number;
  readonly run: () => Promise<void>;
}

/**
 * The crashes and restarts of the fault plan and the relay's backup and restore, in time order. A
 * restart after the end of the run happens at the end (the final state is read from open logs).
 */
function processSteps(run: Run, byNode: ReadonlyMap<string, Tablet>): Step[] {
  const { s, facilities } = run;
  const steps: Step[] = [];
  const relays = (): RelaySlot[] => facilities.flatMap((f) => (f.relay === undefined ? [] : [f.relay]));
  const restartRelays = async (): Promise<void> => {
    for (const f of facilities) if (f.relay !== undefined && !f.relay.up) await restartRelay(run, f, f.relay);
  };
  for (const c of run.faults.crashes) {
    const back = Math.min(c.atMs + c.downMs, s.durationMs);
    if (c.node === RELAY_NODE) {
      if (run.relayKey === undefined) continue;
      steps.push({ atMs: c.atMs, run: () => Promise.resolve(relays().forEach((r) => crashRelay(run, r))) });
      steps.push({ atMs: back, run: restartRelays });
      continue;
    }
    const t = byNode.get(c.node)!;
    const fac = facilities[t.facility - 1]!;
    steps.push({ atMs: c.atMs, run: () => Promise.resolve(crashTablet(run, t)) });
    steps.push({ atMs: back, run: async () => (t.up ? undefined : restartTablet(run, fac, t)) });
  }
  const restore = s.relayRestore;
  if (restore !== null && run.relayKey !== undefined) {
    steps.push({
      atMs: restore.fromMs,
      run: () => Promise.resolve(relays().forEach((r) => (r.backup = r.disk.copy()))),
    });
    steps.push({
      atMs: restore.atMs,
      run: async () => {
        for (const f of facilities) {
          const r = f.relay!;
          const wasUp = r.up;
          // The old process is replaced: it stops, and its disk gives way to the backup.
          crashRelay(run, r);
          r.disk = r.backup!;
          if (wasUp) await restartRelay(run, f, r);
        }
      },
    });
  }
  // Stable: at one instant, in the plan's order (a restart never before its crash).
  return steps.sort((a, b) => a.atMs - b.atMs);
}

/** Closes every open log and waits for the crashed ones' closes, stepping simulated time if they need it. */
async function closeAll(run: Run): Promise<void> {
  for (const f of run.facilities) {
    for (const t of f.tablets) if (t.up) run.closing.push(t.log.close().catch(() => undefined));
    if (f.relay?.up === true) run.closing.push(f.relay.node.close().catch(() => undefined));
  }
  let done = false;
  const all = Promise.all(run.closing).then(() => (done = true));
  await settle();
  for (let i = 0; i < CLOSE_STEPS && !done; i++) {
    await run.scheduler.runAsync(run.scheduler.now + 1_000);
    await settle();
  }
  await all;
}

/** The #11 fields of a finished run (see {@link SystemResult}; the README says what each means here). */
function measure(
  run: Run,
  network: SimNetwork,
  divergence: [number, number][],
  quiescentAtMs: number,
  convergedSince: number | undefined,
): SystemResult {
  const relayId = run.relayKey?.deviceId;
  const all = run.facilities.flatMap((f) => f.tablets);
  // Exact at the end: the ids each log shows, not the tally its listener kept.
  const idsOf = (log: DeviceLog): Set<string> => {
    const ids = new Set<string>();
    for (const e of log.visibleEvents()) ids.add(e.id);
    return ids;
  };
  const shown = new Map(all.map((t) => [t, idsOf(t.log)]));
  let converged = true;
  let eventsLost = 0;
  const deadletters = new Map<string, number>();
  const effective = new Map<string, Set<string>>();
  for (const fac of run.facilities) {
    const logs = [
      ...fac.tablets.map((t) => shown.get(t)!),
      ...(fac.relay ? [idsOf(fac.relay.node.log)] : []),
    ];
    // Every relay event some log holds: the verdicts the relay made, as far as anyone knows.
    const made = new Map<EventId, SignedEvent>();
    for (const log of [...fac.tablets.map((t) => t.log), ...(fac.relay ? [fac.relay.node.log] : [])])
      for (const e of log.visibleEvents()) if (e.device === relayId) made.set(e.id, e);
    const verdicts = new Map<string, number>();
    for (const e of made.values()) {
      for (const v of verdictsIn(e)) {
        verdicts.set(v.target, (verdicts.get(v.target) ?? 0) + 1);
        if (v.outcome === 'deadletter')
          deadletters.set(String(v.code), (deadletters.get(String(v.code)) ?? 0) + 1);
      }
    }
    const wanted = [...fac.saved.keys(), ...made.keys()];
    if (!logs.every((ids) => ids.size === wanted.length && wanted.every((id) => ids.has(id))))
      converged = false;
    if (relayId !== undefined && [...fac.saved.keys()].some((id) => verdicts.get(id) !== 1))
      converged = false;
    for (const [id, fact] of fac.saved) {
      if (!logs.some((ids) => ids.has(id))) eventsLost++;
      else effective.set(fact, (effective.get(fact) ?? new Set()).add(id));
    }
  }
  const convergenceMs =
    converged && convergedSince !== undefined ? Math.round(convergedSince - quiescentAtMs) : null;
  const rounds =
    !converged || convergedSince === undefined
      ? null
      : Math.max(
          0,
          ...all.map((t) => t.syncs.filter((x) => x > quiescentAtMs && x <= convergedSince).length),
        );

  let changesAppearLost = 0;
  for (const t of all) for (const id of t.own) if (!shown.get(t)!.has(id)) changesAppearLost++;
  const duplicates = duplicatesAmong(effective);

  let patientsMissing = 0;
  let countersDisagree = 0;
  for (const fac of run.facilities) {
    const views = fac.tablets.map((t) => t.log.tentative());
    patientsMissing += missingPatients(views);
    countersDisagree += disagreeingPairs(views.map(projectionFingerprint));
  }

  const appended = run.facilities.reduce((n, f) => n + f.saved.size, 0);
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
    deadletters: sortedRecord(deadletters),
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
