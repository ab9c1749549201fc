import { createHash } from 'node:crypto';
import { join } from 'node:path';
import {
  deviceKeyFromSeed,
  generateDeviceKey,
  makeEnrollRequest,
  parseEnrollResponse,
  verdictsIn,
  type DeviceId,
  type DeviceKeyPair,
  type EventId,
  type SignedEvent,
  type VerdictData,
  type EnrollResponse,
  type FacilityId,
} from '@accord/protocol';
import { DeviceLog, type LogRoster } from '@accord/log';
import { WebSocketClientAdapter } from '@accord/network-ws';
import { MemoryEventStore, MemoryStorageAdapter } from '@accord/storage-level';
import { createRelayLogger } from './logger.js';
import { relayFolder } from './relay-folder.js';
import { Relay, type RelayOptions } from './relay.js';
import { createEnrollmentToken } from './tokens.js';

/**
 * The device key a test names `label` under its printed seed: the same seed gives the same keys,
 * so a failure replays (`FC_SEED`).
 */
export function seededDeviceKey(seed: number | string, label: string): Promise<DeviceKeyPair> {
  return deviceKeyFromSeed(new Uint8Array(createHash('sha256').update(`${seed}/${label}`).digest()));
}

/**
 * The relay of an integration suite: its data in `folder/relay`, on a free port, logging nothing,
 * reading membership every 50 ms, and a member of `roster`; `options` adds to that.
 */
export async function startTestRelay(
  folder: string,
  roster: TestRoster,
  options: Partial<Omit<RelayOptions, 'data'>> = {},
): Promise<Relay> {
  const relay = await Relay.start({
    data: join(folder, 'relay'),
    port: 0,
    logger: createRelayLogger({ level: 'silent' }),
    membershipPollMs: 50,
    ...options,
  });
  roster.add(relay.id);
  return relay;
}

/** A facility's roster as test devices know it: the test adds (and revokes) members. */
export class TestRoster implements LogRoster {
  readonly #facility: FacilityId;
  readonly #members = new Map<DeviceId, { facility: FacilityId; revoked: boolean }>();
  /** `facility`: where added devices belong unless `add` names another. */
  constructor(facility: FacilityId) {
    this.#facility = facility;
  }
  add(device: DeviceId, facility: FacilityId = this.#facility): void {
    this.#members.set(device, { facility, revoked: false });
  }
  revoke(device: DeviceId): void {
    const member = this.#members.get(device);
    this.#members.set(device, { facility: member?.facility ?? this.#facility, revoked: true });
  }
  lookup(device: DeviceId): { readonly facility: FacilityId; readonly revoked: boolean } | undefined {
    return this.#members.get(device);
  }
}

/**
 * Enrolls `key` in `facility` of the relay serving folder `data` on `port`, the way a device does:
 * a one-time token from the folder, then `POST /enroll` (tests only).
 *
 * @throws Error when the relay does not answer 201 with a valid enrollment.
 */
export async function enrollOverHttp(opts: {
  readonly data: string;
  readonly port: number;
  readonly facility: FacilityId;
  readonly key: DeviceKeyPair;
  readonly name?: string;
}): Promise<EnrollResponse> {
  const { token } = await createEnrollmentToken(relayFolder(opts.data), opts.facility);
  const name = opts.name ?? `tablet ${opts.key.deviceId.slice(0, 6)}`;
  const res = await fetch(`http://127.0.0.1:${opts.port}/enroll`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(await makeEnrollRequest(opts.key, token, name)),
  });
  const body: unknown = await res.json();
  if (res.status !== 201) throw new Error(`enroll answered ${res.status}: ${JSON.stringify(body)}`);
  const parsed = parseEnrollResponse(body);
  if (!parsed.ok) throw parsed.error;
  return parsed.value;
}

/**
 * A new device enrolled over HTTP in `facility` of the relay serving folder `data` on `port`, added
 * to `roster`, with its own log on memory storage trusting the relay (tests only). It dials the
 * relay once `connect` is called (at once unless `connectLater`).
 */
