import { STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  AccordError,
  ErrorCode,
  isFacilityId,
  verifyEnrollProof,
  WireHttpHeader,
  type DeviceId,
  type DeviceKeyPair,
  type EnrollRequest,
  type EnrollResponse,
  type FacilityId,
  type SignedEvent,
  dayDigest,
  eventIdTime,
  signElevationGrant,
  utcDay,
  type DayDigest,
} from '@accord/protocol';
import { WebSocketServerAdapter } from '@accord/network-ws';
import { openDeviceDatabase } from '@accord/storage-level';
import { FacilityNode, type FacilityObserver } from './facility-node.js';
import { createRelayLogger, type RelayLogger } from './logger.js';
import {
  adoptRoster,
  deviceIndex,
  enrollWithToken,
  MembershipWatcher,
  readMembers,
  revokeMember,
  type FacilityMembersFile,
} from './membership.js';
import { RelayMetrics } from './metrics.js';
import {
  createRelayHttp,
  type RelayDeviceApi,
  type RelayHttpFront,
  type RelayHttpOptions,
} from './relay-http.js';
import { DEFAULT_FACILITY_POLICY, type FacilityPolicy } from './elevation.js';
import { listFacilities, openRelayFolder, type RelayFolderLayout } from './relay-folder.js';
import { createEnrollmentToken } from './tokens.js';
import { verifyAdminPassword } from './admin-password.js';
import { summarizeDeadletters, type AdminPageSnapshot } from './admin-page.js';
import { LastContactTracker } from './last-contact.js';
import { VerifierPool } from './verifier-pool.js';

/** Options of {@link Relay.start}. */
export interface RelayOptions {
  /** The relay data folder (created with its key on first start). */
  readonly data: string;
  /** Interface to bind (default 127.0.0.1). */
  readonly host?: string;
  /** Port for HTTP and WebSocket (default 8787; 0 = any). */
  readonly port?: number;
  /** Structured logger (default: JSON lines on stdout at `info`). */
  readonly logger?: RelayLogger;
  /** Wall clock in ms (default Date.now). */
  readonly clock?: () => number;
  /** How long an event waits for a missing dependency before its 404 (default 30 s). */
  readonly dependencyDeadlineMs?: number;
  /** A facility with no connection and no work for this long is unloaded (default 5 min). */
  readonly idleUnloadMs?: number;
  /** How often membership files are checked for admin changes (default 250 ms). */
  readonly membershipPollMs?: number;
  /** Load every facility at start (validates backlogs at once; default false: on first connection). */
  readonly loadAll?: boolean;
  /**
   * Events per segment document (default: the log's, 5000). Devices must use the same size; only
   * tests and benchmarks change it.
   */
  readonly segmentSize?: number;
  /**
   * How long a newly connected device may take to show the relay its own history, and how long an
   * enrollment waits for that before its roster is published anyway (default 30 s; see
   * `FacilityNode`, "Restored from a backup").
   */
  readonly catchUpMaxMs?: number;
  /**
   * How long a relay that may have been restored waits, once one device showed it its history,
   * for the other enrolled devices before it writes anyway (default `catchUpMaxMs`). Start a
   * relay restored from a backup with as long as its tablets may stay away (`accord relay
   * --await-devices 8h`): one holding later relay events that comes back after that forks the
   * relay's sequence (see `FacilityNode`, "Restored from a backup").
   */
  readonly awaitDevicesMs?: number;
  /** The facilities' policy on admin elevation (default {@link DEFAULT_FACILITY_POLICY}). */
  readonly policy?: FacilityPolicy;
  /** Options of the HTTP front (rate limits, grant lifetime; see `RelayHttpOptions`). */
  readonly http?: RelayHttpOptions;
}

/** A facility the relay serves: its node on the facility's LevelDB, devices on WebSocket. */
export type RelayFacility = FacilityNode<WebSocketServerAdapter>;

/** The line the relay prints when it is ready (tests and scripts parse it). */
export interface RelayReadyLine {
  readonly event: 'ready';
  readonly relay: DeviceId;
  readonly host: string;
  readonly port: number;
}

const DEFAULT_PORT = 8787;
const DEFAULT_IDLE_UNLOAD_MS = 5 * 60_000;

