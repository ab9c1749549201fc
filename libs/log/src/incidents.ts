import type { SecurityIncident } from './api.js';

/** Incidents kept for {@link Incidents.list}; older ones are dropped (the count goes on). */
export const MAX_INCIDENTS_KEPT = 1000;

/**
 * The log's record of refused data: forged, foreign, conflicting or undecodable input from peers.
 *
 * @remarks Bounded: the most recent 1000 are kept, every one is counted and handed to the
 * `onIncident` callback as it happens. Stamped with the injected clock.
 */
export class Incidents {
  readonly #clock: () => number;
  readonly #onIncident: ((incident: SecurityIncident) => void) | undefined;
  readonly #kept: SecurityIncident[] = [];
  #count = 0;

  constructor(clock: () => number, onIncident: ((incident: SecurityIncident) => void) | undefined) {
    this.#clock = clock;
    this.#onIncident = onIncident;
  }

  /** Records an incident, stamped now. */
  report(incident: Omit<SecurityIncident, 'at'>): void {
    const full: SecurityIncident = { ...incident, at: new Date(this.#clock()).toISOString() };
    this.#count++;
    this.#kept.push(full);
    if (this.#kept.length > MAX_INCIDENTS_KEPT) this.#kept.shift();
    this.#onIncident?.(full);
  }

  /** The most recent incidents (bounded). */
  list(): readonly SecurityIncident[] {
    return this.#kept;
  }

  /** How many incidents were reported since open. */
  get count(): number {
    return this.#count;
  }
}
