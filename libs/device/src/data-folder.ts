import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  AccordError,
  ErrorCode,
  exportDeviceKey,
  generateDeviceKey,
  importDeviceKey,
  isDeviceId,
  isFacilityId,
  type DeviceId,
  type DeviceKeyPair,
  type FacilityId,
} from '@accord/protocol';
import { isTimeZone } from '@accord/domain';
import { deviceError, DeviceErrorCode } from './errors.js';
import {
  pathExists,
  readJsonFile,
  syncDir,
  writeJsonAtomic,
  writeJsonExclusive,
} from '@accord/storage-level';
import { isOwnSeqMarkState, type OwnSeqMark, type OwnSeqMarkState } from '@accord/log';
import { enrollUrl, enrollWithRelay, isEnrollToken } from './enrollment.js';
import { addToRoster } from './roster-file.js';

/** Where each piece of a device's data folder lives. */
export interface DataFolderLayout {
  readonly dir: string;
  /** `device.json`: facility, name, device id, creation time, roster path. */
  readonly deviceFile: string;
  /** `key.json`: the device's Ed25519 key ({@link StoredDeviceKey}), mode 0600. */
  readonly keyFile: string;
  /** `roster.json`: the default roster (no shared `--roster FILE`), or the relay's roster. */
  readonly defaultRoster: string;
  /** `db/`: the LevelDB database (events and Automerge documents). */
  readonly db: string;
  /** `own-seq.json`: the own-sequence high-water mark, kept outside LevelDB ({@link fileOwnSeqMark}). */
  readonly ownSeqMark: string;
  /** `quarantine/`: damaged databases set aside at start-up, one `<timestamp>/db` each. */
  readonly quarantine: string;
}

/** The layout of the data folder `dir` (resolved to an absolute path). */
export function dataFolder(dir: string): DataFolderLayout {
  const abs = resolve(dir);
  return {
    dir: abs,
    deviceFile: join(abs, 'device.json'),
    keyFile: join(abs, 'key.json'),
    defaultRoster: join(abs, 'roster.json'),
    db: join(abs, 'db'),
    ownSeqMark: join(abs, 'own-seq.json'),
    quarantine: join(abs, 'quarantine'),
  };
}

/** The content of `device.json`. */
export interface DeviceConfig {
  readonly v: 1;
  readonly facility: FacilityId;
  readonly name: string;
  readonly device: DeviceId;
  /** ISO 8601 time of `accord device init`. */
  readonly created: string;
  /** Absolute path of the roster file this device was enrolled in. */
  readonly roster: string;
  /** The relay this device enrolled with (absent for a device of a shared roster file). */
  readonly relay?: RelayConfig;
  /**
   * The facility's IANA time zone (`Africa/Nairobi`): business dates, such as the queue's and the
   * appointments' "today", are calendar dates there. Absent: UTC.
   */
  readonly timeZone?: string;
}

/** The relay of a relay-enrolled device, as recorded in `device.json`. */
export interface RelayConfig {
  /** The relay's `ws://host:port` URL, dialed by the agent. */
  readonly url: string;
  /** The relay's device id: the agent requires the relay to prove it, and trusts its signatures. */
  readonly id: DeviceId;
}

/** Options of {@link initDevice}. */
export interface InitDeviceOptions {
  /** The data folder (created when missing). */
  readonly data: string;
  /** The facility: required without a relay; with one, optional and must match the relay's answer. */
  readonly facility?: string;
  readonly name: string;
  /** A roster file shared by the facility's devices (default `DATA/roster.json`); not with `relay`. */
  readonly roster?: string;
  /** Enroll with this relay (`ws://host:port`), with `token`: both or neither. */
  readonly relay?: string;
  /** The one-time enrollment token from the relay's administrator (with `relay`). */
  readonly token?: string;
  /** The relay's id (with `relay`): the relay must answer as this one (see `enrollWithRelay`). */
  readonly relayId?: string;
  /** Time allowed for the enrollment exchange in ms (default 15 s). */
  readonly enrollTimeoutMs?: number;
  /** Wall clock in ms (default Date.now). */
  readonly clock?: () => number;
  /** The facility's IANA time zone for business dates (default: none, i.e. UTC). */
  readonly timeZone?: string;
}

const MAX_NAME = 100;
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Enrolls a new device: creates its key (`key.json`, mode 0600), enters it in a roster and
 * writes `device.json`.
 *
 * @remarks Without `relay`, the device is added to the shared roster file (`roster`, default
 * `DATA/roster.json`). With `relay` and `token`, it enrolls with the relay (`POST /enroll`), checks
 * the relay-signed roster it gets back (see `enrollWithRelay`) and writes it to `DATA/roster.json`,
 * recording `relay: {url, id}` and the relay's facility in `device.json`.
 *
 * `device.json` is written last: it marks the folder as initialized. The key file is published
 * with an exclusive link first, so two concurrent inits of one folder cannot both succeed. When
 * a step after that fails, the key (and a relay roster already written) is removed again before
 * the error is thrown: the folder can be initialized afresh, with a new key. (Only a process
 * killed mid-way leaves a `key.json` behind, which a new init refuses: delete it by hand.)
 * Refuses a folder that already has a key or a device.json.
 * @throws AccordError `DEVICE_ALREADY_INITIALIZED`, `DEVICE_BAD_REQUEST` (bad facility, name, relay
 * URL, relay id or token; `relay` without `token` or the reverse; no facility without a relay; `roster` with
 * `relay`), `DEVICE_ROSTER_INVALID` (roster malformed or of another facility),
 * `DEVICE_ENROLL_FAILED` (the relay refused, was unreachable or answered something untrustworthy).
 */
