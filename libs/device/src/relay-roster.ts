import { parseRosterUpdatedData, SystemEventType, type DeviceId, type SignedEvent } from '@accord/protocol';
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

function versionOf(event: SignedEvent): number {
  const data = parseRosterUpdatedData(event.data);
  return data.ok ? data.value.version : 0;
}

/** The newest `RosterUpdated` of `relay` among `events` (by version), if any. */
function newestRoster(events: Iterable<SignedEvent>, relay: DeviceId): SignedEvent | undefined {
  let best: SignedEvent | undefined;
  let bestVersion = 0;
  for (const e of events) {
    if (e.type !== SystemEventType.RosterUpdated || e.device !== relay) continue;
    const v = versionOf(e);
    if (v > bestVersion) {
      best = e;
      bestVersion = v;
    }
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
    if (newest !== undefined && versionOf(newest) > (opts.roster.data.version ?? 0)) void adopt(newest);
  });
  const scan = async (): Promise<void> => {
    const newest = newestRoster(opts.log.visibleEvents(), opts.relay);
    if (newest !== undefined && versionOf(newest) > (opts.roster.data.version ?? 0)) await adopt(newest);
  };
  return { ready: scan(), stop };
}
