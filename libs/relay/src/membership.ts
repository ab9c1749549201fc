import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AccordError,
  ErrorCode,
  isDeviceId,
  isFacilityId,
  MAX_DEVICE_NAME,
  type DeviceId,
  type FacilityId,
  type RosterUpdatedData,
} from '@accord/protocol';
import { isErrno, readJsonFile, withFileLock, writeJsonAtomic } from '@accord/storage-level';
import { listFacilities, type RelayFolderLayout } from './relay-folder.js';
import { consumeEnrollmentToken } from './tokens.js';

/** One device of a facility's roster, as kept by the relay. */
export interface MemberRecord {
  readonly id: DeviceId;
  readonly name: string;
  readonly revoked: boolean;
  /** ISO 8601 time of enrollment. */
  readonly enrolled: string;
  /** ISO 8601 time of revocation, once revoked. */
  readonly revokedAt?: string;
}

/**
 * The content of `facilities/<f>/members.json`: the facility's roster, the relay's source of truth.
 *
 * @remarks `version` grows by one with every enrollment or revocation (0 for a facility created
 * without members), like the `RosterUpdated` event built from it.
 */
export interface FacilityMembersFile {
  readonly facility: FacilityId;
  readonly version: number;
  readonly devices: readonly MemberRecord[];
}

/** What a device enrolls with: its id (public key) and a display name. */
export interface NewMember {
  readonly id: DeviceId;
  readonly name: string;
}

const CONTROL = /[\u0000-\u001f\u007f]/;

function badRequest(message: string, details: Record<string, unknown>): AccordError {
  return new AccordError(ErrorCode.RELAY_BAD_REQUEST, message, { details });
}

function checkFacility(facility: string): asserts facility is FacilityId {
  if (!isFacilityId(facility))
    throw badRequest('facility must be 1-64 letters, digits, "-" or "_"', { facility });
}

function checkMember(member: NewMember): void {
  if (!isDeviceId(member.id)) throw badRequest('malformed device id', { device: member.id });
  const { name } = member;
  if (name.trim() === '' || name.length > MAX_DEVICE_NAME || CONTROL.test(name)) {
    throw badRequest(`device name must be 1-${MAX_DEVICE_NAME} printable characters`, { name });
  }
}

/** The one relay-wide lock every roster edit takes (edits are rare; it keeps device ids unique across facilities). */
function withMembershipLock<T>(layout: RelayFolderLayout, fn: () => Promise<T>): Promise<T> {
  return withFileLock(join(layout.facilitiesDir, 'membership'), fn);
}

/**
 * The roster of `facility`, or undefined when the facility does not exist.
 *
 * @throws AccordError `RELAY_BAD_REQUEST` (malformed facility id), `RELAY_CONFIG_INVALID`
 * (members.json malformed).
 */
export async function readMembers(
  layout: RelayFolderLayout,
  facility: FacilityId,
): Promise<FacilityMembersFile | undefined> {
  checkFacility(facility);
  const path = layout.membersFile(facility);
  let raw: unknown;
  try {
    raw = await readJsonFile(path);
  } catch (cause) {
    throw new AccordError(ErrorCode.RELAY_CONFIG_INVALID, `${path} is not valid JSON`, {
      cause,
      details: { path },
    });
  }
  return raw === undefined ? undefined : parseMembers(raw, facility, path);
}

/**
 * Validates the parsed JSON of a `members.json`.
 *
 * @throws AccordError `RELAY_CONFIG_INVALID` naming the first problem.
 */