export async function initDevice(
  options: InitDeviceOptions,
): Promise<{ deviceId: DeviceId; config: DeviceConfig }> {
  const { facility, name, relay, token } = options;
  const bad = (message: string, details: Record<string, unknown>): never => {
    throw new AccordError(ErrorCode.DEVICE_BAD_REQUEST, message, { details });
  };
  if (facility !== undefined && !isFacilityId(facility)) {
    bad('facility must be 1-64 letters, digits, "-" or "_"', { facility });
  }
  if (name.trim() === '' || name.length > MAX_NAME || CONTROL.test(name)) {
    bad(`name must be 1-${MAX_NAME} printable characters`, { name });
  }
  if ((relay === undefined) !== (token === undefined)) {
    bad('relay and token go together: give both to enroll with a relay, or neither', {});
  }
  if (relay === undefined && options.relayId !== undefined) bad('relayId needs relay and token', {});
  if (relay === undefined && facility === undefined) {
    bad('facility is required (or relay and token to enroll with a relay)', {});
  }
  if (options.timeZone !== undefined && !isTimeZone(options.timeZone)) {
    bad('time zone must be an IANA time zone name such as Africa/Nairobi', { timeZone: options.timeZone });
  }
  if (relay !== undefined) {
    enrollUrl(relay);
    if (token === undefined || !isEnrollToken(token)) bad('token must be an enrollment token (acc1.…)', {});
    if (options.relayId !== undefined && !isDeviceId(options.relayId)) {
      bad('relayId must be a relay id (as printed by accord relay enroll)', { relayId: options.relayId });
    }
    if (options.roster !== undefined) {
      bad('a relay-enrolled device keeps the relay’s roster in its data folder: no roster file', {
        roster: options.roster,
      });
    }
  }
  const layout = dataFolder(options.data);
  await mkdir(layout.dir, { recursive: true, mode: 0o700 });
  for (const f of [layout.deviceFile, layout.keyFile]) {
    if (await pathExists(f)) {
      throw new AccordError(
        ErrorCode.DEVICE_ALREADY_INITIALIZED,
        `${layout.dir} is already initialized (${f} exists)`,
        { details: { data: layout.dir } },
      );
    }
  }
  const key = await generateDeviceKey();
  await publishKey(layout, key);
  let wroteRoster = false;
  const rosterPath = resolve(options.roster ?? layout.defaultRoster);
  try {
    let config: DeviceConfig;
    const base = {
      v: 1 as const,
      name,
      device: key.deviceId,
      created: new Date((options.clock ?? Date.now)()).toISOString(),
      roster: rosterPath,
      ...(options.timeZone === undefined ? {} : { timeZone: options.timeZone }),
    };
    if (relay !== undefined && token !== undefined) {
      const enrolled = await enrollWithRelay({
        relay,
        token,
        key,
        name,
        ...(facility === undefined ? {} : { facility: facility as FacilityId }),
        ...(options.relayId === undefined ? {} : { relayId: options.relayId as DeviceId }),
        ...(options.enrollTimeoutMs === undefined ? {} : { timeoutMs: options.enrollTimeoutMs }),
      });
      await writeJsonAtomic(rosterPath, enrolled.roster);
      wroteRoster = true;
      config = { ...base, facility: enrolled.facility, relay: { url: relay, id: enrolled.relay } };
    } else {
      await addToRoster(rosterPath, facility as FacilityId, { id: key.deviceId, name });
      config = { ...base, facility: facility as FacilityId };
    }
    await writeJsonAtomic(layout.deviceFile, config);
    return { deviceId: key.deviceId, config };
  } catch (e) {
    // Leave the folder as it was: no device.json, no key, no relay roster.
    await rm(layout.keyFile, { force: true });
    if (wroteRoster) await rm(rosterPath, { force: true });
    await syncDir(layout.dir);
    throw e;
  }
}

/** Publishes the key exclusively: exactly one key ever becomes the device's, even when two inits race. */
async function publishKey(layout: DataFolderLayout, key: DeviceKeyPair): Promise<void> {
  if (!(await writeJsonExclusive(layout.keyFile, await exportDeviceKey(key), 0o600))) {
    throw new AccordError(
      ErrorCode.DEVICE_ALREADY_INITIALIZED,
      `${layout.dir} is already initialized (key.json exists)`,
      {
        details: { data: layout.dir },
      },
    );
  }
}

