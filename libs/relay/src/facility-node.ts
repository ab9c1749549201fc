import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { DeviceLog, type LogRoster } from '@accord/log';
import { WebSocketServerAdapter, type NetworkEvent } from '@accord/network-ws';
import {
  relayRosterVersion,
  SystemEventType,
  type DeviceId,
  type DeviceKeyPair,
  type FacilityId,
  type SignedEvent,
  type VerdictData,
} from '@accord/protocol';
import { openDeviceDatabase, type DeviceDatabase } from '@accord/storage-level';
import { Adjudicator } from './adjudicator.js';
import { rosterData, type FacilityMembersFile } from './membership.js';
import { SegmentSealer } from './segment-sealer.js';
import { verdictDrafts } from './verdict-events.js';

/** What a facility node reports (the relay turns it into metrics and log lines). */
export interface FacilityObserver {
  ingested(facility: FacilityId, count: number): void;
  verdicts(facility: FacilityId, verdicts: readonly VerdictData[], seconds: number): void;
  network(facility: FacilityId, event: NetworkEvent, connected: number): void;
  problem(facility: FacilityId, message: string, detail?: unknown): void;
}

/** Options of {@link FacilityNode.open}. */
export interface FacilityNodeOptions {
  readonly facility: FacilityId;
  /** The relay's key: it signs verdicts and rosters for every facility. */
  readonly key: DeviceKeyPair;
  /** The facility's LevelDB folder. */
  readonly dbPath: string;
  /** The HTTP server whose upgrades the relay routes to this node. */
  readonly server: Server;
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
  /** Events per segment document (default: the log's; see `RelayOptions.segmentSize`). */
  readonly segmentSize?: number;
}

const CATCH_UP_RETRY_MS = 100;
/**
 * Verdicts decided and appended per round. A backlog is worked off in rounds so that memory stays
 * bounded by the round, not by the backlog (one round's appends share group commits).
 */
const VERDICTS_PER_ROUND = 2000;

/**
 * One facility served by the relay: its log (the relay is a peer like any device), its
 * WebSocket endpoint, and the validation loop that turns every submission into one signed verdict.
 *
 * @remarks Every visible event goes to the {@link Adjudicator}; decisions are appended as
 * relay-signed `Verdict` / `AcceptedVerdicts` events in the adjudicator's order (one
 * group-committed batch per round) and reach devices through sync. Full segments of the devices'
 * events are sealed ({@link SegmentSealer}) after each round. Membership changes are published as relay-signed
 * `RosterUpdated` events. Verdicts wait while the log's own history is behind (a restored
 * backup), so the relay continues its sequence after its old verdicts instead of forking it.
 */
export class FacilityNode {
  readonly facility: FacilityId;
  readonly log: DeviceLog;
  readonly #db: DeviceDatabase;
  readonly #adapter: WebSocketServerAdapter;
  readonly #adjudicator: Adjudicator;
  readonly #sealer: SegmentSealer;
  readonly #opts: FacilityNodeOptions;
  readonly #clock: () => number;
  readonly #roster: Map<DeviceId, { facility: FacilityId; revoked: boolean }>;
  #members: FacilityMembersFile;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  #round: Promise<void> = Promise.resolve();
  #running = false;
  #again = false;
  #behindSince: number | undefined;
  #connected = 0;
  #lastActivity: number;
  #closing: Promise<void> | undefined;
  #unsubscribe: () => void = () => {};

