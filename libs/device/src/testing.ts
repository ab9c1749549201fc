// Test helpers of @accord/device (meant to be exported as `@accord/device/testing`): a small
// stand-in for the relay, enough to enroll devices and publish rosters over real sockets.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ENROLL_PATH,
  formatHlc,
  generateDeviceKey,
  eventIdFor,
  parseEnrollRequest,
  signEvent,
  SystemEventType,
  toBase64Url,
  verifyEnrollProof,
  type DeviceId,
  type DeviceKeyPair,
  type EnrollRequest,
  type EnrollResponse,
  type FacilityId,
  type RosterMember,
  type SignedEvent,
} from '@accord/protocol';
import { DeviceLog } from '@accord/log';
import { StaticRoster, WebSocketServerAdapter } from '@accord/network-ws';
import { MemoryEventStore, MemoryStorageAdapter } from '@accord/storage-level';

/** What the fake relay answers to one enrollment request. */
export interface FakeRelayAnswer {
  readonly status: number;
  readonly body: unknown;
}

/** Options of {@link FakeRelay.start}. */
export interface FakeRelayOptions {
  readonly facility: FacilityId;
  /** The relay's key (default: a fresh one). */
  readonly key?: DeviceKeyPair;
  /**
   * Also run a relay log on an in-memory store, reachable at `url` by authenticated WebSockets:
   * rosters are then appended to that log and reach the devices by sync.
   */
  readonly sync?: boolean;
}

/**
 * A stand-in for the relay: answers `POST /enroll` on `127.0.0.1` (port 0) with relay-signed
 * `RosterUpdated` events, and optionally syncs a relay log over WebSockets on the same port.
 *
 * @remarks For tests only. `respond` may replace the answer to shape hostile relays;
 * `hang` makes it never answer. Tokens come from {@link FakeRelay.issueToken}; an unknown one
 * gets 401 `RELAY_TOKEN_INVALID`, a used one 409 `RELAY_TOKEN_USED`.
 */
export class FakeRelay {
  readonly key: DeviceKeyPair;
  readonly facility: FacilityId;
  /** `ws://127.0.0.1:PORT`: what a device is given as its relay. */
  readonly url: string;
  /** The relay log (with `sync`), whose events devices receive. */
  readonly log: DeviceLog | undefined;
  /** Who may connect to the relay's WebSocket endpoint (with `sync`). */
  readonly roster: StaticRoster;
  /** Replaces the answer to the next enrollments (default: the honest one). */
  respond:
    | ((answer: EnrollResponse, request: EnrollRequest) => Promise<FakeRelayAnswer> | FakeRelayAnswer)
    | undefined;
  /** When true, enrollment requests are never answered. */
  hang = false;
  /** Enrollment requests received (parsed, before any check). */
  readonly requests: unknown[] = [];
  readonly #server: Server;
  readonly #adapter: WebSocketServerAdapter | undefined;
  readonly #tokens = new Map<string, boolean>();
  readonly #members: RosterMember[] = [];
  readonly #hanging = new Set<ServerResponse>();
  #version = 0;

  private constructor(parts: {
    key: DeviceKeyPair;
    facility: FacilityId;
    url: string;
    server: Server;
    roster: StaticRoster;
    adapter?: WebSocketServerAdapter;
    log?: DeviceLog;
  }) {
    this.key = parts.key;
    this.facility = parts.facility;
    this.url = parts.url;
    this.#server = parts.server;
    this.roster = parts.roster;
    this.#adapter = parts.adapter;
    this.log = parts.log;
  }

