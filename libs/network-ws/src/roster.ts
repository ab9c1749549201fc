import type { DeviceId, FacilityId } from '@accord/protocol';

/** What the roster knows about one device. */
export interface RosterEntry {
  readonly facility: FacilityId;
  readonly revoked: boolean;
}

/**
 * The port through which a link learns which devices may connect: enrolled devices, their
 * facility and whether they are revoked.
 *
 * @remarks Called synchronously at every upgrade, after every handshake and by
 * `revalidatePeers()`; it must be fast and must not throw (a throw is treated as "unknown").
 */
export interface Roster {
  lookup(device: DeviceId): RosterEntry | undefined;
}

/** An in-memory {@link Roster}: a map from device id to entry, editable at run time. */
export class StaticRoster implements Roster {
  readonly #entries = new Map<DeviceId, RosterEntry>();

  constructor(entries: Iterable<readonly [DeviceId, RosterEntry]> = []) {
    for (const [device, entry] of entries) this.#entries.set(device, entry);
  }

  /** The entry of `device`, if enrolled. */
  lookup(device: DeviceId): RosterEntry | undefined {
    return this.#entries.get(device);
  }

  /** Enrolls (or re-enrolls) a device in a facility, not revoked. */
  enroll(device: DeviceId, facility: FacilityId): this {
    this.#entries.set(device, { facility, revoked: false });
    return this;
  }

  /** Marks an enrolled device revoked; returns false when it is unknown. */
  revoke(device: DeviceId): boolean {
    const entry = this.#entries.get(device);
    if (entry === undefined) return false;
    this.#entries.set(device, { ...entry, revoked: true });
    return true;
  }

  /** Forgets a device entirely. */
  remove(device: DeviceId): boolean {
    return this.#entries.delete(device);
  }
}
