import { DeviceLog, type DeviceLogApi, type SecurityIncident, type StoreSetAside } from '@accord/log';
import type { DeviceId, DeviceKeyPair, FacilityId } from '@accord/protocol';
import {
  isLevelCorruption,
  openDeviceDatabase,
  setAsideAndRepair,
  type DeviceDatabase,
} from '@accord/storage-level';
import { fileOwnSeqMark, loadDevice, type RelayConfig } from './data-folder.js';
import type { NetworkAdapterInterface } from '@automerge/automerge-repo';
import { HttpApi, type NetworkControl, type StaticAsset } from './http-api.js';
import { LevelIdempotencyStore } from './idempotency.js';
import { followRelayRoster } from './relay-roster.js';
import { RosterFile } from './roster-file.js';
import { httpRelayClient } from './relay-client.js';
import { wsPeerNetwork } from './ws-network.js';

/** What a {@link PeerNetworkFactory} is given. */
export interface PeerNetworkOptions {
  readonly key: DeviceKeyPair;
  readonly facility: FacilityId;
  /** Membership, re-read when the roster file changes. */
  readonly roster: RosterFile;
  /** Run a peer server on this port (0 = any), or not at all when undefined. */
  readonly listen?: number;
  /** Interface the peer server binds. */
  readonly listenHost: string;
  /** `ws://host:port` URLs of peers to dial. */
  readonly peers: readonly string[];
  /** The relay to dial as well, whose server must prove `id` (a relay-enrolled device). */
  readonly relay?: RelayConfig;
  /** Notable network happenings (refused peers). */
  readonly onDiagnostic?: (message: string, detail?: unknown) => void;
  /** Every log line of the adapters (verbose). */
  readonly networkLog?: (line: string) => void;
}

/** The peer network of an agent: its adapters (given to the log), the server's port, and its switch. */
export interface PeerNetwork extends NetworkControl {
  readonly adapters: readonly NetworkAdapterInterface[];
  /** The peer server's port, or null when the device does not listen. */
  readonly peerPort: number | null;
  /** Stops the server and every connection (after the log closed). */
  close(): Promise<void>;
}

/** Builds an agent's peer network (default: authenticated WebSockets from `@accord/network-ws`). */
export type PeerNetworkFactory = (opts: PeerNetworkOptions) => Promise<PeerNetwork>;

/** Options of {@link DeviceAgent.start}. */
export interface DeviceAgentOptions {
  /** The initialized data folder. */
  readonly data: string;
  /** Peer server port (0 = any); no server when undefined. */
  readonly listen?: number;
  /** Interface of the peer server (default `0.0.0.0`: peers are other machines on the LAN). */
  readonly listenHost?: string;
  /** Peers to dial: `ws://host:port`. */
  readonly peers?: readonly string[];
  /** HTTP API port on 127.0.0.1 (0 = any, the default). */
  readonly http?: number;
  /** Roster file (default: the one recorded in `device.json` at init). */
  readonly roster?: string;
  /** How often the roster file is checked for changes, in ms (default 500). */
  readonly rosterPollMs?: number;
  /** Diagnostics (roster problems, security incidents, refused peers): default none. */
  readonly onDiagnostic?: (message: string, detail?: unknown) => void;
  /** Every log line of the network adapters (verbose; default none). */
  readonly networkLog?: (line: string) => void;
  /** Replaces the WebSocket network (tests). */
  readonly network?: PeerNetworkFactory;
  /** Wall clock in ms (default Date.now). */
  readonly clock?: () => number;
  /**
   * Dial the relay of `device.json` (default true). False keeps a relay-enrolled device on its
   * `--peer` links only: it still trusts the relay's verdicts and rosters, which reach it through peers.
   */
  readonly dialRelay?: boolean;
  /** Dial the relay at this `ws://host:port` instead of the URL in `device.json` (the relay moved). */
  readonly relayUrl?: string;
  /**
   * How long appends after start wait for a peer or the relay to confirm the device's own
   * history (ms, from start): after an ordinary start (default 3 s) and after a suspicious one
   * (default 30 s: lost writes, a crash, a damaged database). See `DeviceLogOptions.ownHistoryWaitMs`.
   */
  readonly ownHistoryWaitMs?: { readonly clean: number; readonly suspicious: number };
  /** Static files the HTTP API serves next to its routes (the Sync Centre page); see `HttpApiOptions.assets`. */
  readonly assets?: ReadonlyMap<string, StaticAsset>;
  /** The Accord version `GET /api/environment` shows (default: the device package's). */
  readonly version?: string;
}

const DEFAULT_OWN_HISTORY_WAIT_MS = { clean: 3_000, suspicious: 30_000 };

/** The line an agent prints on stdout when it is ready (tests and scripts parse it). */
export interface ReadyLine {
  readonly event: 'ready';
  readonly device: DeviceId;
  readonly name: string;
  readonly facility: FacilityId;
  readonly http: number;
  readonly peer: number | null;
}

