import {
  DeviceLog,
  rootDocumentId,
  segmentDocumentId,
  type DeviceLogOptions,
  type EventVerifier,
  type LogDocumentStorage,
  type LogEventStore,
  type LogRoster,
  verifyReceived,
} from '@accord/log';
import type { NetworkEvent } from '@accord/network-ws';
import {
  DEFAULT_FACILITY_POLICY,
  GrantChecker,
  type FacilityPolicy,
  type GrantExpectation,
} from './elevation.js';
import {
  AccordError,
  ErrorCode,
  parseRosterUpdatedData,
  relayRosterVersion,
  SystemEventType,
  type DeviceId,
  type DeviceKeyPair,
  type EventSigner,
  type FacilityId,
  type RosterUpdatedData,
  type SignedEvent,
  type VerdictData,
} from '@accord/protocol';
import { Adjudicator, DEFAULT_DEPENDENCY_DEADLINE_MS, type OpenDeadletter } from './adjudicator.js';
import { rosterData, type FacilityMembersFile } from './membership.js';
import { ReleasePacing } from './release-pacing.js';
import { SegmentRelease } from './segment-release.js';
import { SegmentSealer, type SealDigestStats } from './segment-sealer.js';
import { verdictDrafts } from './verdict-events.js';

/** What a facility node reports (the relay turns it into metrics and log lines). */
export interface FacilityObserver {
  ingested(facility: FacilityId, count: number): void;
  verdicts(facility: FacilityId, verdicts: readonly VerdictData[], seconds: number): void;
  network(facility: FacilityId, event: NetworkEvent, connected: number): void;
  problem(facility: FacilityId, message: string, detail?: unknown): void;
}

/**
 * Where a facility node keeps its log: the relay passes the facility's LevelDB
 * (`openDeviceDatabase`), the simulator in-memory stores. The node owns them once opened.
 */
export interface FacilityStores {
  readonly eventStore: LogEventStore;
  readonly storageAdapter: LogDocumentStorage;
  /** Called between the log's start-up scans and its first document (see `DeviceLogOptions.afterStartupScan`). */
  readonly unmapTables?: () => Promise<void>;
  /** Closes the stores: the node calls it last when it closes, or when its open fails. */
  close(): Promise<void>;
}

/** An automerge-repo network adapter, as the log takes them. */
type LogNetworkAdapter = NonNullable<DeviceLogOptions['network']>[number];

/**
 * The network a facility node serves its devices on: an automerge-repo adapter whose peer ids are
 * the devices' ids (the relay's `WebSocketServerAdapter` authenticates them; the simulator's
 * adapter names them), made by the node's {@link FacilityNetworkFactory}.
 */
export interface FacilityNetwork extends LogNetworkAdapter {
  /**
   * Closes the sessions of devices the roster no longer allows, after a membership change. A
   * network whose devices cannot change (the simulator's, with a fixed roster) has none.
   */
  revalidatePeers?(): unknown;
}

/** What a facility network is made with: the node's roster, and the listener of its session events. */
export interface FacilityNetworkWiring {
  /** Who may connect (the facility's members and the relay), kept current by the node. */
  readonly roster: LogRoster;
  /**
   * Must be told of every session: `peer-connected` when a device's session begins,
   * `peer-disconnected` when it ends (the catch-up after a restore waits on them); the other
   * events go to the observer only.
   */
  readonly onEvent: (event: NetworkEvent) => void;
}

/** Makes a facility's network, once, while the node opens. */
export type FacilityNetworkFactory<N extends FacilityNetwork> = (wiring: FacilityNetworkWiring) => N;