export function parseMembers(raw: unknown, facility: FacilityId, path = 'members.json'): FacilityMembersFile {
  const bad = (what: string): never => {
    throw new AccordError(ErrorCode.RELAY_CONFIG_INVALID, `${path}: ${what}`, { details: { path } });
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return bad('must be a JSON object');
  const { facility: f, version, devices } = raw as Record<string, unknown>;
  if (f !== facility) bad(`facility must be ${facility}`);
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 0) {
    bad('version must be a non-negative integer');
  }
  if (!Array.isArray(devices)) return bad('devices must be an array');
  const seen = new Set<string>();
  const out: MemberRecord[] = [];
  for (const [i, d] of (devices as unknown[]).entries()) {
    if (typeof d !== 'object' || d === null) return bad(`devices[${i}] must be an object`);
    const { id, name, revoked, enrolled, revokedAt } = d as Record<string, unknown>;
    if (typeof id !== 'string' || !isDeviceId(id)) return bad(`devices[${i}].id must be a device id`);
    if (typeof name !== 'string') return bad(`devices[${i}].name must be a string`);
    if (typeof revoked !== 'boolean') return bad(`devices[${i}].revoked must be a boolean`);
    if (typeof enrolled !== 'string') return bad(`devices[${i}].enrolled must be a string`);
    if (revokedAt !== undefined && typeof revokedAt !== 'string')
      return bad(`devices[${i}].revokedAt must be a string`);
    if (seen.has(id)) return bad(`device ${id} is listed twice`);
    seen.add(id);
    out.push({ id, name, revoked, enrolled, ...(revokedAt === undefined ? {} : { revokedAt }) });
  }
  return { facility, version: version as number, devices: out };
}

/** The `RosterUpdated` data of a roster: version and members, without the relay's bookkeeping. */
export function rosterData(members: FacilityMembersFile): RosterUpdatedData {
  return {
    version: members.version,
    devices: members.devices.map(({ id, name, revoked }) => ({ id, name, revoked })),
  };
}

async function writeMembers(layout: RelayFolderLayout, members: FacilityMembersFile): Promise<void> {
  await mkdir(layout.facilityDir(members.facility), { recursive: true, mode: 0o700 });
  await writeJsonAtomic(layout.membersFile(members.facility), members);
}

/**
 * Creates `facility` with an empty roster (version 0) unless it exists; returns its roster.
 *
 * @remarks Lets an admin declare a facility (e.g. when creating its first token) so that it is
 * listed before any device enrolled. Idempotent.
 * @throws AccordError `RELAY_BAD_REQUEST`, `RELAY_CONFIG_INVALID`.
 */
export async function ensureFacility(
  layout: RelayFolderLayout,
  facility: FacilityId,
): Promise<FacilityMembersFile> {
  checkFacility(facility);
  return withMembershipLock(layout, async () => {
    const current = await readMembers(layout, facility);
    if (current !== undefined) return current;
    const created: FacilityMembersFile = { facility, version: 0, devices: [] };
    await writeMembers(layout, created);
    return created;
  });
}

/** Adds a member; the caller holds the membership lock and checked the device is nowhere. */
async function addMember(
  layout: RelayFolderLayout,
  facility: FacilityId,
  member: NewMember,
  now: number,
): Promise<FacilityMembersFile> {
  const current = (await readMembers(layout, facility)) ?? { facility, version: 0, devices: [] };
  const next: FacilityMembersFile = {
    facility,
    version: current.version + 1,
    devices: [
      ...current.devices,
      { id: member.id, name: member.name, revoked: false, enrolled: new Date(now).toISOString() },
    ],
  };
  await writeMembers(layout, next);
  return next;
}

async function refuseEnrolled(layout: RelayFolderLayout, device: DeviceId): Promise<void> {
  const where = (await deviceIndexUnlocked(layout)).get(device);
  if (where !== undefined) {
    throw new AccordError(
      ErrorCode.RELAY_ALREADY_ENROLLED,
      `device ${device} is already enrolled in ${where}`,
      {
        details: { device, facility: where },
      },
    );
  }
}

/**
 * Enrolls a device in `facility` (created when missing); returns the new roster (version + 1).
 *
 * @remarks Under the relay-wide membership lock, so concurrent admin commands and the running relay
 * never lose an edit. A device id belongs to at most one facility, ever: a revoked device cannot
 * come back with the same key.
 * @throws AccordError `RELAY_ALREADY_ENROLLED` (listed in any facility, revoked or not),
 * `RELAY_BAD_REQUEST` (malformed facility, device id or name), `RELAY_CONFIG_INVALID`.
 */
