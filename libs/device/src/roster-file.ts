import { stat } from 'node:fs/promises';
import { isDeviceId, isFacilityId, type DeviceId, type FacilityId } from '@accord/protocol';
import { deviceError, DeviceErrorCode } from './errors.js';
import { isErrno, readJsonFile, withFileLock, writeJsonAtomic } from './json-file.js';

/** One device of a facility's roster. */
export interface RosterEntry {
  readonly id: DeviceId;
  readonly name: string;
  readonly revoked: boolean;
}

/**
 * The content of a roster file: who belongs to the facility.
 *
 * @remarks Shared by the facility's devices until the relay distributes membership.
 * `relay` (optional) is the relay's device id, whose verdicts the log trusts.
 */
export interface RosterData {
  readonly facility: FacilityId;
  readonly relay?: DeviceId;
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
  const { facility, relay, devices } = value as Record<string, unknown>;
  if (typeof facility !== 'string' || !isFacilityId(facility))
    invalid('roster.facility must be a facility id', path);
  if (relay !== undefined && (typeof relay !== 'string' || !isDeviceId(relay)))
    invalid('roster.relay must be a device id', path);
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
  return { facility, ...(relay === undefined ? {} : { relay }), devices: entries };
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
  #timer: NodeJS.Timeout | undefined;
  #reloading: Promise<boolean> | undefined;
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
    return new RosterFile(path, facility, data, stamp, options);
  }

  /** The roster currently in force. */
  get data(): RosterData {
    return this.#data;
  }

  /** The membership of `device`, or undefined when it is not listed. */
  lookup(
    device: DeviceId | string,
  ): { readonly facility: FacilityId; readonly revoked: boolean } | undefined {
    const entry = this.#data.devices.find((d) => d.id === device);
    return entry === undefined ? undefined : { facility: this.#data.facility, revoked: entry.revoked };
  }

  /**
   * Re-reads the file if it changed since the last load; true when new content was taken.
   *
   * @remarks Never rejects: problems go to `onError`. Concurrent calls share one read.
   */
  reload(): Promise<boolean> {
    this.#reloading ??= this.#doReload().finally(() => {
      this.#reloading = undefined;
    });
    return this.#reloading;
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
      this.#data = data;
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

async function fileStamp(path: string): Promise<string> {
  try {
    const s = await stat(path, { bigint: true });
    return `${s.ino}:${s.size}:${s.mtimeNs}`;
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return 'missing';
    throw e;
  }
}
