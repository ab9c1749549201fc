/**
 * When the segments that validation rounds judged go out to the other devices (issue #12): after
 * a round that left nothing more ready, at once; while a backlog is worked off (rounds come back
 * full), at most once every `maxDeferMs`.
 *
 * @remarks Each release costs the relay the reload of each segment into the Repo and one sync of
 * its whole document per other device (sent as stored, see `FacilityNode`'s serve; generated
 * anew for every peer by automerge-repo before), and the devices then take in what it carries on
 * the same machine. Done after
 * every round of a backlog, it holds back the verdicts of the rounds that follow; the verdicts
 * are what every device waits for. The bound keeps a backlog that never ends from starving the
 * devices of each other's events.
 */
export class ReleasePacing {
  readonly #maxDeferMs: number;
  /** When the first full round since the last release ended. */
  #since: number | undefined;

  constructor(maxDeferMs: number) {
    this.#maxDeferMs = maxDeferMs;
  }

  /** Told after each round (`full`: it stopped at its limit, more is ready); true to release now. */
  afterRound(full: boolean, nowMs: number): boolean {
    if (full) {
      this.#since ??= nowMs;
      if (nowMs - this.#since < this.#maxDeferMs) return false;
    }
    this.#since = undefined;
    return true;
  }
}
