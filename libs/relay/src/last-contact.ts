import type { DeviceId } from '@accord/protocol';

/** What the relay knows of one device's sessions since it started. */
export interface DeviceContact {
  /** Authenticated sessions open now (0 or 1 in practice: a new session replaces the old one). */
  readonly sessions: number;
  /** When a session of the device last began or ended (ms); while connected, when it began. */
  readonly lastContact: number;
}

/** Default bound on the devices {@link LastContactTracker} remembers. */
export const DEFAULT_LAST_CONTACT_MAX_DEVICES = 10_000;

/**
 * Last contact per device, fed by the facility endpoints' authenticated sessions, in memory.
 *
 * @remarks A session counts only once the device's handshake succeeded against the roster (the
 * endpoint's `peer-connected`), so an unknown key cannot fill the map. Remembers at most
 * `maxDevices` devices, forgetting the least recently touched: the bound protects memory, a
 * forgotten device shows "no contact" until it connects again. Nothing is persisted: after a
 * restart the relay knows only what happened since (the admin page says so).
 */
export class LastContactTracker {
  readonly #maxDevices: number;
  readonly #contacts = new Map<DeviceId, DeviceContact>();

  constructor(maxDevices = DEFAULT_LAST_CONTACT_MAX_DEVICES) {
    if (!(maxDevices >= 1)) throw new RangeError('maxDevices must be at least 1');
    this.#maxDevices = maxDevices;
  }

  /** A session of `device` began at `at`. */
  connected(device: DeviceId, at: number): void {
    this.#set(device, { sessions: (this.#contacts.get(device)?.sessions ?? 0) + 1, lastContact: at });
  }

  /** A session of `device` ended at `at`. */
  disconnected(device: DeviceId, at: number): void {
    this.#set(device, {
      sessions: Math.max(0, (this.#contacts.get(device)?.sessions ?? 0) - 1),
      lastContact: at,
    });
  }

  /** What is known of `device`, or undefined when it has not connected since the relay started. */
  get(device: DeviceId): DeviceContact | undefined {
    return this.#contacts.get(device);
  }

  /** How many devices are remembered. */
  get size(): number {
    return this.#contacts.size;
  }

  #set(device: DeviceId, contact: DeviceContact): void {
    // Re-insert to keep the map in least-recently-touched order.
    this.#contacts.delete(device);
    this.#contacts.set(device, contact);
    if (this.#contacts.size > this.#maxDevices) {
      const oldest = this.#contacts.keys().next();
      if (oldest.done !== true) this.#contacts.delete(oldest.value);
    }
  }
}
