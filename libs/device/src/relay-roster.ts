import { relayRosterVersion, type DeviceId, type SignedEvent } from '@accord/protocol';
import type { DeviceLogApi } from '@accord/log';
import type { RosterFile } from './roster-file.js';

/** Options of {@link followRelayRoster}. */
export interface FollowRelayRosterOptions {
  readonly log: DeviceLogApi;
  /** The device's roster file, opened with `relay` set (it refuses anything else). */
  readonly roster: RosterFile;
  /** The relay whose `RosterUpdated` events count. */
  readonly relay: DeviceId;
  /** Problems (a bad relay roster, a failed write): the roster in force stays. */
  readonly onDiagnostic?: (message: string, detail?: unknown) => void;
}

/** A running {@link followRelayRoster}: `ready` settles after the start-up scan; `stop` unsubscribes. */
export interface RelayRosterFollower {
  readonly ready: Promise<void>;
  stop(): void;
}

/** The newest `RosterUpdated` of `relay` among `events`, with its version, if any. */
function newestRoster(
  events: Iterable<SignedEvent>,
  relay: DeviceId,
): { readonly event: SignedEvent; readonly version: number } | undefined {
  let best: { event: SignedEvent; version: number } | undefined;
  for (const event of events) {
    const version = relayRosterVersion(event, relay);
    if (version !== undefined && version > (best?.version ?? 0)) best = { event, version };
  }
  return best;
}

/**
 * Keeps a relay-enrolled device's roster file at the newest roster its relay published in the log.
 *
 * @remarks Subscribes to `log.onEvents`: a `RosterUpdated` signed by `relay` with a higher
 * version than the file's is handed to {@link RosterFile.adopt} (verified, written atomically,
 * reloaded — the roster's change listeners then tell the log and the network). `RosterUpdated`
 * events of anyone else are ignored. Events that became visible before the subscription (loaded
 * at open: received before a crash left the file unwritten) are found by one scan of
 * `log.visibleEvents()`; `ready` settles when that scan's adoption is done.
 * Never throws out of the listener: problems go to `onDiagnostic`.
 */
export function followRelayRoster(opts: FollowRelayRosterOptions): RelayRosterFollower {
  const diag = opts.onDiagnostic ?? (() => {});
  const adopt = async (event: SignedEvent): Promise<void> => {
    try {
      await opts.roster.adopt(event);
    } catch (e) {
      diag(`relay roster ${event.id} ignored: ${e instanceof Error ? e.message : String(e)}`, e);
    }
  };
  const stop = opts.log.onEvents((events) => {
    const newest = newestRoster(events, opts.relay);
    if (newest !== undefined && newest.version > (opts.roster.data.version ?? 0)) void adopt(newest.event);
  });
  const scan = async (): Promise<void> => {
    const newest = newestRoster(opts.log.visibleEvents({ systemOnly: true }), opts.relay);
    if (newest !== undefined && newest.version > (opts.roster.data.version ?? 0)) await adopt(newest.event);
  };
  return { ready: scan(), stop };
}
