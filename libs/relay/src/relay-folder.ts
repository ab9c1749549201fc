import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
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
import { isErrno, pathExists, readJsonFile, writeJsonExclusive } from '@accord/storage-level';

/** Where each piece of a relay's data folder lives. */
export interface RelayFolderLayout {
  readonly dir: string;
  /** `relay.json`: the relay's id and creation time ({@link RelayConfig}). */
  readonly configFile: string;
  /** `key.json`: the relay's Ed25519 key (a `StoredDeviceKey`), mode 0600. */
  readonly keyFile: string;
  /** `admin.json`: the scrypt hash of the admin password, mode 0600. */
  readonly adminFile: string;
  /** `tokens/`: one file per enrollment token, named by the token's SHA-256. */
  readonly tokensDir: string;
  /** `facilities/`: one folder per facility. */
  readonly facilitiesDir: string;
  /** `facilities/<f>/`: the facility's folder. */
  facilityDir(facility: FacilityId): string;
  /** `facilities/<f>/db/`: the facility's LevelDB database (owned by the running relay). */
  facilityDb(facility: FacilityId): string;
  /** `facilities/<f>/members.json`: the facility's roster, the relay's source of truth. */
  membersFile(facility: FacilityId): string;
}

/**
 * The layout of the relay data folder `dir` (resolved to an absolute path). Touches no file.
 *
 * @remarks Everything an admin command edits (key, admin password, tokens, rosters) lives in
 * plain files, never in LevelDB: the running relay holds the LevelDB locks, and the admin
 * commands must work whether or not it runs.
 */
export function relayFolder(dir: string): RelayFolderLayout {
  const abs = resolve(dir);
  const facilitiesDir = join(abs, 'facilities');
  const facilityDir = (facility: FacilityId): string => {
    // Facility ids are path segments: never let a malformed one escape the folder.
    if (!isFacilityId(facility)) {
      throw new AccordError(ErrorCode.RELAY_BAD_REQUEST, 'malformed facility id', { details: { facility } });
    }
    return join(facilitiesDir, facility);
  };
  return {
    dir: abs,
    configFile: join(abs, 'relay.json'),
    keyFile: join(abs, 'key.json'),
    adminFile: join(abs, 'admin.json'),
    tokensDir: join(abs, 'tokens'),
    facilitiesDir,
    facilityDir,
    facilityDb: (facility) => join(facilityDir(facility), 'db'),
    membersFile: (facility) => join(facilityDir(facility), 'members.json'),
  };
}

/** The content of `relay.json`. */
export interface RelayConfig {
  readonly v: 1;
  /** The relay's device id (its public key): devices trust verdicts and rosters signed by it. */
  readonly relay: DeviceId;
  /** ISO 8601 time the folder was created. */
  readonly created: string;
}

/** A relay data folder, opened: its layout, key and configuration. */
export interface OpenedRelayFolder {
  readonly layout: RelayFolderLayout;
  readonly key: DeviceKeyPair;
  readonly config: RelayConfig;
}

/** Options of {@link openRelayFolder}. */
export interface OpenRelayFolderOptions {
  /** Wall clock in ms, for `created` (default Date.now). */
  readonly clock?: () => number;
}

function configInvalid(message: string, cause?: unknown): AccordError {
  return new AccordError(ErrorCode.RELAY_CONFIG_INVALID, message, cause === undefined ? {} : { cause });
}

/**
 * Opens the relay data folder `dir`, creating it, its Ed25519 key (`key.json`, mode 0600) and
 * `relay.json` on first use.
 *
 * @remarks Idempotent and safe when several processes (the relay, admin commands) open a new
 * folder at once: the key and the config are published with an exclusive link, so exactly one key
 * ever becomes the relay's and every opener loads that one.
 * @throws AccordError `RELAY_CONFIG_INVALID` (malformed files, key readable by others, key not
 * matching `relay.json`).
 */
