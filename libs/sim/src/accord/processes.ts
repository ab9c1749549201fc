import type { NetworkAdapter } from '@automerge/automerge-repo';
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
import type { FaultPlan } from '../faults.js';
import type { Prng } from '../prng.js';
import type { SimRepoNetwork } from '../repo-network.js';
import { skewedClock, type Scheduler } from '../scheduler.js';
import type { Scenario } from '../scenario.js';
import { deviceNode, RELAY_NODE } from '../scenario.js';
import { Disk } from './disk.js';
import { openSimRelay } from './relay-node.js';
import { syncSigner } from './signer.js';

// The simulated processes of an Accord run: what the runner tracks of each log, and how a tablet
// or a facility's relay opens, is watched, crashes, restarts, is restored and closes.

/** What the runner tracks of a log while it runs (a tablet's, or the relay's of a facility). */
export interface Holder {
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
export interface Tablet extends Holder {
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
export interface RelaySlot extends Holder {
  node: FacilityNode<NetworkAdapter>;
  readonly members: FacilityMembersFile;
  /** The node names of the facility's tablets. */
  readonly devices: readonly string[];
  /** The copy of its disk a scheduled restore puts back (taken at `relayRestore.from`). */
  backup: Disk | undefined;
  /**
   * Set once its disk was restored from the backup: from then on the relay is started as an
   * operator starts a restored relay, waiting for every tablet to show it its history for as long
   * as the run lasts (`awaitDevicesMs`; the default 30 s would let a tablet back later fork the
   * relay's sequence, see `@accord/relay` "Restored from a backup").
   */
  restored: boolean;
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
export interface Facility {
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

/**
 * Turns of the real event loop taken before each user action and each crash or restart, so that
 * work a scheduler callback chained through `setImmediate` (the log's push loop) is done first.
 */
const SETTLE_TURNS = 32;

export async function settle(): Promise<void> {
  for (let i = 0; i < SETTLE_TURNS; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Most simulated seconds the runner steps on after the end for logs still closing. */
const CLOSE_STEPS = 600;

/** Everything one run shares. */
export interface Run {
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

/** Opens every facility's relay and tablets (relay first: tablets dial it). */
export async function openAll(run: Run, root: Prng): Promise<void> {
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
      // The facility is created here: no device can hold a relay event yet (a real relay's facility
      // is loaded before its first enrollment; the simulator lists its tablets from the start).
      const node = await openRelayNode(
        run,
        { members: file, devices: nodes, disk: holder.disk, problems },
        true,
      );
      const slot: RelaySlot = {
        ...holder,
        node,
        members: file,
        devices: nodes,
        backup: undefined,
        restored: false,
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
  o: Pick<RelaySlot, 'members' | 'devices' | 'disk' | 'problems'> & { readonly restored?: boolean },
  fresh = false,
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
    fresh,
    ...(o.restored === true ? { awaitDevicesMs: run.s.durationMs } : {}),
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

/** A crash, restart, backup or restore, at its simulated instant. */
interface Step {
  readonly atMs: number;
  readonly run: () => Promise<void>;
}

/**
 * The crashes and restarts of the fault plan and the relay's backup and restore, in time order. A
 * restart after the end of the run happens at the end (the final state is read from open logs).
 */
export function processSteps(run: Run, byNode: ReadonlyMap<string, Tablet>): Step[] {
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
          r.restored = true;
          if (wasUp) await restartRelay(run, f, r);
        }
      },
    });
  }
  // Stable: at one instant, in the plan's order (a restart never before its crash).
  return steps.sort((a, b) => a.atMs - b.atMs);
}

/** Closes every open log and waits for the crashed ones' closes, stepping simulated time if they need it. */
export async function closeAll(run: Run): Promise<void> {
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
