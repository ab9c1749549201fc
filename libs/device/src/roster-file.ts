import { stat } from 'node:fs/promises';
import {
  isDeviceId,
  isFacilityId,
  parseRosterUpdatedData,
  parseSignedEvent,
  SystemEventType,
  verifyEvent,
  type DeviceId,
  type FacilityId,
  type SignedEvent,
} from '@accord/protocol';
import { deviceError, DeviceErrorCode } from './errors.js';
import { isErrno, readJsonFile, withFileLock, writeJsonAtomic } from '@accord/storage-level';

/** One device of a facility's roster. */
export interface RosterEntry {
  readonly id: DeviceId;
  readonly name: string;
  readonly revoked: boolean;
}

/**
 * The content of a roster file: who belongs to the facility.
 *
 * @remarks Two kinds: a file shared by the facility's devices (edited by `initDevice` and by
 * hand), or a device's own copy of the roster its relay distributes, which carries the
 * relay-signed `RosterUpdated` event it was taken from (`event`) and that event's `version`
 * (both or neither; `devices` must then equal the event's list). `relay` is the relay's
 * device id: its verdicts count, and it is a member of the facility (never revoked).
 */
export interface RosterData {
  readonly facility: FacilityId;
  readonly relay?: DeviceId;
  /** The `version` of {@link RosterData.event} (relay-distributed rosters only). */
  readonly version?: number;
  /** The relay-signed `RosterUpdated` event this content comes from, so it can be re-verified. */
  readonly event?: SignedEvent;
  readonly devices: readonly RosterEntry[];
}

function invalid(message: string, path?: string): never {
  throw deviceError(
    DeviceErrorCode.DEVICE_ROSTER_INVALID,
    path === undefined ? message : `${path}: ${message}`,
    path === undefined ? {} : { details: { path } },
  );
}

/**
 * Validates the parsed JSON of a roster file.
 *
 * @throws AccordError `DEVICE_ROSTER_INVALID` naming the first problem.
 */
export function parseRoster(value: unknown, path?: string): RosterData {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    invalid('roster must be a JSON object', path);
  const { facility, relay, devices, version, event } = value as Record<string, unknown>;
  if (typeof facility !== 'string' || !isFacilityId(facility))
    invalid('roster.facility must be a facility id', path);
  if (relay !== undefined && (typeof relay !== 'string' || !isDeviceId(relay)))
    invalid('roster.relay must be a device id', path);
  if ((version === undefined) !== (event === undefined))
    invalid('roster.version and roster.event go together', path);
  if (version !== undefined && (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1))
    invalid('roster.version must be a positive integer', path);
  if (!Array.isArray(devices)) invalid('roster.devices must be an array', path);
  const seen = new Set<string>();
  const entries: RosterEntry[] = [];
  for (const [i, d] of (devices as unknown[]).entries()) {
    if (typeof d !== 'object' || d === null) invalid(`roster.devices[${i}] must be an object`, path);
    const { id, name, revoked } = d as Record<string, unknown>;
    if (typeof id !== 'string' || !isDeviceId(id))
      invalid(`roster.devices[${i}].id must be a device id`, path);
    if (typeof name !== 'string') invalid(`roster.devices[${i}].name must be a string`, path);
    if (revoked !== undefined && typeof revoked !== 'boolean')
      invalid(`roster.devices[${i}].revoked must be a boolean`, path);
    if (seen.has(id)) invalid(`roster.devices[${i}]: device ${id} is listed twice`, path);
    seen.add(id);
    entries.push({ id, name, revoked: revoked === true });
  }
  if (event === undefined) return { facility, ...(relay === undefined ? {} : { relay }), devices: entries };
  if (relay === undefined) invalid('a roster with a signed event must name its relay', path);
  const signed = parseSignedEvent(event);
  if (!signed.ok) invalid(`roster.event is not a signed event: ${signed.error.message}`, path);
  const fromEvent = rosterFromEvent(signed.value, { relay, facility }, path);
  if (fromEvent.version !== version) invalid('roster.version differs from the signed event', path);
  if (!sameDevices(entries, fromEvent.devices)) invalid('roster.devices differ from the signed event', path);
  return fromEvent;
}