/**
 * The relay: the one authority of the facilities it serves.
 *
 * @remarks One HTTP server carries everything: the WebSocket sync endpoint (each upgrade is routed
 * by its facility header to that facility's {@link FacilityNode}, loaded on demand and unloaded when
 * idle), `/enroll`, `/healthz`, `/metrics` and the admin API. Membership lives in plain files
 * (`members.json` per facility) that admin commands may edit while the relay runs; a watcher
 * publishes every change as a relay-signed roster.
 */
export class Relay {
  readonly id: DeviceId;
  readonly metrics: RelayMetrics;
  readonly #layout: RelayFolderLayout;
  readonly #key: DeviceKeyPair;
  readonly #opts: RelayOptions;
  readonly #server: Server;
  /** The HTTP routes on `#server` (Fastify); the WebSocket upgrades are the relay's own. */
  readonly #http: RelayHttpFront;
  readonly #logger: RelayLogger;
  readonly #clock: () => number;
  readonly #nodes = new Map<FacilityId, Promise<RelayFacility>>();
  /** Own event numbers of facilities unloaded while their history was known complete. */
  readonly #ownSeqAtUnload = new Map<FacilityId, number>();
  /**
   * Devices this process enrolled: whatever relay events they hold came from this process (or
   * from a device the catch-up waits for), so a facility loaded for their enrollment need not
   * wait to hear its history from them.
   */
  readonly #enrolledHere = new Set<DeviceId>();
  readonly #watcher: MembershipWatcher;
  readonly #started: number;
  /** Last contact per device (authenticated sessions), for the admin page; in memory, bounded. */
  readonly #contacts = new LastContactTracker();
  /** Checks the signatures the facility logs receive, on worker threads shared by every facility. */
  readonly #verifier = new VerifierPool();
  #sweeper: ReturnType<typeof setInterval> | undefined;
  #stopping: Promise<void> | undefined;