/** Options of {@link FacilityNode.open}. */
export interface FacilityNodeOptions<N extends FacilityNetwork = FacilityNetwork> {
  readonly facility: FacilityId;
  /** The relay's key: it signs verdicts and rosters for every facility. */
  readonly key: DeviceKeyPair;
  /** The facility's stores, opened (the node closes them). */
  readonly stores: FacilityStores;
  /** Makes the endpoint devices sync with (the relay: a `WebSocketServerAdapter` on its HTTP server). */
  readonly network: FacilityNetworkFactory<N>;
  readonly members: FacilityMembersFile;
  readonly observer: FacilityObserver;
  readonly clock?: () => number;
  /** How long an event waits for a missing dependency before its 404 (default 30 s). */
  readonly dependencyDeadlineMs?: number;
  /**
   * After a restore from an older backup, how long verdicts wait for the relay's own later
   * history to come back from devices before going ahead (default 30 s).
   */
  readonly catchUpMaxMs?: number;
  /**
   * How long, once one device showed an untrusted relay its history, it waits for the other
   * enrolled devices before writing anyway (default `catchUpMaxMs`). A restored relay should be
   * started with as long as its tablets may stay away: one holding later relay events that comes
   * back after it forks the relay's sequence (see "Restored from a backup").
   */
  readonly awaitDevicesMs?: number;
  /** Events per segment document (default: the log's; see `RelayOptions.segmentSize`). */
  readonly segmentSize?: number;
  /**
   * The relay's own highest event number when this process last closed the facility, if it did:
   * a store holding at least that many was not restored meanwhile (see "Restored from a backup").
   */
  readonly trustedOwnSeq?: number;
  /**
   * Devices enrolled by this process: the catch-up does not wait for them (whatever relay events
   * they hold came from this process since, or from a device it waits for).
   */
  readonly enrolledHere?: ReadonlySet<DeviceId>;
  /**
   * Called once per version when the log holds a relay-signed roster newer than `members`: the
   * membership file was restored from an older backup and should take it back (`adoptRoster`).
   */
  readonly onNewerRoster?: (roster: RosterUpdatedData) => void;
  /** The facility's policy on admin elevation (default {@link DEFAULT_FACILITY_POLICY}). */
  readonly policy?: FacilityPolicy;
  /** Checks the signatures of received events (default: the log's; the relay passes its worker pool). */
  readonly verifier?: EventVerifier;
  /** Signs the relay's events (default: the log's; see `DeviceLogOptions.signer`). */
  readonly signer?: EventSigner;
}

/** A connected device, and which of the relay's own documents it has shown it holds no more of. */
interface PeerCatchUp {
  readonly since: number;
  readonly synced: Set<string>;
}

const CATCH_UP_RETRY_MS = 100;
const DEFAULT_CATCH_UP_MAX_MS = 30_000;
/**
 * Verdicts decided and appended per round. A backlog is worked off in rounds so that memory stays
 * bounded by the round, not by the backlog (one round's appends share group commits).
 */
const VERDICTS_PER_ROUND = 2000;
/** While a backlog is worked off, judged segments go out at most this often (see {@link ReleasePacing}). */
const RELEASE_DURING_BACKLOG_MS = 5_000;

/**
 * One facility served by the relay: its log (the relay is a peer like any device), its
 * WebSocket endpoint, and the validation loop that turns every submission into one signed verdict.
 *
 * @remarks Every visible event goes to the {@link Adjudicator}; decisions are appended as
 * relay-signed `Verdict` / `AcceptedVerdicts` events in the adjudicator's order (one
 * group-committed batch per round) and reach devices through sync. Full segments of the devices'
 * events are sealed ({@link SegmentSealer}) after each round. Membership changes are published as relay-signed
 * `RosterUpdated` events.
 *
 * Restored from a backup: the relay writes nothing (no verdict, no roster) until it holds every
 * event of its own that the devices hold. A node starts untrusted unless this process knows its
 * store is complete (a whole-folder restore cannot be told from a restart by the folder alone,
 * and a folder restored from before the facility's first load has an empty store) and waits,
 * until every enrolled device (not revoked) connected and sync showed that the relay holds all
 * the device held of the root index and the relay's own segments, and the log has taken those
 * events in; with no device heard from, however long, and once one was, at most `catchUpMaxMs`
 * more (one tablet away must not hold a facility's verdicts after every restart). A device
 * holding later relay events that comes back after that gets relay events sharing their numbers
 * with its own: every log treats that as an equivocation of the relay and withholds the relay's
 * events from there on (a restored relay is started with a long `catchUpMaxMs`; see the README).
 * After that, each newly connected device pauses writing until the same holds for it, for at
 * most `catchUpMaxMs`. So the relay continues its sequence after its old verdicts instead of
 * forking it.
 */