function sameDevices(a: readonly RosterEntry[], b: readonly RosterEntry[]): boolean {
  return (
    a.length === b.length &&
    a.every((d, i) => d.id === b[i]?.id && d.name === b[i]?.name && d.revoked === b[i]?.revoked)
  );
}

/** What a relay-signed roster event must match. */
export interface RelayRosterExpectation {
  /** The relay's device id: the event's signer. */
  readonly relay: DeviceId;
  /** The facility, when already known. */
  readonly facility?: FacilityId;
}

/**
 * The roster content of a relay's `RosterUpdated` event, after checking its shape (not its signature).
 *
 * @throws AccordError `DEVICE_ROSTER_INVALID` when the event is not a `RosterUpdated` of `expected.relay`
 * (and `expected.facility`) or its data is malformed.
 */
export function rosterFromEvent(
  event: SignedEvent,
  expected: RelayRosterExpectation,
  path?: string,
): RosterData & { readonly version: number; readonly event: SignedEvent; readonly relay: DeviceId } {
  if (event.type !== SystemEventType.RosterUpdated)
    invalid(`roster event has type ${event.type}, not ${SystemEventType.RosterUpdated}`, path);
  if (event.device !== expected.relay)
    invalid(`roster event is signed by ${event.device}, not by the relay ${expected.relay}`, path);
  if (expected.facility !== undefined && event.facility !== expected.facility)
    invalid(`roster event belongs to facility ${event.facility}, not ${expected.facility}`, path);
  const data = parseRosterUpdatedData(event.data);
  if (!data.ok) invalid(`roster event data is malformed: ${data.error.message}`, path);
  return {
    facility: event.facility,
    relay: expected.relay,
    version: data.value.version,
    event,
    devices: data.value.devices.map((d) => ({ id: d.id, name: d.name, revoked: d.revoked })),
  };
}

/**
 * {@link rosterFromEvent} plus the relay's signature check: the roster a device may write to its file.
 *
 * @throws AccordError `DEVICE_ROSTER_INVALID` (wrong shape, signer, facility, or a signature that does not verify).
 */
export async function verifiedRelayRoster(
  event: SignedEvent,
  expected: RelayRosterExpectation,
  path?: string,
): Promise<ReturnType<typeof rosterFromEvent>> {
  const roster = rosterFromEvent(event, expected, path);
  if (!(await verifyEvent(event))) invalid('the roster event’s signature does not verify', path);
  return roster;
}

/**
 * Reads and validates a roster file; undefined when it does not exist.
 *
 * @throws AccordError `DEVICE_ROSTER_INVALID` when it is not valid JSON or not a roster.
 */
export async function readRosterFile(path: string): Promise<RosterData | undefined> {
  let raw: unknown;
  try {
    raw = await readJsonFile(path);
  } catch (cause) {
    throw deviceError(DeviceErrorCode.DEVICE_ROSTER_INVALID, `${path}: cannot read roster`, {
      cause,
      details: { path },
    });
  }
  return raw === undefined ? undefined : parseRoster(raw, path);
}

/**
 * Adds (or renames) a device in the roster file, creating the file when missing.
 *
 * @remarks Safe against concurrent callers (other processes initializing devices of the
 * same facility): the read-modify-write runs under a lock file and the new content is
 * written atomically (temp file + rename). Idempotent for an already-listed device.
 * @throws AccordError `DEVICE_ROSTER_INVALID` when the file is malformed or belongs to another facility.
 */