/**
 * A running device: its database, log, peer network and local HTTP API.
 *
 * @remarks Start with {@link DeviceAgent.start}; stop with {@link DeviceAgent.stop}, which
 * stops accepting HTTP requests, answers those in flight, closes the log (flushing it), the
 * network and the database, in that order. An acknowledged event (201) is durable before the
 * acknowledgement, so a kill at any instant loses none.
 */
export class DeviceAgent {
  readonly deviceId: DeviceId;
  readonly name: string;
  readonly facility: FacilityId;
  readonly log: DeviceLogApi;
  readonly network: NetworkControl;
  /** The relay this device enrolled with, or null (a device of a shared roster file). */
  readonly relay: RelayConfig | null;
  readonly #db: DeviceDatabase;
  readonly #roster: RosterFile;
  readonly #peerNetwork: PeerNetwork;
  readonly #http: HttpApi;
  readonly #unsubscribe: () => void;
  #stopping: Promise<void> | undefined;

  private constructor(parts: {
    name: string;
    relay: RelayConfig | null;
    log: DeviceLogApi;
    db: DeviceDatabase;
    roster: RosterFile;
    peerNetwork: PeerNetwork;
    http: HttpApi;
    unsubscribe: () => void;
  }) {
    this.deviceId = parts.log.deviceId;
    this.facility = parts.log.facility;
    this.name = parts.name;
    this.relay = parts.relay;
    this.log = parts.log;
    this.#db = parts.db;
    this.#roster = parts.roster;
    this.#peerNetwork = parts.peerNetwork;
    this.network = parts.peerNetwork;
    this.#http = parts.http;
    this.#unsubscribe = parts.unsubscribe;
  }