export async function openRelayFolder(
  dir: string,
  options: OpenRelayFolderOptions = {},
): Promise<OpenedRelayFolder> {
  const layout = relayFolder(dir);
  await mkdir(layout.dir, { recursive: true, mode: 0o700 });
  await mkdir(layout.tokensDir, { recursive: true, mode: 0o700 });
  await mkdir(layout.facilitiesDir, { recursive: true, mode: 0o700 });
  if (!(await pathExists(layout.keyFile))) {
    const fresh = await generateDeviceKey();
    await writeJsonExclusive(layout.keyFile, await exportDeviceKey(fresh), 0o600);
  }
  const key = await loadKey(layout.keyFile);
  let raw = await readConfig(layout.configFile);
  if (raw === undefined) {
    const config: RelayConfig = {
      v: 1,
      relay: key.deviceId,
      created: new Date((options.clock ?? Date.now)()).toISOString(),
    };
    await writeJsonExclusive(layout.configFile, config, 0o644);
    raw = await readConfig(layout.configFile);
  }
  const config = parseRelayConfig(raw, layout.configFile);
  if (config.relay !== key.deviceId) {
    throw configInvalid(
      `${layout.configFile} names relay ${config.relay} but ${layout.keyFile} holds ${key.deviceId}`,
    );
  }
  return { layout, key, config };
}

/**
 * Opens an existing relay data folder without creating anything.
 *
 * @throws AccordError `RELAY_NOT_INITIALIZED` when `relay.json` or `key.json` is missing,
 * `RELAY_CONFIG_INVALID` as {@link openRelayFolder}.
 */
export async function loadRelayFolder(dir: string): Promise<OpenedRelayFolder> {
  const layout = relayFolder(dir);
  if (!(await pathExists(layout.configFile)) || !(await pathExists(layout.keyFile))) {
    throw new AccordError(
      ErrorCode.RELAY_NOT_INITIALIZED,
      `${layout.dir} is not a relay data folder (run: accord relay --data ${layout.dir})`,
      { details: { data: layout.dir } },
    );
  }
  return openRelayFolder(dir);
}

/**
 * The facilities of the folder: sub-folders of `facilities/` with a valid id and a `members.json`,
 * sorted.
 */
export async function listFacilities(layout: RelayFolderLayout): Promise<FacilityId[]> {
  let entries;
  try {
    entries = await readdir(layout.facilitiesDir, { withFileTypes: true });
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return [];
    throw e;
  }
  const out: FacilityId[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory() || !isFacilityId(entry.name)) continue;
    if (await pathExists(layout.membersFile(entry.name))) out.push(entry.name);
  }
  return out.sort();
}

/** Validates the parsed JSON of `relay.json`. */
function parseRelayConfig(raw: unknown, path: string): RelayConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw configInvalid(`${path}: must be a JSON object`);
  const { v, relay, created } = raw as Record<string, unknown>;
  if (v !== 1) throw configInvalid(`${path}: unsupported version`);
  if (typeof relay !== 'string' || !isDeviceId(relay))
    throw configInvalid(`${path}: relay must be a device id`);
  if (typeof created !== 'string') throw configInvalid(`${path}: created must be a string`);
  return { v: 1, relay, created };
}

async function readConfig(path: string): Promise<unknown> {
  try {
    return await readJsonFile(path);
  } catch (cause) {
    throw configInvalid(`${path} is not valid JSON`, cause);
  }
}

async function loadKey(path: string): Promise<DeviceKeyPair> {
  let text: string;
  try {
    const s = await stat(path);
    if ((s.mode & 0o077) !== 0) throw configInvalid(`${path} must not be readable by others (chmod 600)`);
    text = await readFile(path, 'utf8');
  } catch (cause) {
    if (cause instanceof AccordError) throw cause;
    throw configInvalid(`cannot read ${path}`, cause);
  }
  try {
    return await importDeviceKey(JSON.parse(text) as unknown);
  } catch (cause) {
    throw configInvalid(`${path} does not hold a valid Ed25519 key`, cause);
  }
}

/** A `RELAY_CONFIG_INVALID` error about the file at `path`. */
export function invalidFile(path: string, what: string, cause?: unknown): AccordError {
  return new AccordError(ErrorCode.RELAY_CONFIG_INVALID, `${path}: ${what}`, {
    details: { path },
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * Reads a relay file that must hold a JSON object: undefined when it does not exist.
 *
 * @throws AccordError `RELAY_CONFIG_INVALID` when it is not JSON or not an object.
 */
export async function readJsonObject(path: string): Promise<Record<string, unknown> | undefined> {
  let raw: unknown;
  try {
    raw = await readJsonFile(path);
  } catch (cause) {
    throw invalidFile(path, 'not valid JSON', cause);
  }
  if (raw === undefined) return undefined;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw invalidFile(path, 'must be a JSON object');
  return raw as Record<string, unknown>;
}