  private constructor(
    opts: RelayOptions,
    parts: { layout: RelayFolderLayout; key: DeviceKeyPair; logger: RelayLogger; metrics: RelayMetrics },
  ) {
    this.#opts = opts;
    this.#layout = parts.layout;
    this.#key = parts.key;
    this.id = parts.key.deviceId;
    this.#logger = parts.logger;
    this.metrics = parts.metrics;
    this.#clock = opts.clock ?? Date.now;
    this.#started = this.#clock();
    this.#http = createRelayHttp({
      metrics: this.metrics,
      logger: this.#logger,
      health: () => this.health(),
      stopping: () => this.#stopping !== undefined,
      enroll: (request) => this.enroll(request),
      verifyAdmin: (password) => verifyAdminPassword(this.#layout, password),
      device: this.#deviceApi(),
      ...(opts.http === undefined ? {} : { options: { clock: this.#clock, ...opts.http } }),
      admin: {
        facilities: () => this.facilities(),
        snapshot: () => this.adminSnapshot(),
        createToken: async (facility, ttlMs) => {
          const t = await createEnrollmentToken(this.#layout, facility, {
            ...(ttlMs === undefined ? {} : { ttlMs }),
            now: this.#clock(),
          });
          return { token: t.token, expires: t.expires };
        },
        revoke: async (device) => {
          const r = await revokeMember(this.#layout, device);
          this.#watcher.applied(r.facility, r.members);
          // Sessions are cut before the answer; the roster follows once the relay may write.
          await this.#membersChanged(r.facility, r.members, 'applied');
          return { device, facility: r.facility, version: r.members.version };
        },
      },
    });
    this.#server = this.#http.server;
    this.#server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.#onUpgrade(req, socket, head),
    );
    this.#watcher = new MembershipWatcher(this.#layout, {
      ...(opts.membershipPollMs === undefined ? {} : { pollMs: opts.membershipPollMs }),
      onChange: (facility, members) => void this.#membersChanged(facility, members),
      onError: (e) => this.#logger.warn({ err: e }, 'membership watcher'),
    });
  }

  /** What the relay answers its devices over HTTP: elevation and per-day digests (issue #10). */
  #deviceApi(): RelayDeviceApi {
    const eventsOfDays = async (facility: FacilityId, from: string, to: string) => {
      const node = await this.facility(facility);
      const byDay = new Map<string, string[]>();
      for (const e of node.log.visibleEvents()) {
        const day = utcDay(eventIdTime(e.id));
        if (day < from || day > to) continue;
        const list = byDay.get(day);
        if (list === undefined) byDay.set(day, [e.id]);
        else list.push(e.id);
      }
      return byDay;
    };
    return {
      member: async (device) => {
        const facility = (await deviceIndex(this.#layout)).get(device);
        if (facility === undefined) return undefined;
        const record = (await readMembers(this.#layout, facility))?.devices.find((d) => d.id === device);
        return record === undefined ? undefined : { facility, revoked: record.revoked };
      },
      grant: (device, facility, action, ttlMs) => {
        const issued = this.#clock();
        return signElevationGrant(this.#key, { facility, device, action, issued, expires: issued + ttlMs });
      },
      digests: async (facility, from, to) => {
        const byDay = await eventsOfDays(facility, from, to);
        const days: DayDigest[] = [];
        for (const day of [...byDay.keys()].sort()) days.push(await dayDigest(day, byDay.get(day)!));
        return days;
      },
      ids: async (facility, day) => [...((await eventsOfDays(facility, day, day)).get(day) ?? [])].sort(),
    };
  }

  /**
   * Opens the data folder (creating it and the relay key on first start) and starts serving.
   *
   * @throws AccordError `RELAY_CONFIG_INVALID` for a damaged folder; a network error when the port
   * is taken.
   */
  static async start(opts: RelayOptions): Promise<Relay> {
    const { layout, key } = await openRelayFolder(
      opts.data,
      opts.clock === undefined ? {} : { clock: opts.clock },
    );
    const logger = opts.logger ?? createRelayLogger();
    const relay = new Relay(opts, { layout, key, logger, metrics: new RelayMetrics() });
    await relay.#http.ready();
    await new Promise<void>((resolve, reject) => {
      relay.#server.once('error', reject);
      relay.#server.listen(opts.port ?? DEFAULT_PORT, opts.host ?? '127.0.0.1', () => {
        relay.#server.off('error', reject);
        resolve();
      });
    });
    relay.#server.on('error', (e) => logger.error({ err: e }, 'http server error'));
    await relay.#watcher.start();
    const idleMs = opts.idleUnloadMs ?? DEFAULT_IDLE_UNLOAD_MS;
    relay.#sweeper = setInterval(
      // A facility that fails to close must not end the process with an unhandled rejection.
      () =>
        void relay.#unloadIdle(idleMs).catch((e: unknown) => logger.error({ err: e }, 'idle unload failed')),
      Math.min(idleMs, 30_000),
    );
    relay.#sweeper.unref();
    if (opts.loadAll === true) {
      for (const facility of await listFacilities(layout)) await relay.facility(facility);
    }
    logger.info({ relay: relay.id, port: relay.port }, 'relay ready');
    return relay;
  }

  /** The bound port. */
  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** The ready announcement. */
  ready(): RelayReadyLine {
    return { event: 'ready', relay: this.id, host: this.#opts.host ?? '127.0.0.1', port: this.port };
  }

  /** What `/healthz` reports besides `status: ok`. */
  health(): Record<string, unknown> {
    return {
      relay: this.id,
      uptimeS: Math.round((this.#clock() - this.#started) / 1000),
      facilitiesLoaded: this.#nodes.size,
    };
  }

  /** Every facility of the folder with its membership and, when loaded, its counters. */
  async facilities(): Promise<Record<string, unknown>[]> {
    const out: Record<string, unknown>[] = [];
    for (const facility of await listFacilities(this.#layout)) {
      const members = await readMembers(this.#layout, facility);
      const loaded = this.#nodes.get(facility);
      const node = loaded === undefined ? undefined : await loaded.catch(() => undefined);
      out.push({
        facility,
        rosterVersion: members?.version ?? 0,
        devices: members?.devices.length ?? 0,
        loaded: node !== undefined,
        ...(node === undefined ? {} : { stats: node.stats() }),
      });
    }
    return out;
  }

  /**
   * What the admin page (`GET /admin/`) shows: every facility, its devices with last contact, and
   * the open deadletters of the loaded ones.
   *
   * @remarks Never loads a facility: opening a LevelDB and reading a whole log to draw a page an
   * administrator may refresh at will would cost more than the answer is worth, and would keep
   * idle facilities from unloading. An unloaded facility has `deadletters: undefined` ("not
   * loaded"). Last contact is what this process saw since it started.
   */
  async adminSnapshot(): Promise<AdminPageSnapshot> {
    const facilities: AdminPageSnapshot['facilities'][number][] = [];
    for (const facility of await listFacilities(this.#layout)) {
      const members = await readMembers(this.#layout, facility);
      const pending = this.#nodes.get(facility);
      const node = pending === undefined ? undefined : await pending.catch(() => undefined);
      facilities.push({
        facility,
        rosterVersion: members?.version ?? 0,
        devices: (members?.devices ?? []).map((d) => {
          const contact = this.#contacts.get(d.id);
          return {
            id: d.id,
            name: d.name,
            revoked: d.revoked,
            enrolled: d.enrolled,
            ...(d.revokedAt === undefined ? {} : { revokedAt: d.revokedAt }),
            sessions: contact?.sessions ?? 0,
            ...(contact === undefined ? {} : { lastContact: contact.lastContact }),
          };
        }),
        deadletters: node === undefined ? undefined : summarizeDeadletters(node.openDeadletters()),
      });
    }
    return { relay: this.id, now: this.#clock(), startedAt: this.#started, facilities };
  }

  /**
   * The node of a facility, loading it if needed.
   *
   * @throws AccordError `RELAY_UNKNOWN_FACILITY` when no device was ever enrolled in it.
   */
  facility(facility: FacilityId): Promise<RelayFacility> {
    if (this.#stopping !== undefined) {
      return Promise.reject(new AccordError(ErrorCode.RELAY_STOPPING, 'the relay is stopping'));
    }
    let node = this.#nodes.get(facility);
    if (node === undefined) {
      node = this.#load(facility);
      this.#nodes.set(facility, node);
      node.catch(() => this.#nodes.delete(facility));
    }
    return node;
  }

  async #load(facility: FacilityId): Promise<RelayFacility> {
    const members = await readMembers(this.#layout, facility);
    if (members === undefined) {
      throw new AccordError(ErrorCode.RELAY_UNKNOWN_FACILITY, `no facility ${facility} on this relay`, {
        details: { facility },
      });
    }
    const stores = await openDeviceDatabase(this.#layout.facilityDb(facility), {
      onCorruption: (report) => this.#observer.problem(facility, 'corrupt value in the database', report),
    });
    const node = await FacilityNode.open({
      facility,
      key: this.#key,
      stores,
      network: ({ roster, onEvent }) =>
        new WebSocketServerAdapter({
          identity: this.#key,
          facility,
          roster,
          server: this.#server,
          attachUpgrade: false,
          onEvent,
        }),
      members,
      observer: this.#observer,
      ...(this.#opts.clock === undefined ? {} : { clock: this.#opts.clock }),
      ...(this.#opts.dependencyDeadlineMs === undefined
        ? {}
        : { dependencyDeadlineMs: this.#opts.dependencyDeadlineMs }),
      ...(this.#opts.segmentSize === undefined ? {} : { segmentSize: this.#opts.segmentSize }),
      ...(this.#opts.catchUpMaxMs === undefined ? {} : { catchUpMaxMs: this.#opts.catchUpMaxMs }),
      ...(this.#opts.awaitDevicesMs === undefined ? {} : { awaitDevicesMs: this.#opts.awaitDevicesMs }),
      policy: this.#opts.policy ?? DEFAULT_FACILITY_POLICY,
      verifier: this.#verifier.verify,
      ...(this.#ownSeqAtUnload.has(facility) ? { trustedOwnSeq: this.#ownSeqAtUnload.get(facility)! } : {}),
      enrolledHere: this.#enrolledHere,
      onNewerRoster: (roster) => {
        adoptRoster(this.#layout, facility, roster, this.#clock())
          .then(async ({ members, changed }) => {
            if (!changed) return;
            this.#logger.warn(
              { facility, version: members.version },
              'membership taken back from a roster the relay signed (members.json was older)',
            );
            await this.#membersChanged(facility, members, 'applied');
          })
          .catch((e: unknown) =>
            this.#logger.error({ err: e, facility }, 'could not take back the membership'),
          );
      },
    });
    this.metrics.setFacilitiesLoaded(this.#nodes.size);
    this.#logger.info({ facility, ...node.stats() }, 'facility loaded');
    return node;
  }

  readonly #observer: FacilityObserver = {
    ingested: (facility, count) => this.metrics.eventsIngested(facility, count),
    verdicts: (facility, verdicts, seconds) => {
      // A round decides many events and shares group commits: each gets its share of the time.
      const perVerdict = seconds / verdicts.length;
      for (const v of verdicts) {
        this.metrics.observeValidation(perVerdict);
        this.metrics.verdict(v.outcome, v.outcome === 'accepted' ? 'accepted' : String(v.code));
        if (v.outcome === 'deadletter') {
          this.#logger.info(
            { facility, target: v.target, code: v.code, rule: v.rule, reason: v.reason },
            'deadletter',
          );
        }
      }
      this.#logger.debug({ facility, verdicts: verdicts.length, seconds }, 'verdicts recorded');
    },
    network: (facility, event, connected) => {
      this.metrics.setConnectedDevices(facility, connected);
      // Only authenticated sessions count as contact: an unknown key never gets this far.
      if (event.type === 'peer-connected') this.#contacts.connected(event.peer, this.#clock());
      if (event.type === 'peer-disconnected') this.#contacts.disconnected(event.peer, this.#clock());
      if (event.type === 'refused') {
        const r = event.refusal;
        if (r.stage === 'session') this.metrics.refusedFrame(r.reason);
        else this.metrics.refusedConnection(r.reason);
        this.#logger.warn(
          { facility, stage: r.stage, reason: r.reason, peer: r.peer, detail: r.detail },
          'refused',
        );
      } else if (event.type === 'peer-connected' || event.type === 'peer-disconnected') {
        this.#logger.info({ facility, peer: event.peer, connected }, event.type);
      }
    },
    problem: (facility, message, detail) => this.#logger.warn({ facility, detail }, message),
  };

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => {});
    const refuse = (status: number, code: ErrorCode, reason: string): void => {
      this.metrics.refusedConnection(reason);
      this.#logger.warn({ reason, remote: req.socket.remoteAddress }, 'upgrade refused');
      const body = `${reason}\n`;
      socket.end(
        `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Refused'}\r\nConnection: close\r\n` +
          `Content-Type: text/plain\r\nContent-Length: ${body.length}\r\n` +
          `${WireHttpHeader.Error}: ${code}\r\n\r\n${body}`,
      );
      socket.destroy();
    };
    if (this.#stopping !== undefined) return refuse(503, ErrorCode.RELAY_STOPPING, 'stopping');
    const facility = req.headers[WireHttpHeader.Facility];
    if (typeof facility !== 'string' || !isFacilityId(facility)) {
      return refuse(400, ErrorCode.NETWORK_BAD_FRAME, 'bad-request');
    }
    // Unknown facilities are refused before anything is loaded or disclosed.
    this.facility(facility).then(
      (node) => {
        node.touched();
        node.network.handleUpgrade(req, socket, head);
      },
      (e: unknown) => {
        if (e instanceof AccordError && e.code === ErrorCode.RELAY_UNKNOWN_FACILITY) {
          refuse(403, ErrorCode.NETWORK_WRONG_FACILITY, 'wrong-facility');
        } else {
          this.#logger.error({ err: e, facility }, 'could not load facility');
          refuse(503, ErrorCode.RELAY_INTERNAL, 'unavailable');
        }
      },
    );
  }

  /**
   * Enrolls a device with a one-time token: checks its proof of key, consumes the token, adds the
   * device to the facility's roster and answers with the relay-signed roster that lists it.
   *
   * @throws AccordError `RELAY_UNAUTHORIZED` (bad proof), `RELAY_TOKEN_INVALID`,
   * `RELAY_TOKEN_EXPIRED`, `RELAY_TOKEN_USED`, `RELAY_ALREADY_ENROLLED`.
   */
  async enroll(request: EnrollRequest): Promise<EnrollResponse> {
    if (!(await verifyEnrollProof(request))) {
      throw new AccordError(ErrorCode.RELAY_UNAUTHORIZED, 'the proof of key does not match the device id');
    }
    // An already-enrolled device is refused before the token is used up.
    const members = await enrollWithToken(this.#layout, request, this.#clock());
    const facility = members.facility;
    this.#watcher.applied(facility, members);
    this.#enrolledHere.add(request.device);
    this.#logger.info({ facility, device: request.device, name: request.name }, 'device enrolled');
    // The new device needs the roster that lists it: wait for the catch-up, but not forever.
    const roster = await this.#membersChanged(facility, members, 'bounded');
    if (roster === undefined) throw new AccordError(ErrorCode.RELAY_INTERNAL, 'roster not published');
    return { facility, relay: this.id, roster };
  }

  /**
   * Applies a membership change to the loaded node (loading it: the roster must be published) and
   * resolves with the published roster; with `'bounded'` the publication waits for the relay's
   * catch-up at most `catchUpMaxMs`, with `'applied'` it resolves once the change is applied.
   */
  async #membersChanged(
    facility: FacilityId,
    members: FacilityMembersFile,
    wait: 'unbounded' | 'bounded' | 'applied' = 'unbounded',
  ): Promise<SignedEvent | undefined> {
    const failed = (e: unknown): undefined => {
      this.#logger.error({ err: e, facility }, 'could not publish the roster');
      return undefined;
    };
    try {
      const node = await this.facility(facility);
      const published = node.membersChanged(members, wait === 'bounded' ? node.catchUpMaxMs : undefined);
      if (wait === 'applied') {
        published.catch(failed);
        return undefined;
      }
      return await published;
    } catch (e) {
      return failed(e);
    }
  }

  async #unloadIdle(idleMs: number): Promise<void> {
    for (const [facility, pending] of this.#nodes) {
      const node = await pending.catch(() => undefined);
      if (node === undefined || !node.isIdle(idleMs) || this.#nodes.get(facility) !== pending) continue;
      this.#nodes.delete(facility);
      this.#rememberOwnSeq(node);
      await node.close();
      this.metrics.setFacilitiesLoaded(this.#nodes.size);
      this.#logger.info({ facility }, 'facility unloaded (idle)');
    }
  }

  /** Unloads one facility now (tests and benchmarks); a later connection loads it again. */
  async unload(facility: FacilityId): Promise<void> {
    const pending = this.#nodes.get(facility);
    if (pending === undefined) return;
    this.#nodes.delete(facility);
    const node = await pending.catch(() => undefined);
    if (node !== undefined) this.#rememberOwnSeq(node);
    await node?.close();
    this.metrics.setFacilitiesLoaded(this.#nodes.size);
  }

  /**
   * Remembers how far an unloaded facility's own history went while this process knew it complete:
   * loading it again, the relay need not wait for a device to confirm it (nothing was restored in
   * between). A new process knows nothing and waits (see `FacilityNode`).
   */
  #rememberOwnSeq(node: RelayFacility): void {
    if (node.trusted) this.#ownSeqAtUnload.set(node.facility, node.log.ownHistory().assigned);
  }

  /**
   * Drains and stops: refuses new connections, lets running validation rounds finish, closes every
   * facility (flushing its log) and the server. Idempotent.
   */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      if (this.#sweeper !== undefined) clearInterval(this.#sweeper);
      await this.#watcher.close();
      const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
      for (const [facility, pending] of this.#nodes) {
        const node = await pending.catch(() => undefined);
        // One facility failing to close must not leave the others (and the server) open.
        await node
          ?.close()
          .catch((e: unknown) => this.#logger.error({ err: e, facility }, 'facility close failed'));
      }
      this.#nodes.clear();
      await this.#verifier.close();
      this.#server.closeAllConnections();
      await closed;
      this.#logger.info({ relay: this.id }, 'relay stopped');
    })();
    return this.#stopping;
  }
}