export class FacilityNode<N extends FacilityNetwork = FacilityNetwork> {
  readonly facility: FacilityId;
  readonly log: DeviceLog;
  /** The endpoint devices sync with (the relay routes WebSocket upgrades to it). */
  readonly network: N;
  readonly #stores: FacilityStores;
  readonly #adjudicator: Adjudicator;
  readonly #sealer: SegmentSealer;
  readonly #release: SegmentRelease;
  readonly #opts: FacilityNodeOptions<N>;
  readonly #clock: () => number;
  readonly #roster: Map<DeviceId, { facility: FacilityId; revoked: boolean }>;
  #members: FacilityMembersFile;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  #round: Promise<void> = Promise.resolve();
  #running = false;
  #again = false;
  #behindSince: number | undefined;
  readonly #pacing = new ReleasePacing(RELEASE_DURING_BACKLOG_MS);
  /** Connected devices, each until it is caught up with (then kept, with every document synced). */
  readonly #peers = new Map<string, PeerCatchUp>();
  /** The relay knows its own history is complete (see the class remarks). */
  #trusted: boolean;
  /**
   * While untrusted: the enrolled devices that have not yet shown the relay its history (each may
   * hold relay events the relay lost). The relay writes nothing until it is empty, or until
   * `catchUpMaxMs` after the first device showed its history.
   */
  readonly #awaited: Set<DeviceId>;
  /** The node opened untrusted: its history must come back from the devices (see {@link #behind}). */
  readonly #relearning: boolean;
  /** When an untrusted node first found itself caught up (see {@link #stillCaughtUp}). */
  #caughtUpAt: number | undefined;
  /** When the first device showed the relay its history (the wait for the others counts from it). */
  #heardFromAt: number | undefined;
  /** Roster publications waiting until the relay may write; called with false when closing. */
  #writeWaiters: ((open: boolean) => void)[] = [];
  #offSync: () => void = () => {};
  /** Released segments being handed to the log (see #serve). */
  #serving: Promise<void> = Promise.resolve();
  /** Stored snapshots of released segments sent to devices (see #sendStored). */
  #storedSends = 0;
  /** The start-up repair of the documents (see #repairDocuments). */
  #repairing: Promise<void> = Promise.resolve();
  #connected = 0;
  #lastActivity: number;
  #closing: Promise<void> | undefined;
  #unsubscribe: () => void = () => {};