  /** Starts a fake relay on a free port of 127.0.0.1. */
  static async start(opts: FakeRelayOptions): Promise<FakeRelay> {
    const key = opts.key ?? (await generateDeviceKey());
    const roster = new StaticRoster().enroll(key.deviceId, opts.facility);
    const self: { relay?: FakeRelay } = {};
    const server = createServer((req, res) => {
      if (self.relay === undefined) {
        res.writeHead(503).end();
        return;
      }
      void self.relay.#handle(req, res);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
    let adapter: WebSocketServerAdapter | undefined;
    let log: DeviceLog | undefined;
    if (opts.sync === true) {
      adapter = new WebSocketServerAdapter({ identity: key, facility: opts.facility, roster, server });
      log = await DeviceLog.open({
        facility: opts.facility,
        key,
        eventStore: new MemoryEventStore(),
        storage: new MemoryStorageAdapter(),
        roster,
        relay: key.deviceId,
        network: [adapter],
      });
    }
    const relay = new FakeRelay({
      key,
      facility: opts.facility,
      url,
      server,
      roster,
      ...(adapter === undefined ? {} : { adapter }),
      ...(log === undefined ? {} : { log }),
    });
    self.relay = relay;
    return relay;
  }

  /** The relay's device id. */
  get id(): DeviceId {
    return this.key.deviceId;
  }

  /** The current roster version (0 before the first enrollment). */
  get version(): number {
    return this.#version;
  }

  /** A fresh one-time enrollment token. */
  issueToken(): string {
    const token = `acc1.${toBase64Url(randomBytes(32))}`;
    this.#tokens.set(token, false);
    return token;
  }

  /**
   * Signs a `RosterUpdated` as this relay (appended to the relay log with `sync`).
   *
   * @remarks Pass `version`/`members` to shape a roster without changing the relay's own state.
   */
  async signRoster(
    version = this.#version,
    members: readonly RosterMember[] = this.#members,
  ): Promise<SignedEvent> {
    const data = { version, devices: members.map((m) => ({ ...m })) };
    const subject = { kind: 'roster', id: this.facility };
    if (this.log !== undefined && version === this.#version && members === this.#members) {
      return this.log.appendSystem({ type: SystemEventType.RosterUpdated, subject, data });
    }
    return FakeRelay.signRosterWith(this.key, this.facility, version, members);
  }

  /** Signs a `RosterUpdated` event with any key (to forge one). */
  static signRosterWith(
    key: DeviceKeyPair,
    facility: FacilityId,
    version: number,
    members: readonly RosterMember[],
  ): Promise<SignedEvent> {
    const now = Date.now();
    return signEvent(
      {
        v: 1,
        id: eventIdFor(now, key.deviceId, version),
        facility,
        device: key.deviceId,
        seq: version,
        hlc: formatHlc(now, 0),
        type: SystemEventType.RosterUpdated,
        schema: 1,
        subject: { kind: 'roster', id: facility },
        deps: [],
        data: { version, devices: members.map((m) => ({ ...m })) },
      },
      key,
    );
  }

  /** Revokes a member: a new roster version, published (in the relay log with `sync`); its sessions are dropped. */
  async revoke(device: DeviceId): Promise<SignedEvent> {
    const i = this.#members.findIndex((m) => m.id === device);
    if (i < 0) throw new Error(`fake relay: ${device} is not a member`);
    this.#members[i] = { ...this.#members[i]!, revoked: true };
    this.#version++;
    this.roster.revoke(device);
    this.#adapter?.revalidatePeers();
    return this.signRoster();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const answer = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    try {
      if (req.method !== 'POST' || req.url !== ENROLL_PATH) {
        answer(404, { code: 'RELAY_NOT_FOUND', message: 'no such route' });
        return;
      }
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      if (this.hang) {
        this.#hanging.add(res);
        return;
      }
      let raw: unknown;
      try {
        raw = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
      } catch {
        answer(400, { code: 'RELAY_BAD_REQUEST', message: 'not JSON' });
        return;
      }
      this.requests.push(raw);
      const parsed = parseEnrollRequest(raw);
      if (!parsed.ok || !(await verifyEnrollProof(parsed.value))) {
        answer(400, { code: 'RELAY_BAD_REQUEST', message: 'malformed enrollment request' });
        return;
      }
      const request = parsed.value;
      const used = this.#tokens.get(request.token);
      if (used === undefined) {
        answer(401, { code: 'RELAY_TOKEN_INVALID', message: 'unknown enrollment token' });
        return;
      }
      if (used) {
        answer(409, { code: 'RELAY_TOKEN_USED', message: 'token already used' });
        return;
      }
      this.#tokens.set(request.token, true);
      this.#members.push({ id: request.device, name: request.name, revoked: false });
      this.#version++;
      this.roster.enroll(request.device, this.facility);
      const honest: EnrollResponse = {
        facility: this.facility,
        relay: this.id,
        roster: await this.signRoster(),
      };
      const reply =
        this.respond === undefined ? { status: 201, body: honest } : await this.respond(honest, request);
      answer(reply.status, reply.body);
    } catch (e) {
      answer(500, { code: 'RELAY_INTERNAL', message: e instanceof Error ? e.message : String(e) });
    }
  }

  /** Stops the relay log, its sessions and the HTTP server. */
  async close(): Promise<void> {
    for (const res of this.#hanging) res.destroy();
    await this.log?.close();
    await this.#adapter?.close();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