export async function addToRoster(
  path: string,
  facility: FacilityId,
  entry: { id: DeviceId; name: string },
): Promise<RosterData> {
  return withFileLock(path, async () => {
    const current = (await readRosterFile(path)) ?? { facility, devices: [] };
    if (current.facility !== facility) {
      invalid(`roster belongs to facility ${current.facility}, not ${facility}`, path);
    }
    if (current.event !== undefined) {
      invalid(`roster is distributed by the relay ${current.relay ?? '?'}: enroll through the relay`, path);
    }
    const others = current.devices.filter((d) => d.id !== entry.id);
    const previous = current.devices.find((d) => d.id === entry.id);
    const next: RosterData = {
      ...current,
      devices: [...others, { id: entry.id, name: entry.name, revoked: previous?.revoked ?? false }],
    };
    await writeJsonAtomic(path, next);
    return next;
  });
}

/** Options of {@link RosterFile.open}. */
export interface RosterFileOptions {
  /** How often the file is checked for changes, in ms (default 500; 0 disables watching). */
  readonly pollMs?: number;
  /** Called when a changed file cannot be used (the previous content stays in force). */
  readonly onError?: (error: Error) => void;
  /** Called after a change was loaded. */
  readonly onChange?: (roster: RosterData) => void;
  /**
   * The relay whose signed roster this file must hold (a relay-enrolled device). The content is
   * then only taken when it carries a `RosterUpdated` event of this relay whose signature verifies,
   * and a reload never goes back to a lower version; {@link RosterFile.adopt} writes newer ones.
   */
  readonly relay?: DeviceId;
}

/**
 * A roster file kept in memory and re-read when it changes, answering the log's and the
 * network adapters' membership questions.
 *
 * @remarks A malformed update is reported through `onError` and ignored, so a bad edit
 * never locks the facility out; the last good content stays in force.
 */
export class RosterFile {
  readonly path: string;
  readonly #facility: FacilityId;
  readonly #options: RosterFileOptions;
  #data: RosterData;
  #stamp: string;
  #members: Map<string, RosterEntry>;
  #timer: NodeJS.Timeout | undefined;
  #reloading: Promise<boolean> | undefined;
  /** Reloads and adoptions run one at a time, so a slow read never undoes a newer write. */
  #queue: Promise<unknown> = Promise.resolve();
  readonly #listeners = new Set<(roster: RosterData) => void>();