export async function enrolledDevice(opts: {
  readonly data: string;
  readonly port: number;
  readonly relay: DeviceId;
  readonly facility: FacilityId;
  readonly roster: TestRoster;
  readonly name?: string;
  readonly segmentSize?: number;
  readonly connectLater?: boolean;
}): Promise<{ readonly log: DeviceLog; readonly key: DeviceKeyPair; readonly connect: () => void }> {
  const { data, port, relay, facility, roster } = opts;
  const key = await generateDeviceKey();
  await enrollOverHttp({
    data,
    port,
    facility,
    key,
    ...(opts.name === undefined ? {} : { name: opts.name }),
  });
  roster.add(key.deviceId);
  const log = await DeviceLog.open({
    facility,
    key,
    eventStore: new MemoryEventStore(),
    storage: new MemoryStorageAdapter(),
    roster,
    relay,
    ...(opts.segmentSize === undefined ? {} : { segmentSize: opts.segmentSize }),
  });
  const connect = (): void => log.addNetworkAdapter(relayClient({ port, relay, key, facility, roster }));
  if (opts.connectLater !== true) connect();
  return { log, key, connect };
}

/**
 * {@link enrolledDevice} with a relay from {@link startTestRelay}`(folder, roster)`: enrolled in
 * `facility` under `name`, dialling that relay.
 */
export function enrolledWith(
  relay: Relay,
  folder: string,
  roster: TestRoster,
  opts: {
    readonly facility: FacilityId;
    readonly name?: string;
    readonly segmentSize?: number;
    readonly connectLater?: boolean;
  },
): ReturnType<typeof enrolledDevice> {
  return enrolledDevice({ data: join(folder, 'relay'), port: relay.port, relay: relay.id, roster, ...opts });
}

/**
 * A client adapter that dials the relay on `port` as `key`, expecting the relay's id, with a short
 * reconnect backoff (tests only): add it to a device's log.
 */
export function relayClient(opts: {
  readonly port: number;
  readonly relay: DeviceId;
  readonly key: DeviceKeyPair;
  readonly facility: FacilityId;
  readonly roster: ConstructorParameters<typeof WebSocketClientAdapter>[0]['roster'];
}): WebSocketClientAdapter {
  return new WebSocketClientAdapter({
    url: `ws://127.0.0.1:${opts.port}`,
    identity: opts.key,
    facility: opts.facility,
    roster: opts.roster,
    expectedPeer: opts.relay,
    backoff: { baseMs: 20, maxMs: 200 },
  });
}

/** A draft registering `patientId` (national id `N-<patientId>`). */
export const registration = (patientId: string, familyName = 'Mensah') => ({
  type: 'PatientRegistered',
  data: {
    patientId,
    nationalId: `N-${patientId}`,
    givenName: 'Ama',
    familyName,
    birthDate: '2026-01-10',
    sex: 'female',
  },
});

/** A draft receiving `quantity` BCG doses of `lot`. */
export const stock = (lot: string, quantity: number) => ({
  type: 'StockReceived',
  data: { lot, antigen: 'BCG', quantity, expiry: '2030-01-01' },
});

/** A draft giving `patientId` BCG dose 1 from `lot`. */
export const bcg = (patientId: string, lot: string) => ({
  type: 'VaccinationAdministered',
  data: { patientId, antigen: 'BCG', dose: 1, lot, date: '2026-11-20' },
});

/**
 * Every verdict about `target` stated by `events` (a `Verdict`, or an `AcceptedVerdicts` naming
 * it), with the event stating it; only those signed by `signer` when given.
 */
export function verdictsAbout(
  events: Iterable<SignedEvent>,
  target: EventId,
  signer?: DeviceId,
): { event: SignedEvent; verdict: VerdictData }[] {
  return [...events].flatMap((event) =>
    signer !== undefined && event.device !== signer
      ? []
      : verdictsIn(event)
          .filter((v) => v.target === target)
          .map((verdict) => ({ event, verdict })),
  );
}

/** Polls `probe` every 25 ms until it returns a value other than undefined or false, which it resolves to. */
export async function eventually<T>(
  probe: () => T | undefined | false,
  what: string,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