/** A device's identity, loaded from its data folder. */
export interface LoadedDevice {
  readonly layout: DataFolderLayout;
  readonly config: DeviceConfig;
  readonly key: DeviceKeyPair;
}

/**
 * Loads `device.json` and `key.json` of an initialized data folder.
 *
 * @throws AccordError `DEVICE_NOT_INITIALIZED` (no device.json), `DEVICE_CONFIG_INVALID`
 * (malformed files, key not matching the device id, key file readable by others).
 */
export async function loadDevice(dir: string): Promise<LoadedDevice> {
  const layout = dataFolder(dir);
  let raw: unknown;
  try {
    raw = await readJsonFile(layout.deviceFile);
  } catch (cause) {
    throw deviceError(DeviceErrorCode.DEVICE_CONFIG_INVALID, `${layout.deviceFile} is not valid JSON`, {
      cause,
    });
  }
  if (raw === undefined) {
    throw new AccordError(
      ErrorCode.DEVICE_NOT_INITIALIZED,
      `${layout.dir} is not an initialized device folder (run: accord device init)`,
      { details: { data: layout.dir } },
    );
  }
  const config = parseDeviceConfig(raw, layout.deviceFile);
  let keyText: string;
  try {
    const s = await stat(layout.keyFile);
    if ((s.mode & 0o077) !== 0) {
      throw deviceError(
        DeviceErrorCode.DEVICE_CONFIG_INVALID,
        `${layout.keyFile} must not be readable by others (chmod 600)`,
      );
    }
    keyText = await readFile(layout.keyFile, 'utf8');
  } catch (cause) {
    if (cause instanceof AccordError) throw cause;
    throw deviceError(DeviceErrorCode.DEVICE_CONFIG_INVALID, `cannot read ${layout.keyFile}`, { cause });
  }
  let key: DeviceKeyPair;
  try {
    key = await importDeviceKey(JSON.parse(keyText) as unknown);
  } catch (cause) {
    throw deviceError(
      DeviceErrorCode.DEVICE_CONFIG_INVALID,
      `${layout.keyFile} does not hold a valid device key`,
      { cause },
    );
  }
  if (key.deviceId !== config.device) {
    throw deviceError(
      DeviceErrorCode.DEVICE_CONFIG_INVALID,
      `${layout.keyFile} belongs to ${key.deviceId}, not ${config.device}`,
    );
  }
  return { layout, config, key };
}

function parseDeviceConfig(raw: unknown, path: string): DeviceConfig {
  const bad = (what: string): never => {
    throw deviceError(DeviceErrorCode.DEVICE_CONFIG_INVALID, `${path}: ${what}`);
  };
  if (typeof raw !== 'object' || raw === null) return bad('must be a JSON object');
  const { v, facility, name, device, created, roster, relay, timeZone } = raw as Record<string, unknown>;
  if (v !== 1) bad('unsupported version');
  if (typeof facility !== 'string' || !isFacilityId(facility)) return bad('facility must be a facility id');
  if (typeof name !== 'string') return bad('name must be a string');
  if (typeof device !== 'string' || !isDeviceId(device)) return bad('device must be a device id');
  if (typeof created !== 'string') return bad('created must be a string');
  if (typeof roster !== 'string') return bad('roster must be a path');
  if (timeZone !== undefined && !isTimeZone(timeZone)) return bad('timeZone must be an IANA time zone name');
  const base = {
    v: 1 as const,
    facility,
    name,
    device,
    created,
    roster,
    ...(timeZone === undefined ? {} : { timeZone }),
  };
  if (relay === undefined) return base;
  if (typeof relay !== 'object' || relay === null) return bad('relay must be {url, id}');
  const { url, id } = relay as Record<string, unknown>;
  if (typeof url !== 'string' || !/^wss?:\/\//.test(url)) return bad('relay.url must be a ws:// URL');
  if (typeof id !== 'string' || !isDeviceId(id)) return bad('relay.id must be a device id');
  return { ...base, relay: { url, id } };
}

/**
 * The device's {@link OwnSeqMark} in a small JSON file (`own-seq.json` of the data folder), apart
 * from LevelDB: a store that loses its newest writes cannot take the mark with it.
 *
 * @remarks Each write goes to a temporary file, is fsynced, renamed over the old one, and the
 * folder is fsynced, before it resolves. The log writes it once per block of reserved numbers,
 * shortly after acknowledgements, and at a clean close. A malformed file makes `read` throw
 * (the log then treats the start as suspicious and checks its history with peers).
 */
export function fileOwnSeqMark(path: string): OwnSeqMark {
  return {
    async read(): Promise<OwnSeqMarkState | undefined> {
      const raw = await readJsonFile(path);
      if (raw === undefined) return undefined;
      if (!isOwnSeqMarkState(raw) || (raw as { v?: unknown }).v !== 1) {
        throw deviceError(DeviceErrorCode.DEVICE_CONFIG_INVALID, `${path} is not an own-sequence mark`);
      }
      return { reserved: raw.reserved, acked: raw.acked, clean: raw.clean };
    },
    write: (state) => writeJsonAtomic(path, { v: 1, ...state }, 0o600),
  };
}