  private constructor(
    opts: FacilityNodeOptions,
    parts: {
      db: DeviceDatabase;
      adapter: WebSocketServerAdapter;
      log: DeviceLog;
      roster: Map<DeviceId, { facility: FacilityId; revoked: boolean }>;
    },
  ) {
    this.#opts = opts;
    this.facility = opts.facility;
    this.#clock = opts.clock ?? Date.now;
    this.#db = parts.db;
    this.#adapter = parts.adapter;
    this.log = parts.log;
    this.#roster = parts.roster;
    this.#members = opts.members;
    this.#lastActivity = this.#clock();
    this.#adjudicator = new Adjudicator({
      relay: opts.key.deviceId,
      facility: opts.facility,
      member: (device) => this.#roster.get(device),
      ...(opts.dependencyDeadlineMs === undefined ? {} : { dependencyDeadlineMs: opts.dependencyDeadlineMs }),
    });
    this.#sealer = new SegmentSealer(this.log, opts.key.deviceId);
  }

  /** Opens the facility's database and log, feeds its history to the adjudicator and starts deciding. */
  static async open(opts: FacilityNodeOptions): Promise<FacilityNode> {
    const { facility, key, observer } = opts;
    const roster = rosterMap(facility, key.deviceId, opts.members);
    const lookup: LogRoster = { lookup: (device) => roster.get(device) };
    const db = await openDeviceDatabase(opts.dbPath, {
      onCorruption: (report) => observer.problem(facility, 'corrupt value in the database', report),
    });
    let connected = 0;
    let node: FacilityNode | undefined;
    const adapter = new WebSocketServerAdapter({
      identity: key,
      facility,
      roster: lookup,
      server: opts.server,
      attachUpgrade: false,
      onEvent: (event) => {
        if (event.type === 'peer-connected') connected++;
        if (event.type === 'peer-disconnected') connected = Math.max(0, connected - 1);
        if (node !== undefined) node.#touch(connected);
        observer.network(facility, event, connected);
      },
    });
    try {
      const log = await DeviceLog.open({
        facility,
        key,
        eventStore: db.eventStore,
        storage: db.storageAdapter,
        roster: lookup,
        relay: key.deviceId,
        network: [adapter],
        afterStartupScan: db.unmapTables,
        ...(opts.segmentSize === undefined ? {} : { segmentSize: opts.segmentSize }),
        ...(opts.clock === undefined ? {} : { clock: opts.clock }),
        onIncident: (incident) => observer.problem(facility, `security incident ${incident.code}`, incident),
      });
      node = new FacilityNode(opts, { db, adapter, log, roster });
      node.#start();
      return node;
    } catch (e) {
      adapter.disconnect();
      await db.close();
      throw e;
    }
  }

  #start(): void {
    const now = this.#clock();
    for (const event of this.log.visibleEvents()) {
      this.#adjudicator.add(event, now);
      this.#noteRoster(event);
      this.#sealer.note(event);
    }
    this.#unsubscribe = this.log.onEvents((events) => this.#onEvents(events));
    void this.publishRoster();
    this.#schedule(0);
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
    }
    if (foreign > 0) this.#opts.observer.ingested(this.facility, foreign);
    this.#lastActivity = now;
    this.#schedule(0);
  }

  #touch(connected: number): void {
    this.#connected = connected;
    this.#lastActivity = this.#clock();
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

  /** Adjudication counters (events seen, verdicts recorded, events waiting for dependencies). */
  stats(): ReturnType<Adjudicator['stats']> & { lastSeq: number; connected: number } {
    return { ...this.#adjudicator.stats(), lastSeq: this.#adjudicator.lastSeq, connected: this.#connected };
  }

  /** Routes an upgrade request the relay has attributed to this facility. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#lastActivity = this.#clock();
    this.#adapter.handleUpgrade(req, socket, head);
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
    if (this.log.ownHistory().behind) {
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
    const started = performance.now();
    const verdicts = this.#adjudicator.decide(now, VERDICTS_PER_ROUND);
    if (verdicts.length > 0) {
      // Appended in order without waiting for each: one group commit carries the round.
      await Promise.all(verdictDrafts(this.facility, verdicts).map((draft) => this.log.appendSystem(draft)));
      this.#opts.observer.verdicts(this.facility, verdicts, (performance.now() - started) / 1000);
      this.#lastActivity = this.#clock();
      // More of the backlog may be ready: next round (timers and I/O get their turn in between).
      if (verdicts.length >= VERDICTS_PER_ROUND) this.#schedule(0);
    }
    if (this.#sealer.pending > 0) await this.#sealer.sealDue();
    const deadline = this.#adjudicator.nextDeadline();
    if (deadline !== undefined) this.#schedule(Math.max(0, deadline - this.#clock()));
  }

  /** Keeps the newest relay-signed roster seen in the log (history at start, then as events arrive). */
  #noteRoster(event: SignedEvent): void {
    const version = relayRosterVersion(event, this.#opts.key.deviceId);
    if (version !== undefined && version > (this.#newestRoster?.version ?? 0)) {
      this.#newestRoster = { event, version };
    }
  }

  /** Takes new membership: refreshes the log's and the network's roster and publishes it. */
  async membersChanged(members: FacilityMembersFile): Promise<SignedEvent> {
    this.#members = members;
    const fresh = rosterMap(this.facility, this.#opts.key.deviceId, members);
    this.#roster.clear();
    for (const [id, entry] of fresh) this.#roster.set(id, entry);
    this.log.rosterChanged();
    this.#adapter.revalidatePeers();
    this.#schedule(0);
    return this.publishRoster();
  }

  #publishing: Promise<SignedEvent> | undefined;
  #newestRoster: { readonly event: SignedEvent; readonly version: number } | undefined;

  /**
   * Appends a relay-signed `RosterUpdated` for the current membership unless the log already has
   * one at that version; resolves with the newest roster event.
   */
  publishRoster(): Promise<SignedEvent> {
    const run = async (): Promise<SignedEvent> => {
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
    return next;
  }

  /** Finishes the running round, closes the log (flushing it), the endpoint and the database. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#timer !== undefined) clearTimeout(this.#timer);
      this.#unsubscribe();
      await this.#round;
      await this.#publishing?.catch(() => undefined);
      // No peer may add a document handle while the log flushes.
      this.#adapter.disconnect();
      try {
        await this.log.close();
      } finally {
        this.#adapter.disconnect();
        await this.#db.close();
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