  private constructor(
    path: string,
    facility: FacilityId,
    data: RosterData,
    stamp: string,
    options: RosterFileOptions,
  ) {
    this.path = path;
    this.#facility = facility;
    this.#data = data;
    this.#members = membersOf(data);
    this.#stamp = stamp;
    this.#options = options;
    const pollMs = options.pollMs ?? 500;
    if (pollMs > 0) {
      this.#timer = setInterval(() => {
        void this.reload();
      }, pollMs);
      // Watching must not keep the process alive.
      this.#timer.unref();
    }
  }

  /**
   * Loads the roster of `facility` from `path` and starts watching it.
   *
   * @throws AccordError `DEVICE_ROSTER_INVALID` when the file is missing, malformed or of another facility.
   */
  static async open(
    path: string,
    facility: FacilityId,
    options: RosterFileOptions = {},
  ): Promise<RosterFile> {
    const stamp = await fileStamp(path);
    const data = await readRosterFile(path);
    if (data === undefined) invalid('roster file does not exist', path);
    if (data.facility !== facility)
      invalid(`roster belongs to facility ${data.facility}, not ${facility}`, path);
    await checkRelaySigned(data, options.relay, path);
    return new RosterFile(path, facility, data, stamp, options);
  }

  /** The roster currently in force. */
  get data(): RosterData {
    return this.#data;
  }

  /**
   * The membership of `device`, or undefined when it is not listed.
   *
   * @remarks The roster's relay is a member of the facility (never revoked) even though it is
   * not listed, so that the log accepts its verdicts and rosters and the network lets it connect.
   */
  lookup(
    device: DeviceId | string,
  ): { readonly facility: FacilityId; readonly revoked: boolean } | undefined {
    const entry = this.#members.get(device);
    if (entry !== undefined) return { facility: this.#data.facility, revoked: entry.revoked };
    if (this.#data.relay !== undefined && device === this.#data.relay)
      return { facility: this.#data.facility, revoked: false };
    return undefined;
  }

  /**
   * Re-reads the file if it changed since the last load; true when new content was taken.
   *
   * @remarks Never rejects: problems go to `onError`. Concurrent calls share one read.
   */
  reload(): Promise<boolean> {
    this.#reloading ??= this.#exclusive(() => this.#doReload()).finally(() => {
      this.#reloading = undefined;
    });
    return this.#reloading;
  }

  /**
   * Takes a newer roster from the relay: when `event` is a `RosterUpdated` signed by the
   * configured relay (`options.relay`) with a higher version than the one in force, it is
   * verified, written to the file atomically and loaded (change listeners run). True when taken.
   *
   * @remarks Anything else (no relay configured, another type or signer, an older or equal
   * version) is ignored: false. Calls are serialized with reloads.
   * @throws AccordError `DEVICE_ROSTER_INVALID` when the relay's event is malformed, of another
   * facility or its signature does not verify (the roster in force stays).
   */
  adopt(event: SignedEvent): Promise<boolean> {
    const relay = this.#options.relay;
    if (relay === undefined || event.type !== SystemEventType.RosterUpdated || event.device !== relay) {
      return Promise.resolve(false);
    }
    return this.#exclusive(async () => {
      const next = rosterFromEvent(event, { relay, facility: this.#facility });
      if (next.version <= (this.#data.version ?? 0)) return false;
      await verifiedRelayRoster(event, { relay, facility: this.#facility });
      await writeJsonAtomic(this.path, next);
      return this.#doReload();
    });
  }

  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #doReload(): Promise<boolean> {
    try {
      const stamp = await fileStamp(this.path);
      if (stamp === this.#stamp) return false;
      const data = await readRosterFile(this.path);
      this.#stamp = stamp;
      if (data === undefined) invalid('roster file disappeared', this.path);
      if (data.facility !== this.#facility)
        invalid(`roster now names facility ${data.facility}, not ${this.#facility}`, this.path);
      if (JSON.stringify(data) === JSON.stringify(this.#data)) return false;
      await checkRelaySigned(data, this.#options.relay, this.path);
      if (this.#options.relay !== undefined && (data.version ?? 0) <= (this.#data.version ?? 0)) {
        invalid(
          `roster version ${data.version ?? 0} is not newer than ${this.#data.version ?? 0}`,
          this.path,
        );
      }
      this.#data = data;
      this.#members = membersOf(data);
      this.#options.onChange?.(data);
      for (const listener of this.#listeners) {
        try {
          listener(data);
        } catch (e) {
          this.#options.onError?.(e instanceof Error ? e : new Error(String(e)));
        }
      }
      return true;
    } catch (e) {
      this.#options.onError?.(e instanceof Error ? e : new Error(String(e)));
      return false;
    }
  }

  /** Calls `listener` after every change that was loaded; returns the function that removes it. */
  onChange(listener: (roster: RosterData) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Stops watching the file. */
  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

function membersOf(data: RosterData): Map<string, RosterEntry> {
  return new Map(data.devices.map((d) => [d.id, d]));
}

/** With a relay required: the content must be that relay's roster, with a signature that verifies. */
async function checkRelaySigned(data: RosterData, relay: DeviceId | undefined, path: string): Promise<void> {
  if (relay === undefined) return;
  if (data.event === undefined || data.relay !== relay) {
    invalid(`roster must hold a RosterUpdated event signed by the relay ${relay}`, path);
  }
  await verifiedRelayRoster(data.event, { relay, facility: data.facility }, path);
}

async function fileStamp(path: string): Promise<string> {
  try {
    const s = await stat(path, { bigint: true });
    return `${s.ino}:${s.size}:${s.mtimeNs}`;
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return 'missing';
    throw e;
  }
}