export async function enrollMember(
  layout: RelayFolderLayout,
  facility: FacilityId,
  member: NewMember,
  now: number = Date.now(),
): Promise<FacilityMembersFile> {
  checkFacility(facility);
  checkMember(member);
  return withMembershipLock(layout, async () => {
    await refuseEnrolled(layout, member.id);
    return addMember(layout, facility, member, now);
  });
}

/**
 * Redeems an enrollment token: consumes it and enrolls the device in the token's facility, as one
 * step under the membership lock.
 *
 * @remarks An already-enrolled device is refused *before* the token is consumed, so the token
 * stays usable. The caller verifies the device's proof of key possession first
 * (`verifyEnrollProof`).
 * @throws AccordError `RELAY_ALREADY_ENROLLED`, `RELAY_TOKEN_INVALID`, `RELAY_TOKEN_EXPIRED`,
 * `RELAY_TOKEN_USED`, `RELAY_BAD_REQUEST`, `RELAY_CONFIG_INVALID`.
 */
export async function enrollWithToken(
  layout: RelayFolderLayout,
  request: { readonly token: string; readonly device: DeviceId; readonly name: string },
  now: number = Date.now(),
): Promise<FacilityMembersFile> {
  const member = { id: request.device, name: request.name };
  checkMember(member);
  return withMembershipLock(layout, async () => {
    await refuseEnrolled(layout, member.id);
    const facility = await consumeEnrollmentToken(layout, request.token, now, { device: member.id });
    return addMember(layout, facility, member, now);
  });
}

/** The outcome of {@link revokeMember}. */
export interface RevokeResult {
  /** The facility that lists the device. */
  readonly facility: FacilityId;
  /** Its roster after the revocation. */
  readonly members: FacilityMembersFile;
  /** False when the device was already revoked (nothing written, version unchanged). */
  readonly changed: boolean;
}

/**
 * Revokes a device in whichever facility lists it; returns that facility and its roster.
 *
 * @remarks Bumps the version, so a running relay's {@link MembershipWatcher} sees it within one
 * poll. Revoking a revoked device changes nothing and returns the roster as it is.
 * @throws AccordError `RELAY_UNKNOWN_DEVICE` (no facility lists it), `RELAY_BAD_REQUEST`
 * (malformed id), `RELAY_CONFIG_INVALID`.
 */
export async function revokeMember(
  layout: RelayFolderLayout,
  device: DeviceId,
  now: number = Date.now(),
): Promise<RevokeResult> {
  if (!isDeviceId(device)) throw badRequest('malformed device id', { device });
  return withMembershipLock(layout, async () => {
    const facility = (await deviceIndexUnlocked(layout)).get(device);
    const current = facility === undefined ? undefined : await readMembers(layout, facility);
    if (facility === undefined || current === undefined) {
      throw new AccordError(ErrorCode.RELAY_UNKNOWN_DEVICE, `no facility lists device ${device}`, {
        details: { device },
      });
    }
    if (current.devices.some((d) => d.id === device && d.revoked)) {
      return { facility, members: current, changed: false };
    }
    const next: FacilityMembersFile = {
      facility,
      version: current.version + 1,
      devices: current.devices.map((d) =>
        d.id === device ? { ...d, revoked: true, revokedAt: new Date(now).toISOString() } : d,
      ),
    };
    await writeMembers(layout, next);
    return { facility, members: next, changed: true };
  });
}

/**
 * Takes back into `members.json` a membership the relay itself signed but the file no longer has
 * (its data folder was restored from an older backup): `roster` is the newest relay-signed
 * `RosterUpdated` of `facility`, learned back from the devices.
 *
 * @remarks Does nothing unless `roster.version` is above the file's. Never drops a member and never
 * un-revokes one: the roster's devices are merged into the file's (a revocation on either side
 * stands; devices unknown to the file get `enrolled` = `now`, their real time being lost). The
 * version becomes the roster's, or one more when the result differs from the roster (so that the
 * relay publishes it). Runs under the relay-wide lock, like every membership edit.
 */