  private constructor(
    opts: FacilityNodeOptions<N>,
    parts: {
      network: N;
      log: DeviceLog;
      roster: Map<DeviceId, { facility: FacilityId; revoked: boolean }>;
    },
  ) {
    this.#opts = opts;
    this.facility = opts.facility;
    this.#clock = opts.clock ?? Date.now;
    this.#stores = opts.stores;
    this.network = parts.network;
    this.log = parts.log;
    this.#roster = parts.roster;
    this.#members = opts.members;
    this.#lastActivity = this.#clock();
    this.#adjudicator = new Adjudicator({
      relay: opts.key.deviceId,
      facility: opts.facility,
      member: (device) => this.#roster.get(device),
      ...(opts.dependencyDeadlineMs === undefined ? {} : { dependencyDeadlineMs: opts.dependencyDeadlineMs }),
      elevation: (() => {
        const checker = new GrantChecker(opts.key.deviceId);
        return {
          policy: opts.policy ?? DEFAULT_FACILITY_POLICY,
          check: (grant: unknown, expect: GrantExpectation) => checker.check(grant, expect),
        };
      })(),
    });
    this.#sealer = new SegmentSealer(this.log, opts.key.deviceId);
    this.#release = new SegmentRelease({
      facility: opts.facility,
      relay: opts.key.deviceId,
      segmentSize: this.log.segmentSize,
      devices: () => this.#roster.keys(),
      sealed: (device, index) => this.#sealer.isSealed(device, index),
      // Well past the longest an event waits for its dependencies: the fallback is for what no
      // verdict releases (a slow relay's verdicts must not race it).
      maxWithholdMs:
        (opts.dependencyDeadlineMs ?? DEFAULT_DEPENDENCY_DEADLINE_MS) + DEFAULT_DEPENDENCY_DEADLINE_MS,
      onReleased: (ids) => this.#serve(ids),
    });
    this.#awaited = this.#mustHearFrom(opts);
    this.#trusted = this.#awaited.size === 0;
    this.#relearning = !this.#trusted;
  }

  /**
   * The devices the relay must hear its history from before it writes (see "Restored from a
   * backup" in the README): none when this process knows its store is complete (`trustedOwnSeq`)
   * or the store is a backlog fed straight in (device events but no relay event: a relay publishes
   * its roster before any device can submit, so no relay ever left such a store); otherwise every
   * device enrolled and not revoked. An empty store is no exception: a folder restored from before
   * the facility's first load has one, while its devices hold the relay's events.
   */
  #mustHearFrom({ members, trustedOwnSeq, enrolledHere }: FacilityNodeOptions<N>): Set<DeviceId> {
    const own = this.log.ownHistory().assigned;
    if (trustedOwnSeq !== undefined && own >= trustedOwnSeq) return new Set();
    if (own === 0 && !this.log.visibleEvents().next().done) return new Set();
    return new Set(
      members.devices.filter((d) => !d.revoked && enrolledHere?.has(d.id) !== true).map((d) => d.id),
    );
  }

  /**
   * Opens the facility's log on its stores, with its network, feeds its history to the adjudicator
   * and starts deciding. On failure the network is disconnected and the stores closed.
   */
  static async open<N extends FacilityNetwork>(opts: FacilityNodeOptions<N>): Promise<FacilityNode<N>> {
    const { facility, key, observer, stores } = opts;
    const roster = rosterMap(facility, key.deviceId, opts.members);
    const lookup: LogRoster = { lookup: (device) => roster.get(device) };
    let connected = 0;
    let node: FacilityNode<N> | undefined;
    const verify: EventVerifier = opts.verifier ?? verifyReceived;
    const wiring: FacilityNetworkWiring = {
      roster: lookup,
      onEvent: (event) => {
        if (event.type === 'peer-connected') connected++;
        if (event.type === 'peer-disconnected') connected = Math.max(0, connected - 1);
        if (node !== undefined) {
          node.#touch(connected);
          if (event.type === 'peer-connected') node.#peerConnected(event.peer);
          if (event.type === 'peer-disconnected') node.#peerGone(event.peer);
        }
        observer.network(facility, event, connected);
      },
    };
    let adapter: N;
    try {
      adapter = opts.network(wiring);
    } catch (e) {
      await stores.close();
      throw e;
    }
    try {
      const log = await DeviceLog.open({
        facility,
        key,
        eventStore: stores.eventStore,
        storage: stores.storageAdapter,
        roster: lookup,
        relay: key.deviceId,
        // The relay walks every event at open and in its adjudicator: reading them back from
        // the store each time cost 2.5× the open (bench: relay_open_s 3.3 → 8.2 s at 100k).
        residentEvents: true,
        network: [adapter],
        // Before the node exists no peer is connected (upgrades are routed to it once open).
        serves: (peer, documentId, bringsChanges) =>
          node === undefined || node.#release.serves(peer, documentId, bringsChanges),
        ...(stores.unmapTables === undefined ? {} : { afterStartupScan: stores.unmapTables }),
        // The sealer hashes each segment from the bytes its events are verified from, as they pass.
        verifier: async (received) => {
          const ok = await verify(received);
          try {
            if (node !== undefined) node.#sealer.verified(received, ok);
          } catch {
            // Only a hint (the sealer encodes what it could not hash): a verifier never rejects.
          }
          return ok;
        },
        ...(opts.signer === undefined ? {} : { signer: opts.signer }),
        ...(opts.segmentSize === undefined ? {} : { segmentSize: opts.segmentSize }),
        ...(opts.clock === undefined ? {} : { clock: opts.clock }),
        onIncident: (incident) => observer.problem(facility, `security incident ${incident.code}`, incident),
        onInternalError: (error) =>
          observer.problem(facility, `log internal error ${error.code}`, error.toJSON()),
      });
      node = new FacilityNode(opts, { network: adapter, log, roster });
      node.#start();
      // In the background: verdicts need not wait for it, and what it puts back syncs as it lands.
      node.#repairing = node
        .#repairDocuments()
        .then((repaired) => {
          if (repaired > 0) {
            observer.problem(facility, 'put back into the sync documents events a crash kept from them', {
              repaired,
            });
          }
        })
        .catch((e: unknown) =>
          observer.problem(facility, 'could not put lost events back into the documents', e),
        );
      return node;
    } catch (e) {
      adapter.disconnect();
      await stores.close();
      throw e;
    }
  }

  /**
   * Puts back into the facility's documents the devices' events that the store holds but the
   * documents lost, and their announcements in the root index, so the relay re-serves them.
   *
   * @remarks Document saves lag behind the durable store (they are debounced), so a relay killed
   * shortly after taking in a device's events holds them durably while its documents do not; the
   * log restores only its own segments. A device that is gone for good can no longer send them:
   * unless the relay puts them back, new and restored devices never get them (issue #13). Only
   * the last two segments of each device can lack anything (saves lag by seconds). Returns how
   * many events it put back.
   */
  async #repairDocuments(): Promise<number> {
    const size = this.log.segmentSize;
    const relay = this.#opts.key.deviceId;
    const highest = new Map<DeviceId, number>();
    for (const e of this.log.visibleEvents()) {
      if (e.device !== relay && e.seq > (highest.get(e.device) ?? 0)) highest.set(e.device, e.seq);
    }
    // Only the last two segments of each device can lack anything (saves lag by seconds).
    const recent = [...this.log.visibleEvents()].filter((e) => {
      const top = highest.get(e.device);
      return top !== undefined && Math.floor((e.seq - 1) / size) >= Math.floor((top - 1) / size) - 1;
    });
    return recent.length === 0 ? 0 : this.log.republish(recent, { onlyMissing: true });
  }

  #start(): void {
    const now = this.#clock();
    for (const event of this.log.visibleEvents()) {
      this.#adjudicator.add(event, now);
      this.#noteRoster(event);
      this.#sealer.note(event);
      // A verdict met later in the history counts when met (see SegmentRelease.note).
      this.#release.note(event, this.#adjudicator.verdictFor(event.id) !== undefined);
    }
    this.#release.due();
    this.#unsubscribe = this.log.onEvents((events) => this.#onEvents(events));
    this.#offSync = this.log.onPeerSync(
      ({ peer, documentId, holdsTheirs }) => {
        const p = this.#peers.get(peer);
        if (p === undefined) return;
        if (holdsTheirs) p.synced.add(documentId);
        else p.synced.delete(documentId);
        if (holdsTheirs) this.#schedule(0);
      },
      // Only while it counts (see #peersAllow): untrusted, or the peer's first catchUpMaxMs.
      (peer) => {
        const p = this.#peers.get(peer);
        const maxMs = this.#opts.catchUpMaxMs ?? DEFAULT_CATCH_UP_MAX_MS;
        return p !== undefined && (!this.#trusted || this.#clock() - p.since < maxMs);
      },
    );
    // Published once the relay may write (at once unless it must catch up first).
    this.publishRoster().catch(() => undefined);
    this.#schedule(0);
  }

  #peerConnected(peer: string): void {
    this.#peers.set(peer, { since: this.#clock(), synced: new Set() });
    this.#schedule(0);
  }

  #peerGone(peer: string): void {
    this.#peers.delete(peer);
    this.#release.peerGone(peer as DeviceId);
    this.#schedule(0);
  }

  /** The documents that hold the relay's own history: the root index and its own segments. */
  #ownDocuments(): string[] {
    const relay = this.#opts.key.deviceId;
    const segments = Math.max(1, Math.ceil(this.log.ownHistory().assigned / this.log.segmentSize));
    const docs: string[] = [rootDocumentId(this.facility)];
    for (let i = 0; i < segments; i++) docs.push(segmentDocumentId(this.facility, relay, i));
    return docs;
  }

  /**
   * Whether the relay may write now: it knows its own history is complete, or every enrolled
   * device showed it holds nothing more of it, or one did `catchUpMaxMs` ago (see the README:
   * a device holding later relay events that comes back after that forks the relay's sequence);
   * and no device connected less than `catchUpMaxMs` ago may still hold more.
   */
  #peersAllow(now: number): boolean {
    const docs = this.#ownDocuments();
    const caughtUp = (p: PeerCatchUp): boolean => docs.every((d) => p.synced.has(d));
    const maxMs = this.#opts.catchUpMaxMs ?? DEFAULT_CATCH_UP_MAX_MS;
    if (!this.#trusted && this.#awaited.size > 0) {
      // Heard from: the relay holds (and has taken in) all the device held of its history.
      if (!this.#behind()) {
        for (const [peer, p] of this.#peers) {
          if (caughtUp(p) && this.#awaited.delete(peer as DeviceId)) this.#heardFromAt ??= now;
        }
      }
      if (this.#awaited.size > 0) {
        const awaitMs = this.#opts.awaitDevicesMs ?? maxMs;
        if (this.#heardFromAt === undefined || now - this.#heardFromAt < awaitMs) return false;
        this.#opts.observer.problem(
          this.facility,
          'writing before every enrolled device showed the relay its history (catchUpMaxMs ran out): one holding relay events this relay lacks would fork its sequence',
          { missing: [...this.#awaited], waitedMs: now - this.#heardFromAt },
        );
        this.#awaited.clear();
      }
    }
    return [...this.#peers.values()].every((p) => caughtUp(p) || now - p.since >= maxMs);
  }

  /**
   * Whether peers announce own events the log does not hold yet.
   *
   * @remarks A log with no own event counts its announced, still empty first segment as behind;
   * a relay known to have no history has nothing to relearn. One that opened on an empty store
   * with devices to hear from (restored from before the facility's first load) does.
   */
  #behind(): boolean {
    const own = this.log.ownHistory();
    return own.behind && (own.assigned > 0 || this.#relearning);
  }

  /**
   * Before the first write of an untrusted node: whether the catch-up still holds once the log has
   * taken in what the devices' sync brought, and a retry later (the first true answer only arms it).
   *
   * @remarks A device's sync can show the relay holds all of its documents a moment before the
   * log has read the relay's events out of them (seen with a store restored empty: the relay
   * wrote its number 1 while the device's own number 1 was on its way in).
   */
  async #stillCaughtUp(): Promise<boolean> {
    await this.log.settled();
    const now = this.#clock();
    const ok = this.#peersAllow(now) && !this.#behind();
    if (!ok) this.#caughtUpAt = undefined;
    else this.#caughtUpAt ??= now;
    return ok && now - this.#caughtUpAt! >= CATCH_UP_RETRY_MS;
  }

  /** Lets waiting roster publications go (the relay may write). */
  #opened(): void {
    this.#trusted = true;
    const waiting = this.#writeWaiters;
    this.#writeWaiters = [];
    for (const w of waiting) w(true);
  }

  /** Resolves true once the relay may write, false when the node closes first. */
  #mayWrite(): Promise<boolean> {
    if (this.#closing !== undefined) return Promise.resolve(false);
    if (this.#forced > 0 || (this.#trusted && this.#peersAllow(this.#clock()) && !this.#behind())) {
      return Promise.resolve(true);
    }
    this.#schedule(0);
    return new Promise<boolean>((resolve) => this.#writeWaiters.push(resolve));
  }

  /** An enrollment cannot wait forever for its roster: lets every waiting publication go. */
  #stopWaiting(waitedMs: number): void {
    if (this.#writeWaiters.length === 0) return;
    this.#opts.observer.problem(
      this.facility,
      'roster published before the relay caught up with the devices (none showed its history in time)',
      { waitedMs },
    );
    for (const w of this.#writeWaiters.splice(0)) w(true);
  }

  #onEvents(events: readonly SignedEvent[]): void {
    const now = this.#clock();
    let foreign = 0;
    // Our own verdicts come back here too; the adjudicator knows it issued them.
    for (const event of events) {
      this.#noteRoster(event);
      this.#sealer.note(event);
      if (event.device !== this.#opts.key.deviceId) foreign++;
      this.#adjudicator.add(event, now);
      this.#release.note(event, this.#adjudicator.verdictFor(event.id) !== undefined);
    }
    if (foreign > 0) this.#opts.observer.ingested(this.facility, foreign);
    this.#lastActivity = now;
    this.#schedule(0);
  }

  #touch(connected: number): void {
    this.#connected = connected;
    this.#lastActivity = this.#clock();
  }

  /** True once the relay knows its own history is complete and may write (see the class remarks). */
  get trusted(): boolean {
    return this.#trusted;
  }

  /** Sessions with devices right now. */
  get connected(): number {
    return this.#connected;
  }

  /** True when nothing is connected, nothing waits for a verdict, and nothing happened for `idleMs`. */
  isIdle(idleMs: number): boolean {
    return (
      this.#connected === 0 &&
      !this.#running &&
      this.#adjudicator.stats().waiting === 0 &&
      this.#clock() - this.#lastActivity >= idleMs
    );
  }

  /** How the digests of the segments this node sealed were found (see `SegmentSealer.verified`). */
  sealDigests(): SealDigestStats {
    return this.#sealer.digests();
  }

  /**
   * Adjudication counters (events seen, verdicts recorded, events waiting for dependencies), and
   * how many released segments went to a device as their stored snapshot (`servedStored`, see #serve).
   */
  stats(): ReturnType<Adjudicator['stats']> & { lastSeq: number; connected: number; servedStored: number } {
    return {
      ...this.#adjudicator.stats(),
      lastSeq: this.#adjudicator.lastSeq,
      connected: this.#connected,
      servedStored: this.#storedSends,
    };
  }

  /** The facility's open deadletters, with code, rule and author (see `Adjudicator.openDeadletters`). */
  openDeadletters(): OpenDeadletter[] {
    return this.#adjudicator.openDeadletters();
  }

  /** Counts as activity for {@link isIdle} (the relay calls it for each connection it routes here). */
  touched(): void {
    this.#lastActivity = this.#clock();
  }

  /** Resolves once the current and any scheduled validation round are done (tests, shutdown). */
  async settled(): Promise<void> {
    await this.log.settled();
    let round: Promise<void>;
    do {
      round = this.#round;
      await round;
    } while (round !== this.#round || this.#running);
  }

  #schedule(delayMs: number): void {
    if (this.#closing !== undefined) return;
    const at = this.#clock() + delayMs;
    if (this.#timer !== undefined && this.#timerAt <= at) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        this.#timerAt = Infinity;
        this.#kick();
      },
      Math.max(0, delayMs),
    );
  }

  #kick(): void {
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = true;
    this.#round = this.#decideRound()
      .catch((e: unknown) => this.#opts.observer.problem(this.facility, 'validation round failed', e))
      .finally(() => {
        this.#running = false;
        if (this.#again) {
          this.#again = false;
          this.#schedule(0);
        }
      });
  }

  async #decideRound(): Promise<void> {
    const now = this.#clock();
    if (!this.#peersAllow(now)) {
      // Nobody to learn from yet: the next connection or sync message schedules a round.
      if (this.#peers.size > 0 || this.#heardFromAt !== undefined) this.#schedule(CATCH_UP_RETRY_MS);
      return;
    }
    if (this.#behind()) {
      this.#behindSince ??= now;
      if (now - this.#behindSince < (this.#opts.catchUpMaxMs ?? 30_000)) {
        this.#schedule(CATCH_UP_RETRY_MS);
        return;
      }
      this.#opts.observer.problem(
        this.facility,
        'own history still behind after the catch-up window: deciding anyway',
        this.log.ownHistory(),
      );
    }
    this.#behindSince = undefined;
    if (!this.#trusted && !(await this.#stillCaughtUp())) {
      this.#schedule(CATCH_UP_RETRY_MS);
      return;
    }
    this.#opened();
    const started = performance.now();
    const verdicts = this.#adjudicator.decide(now, VERDICTS_PER_ROUND);
    if (verdicts.length > 0) {
      // Appended in order without waiting for each: one group commit carries the round.
      await Promise.all(verdictDrafts(this.facility, verdicts).map((draft) => this.log.appendSystem(draft)));
      this.#release.judged(verdicts.map((v) => v.target));
      this.#opts.observer.verdicts(this.facility, verdicts, (performance.now() - started) / 1000);
      this.#lastActivity = this.#clock();
      // More of the backlog may be ready: next round (timers and I/O get their turn in between).
      if (verdicts.length >= VERDICTS_PER_ROUND) this.#schedule(0);
    }
    if (this.#sealer.pending > 0) await this.#sealer.sealDue();
    // Judged (and sealed when full): the other devices get these segments now, with their verdicts;
    // while more of a backlog is ready, once it is worked off or every few seconds.
    if (this.#pacing.afterRound(verdicts.length >= VERDICTS_PER_ROUND, this.#clock())) {
      const released = this.#release.due();
      if (released.length > 0) this.#serve(released);
    }
    const deadline = this.#adjudicator.nextDeadline();
    if (deadline !== undefined) this.#schedule(Math.max(0, deadline - this.#clock()));
  }

  /**
   * Serves released segments to the devices that asked for them meanwhile: first each sealed
   * one's stored snapshot, sent as it is to every device that was refused it, then the Repo's sync.
   *
   * @remarks automerge-repo would generate the whole document anew for each of those devices
   * (`log.storedSyncMessage` says what that costs); sent the stored copy first, each device
   * answers that it holds the segment, and the Repo's sync that follows sends no document.
   */
  #serve(documentIds: string[]): void {
    if (this.#closing !== undefined) return;
    const refused = documentIds.map((id) => ({ id, peers: this.#release.takeRefused(id) }));
    const serving = this.#sendStored(refused)
      .then(() => this.log.servingChanged(documentIds))
      .catch((e: unknown) =>
        this.#opts.observer.problem(this.facility, 'could not serve released segments', e),
      );
    // Closing waits for it: its document reads must not meet a closed store.
    this.#serving = this.#serving.then(() => serving);
  }

  /** Sends each segment's stored snapshot (read once) to the devices still connected that were refused it. */
  async #sendStored(refused: readonly { id: string; peers: readonly DeviceId[] }[]): Promise<void> {
    const relay = this.#opts.key.deviceId;
    for (const { id, peers } of refused) {
      const waiting = peers.filter((peer) => this.#peers.has(peer));
      if (waiting.length === 0) continue;
      const data = await this.log.storedSyncMessage(id);
      if (data === undefined || this.#closing !== undefined) continue;
      for (const peer of waiting) {
        if (!this.#peers.has(peer)) continue;
        this.network.send({
          type: 'sync',
          senderId: relay,
          targetId: peer,
          documentId: id,
          data,
        } as unknown as Parameters<N['send']>[0]);
        this.#storedSends++;
      }
    }
  }

  /** Keeps the newest relay-signed roster seen in the log (history at start, then as events arrive). */
  #noteRoster(event: SignedEvent): void {
    const version = relayRosterVersion(event, this.#opts.key.deviceId);
    if (version !== undefined && version > (this.#newestRoster?.version ?? 0)) {
      this.#newestRoster = { event, version };
    }
    // Newer than the membership file: the relay signed it before a restore took the file back.
    if (version !== undefined && version > this.#members.version && version > this.#adoptAsked) {
      this.#adoptAsked = version;
      const parsed = parseRosterUpdatedData(event.data);
      if (parsed.ok) this.#opts.onNewerRoster?.(parsed.value);
    }
  }

  /**
   * Takes new membership: refreshes the log's and the network's roster and publishes it.
   *
   * @remarks The publication waits until the relay may write; with `maxWaitMs` (an enrollment
   * must answer with the roster) for at most that long, then it publishes anyway and reports it.
   */
  async membersChanged(members: FacilityMembersFile, maxWaitMs?: number): Promise<SignedEvent> {
    this.#members = members;
    // A revoked device no longer holds anything the relay must wait for (it cannot connect).
    for (const d of members.devices) if (d.revoked) this.#awaited.delete(d.id);
    const fresh = rosterMap(this.facility, this.#opts.key.deviceId, members);
    this.#roster.clear();
    for (const [id, entry] of fresh) this.#roster.set(id, entry);
    this.log.rosterChanged();
    this.network.revalidatePeers?.();
    this.#schedule(0);
    return this.publishRoster(maxWaitMs);
  }

  #publishing: Promise<SignedEvent> | undefined;
  /** Bounded publications (enrollments) whose wait ran out: roster publications go ahead. */
  #forced = 0;
  /** The newest roster version handed to `onNewerRoster`. */
  #adoptAsked = 0;
  #newestRoster: { readonly event: SignedEvent; readonly version: number } | undefined;

  /**
   * Appends a relay-signed `RosterUpdated` for the current membership unless the log already has
   * one at that version; resolves with the newest roster event.
   *
   * @remarks Waits until the relay may write (it caught up with its own history, see the class
   * remarks), for at most `maxWaitMs` when given. Rejects with `RELAY_STOPPING` when the node closes first.
   */
  publishRoster(maxWaitMs?: number): Promise<SignedEvent> {
    const run = async (): Promise<SignedEvent> => {
      if (!(await this.#mayWrite())) {
        throw new AccordError(
          ErrorCode.RELAY_STOPPING,
          'the facility closed before its roster was published',
        );
      }
      const newest = this.#newestRoster;
      if (newest !== undefined && newest.version >= this.#members.version) return newest.event;
      return this.log.appendSystem({
        type: SystemEventType.RosterUpdated,
        subject: { kind: 'roster', id: this.facility },
        data: rosterData(this.#members) as unknown as SignedEvent['data'],
      });
    };
    const next = (this.#publishing ?? Promise.resolve(undefined)).then(run, run);
    this.#publishing = next;
    if (maxWaitMs !== undefined) {
      // Outside the chain: an earlier publication may be the one waiting. Until this one is out,
      // every publication goes ahead.
      let forcing = false;
      const timer = setTimeout(() => {
        forcing = true;
        this.#forced++;
        this.#stopWaiting(maxWaitMs);
      }, maxWaitMs);
      const clear = (): void => {
        clearTimeout(timer);
        if (forcing) this.#forced--;
      };
      next.then(clear, clear);
    }
    return next;
  }

  /** How long an enrollment waits for the catch-up before its roster is published anyway. */
  get catchUpMaxMs(): number {
    return this.#opts.catchUpMaxMs ?? DEFAULT_CATCH_UP_MAX_MS;
  }

  /** Finishes the running round, closes the log (flushing it), the endpoint and the stores. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#timer !== undefined) clearTimeout(this.#timer);
      this.#unsubscribe();
      this.#offSync();
      this.#release.close();
      for (const w of this.#writeWaiters.splice(0)) w(false);
      await this.#repairing;
      await this.#round;
      await this.#serving;
      await this.#publishing?.catch(() => undefined);
      // No peer may add a document handle while the log flushes.
      this.network.disconnect();
      try {
        await this.log.close();
      } finally {
        this.network.disconnect();
        await this.#stores.close();
      }
    })();
    return this.#closing;
  }
}

function rosterMap(
  facility: FacilityId,
  relay: DeviceId,
  members: FacilityMembersFile,
): Map<DeviceId, { facility: FacilityId; revoked: boolean }> {
  const map = new Map<DeviceId, { facility: FacilityId; revoked: boolean }>();
  for (const d of members.devices) map.set(d.id, { facility, revoked: d.revoked });
  map.set(relay, { facility, revoked: false });
  return map;
}