  /**
   * Opens the device in `opts.data` and starts it.
   *
   * @remarks A relay-enrolled device (`relay` in `device.json`) also dials its relay, requires its
   * roster file to hold the relay's signed roster, and follows the relay's `RosterUpdated` events
   * (the file is rewritten when a newer one arrives; the newest stored one is adopted at start).
   * @throws AccordError `DEVICE_NOT_INITIALIZED`, `DEVICE_CONFIG_INVALID`, `DEVICE_ROSTER_INVALID`,
   * `STORAGE_IO` (database locked by another process), or a network error (port in use).
   * Whatever was opened before the failure is closed again.
   */
  static async start(opts: DeviceAgentOptions): Promise<DeviceAgent> {
    const diag = opts.onDiagnostic ?? (() => {});
    const { layout, config, key } = await loadDevice(opts.data);
    const cleanup: (() => Promise<void> | void)[] = [];
    const relay =
      config.relay === undefined
        ? null
        : opts.relayUrl === undefined
          ? config.relay
          : { ...config.relay, url: opts.relayUrl };
    try {
      const roster = await RosterFile.open(opts.roster ?? config.roster, config.facility, {
        ...(opts.rosterPollMs === undefined ? {} : { pollMs: opts.rosterPollMs }),
        ...(relay === null ? {} : { relay: relay.id }),
        onError: (e) => diag(`roster ${opts.roster ?? config.roster} ignored: ${e.message}`),
      });
      cleanup.push(() => roster.close());
      // `undo` collects what to close again when opening fails part-way.
      const openStorageAndLog = async (
        undo: (() => Promise<void> | void)[],
        setAside: StoreSetAside | undefined,
      ): Promise<{ db: DeviceDatabase; peerNetwork: PeerNetwork; log: DeviceLog }> => {
        const db = await openDeviceDatabase(layout.db, {
          onCorruption: (report) =>
            diag('corrupt value in the database (will be repaired from peers)', report),
        });
        undo.push(() => db.close());
        const peerNetwork = await (opts.network ?? wsPeerNetwork)({
          key,
          facility: config.facility,
          roster,
          ...(opts.listen === undefined ? {} : { listen: opts.listen }),
          listenHost: opts.listenHost ?? '0.0.0.0',
          peers: opts.peers ?? [],
          ...(relay === null || opts.dialRelay === false ? {} : { relay }),
          onDiagnostic: diag,
          ...(opts.networkLog === undefined ? {} : { networkLog: opts.networkLog }),
        });
        undo.push(() => peerNetwork.close());
        const log = await DeviceLog.open({
          facility: config.facility,
          key,
          eventStore: db.eventStore,
          storage: db.storageAdapter,
          roster,
          relay: relay?.id ?? roster.data.relay ?? null,
          network: peerNetwork.adapters,
          afterStartupScan: db.unmapTables,
          ownSeqMark: fileOwnSeqMark(layout.ownSeqMark),
          ownHistoryWaitMs: opts.ownHistoryWaitMs ?? DEFAULT_OWN_HISTORY_WAIT_MS,
          ...(setAside === undefined ? {} : { storeSetAside: setAside }),
          ...(opts.clock === undefined ? {} : { clock: opts.clock }),
          onIncident: (incident: SecurityIncident) =>
            diag(`security incident ${incident.code}: ${incident.message}`, incident),
          onInternalError: (error) =>
            diag(`log internal error ${error.code}: ${error.message}`, error.toJSON()),
        });
        return { db, peerNetwork, log };
      };
      // The database, peer network and log open together; LevelDB damage met on the way (a
      // table file that fails its checksum) sets the database aside and opens the repaired rest
      // once, rather than leaving the clinic without a tablet until someone intervenes.
      let setAside: StoreSetAside | undefined;
      let opened: { db: DeviceDatabase; peerNetwork: PeerNetwork; log: DeviceLog } | undefined;
      for (let attempt = 0; opened === undefined; attempt++) {
        const undo: (() => Promise<void> | void)[] = [];
        try {
          opened = await openStorageAndLog(undo, setAside);
          cleanup.push(...undo);
        } catch (err) {
          for (const step of undo.reverse()) {
            try {
              await step();
            } catch {
              // The damage is what matters; a half-open database still lets go of its lock.
            }
          }
          if (attempt > 0 || !isLevelCorruption(err)) throw err;
          const reason = err instanceof Error ? err.message : String(err);
          const result = await setAsideAndRepair(layout.db, layout.quarantine);
          if (result.repaired) {
            // LevelDB's repair drops the damaged block's records: an event may have kept its slot
            // and lost its id-index entry (or the reverse), and the log reads events by id.
            const repaired = await openDeviceDatabase(layout.db);
            try {
              await repaired.eventStore.reindex();
            } finally {
              await repaired.close();
            }
          }
          setAside = { path: result.path, at: new Date().toISOString(), reason };
          diag(
            `the database was damaged (${reason}): set aside in ${result.path}; ` +
              (result.repaired ? 'its readable records were kept' : 'starting empty') +
              ', the rest is repaired from peers',
            setAside,
          );
        }
      }
      const { db, peerNetwork, log } = opened;
      // A device enrolled after the log opened: follow its segments from now on.
      const stopFollowingRoster = roster.onChange(() => log.rosterChanged());
      cleanup.push(async () => {
        stopFollowingRoster();
        await log.close();
      });
      let stopFollowingRelay = (): void => {};
      if (relay !== null) {
        const follower = followRelayRoster({
          log,
          roster,
          relay: relay.id,
          onDiagnostic: diag,
        });
        stopFollowingRelay = () => follower.stop();
        cleanup.push(stopFollowingRelay);
        await follower.ready;
      }
      const verdictsFrom = relay?.id ?? roster.data.relay;
      // After the log's start-up scan: `unmapTables` reopens the database, not sublevels made before.
      const idempotency = await LevelIdempotencyStore.open(
        db.db,
        opts.clock === undefined ? {} : { clock: opts.clock },
      );
      const http = await HttpApi.listen({
        idempotency,
        log,
        network: peerNetwork,
        identity: { device: key.deviceId, name: config.name, facility: config.facility },
        ...(verdictsFrom === undefined ? {} : { relay: { id: verdictsFrom, url: relay?.url ?? null } }),
        port: opts.http ?? 0,
        relayClient:
          relay === null
            ? null
            : httpRelayClient({
                key,
                url: relay.url,
                ...(opts.clock === undefined ? {} : { clock: opts.clock }),
              }),
        // Re-submit writes the events again into their segment documents (see DeviceLog.republish).
        resend: (events) => log.republish(events),
        ...(opts.clock === undefined ? {} : { clock: opts.clock }),
        ...(config.timeZone === undefined ? {} : { timeZone: config.timeZone }),
        ...(opts.assets === undefined ? {} : { assets: opts.assets }),
        dataFolder: layout.dir,
        ...(opts.version === undefined ? {} : { version: opts.version }),
      });
      const unsubscribe = (): void => {
        stopFollowingRelay();
        stopFollowingRoster();
      };
      return new DeviceAgent({ name: config.name, relay, log, db, roster, peerNetwork, http, unsubscribe });
    } catch (e) {
      for (const undo of cleanup.reverse()) {
        try {
          await undo();
        } catch {
          // The start failure is what the caller needs to see.
        }
      }
      throw e;
    }
  }

  /** The port of the local HTTP API (127.0.0.1). */
  get httpPort(): number {
    return this.#http.port;
  }

  /** The port of the peer server, or null when the device does not listen. */
  get peerPort(): number | null {
    return this.#peerNetwork.peerPort;
  }

  /** The roster in force. */
  get roster(): RosterFile {
    return this.#roster;
  }

  /** The JSON-safe ready announcement (see {@link ReadyLine}). */
  ready(): ReadyLine {
    return {
      event: 'ready',
      device: this.deviceId,
      name: this.name,
      facility: this.facility,
      http: this.httpPort,
      peer: this.peerPort,
    };
  }

  /**
   * Stops the agent cleanly: HTTP first (in-flight requests are answered), then the log
   * (pending writes flushed, documents saved), the network and the database. Idempotent.
   */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      await this.#http.close();
      this.#unsubscribe();
      try {
        await this.log.close();
      } finally {
        await this.#peerNetwork.close();
        this.#roster.close();
        await this.#db.close();
      }
    })();
    return this.#stopping;
  }
}