export async function adoptRoster(
  layout: RelayFolderLayout,
  facility: FacilityId,
  roster: RosterUpdatedData,
  now: number = Date.now(),
): Promise<{ members: FacilityMembersFile; changed: boolean }> {
  checkFacility(facility);
  return withMembershipLock(layout, async () => {
    const current = (await readMembers(layout, facility)) ?? { facility, version: 0, devices: [] };
    if (roster.version <= current.version) return { members: current, changed: false };
    const at = new Date(now).toISOString();
    const byId = new Map(current.devices.map((d) => [d.id, d]));
    const devices: MemberRecord[] = current.devices.map((d) => {
      const signed = roster.devices.find((r) => r.id === d.id);
      return signed?.revoked === true && !d.revoked ? { ...d, revoked: true, revokedAt: at } : d;
    });
    for (const r of roster.devices) {
      if (byId.has(r.id)) continue;
      devices.push({
        id: r.id,
        name: r.name,
        revoked: r.revoked,
        enrolled: at,
        ...(r.revoked ? { revokedAt: at } : {}),
      });
    }
    // The file lists what the roster does not (a later member, a revocation): publish it anew.
    const key = (list: readonly { id: string; name: string; revoked: boolean }[]): string =>
      JSON.stringify(list.map(({ id, name, revoked }) => [id, name, revoked]).sort());
    const differs = key(devices) !== key(roster.devices);
    const next: FacilityMembersFile = { facility, version: roster.version + (differs ? 1 : 0), devices };
    await writeMembers(layout, next);
    return { members: next, changed: true };
  });
}

/**
 * Every enrolled device (revoked ones included) and its facility, across all facilities.
 *
 * @remarks The relay routes an incoming connection by it. Reads files only, takes no lock: it sees
 * each members.json either before or after any concurrent edit.
 * @throws AccordError `RELAY_CONFIG_INVALID` when a members.json is malformed.
 */
export async function deviceIndex(layout: RelayFolderLayout): Promise<Map<DeviceId, FacilityId>> {
  return deviceIndexUnlocked(layout);
}

async function deviceIndexUnlocked(layout: RelayFolderLayout): Promise<Map<DeviceId, FacilityId>> {
  const index = new Map<DeviceId, FacilityId>();
  for (const facility of await listFacilities(layout)) {
    const members = await readMembers(layout, facility);
    for (const d of members?.devices ?? []) {
      if (!index.has(d.id)) index.set(d.id, facility);
    }
  }
  return index;
}

/** Options of {@link MembershipWatcher}. */
export interface MembershipWatcherOptions {
  /** Called when a facility's roster version changed, or a new facility appeared. Awaited; calls are serialized. */
  readonly onChange: (facility: FacilityId, members: FacilityMembersFile) => void | Promise<void>;
  /** Called when a roster cannot be read or `onChange` failed; the previous roster stays in force. */
  readonly onError?: (error: Error, facility?: FacilityId) => void;
  /** Poll interval in ms (default 250). */
  readonly pollMs?: number;
}

/** Default poll interval of {@link MembershipWatcher}: 250 ms. */
export const DEFAULT_MEMBERSHIP_POLL_MS = 250;

interface Watched {
  signature: string;
  members: FacilityMembersFile | undefined;
}

/**
 * Follows every facility's `members.json` by polling (stat, then read when the file changed), so
 * edits made by other processes (`accord relay revoke`) reach the running relay within one poll.
 *
 * @remarks No reliance on fs.watch (unreliable on network and container file systems).
 * {@link MembershipWatcher.start} reads a baseline first: {@link MembershipWatcher.snapshot} is the
 * state at start, and `onChange` reports only versions that differ from it, including facilities
 * created later. A caller that read rosters before `start` should compare them with the snapshot.
 */
export class MembershipWatcher {
  readonly #layout: RelayFolderLayout;
  readonly #options: MembershipWatcherOptions;
  readonly #pollMs: number;
  readonly #watched = new Map<FacilityId, Watched>();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> = Promise.resolve();
  #closed = false;

  #started = false;

  /** Creates a watcher; nothing is read until {@link start}. */
  constructor(layout: RelayFolderLayout, options: MembershipWatcherOptions) {
    this.#layout = layout;
    this.#options = options;
    this.#pollMs = options.pollMs ?? DEFAULT_MEMBERSHIP_POLL_MS;
  }

  /**
   * Reads the baseline (without calling `onChange`) and starts polling. Idempotent.
   *
   * @throws when the facilities folder cannot be listed; a malformed roster goes to `onError`.
   */
  async start(): Promise<void> {
    if (this.#started || this.#closed) return;
    this.#started = true;
    const baseline = this.#running.then(() => this.#check(false));
    this.#running = baseline.catch(() => {});
    await baseline;
    this.#schedule();
  }

  /** The latest roster seen of each facility (the baseline, then every change reported). */
  snapshot(): ReadonlyMap<FacilityId, FacilityMembersFile> {
    const out = new Map<FacilityId, FacilityMembersFile>();
    for (const [f, w] of this.#watched) if (w.members !== undefined) out.set(f, w.members);
    return out;
  }

  /**
   * Records a roster the relay wrote and applied itself (an enrollment, a revocation), so a later
   * poll does not report it again as an outside change.
   *
   * @remarks Without it, the next poll would load a facility the relay unloaded in between (idle)
   * only to publish a roster it already published.
   */
  applied(facility: FacilityId, members: FacilityMembersFile): void {
    const known = this.#watched.get(facility);
    if (known?.members !== undefined && known.members.version >= members.version) return;
    // The signature stays stale: the next poll reads the file again and finds this version.
    this.#watched.set(facility, { signature: known?.signature ?? '', members });
  }

  /** Checks for changes now (serialized with the timer's polls); resolves after any `onChange`. */
  poll(): Promise<void> {
    const next = this.#running.then(() => (this.#closed ? undefined : this.#check(true)));
    this.#running = next.catch(() => {});
    return next;
  }

  /** Stops polling; resolves once a poll in progress has finished. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      void this.poll()
        .catch((e: unknown) => this.#report(e))
        .finally(() => this.#schedule());
    }, this.#pollMs);
    // The watcher alone must not keep a process alive (the relay's server does).
    this.#timer.unref();
  }

  #report(e: unknown, facility?: FacilityId): void {
    const error = e instanceof Error ? e : new Error(String(e));
    try {
      this.#options.onError?.(error, facility);
    } catch {
      // A failing error handler must not stop the watcher.
    }
  }

  async #check(notify: boolean): Promise<void> {
    for (const facility of await facilityFolders(this.#layout)) {
      if (this.#closed) return;
      const path = this.#layout.membersFile(facility);
      let signature: string;
      try {
        const s = await stat(path, { bigint: true });
        signature = `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
      } catch (e) {
        if (isErrno(e, 'ENOENT')) continue; // folder created, roster not written yet
        this.#report(e, facility);
        continue;
      }
      const known = this.#watched.get(facility);
      if (known?.signature === signature) continue;
      let members: FacilityMembersFile | undefined;
      try {
        members = await readMembers(this.#layout, facility);
      } catch (e) {
        // Remember the signature so a broken file is reported once, not every poll.
        this.#watched.set(facility, { signature, members: known?.members });
        this.#report(e, facility);
        continue;
      }
      if (members === undefined) continue;
      // Read again after the await: `applied` may have recorded this version meanwhile.
      const seen = this.#watched.get(facility)?.members;
      this.#watched.set(facility, { signature, members });
      if (notify && members.version !== seen?.version) {
        try {
          await this.#options.onChange(facility, members);
        } catch (e) {
          this.#report(e, facility);
        }
      }
    }
  }
}

async function facilityFolders(layout: RelayFolderLayout): Promise<FacilityId[]> {
  let entries;
  try {
    entries = await readdir(layout.facilitiesDir, { withFileTypes: true });
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return [];
    throw e;
  }
  return entries
    .filter((e) => e.isDirectory() && isFacilityId(e.name))
    .map((e) => e.name as FacilityId)
    .sort();
}
